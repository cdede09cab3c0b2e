"""Container probes: startup, readiness and liveness, each httpGet, tcpSocket or exec, run in the thread pool with
their initialDelay/period/timeout/success/failure settings; a failed liveness (or startup) probe stops the
container so that the runtime restarts it."""

from __future__ import annotations

import http.client
import socket
import ssl
from typing import Any

from .state import _Container, _Pod, _Probe
from .util import Json, log


class ProbesMixin:
    """Kubelet's probes."""

    def _probe(self, state: _Pod, c: _Container, now: float) -> None:
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            spec = c.spec.get(kind)
            if not spec or (kind == "startupProbe") == c.started:
                continue
            probe = c.probes.get(kind)
            if probe is None:
                probe = c.probes[kind] = _Probe(next_at=c.run_mono + float(spec.get("initialDelaySeconds", 0)))
            if probe.future is not None:
                if probe.future.done():
                    ok = probe.future.exception() is None and bool(probe.future.result())
                    probe.future = None
                    if not probe.timed_out:
                        self._record(state, c, kind, spec, probe, ok)
                elif now >= probe.deadline and not probe.timed_out:
                    probe.timed_out = True
                    self._record(state, c, kind, spec, probe, False)
            if probe.future is None and now >= probe.next_at and c.killing is None:
                timeout = float(spec.get("timeoutSeconds", 1))
                probe.future = self.pool.submit(self._run_probe, spec, state.ip, c, timeout)
                probe.deadline, probe.timed_out = now + timeout + 0.5, False
                probe.next_at = now + float(spec.get("periodSeconds", 10))
        if not c.spec.get("readinessProbe"):
            c.ready = c.started

    def _record(self, state: _Pod, c: _Container, kind: str, spec: Json, probe: _Probe, ok: bool) -> None:
        if ok:
            probe.successes, probe.failures = probe.successes + 1, 0
        else:
            probe.successes, probe.failures = 0, probe.failures + 1
        threshold = int(spec.get("failureThreshold", 3))
        if kind == "readinessProbe":
            if ok and probe.successes >= int(spec.get("successThreshold", 1)):
                c.ready = True
            elif not ok and probe.failures >= threshold:
                c.ready = False
        elif kind == "startupProbe" and ok:
            c.started = True
        elif not ok and probe.failures >= threshold and c.docker_id is not None:  # liveness/startup: restart
            log.info("%s of %s/%s container %s failed %d times: restarting", kind, state.namespace, state.name,
                     c.name, probe.failures)
            grace = int(spec.get("terminationGracePeriodSeconds", state.grace))
            c.ready = False
            c.killing = self.pool.submit(self.docker.api.stop, c.docker_id, timeout=grace)

    def _run_probe(self, spec: Json, ip: str, c: _Container, timeout: float) -> bool:
        if "httpGet" in spec:
            h = spec["httpGet"]
            port = self._port(h.get("port"), c.spec)
            target = h.get("host") or ip
            headers = {x["name"]: x["value"] for x in h.get("httpHeaders") or []}
            headers.setdefault("User-Agent", "kube-probe/1.37")
            conn: http.client.HTTPConnection
            if str(h.get("scheme", "HTTP")).upper() == "HTTPS":
                conn = http.client.HTTPSConnection(target, port, timeout=timeout,
                                                   context=ssl._create_unverified_context())
            else:
                conn = http.client.HTTPConnection(target, port, timeout=timeout)
            try:
                conn.request("GET", h.get("path") or "/", headers=headers)
                return 200 <= conn.getresponse().status < 400
            except (OSError, http.client.HTTPException):
                return False
            finally:
                conn.close()
        if "tcpSocket" in spec:
            t = spec["tcpSocket"]
            try:
                with socket.create_connection((t.get("host") or ip, self._port(t.get("port"), c.spec)), timeout):
                    return True
            except OSError:
                return False
        if "exec" in spec:
            if c.docker_id is None:
                return False
            exec_id = self.docker.api.exec_create(c.docker_id, spec["exec"].get("command") or [])["Id"]
            self.docker.api.exec_start(exec_id)
            return self.docker.api.exec_inspect(exec_id).get("ExitCode") == 0
        self._warn(f"probe-kind-{c.name}", "unsupported probe %s (only httpGet, tcpSocket, exec)", sorted(spec))
        return False

    @staticmethod
    def _port(port: Any, cs: Json) -> int:
        if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
            return int(port)
        for p in cs.get("ports") or []:
            if p.get("name") == port:
                return int(p["containerPort"])
        raise ValueError(f"no container port named {port!r}")
