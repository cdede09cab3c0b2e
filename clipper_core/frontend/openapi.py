"""The query API's OpenAPI document, served at ``GET /openapi.json`` by the query app."""

from clipper_core.openapi import query_openapi

__all__ = ["query_openapi"]
