"""The frontend's local RPC endpoint: an ``ipc://`` (unix socket) address beside its TCP one, for replicas on
the same host (docs/rpc.md, "Transports").

The socket lives in ``$CLIPPER_HOME/run/ipc/`` (owner-only, 0700), named after the frontend's TCP address, so a
restarted frontend on the same TCP port binds the same path and its replicas rejoin over IPC. A unix socket path
holds at most 107 bytes: a longer one falls back to ``/tmp/clipper-<uid>/`` (checked to be ours and 0700, else a
fresh private temporary directory). Beside the socket a pointer file ``<name>.json`` in ``$CLIPPER_HOME/run/ipc/``
records ``{"rpc": tcp address, "ipc": ipc address, "host": hostname}``: the host-local registry through which the
replica supervisor of another process (``clipper start --frontends N``) and the other frontends of this host find
a frontend's IPC address from the TCP address the shared frontend registry lists.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MAX_SOCKET_PATH", "IpcEndpoint", "ipc_dir", "local_address", "prepare"]

log = logging.getLogger(__name__)

MAX_SOCKET_PATH = 107
"""Bytes of a unix socket path (``sun_path`` is 108 bytes with the terminating NUL)."""


def ipc_dir(home: Path) -> Path:
    return home / "run" / "ipc"


def _stem(rpc_addr: str) -> str:
    return hashlib.sha1(rpc_addr.encode()).hexdigest()[:16]


@dataclass
class IpcEndpoint:
    """Where one frontend's IPC socket lives; :meth:`remove` deletes the socket and its pointer file."""

    address: str
    """``ipc:///path/to/socket``."""
    socket_path: Path
    pointer: Path
    own_dir: Path | None = None
    """A temporary directory made for this socket alone (removed with it)."""

    def publish(self, rpc_addr: str) -> None:
        """Write the pointer file (after the socket is bound) and make the socket file owner-only."""
        with contextlib.suppress(OSError):
            os.chmod(self.socket_path, 0o600)
        data = {"rpc": rpc_addr, "ipc": self.address, "host": socket.gethostname(), "pid": os.getpid()}
        tmp = self.pointer.with_name(f".{self.pointer.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(data) + "\n")
        os.replace(tmp, self.pointer)

    def remove(self) -> None:
        for path in (self.pointer, self.socket_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        if self.own_dir is not None:
            with contextlib.suppress(OSError):
                self.own_dir.rmdir()


def _private_dir(path: Path) -> bool:
    """Create ``path`` (0700) or accept it if it is a directory of ours that nobody else can enter."""
    with contextlib.suppress(FileExistsError):
        path.mkdir(parents=True, mode=0o700)
    try:
        info = path.lstat()
    except OSError:
        return False
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        return False
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(path, 0o700)
    return True


def prepare(home: Path, rpc_addr: str) -> IpcEndpoint:
    """The IPC endpoint of the frontend whose TCP address is ``rpc_addr`` (directories made, nothing bound)."""
    pointers = ipc_dir(home)
    pointers.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # $CLIPPER_HOME/run, as the supervisor makes it
    if not _private_dir(pointers):
        raise OSError(f"{pointers} is not a private directory of this user")
    name = f"{_stem(rpc_addr)}.sock"
    path = pointers / name
    own: Path | None = None
    if len(str(path).encode()) > MAX_SOCKET_PATH:
        short = Path(tempfile.gettempdir()) / f"clipper-{os.getuid()}"
        if not _private_dir(short) or len(str(short / name).encode()) > MAX_SOCKET_PATH:
            short = own = Path(tempfile.mkdtemp(prefix="clipper-", dir="/tmp"))
        path = short / name
    return IpcEndpoint(f"ipc://{path}", path, pointers / f"{_stem(rpc_addr)}.json", own)


def local_address(home: Path, rpc_addr: str) -> str | None:
    """The IPC address of the frontend at ``rpc_addr`` if it runs on this host and serves one, else None."""
    if rpc_addr.startswith("ipc://"):
        return rpc_addr
    try:
        data = json.loads((ipc_dir(home) / f"{_stem(rpc_addr)}.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("rpc") != rpc_addr or data.get("host") != socket.gethostname():
        return None
    address = data.get("ipc")
    if not isinstance(address, str) or not address.startswith("ipc://"):
        return None
    try:
        is_socket = stat.S_ISSOCK(os.stat(address[len("ipc://"):]).st_mode)
    except OSError:
        return None
    return address if is_socket else None
