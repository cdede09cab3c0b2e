"""A stand-in for a one-node Kubernetes cluster's kubelet, scheduler, Deployment controller, PVC provisioner and
kube-proxy (NodePorts only), running pods' containers on a real Docker engine, for tests against an emulated API
server (``kube_api/``).

:class:`Kubelet` talks to the API server only through the official ``kubernetes`` client (every call with a
``_request_timeout``), as a real kubelet would, and loops every ``period`` seconds (each step and each pod in its
own try: one failing pod is logged, at most every 10 s, and the loop goes on; slow work — pulls, probes, graceful
stops — runs in a thread pool; Docker calls are bounded by the given client's own timeout):

* **Node**: registers Node ``node_name`` (InternalIP ``node_address``, 127.0.0.1 by default, and Hostname; a Ready
  condition via nodes/status). Another loopback address (127.x.y.z) keeps the node ports of concurrent kubelets
  (or test sessions) apart: the emulator hands out node ports from 30000 up, so two clusters collide on 127.0.0.1.
* **Scheduler**: binds pods without ``spec.nodeName`` (default scheduler) to that one node.
* **Deployment controller**: keeps ``spec.replicas`` pods per Deployment, named ``<deployment>-<hash>-<xxxxx>`` and
  labelled with the template's labels + ``pod-template-hash`` (no ReplicaSets are made: pods are owned by the
  Deployment directly). A pod the API server refuses to create (say its ServiceAccount is missing: the emulator's
  ServiceAccount admission answers 403) is the Deployment's ``ReplicaFailure`` condition (True, FailedCreate, the
  server's message), retried every pass and removed by the first pass whose creations (if any) all succeed. Surplus
  pods are deleted (not-ready first, then newest) with their grace period. A changed template is rolled out with
  surge 100% / unavailable 0: every new pod is created at once, and old pods are deleted only as new ones become
  ready (the number of old pods kept is ``replicas - ready new pods``). Pods whose owning
  Deployment is gone are garbage-collected. The status (observedGeneration, replicas, readyReplicas,
  availableReplicas, updatedReplicas, unavailableReplicas, Available, Progressing, ReplicaFailure) goes through
  deployments/status, only when it changed. ``minReadySeconds`` is honoured for availableReplicas.
* **PVC provisioner**: every PVC is bound at once (phase Bound, accessModes, capacity); its data is a Docker volume
  per (namespace, claim) that survives pods, removed once the PVC is gone.
* **Kubelet**: for pods on the node, makes one Docker container per pod container (``init=True``, restart policy
  "no"; the kubelet restarts), with K8s command/args → entrypoint/cmd, env (value, fieldRef, secretKeyRef,
  configMapKeyRef, resourceFieldRef, envFrom) with ``$(VAR)`` expansion, workingDir, memory/cpu limits,
  securityContext runAsUser/runAsGroup/fsGroup/supplementalGroups/privileged, volumes (persistentVolumeClaim;
  emptyDir as a named volume per pod, removed with it, or tmpfs for medium Memory; secret and configMap as files;
  hostPath; new volumes are world-writable, as kind's local-path provisioner makes them), a static pod IP on one
  user-defined bridge network (10.244.K.0/24, K from a random start until Docker accepts) and Docker aliases ``svc``,
  ``svc.ns``, ``svc.ns.svc``, ``svc.ns.svc.cluster.local`` for the Services selecting the pod. Images must be on the
  engine (a pull is tried once per back-off: ErrImagePull, then ImagePullBackOff). Probes (httpGet, tcpSocket, exec;
  startup, readiness, liveness) with their timings, CrashLoopBackOff restarts in place (``backoff_base * 2**n``,
  capped at ``30 * backoff_base``, reset after 10 minutes running), graceful deletion (SIGTERM, SIGKILL after the
  grace period, then the pod is finalised with gracePeriodSeconds=0). Pod status via pods/status, only when it
  changed.
* **In-cluster API access** (``serviceaccounts.py``, with an ``api_handle``): the emulator is also served over HTTPS
  on the pod network's gateway (``Kubelet.gateway``, an address of this host) and an ephemeral port, on that address
  only, stopped with the kubelet (``Kubelet.api_endpoint``: host, port, ca_pem, url). Every container gets the
  kubernetes Service's variables (``KUBERNETES_SERVICE_HOST``, ``_PORT``, ``_PORT_HTTPS``, ``KUBERNETES_PORT`` and
  ``KUBERNETES_PORT_<port>_TCP*``, usable in ``$(VAR)``, its own variables winning) and ``/etc/hosts`` entries for
  ``kubernetes.default.svc[.cluster.local]``; unless ``automountServiceAccountToken`` is false (on the pod, else
  on its ServiceAccount) ``/var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt,namespace}``, read-only,
  readable by any user, the token minted once per pod for ``spec.serviceAccountName`` (whose requests the emulator
  authorizes by RBAC), so the official client's in-cluster configuration works from inside a pod.
* **kube-proxy, NodePorts only**: a TCP forwarder on <node_address>:<nodePort> per Service port, round-robin per
  connection over the ready endpoints (re-read every pass; a port already taken is retried every 5 s).
* **Logs**: :meth:`Kubelet.log_source` returns the Docker logs of a pod's container (its current run); passing
  ``api_handle=`` installs it with the emulator's ``set_log_source`` on :meth:`Kubelet.start`.

What it does NOT do: no scheduler beyond the one node (no resources accounting, affinity, taints); no kube-proxy
virtual IPs (a Service's name resolves to its pods' IPs through Docker's DNS, so the Service port must equal the
target port for in-cluster clients; no ``*_SERVICE_HOST`` env vars but the kubernetes Service's, whose port is the
ephemeral one, not 443); no TokenRequest API, token expiry, rotation or audiences (the token is valid while its
ServiceAccount exists), no projected volumes (the token directory is a plain bind mount, without the ``..data``
symlinks; a pod's spec shows no ``kube-api-access`` volume), no ``imagePullSecrets`` from ServiceAccounts; no
in-cluster endpoint, token or kubernetes variables without an ``api_handle``; no cluster DNS beyond Docker aliases
(aliases are set when a pod's container is created: a Service created after a pod is not resolvable from it, and the
short name ``svc`` is shared across namespaces on the one network); no cgroups QoS or eviction; no image registry
(pulls fail offline, imagePullPolicy Always acts as IfNotPresent); no init containers (a pod with some stays waiting
with CreateContainerConfigError saying so), ephemeral containers, Endpoints or EndpointSlices objects, ReplicaSets,
StatefulSets, Jobs, events; a restarted container keeps its writable layer (it is restarted in place); with several
containers in a pod the 2nd and later share the first one's network namespace (restarting the first one cuts
theirs); secret/configMap volumes and the token are host files bind-mounted (the Docker engine must share this
host's filesystem).
"""

from .node import Kubelet
from .util import expand, selector_matches, template_hash

__all__ = ["Kubelet", "expand", "selector_matches", "template_hash"]
