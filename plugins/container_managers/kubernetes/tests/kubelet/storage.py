"""Storage: the PVC provisioner (every claim bound at once; its data a Docker volume per claim that outlives pods,
by uid: a claim deleted and made again under the same name starts empty, as with a new PersistentVolume) and a
pod container's volume mounts (persistentVolumeClaim, emptyDir as a per-pod named volume or tmpfs, secret and
configMap as host files bind-mounted read-only, hostPath; new volumes are world-writable; plus the service-account
token of ``serviceaccounts.py``)."""

from __future__ import annotations

import os
import tempfile

import docker
import docker.errors
import docker.types

from .state import _Pod
from .util import LABEL, MERGE, ConfigError, Json, _sanitise, _terminating


class StorageMixin:
    """Kubelet's PVC binder and pod volumes."""

    # ------------------------------------------------------------------ PVCs

    def _bind_pvcs(self) -> None:
        claims = self._items(self.core.list_persistent_volume_claim_for_all_namespaces)
        self.pvcs = {(c["metadata"]["namespace"], c["metadata"]["name"]): str(c["metadata"].get("uid", ""))
                     for c in claims if not _terminating(c)}
        for claim in claims:
            if _terminating(claim) or (claim.get("status") or {}).get("phase") == "Bound":
                continue
            spec = claim.get("spec") or {}
            storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
            status = {"phase": "Bound", "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                      "capacity": {"storage": storage}}
            self._call(self.core.patch_namespaced_persistent_volume_claim_status, claim["metadata"]["name"],
                       claim["metadata"]["namespace"], {"status": status}, _content_type=MERGE)

    def _volume(self, name: str, labels: dict[str, str], image: str) -> str:
        """A named Docker volume, world-writable when new (as kind's local-path provisioner and emptyDir make them,
        so that images running as a non-root user can write to it)."""
        try:
            self.docker.volumes.get(name)
            return name
        except docker.errors.NotFound:
            pass
        volume = self.docker.volumes.create(name, labels={f"{LABEL}/prefix": self.prefix, **labels})
        try:
            os.chmod(volume.attrs["Mountpoint"], 0o777)  # the engine shares this host's filesystem
        except (OSError, KeyError):
            self.docker.containers.run(image, ["0777", "/v"], entrypoint="chmod", user="0", remove=True,
                                       volumes={name: {"bind": "/v", "mode": "rw"}}, network_mode="none",
                                       labels={f"{LABEL}/prefix": self.prefix})
        return name

    def _pvc_volume(self, namespace: str, claim: str, image: str) -> str:
        uid = self.pvcs[(namespace, claim)]
        name = f"{self.prefix}-pvc-{_sanitise(namespace)}-{_sanitise(claim)}-{uid[:8]}"
        return self._volume(name, {f"{LABEL}/kind": "pvc", f"{LABEL}/namespace": namespace, f"{LABEL}/claim": claim,
                                   f"{LABEL}/claim-uid": uid}, image)

    # ------------------------------------------------------------------ volume mounts

    def _mounts(self, pod: Json, state: _Pod, cs: Json) -> list[docker.types.Mount]:
        ns = pod["metadata"]["namespace"]
        volumes = {v["name"]: v for v in (pod.get("spec") or {}).get("volumes") or []}
        mounts: list[docker.types.Mount] = []
        for vm in cs.get("volumeMounts") or []:
            vol = volumes.get(vm["name"])
            if vol is None:
                raise ConfigError(f'volume "{vm["name"]}" not found in the pod spec')
            ro = bool(vm.get("readOnly"))
            sub = vm.get("subPath") or ""
            target = vm["mountPath"]
            if "persistentVolumeClaim" in vol:
                claim = vol["persistentVolumeClaim"]["claimName"]
                if (ns, claim) not in self.pvcs:
                    raise ConfigError(f'persistentvolumeclaim "{claim}" not found', reason="ContainerCreating")
                mounts.append(self._volume_mount(target, self._pvc_volume(ns, claim, cs["image"]), ro, sub))
            elif "emptyDir" in vol:
                if (vol["emptyDir"] or {}).get("medium") == "Memory":
                    mounts.append(docker.types.Mount(target, None, type="tmpfs"))
                    continue
                name = _sanitise(f"{self.prefix}-empty-{state.uid[:8]}-{vol['name']}")
                self._volume(name, {f"{LABEL}/kind": "empty", f"{LABEL}/pod-uid": state.uid}, cs["image"])
                mounts.append(self._volume_mount(target, name, ro, sub))
            elif "secret" in vol or "configMap" in vol:
                kind, key = ("Secret", "secret") if "secret" in vol else ("ConfigMap", "configMap")
                src = vol[key]
                source_name = src.get("secretName") if kind == "Secret" else src.get("name")
                path = self._files_volume(state, vol["name"], kind, ns, str(source_name), src)
                mounts.append(docker.types.Mount(target, os.path.join(path, sub), type="bind", read_only=True))
            elif "hostPath" in vol:
                mounts.append(docker.types.Mount(target, os.path.join(vol["hostPath"]["path"], sub), type="bind",
                                                 read_only=ro))
            else:
                raise ConfigError(f'volume "{vm["name"]}": unsupported volume type {sorted(set(vol) - {"name"})}')
        return mounts + self._service_account_mounts(pod, state, cs)

    @staticmethod
    def _volume_mount(target: str, source: str, ro: bool, sub: str) -> docker.types.Mount:
        mount = docker.types.Mount(target, source, type="volume", read_only=ro)
        if sub:
            mount.setdefault("VolumeOptions", {})["Subpath"] = sub
        return mount

    def _files_volume(self, state: _Pod, volume: str, kind: str, ns: str, name: str, src: Json) -> str:
        """A secret/configMap volume: the keys as files in a host directory, bind-mounted read-only."""
        data = self._read_source(kind, ns, name, bool(src.get("optional"))) or {}
        path = tempfile.mkdtemp(prefix=f"{self.prefix}-{volume}-")
        os.chmod(path, 0o755)
        state.tmpdirs.append(path)
        mode = int(src.get("defaultMode", 0o644))
        items = src.get("items") or [{"key": k, "path": k} for k in data]
        for item in items:
            if item["key"] not in data:
                if src.get("optional"):
                    continue
                raise ConfigError(f"couldn't find key {item['key']} in {kind} {ns}/{name}")
            file = os.path.join(path, item["path"])
            os.makedirs(os.path.dirname(file), exist_ok=True)
            with open(file, "w", encoding="utf-8") as fh:
                fh.write(data[item["key"]])
            os.chmod(file, int(item.get("mode", mode)))
        return path
