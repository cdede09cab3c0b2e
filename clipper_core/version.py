"""clipper-core's version (one definition: the package, the OpenAPI documents and V2 server metadata)."""

__all__ = ["__version__"]

__version__ = "0.1.0"
