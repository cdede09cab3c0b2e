"""Assembly of a clipper server process: its roles, resources and their lifecycles, several frontends, and
the local replica supervisor."""

from clipper_core.server.assembly import RunningServer, run, start_server

__all__ = ["RunningServer", "run", "start_server"]
