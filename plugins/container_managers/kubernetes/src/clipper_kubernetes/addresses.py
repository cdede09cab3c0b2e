"""Where the user's process reaches a cluster's Services, as Clipper's manager computed it (reference §3.4):

* through ``kubernetes_proxy_addr`` (``kubectl proxy``):
  ``<proxy>/api/v1/namespaces/<ns>/services/<name>:<port>/proxy``;
* a NodePort Service: a Ready node's ExternalIP (its InternalIP with ``useInternalIP=True``, or when it has no
  ExternalIP, as on kind and minikube) and the node port;
* a LoadBalancer Service: its ingress address and the Service port (its node port while none is assigned);
* a ClusterIP Service: ``<name>.<ns>.svc:<port>`` from inside the cluster, else the cluster IP (reachable only
  where the cluster network is).
"""

from __future__ import annotations

from typing import Any

from clipper_core.errors import ClipperException
from clipper_kubernetes.api import KubeApi

__all__ = ["node_address", "service_address"]


def node_address(api: KubeApi, use_internal_ip: bool) -> str:
    """A Ready node's address: ExternalIP (InternalIP when ``use_internal_ip``, or when there is no ExternalIP)."""
    nodes = api.nodes()
    ready = [n for n in nodes if any(c.get("type") == "Ready" and c.get("status") == "True"
                                     for c in (n.get("status") or {}).get("conditions") or [])]
    for node in ready or nodes:
        addresses = {a.get("type"): a.get("address") for a in (node.get("status") or {}).get("addresses") or []}
        wanted = ("InternalIP", "ExternalIP") if use_internal_ip else ("ExternalIP", "InternalIP")
        for kind in wanted:
            if addresses.get(kind):
                return str(addresses[kind])
    raise ClipperException("no node with an address to reach a NodePort Service on; pass kubernetes_proxy_addr "
                           "(kubectl proxy) or use service_types={'query': 'LoadBalancer', ...}")


def service_address(api: KubeApi, service: dict[str, Any], port_name: str, use_internal_ip: bool,
                    proxy: str | None) -> str:
    """``host:port`` (or a proxy URL without its scheme) of ``service``'s port ``port_name``."""
    meta, spec = service["metadata"], service.get("spec") or {}
    port = next((p for p in spec.get("ports") or [] if p.get("name") == port_name), None)
    if port is None:
        raise ClipperException(f"Service {meta['name']} has no port named {port_name!r}")
    if proxy:
        base = proxy.split("://", 1)[-1].rstrip("/")
        return f"{base}/api/v1/namespaces/{meta['namespace']}/services/{meta['name']}:{port['port']}/proxy"
    kind = spec.get("type", "ClusterIP")
    if kind == "LoadBalancer":
        ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        if ingress and (ingress[0].get("ip") or ingress[0].get("hostname")):
            return f"{ingress[0].get('ip') or ingress[0].get('hostname')}:{port['port']}"
    if kind in ("NodePort", "LoadBalancer") and port.get("nodePort"):
        return f"{node_address(api, use_internal_ip)}:{port['nodePort']}"
    if api.in_cluster:
        return f"{meta['name']}.{meta['namespace']}.svc:{port['port']}"
    if spec.get("clusterIP") and spec.get("clusterIP") != "None":
        return f"{spec['clusterIP']}:{port['port']}"
    raise ClipperException(f"Service {meta['name']} ({kind}) has no address reachable from here")
