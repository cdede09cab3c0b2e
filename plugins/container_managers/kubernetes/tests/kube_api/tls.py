"""The in-cluster HTTPS endpoint: :class:`TlsListeners` serves the emulator's own handler (the same one the plain
http listener on 127.0.0.1 serves: same state, same request records, same event loop) over TLS on a given IP
address, with a certificate from a test CA made by ``trustme`` (one CA per server run, a leaf per listener), valid
for that IP and for ``kubernetes``, ``kubernetes.default``, ``kubernetes.default.svc`` and
``kubernetes.default.svc.cluster.local``, as a real apiserver's serving certificate is.

Why a second listener of the same handler and not a TLS-terminating forwarder to the loopback URL: there is no
extra hop, thread or socket pair per connection, a watch ends when the server ends it, and the request is seen
with its real peer; the listener is an ``aiohttp.web.ServerRunner`` + ``SockSite`` with an ``ssl.SSLContext``.

It listens only on the one address asked for (a wildcard address is refused), on an ephemeral port, and stops with
:meth:`TlsListeners.stop` or when the server stops.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
import ssl
from typing import Any

import aiohttp.web
import trustme

API_SERVER_NAMES = ("kubernetes", "kubernetes.default", "kubernetes.default.svc",
                    "kubernetes.default.svc.cluster.local")


@dataclasses.dataclass(frozen=True)
class HttpsEndpoint:
    """Where a TLS listener is: ``host`` (an IP address), ``port``, and the CA certificate (PEM) that signed it."""

    host: str
    port: int
    ca_pem: str = dataclasses.field(repr=False)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"


class TlsListeners:
    """The HTTPS listeners of one server run. Use on the server's event loop only."""

    def __init__(self, handler: Any) -> None:
        self._handler = handler
        self._ca: trustme.CA | None = None
        self._runners: dict[HttpsEndpoint, aiohttp.web.ServerRunner] = {}

    @property
    def ca(self) -> trustme.CA:
        if self._ca is None:
            self._ca = trustme.CA(organization_name="kube-api-emulator")
        return self._ca

    @property
    def endpoints(self) -> list[HttpsEndpoint]:
        return list(self._runners)

    async def start(self, host: str, port: int = 0) -> HttpsEndpoint:
        """Listen on ``host:port`` (port 0: an ephemeral one) with a certificate for ``host`` and the API names."""
        address = ipaddress.ip_address(host)  # ValueError for a name: the certificate is for an IP address
        if address.is_unspecified:
            raise ValueError(f"refusing to listen on the wildcard address {host}: give the one address to serve on")
        cert = self.ca.issue_cert(str(address), *API_SERVER_NAMES, common_name="kube-apiserver")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        sock = socket.socket(socket.AF_INET6 if address.version == 6 else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((str(address), port))
        except OSError:
            sock.close()
            raise
        runner = aiohttp.web.ServerRunner(aiohttp.web.Server(self._handler, handler_cancellation=True),
                                          shutdown_timeout=5.0)
        await runner.setup()
        try:
            await aiohttp.web.SockSite(runner, sock, ssl_context=context).start()
        except BaseException:
            await runner.cleanup()
            sock.close()
            raise
        endpoint = HttpsEndpoint(str(address), sock.getsockname()[1], self.ca.cert_pem.bytes().decode())
        self._runners[endpoint] = runner
        return endpoint

    async def stop(self, endpoint: HttpsEndpoint) -> None:
        runner = self._runners.pop(endpoint, None)
        if runner is not None:
            await runner.cleanup()

    async def close(self) -> None:
        for endpoint in list(self._runners):
            await self.stop(endpoint)
