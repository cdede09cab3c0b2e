"""The frontend side of clipper's RPC (docs/rpc.md): a ZeroMQ ROUTER that model containers connect to."""

from clipper_core.rpc.server import BatchFailed, ReplicaConnection, ReplicaLost, RpcServer

__all__ = ["BatchFailed", "ReplicaConnection", "ReplicaLost", "RpcServer"]
