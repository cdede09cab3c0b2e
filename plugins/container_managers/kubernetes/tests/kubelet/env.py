"""A pod container's environment: ``env`` values with ``$(VAR)`` expansion, ``envFrom`` and ``valueFrom``
(fieldRef, resourceFieldRef, secretKeyRef, configMapKeyRef), reading Secrets and ConfigMaps from the API server
(missing ones raise :class:`ConfigError` unless optional), and the kubernetes Service's variables."""

from __future__ import annotations

import base64
import re

from kubernetes.client.exceptions import ApiException
from kubernetes.utils import parse_quantity

from .state import _Pod
from .util import ConfigError, Json, expand


class EnvMixin:
    """Kubelet's container environment and Secret/ConfigMap reads."""

    def _read_source(self, kind: str, namespace: str, name: str, optional: bool) -> dict[str, str] | None:
        try:
            if kind == "Secret":
                obj = self._call(self.core.read_namespaced_secret, name, namespace)
                data = {k: base64.b64decode(v).decode("utf-8", errors="replace")
                        for k, v in (obj.get("data") or {}).items()}
                data.update(obj.get("stringData") or {})
                return data
            obj = self._call(self.core.read_namespaced_config_map, name, namespace)
            return dict(obj.get("data") or {})
        except ApiException as exc:
            if exc.status == 404:
                if optional:
                    return None
                raise ConfigError(f'{kind.lower()} "{name}" not found') from exc
            raise

    def _field(self, pod: Json, state: _Pod, path: str) -> str:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        simple = {"metadata.name": meta["name"], "metadata.namespace": meta["namespace"], "metadata.uid": meta["uid"],
                  "status.podIP": state.ip, "status.podIPs": state.ip, "status.hostIP": self.node_address,
                  "status.hostIPs": self.node_address, "spec.nodeName": self.node_name,
                  "spec.serviceAccountName": spec.get("serviceAccountName", "default")}
        if path in simple:
            return str(simple[path])
        m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
        if m:
            return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
        raise ConfigError(f"unsupported fieldRef {path}")

    def _env(self, pod: Json, state: _Pod, cs: Json) -> dict[str, str]:
        """The container's variables, then the kubernetes Service's (``_service_env``) for the names it does not set;
        those are also seen by ``$(VAR)`` expansion, as the real kubelet does."""
        ns = pod["metadata"]["namespace"]
        service = self._service_env()
        env: dict[str, str] = {}
        for source in cs.get("envFrom") or []:
            prefix = source.get("prefix", "")
            for kind, key in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
                if key in source:
                    ref = source[key]
                    data = self._read_source(kind, ns, ref["name"], bool(ref.get("optional")))
                    env.update({prefix + k: v for k, v in (data or {}).items()})
        for var in cs.get("env") or []:
            name = var["name"]
            if "value" in var or "valueFrom" not in var:
                env[name] = expand(str(var.get("value", "")), {**service, **env})
                continue
            vf = var["valueFrom"]
            if "fieldRef" in vf:
                env[name] = self._field(pod, state, vf["fieldRef"]["fieldPath"])
            elif "resourceFieldRef" in vf:
                env[name] = self._resource_field(cs, vf["resourceFieldRef"])
            else:
                kind, key = ("Secret", "secretKeyRef") if "secretKeyRef" in vf else ("ConfigMap", "configMapKeyRef")
                ref = vf.get(key)
                if ref is None:
                    raise ConfigError(f"unsupported valueFrom for env {name}")
                optional = bool(ref.get("optional"))
                data = self._read_source(kind, ns, ref["name"], optional)
                if data is None:
                    continue
                if ref["key"] not in data:
                    if optional:
                        continue
                    raise ConfigError(f"couldn't find key {ref['key']} in {kind} {ns}/{ref['name']}")
                env[name] = data[ref["key"]]
        return {**service, **env}

    @staticmethod
    def _resource_field(cs: Json, ref: Json) -> str:
        group, _, kind = ref["resource"].partition(".")
        value = ((cs.get("resources") or {}).get(group) or {}).get(kind)
        if value is None:
            return "0" if group == "requests" else ""
        divisor = parse_quantity(ref.get("divisor", "1"))
        quantity = parse_quantity(value) / divisor
        return str(int(-(-quantity // 1)))  # rounded up, as Kubernetes does
