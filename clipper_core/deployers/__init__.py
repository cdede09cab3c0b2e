"""Admin-side deployer helpers with Clipper's signatures (``from clipper_core.deployers import python``)."""
