"""The emulated kubelet/Deployment controller (``kubelet/``) against a real Docker engine and the emulated API
server (``kube_api/``)."""

from __future__ import annotations

import random
import socket
import string
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import docker
import docker.errors
import pytest
from kube_api import running_api_server
from kubelet import Kubelet, expand, selector_matches, template_hash
from kubernetes import client as kclient
from kubernetes import config as kconfig
from kubernetes.client.exceptions import ApiException

T = TypeVar("T")
REDIS = "clipper/redis:0.1.0"
FRONTEND = "clipper/frontend:0.1.0"
RT = 10  # _request_timeout of every API call here


def wait_for(fn: Callable[[], T | None], timeout: float = 30.0, what: str = "condition", poll: float = 0.1) -> T:
    """Poll ``fn`` until it returns a truthy value (exceptions count as not yet), or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = fn()
            if value:
                return value
            last = value
        except (ApiException, docker.errors.APIError, OSError, KeyError, IndexError, TypeError) as exc:
            last = exc
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}")
        time.sleep(poll)


# ---------------------------------------------------------------------------------------------- unit tests


def test_expand_follows_kubernetes_rules() -> None:
    env = {"A": "x", "B": "y"}
    assert expand("$(A)-$(B)", env) == "x-y"
    assert expand("$$(A)", env) == "$(A)"
    assert expand("$(C)", env) == "$(C)"
    assert expand("a$(A", env) == "a$(A"
    assert expand("$x $", env) == "$x $"
    assert expand("$$$(A)", env) == "$x"


def test_template_hash_is_stable_and_short() -> None:
    a = template_hash({"spec": {"containers": [{"name": "a", "image": "i"}]}, "metadata": {"labels": {"x": "1"}}})
    b = template_hash({"metadata": {"labels": {"x": "1"}}, "spec": {"containers": [{"image": "i", "name": "a"}]}})
    assert a == b and len(a) == 10 and a.isalnum()
    assert template_hash({"spec": {}}) != a


def test_selector_matches() -> None:
    assert selector_matches({"app": "a"}, {"app": "a", "x": "y"})
    assert not selector_matches({"app": "a"}, {"app": "b"})
    assert not selector_matches({}, {"app": "a"})


# ---------------------------------------------------------------------------------------------- fixtures


# docker_client and clipper_images are the Docker plugin's session fixtures (clipper_docker.testing): they start the
# private engine and build the images, and without them the tests skip, except under CI=true, where they fail.


@pytest.fixture(scope="module")
def cluster(docker_client: docker.DockerClient, clipper_images: dict[str, float]) -> Iterator[Any]:
    """The emulated API server with a Kubelet on it (fast back-offs); afterwards nothing of it is left in Docker."""
    prefix = "kt" + "".join(random.choices(string.ascii_lowercase + string.digits, k=6))
    with running_api_server(token="kubelet-test-token") as server:
        # a loopback address of its own: other sessions' kubelets serve the same node ports on 127.0.0.1
        address = f"127.{random.randrange(1, 255)}.{random.randrange(1, 255)}.{random.randrange(1, 255)}"
        kubelet = Kubelet(server.kubeconfig, docker_client, name_prefix=prefix, period=0.1, backoff_base=0.3,
                          api_handle=server, node_address=address)
        with kubelet:
            yield server, kubelet
        assert list(kubelet.docker_objects()) == [], "Kubelet.stop left Docker objects behind"


@pytest.fixture(scope="module")
def api(cluster: Any) -> Iterator[kclient.ApiClient]:
    server, _ = cluster
    client = kconfig.new_client_from_config(config_file=server.kubeconfig)
    yield client
    client.close()


@pytest.fixture
def kubelet(cluster: Any) -> Kubelet:
    return cluster[1]


@pytest.fixture
def core(api: kclient.ApiClient) -> kclient.CoreV1Api:
    return kclient.CoreV1Api(api)


@pytest.fixture
def apps(api: kclient.ApiClient) -> kclient.AppsV1Api:
    return kclient.AppsV1Api(api)


@pytest.fixture
def ns(core: kclient.CoreV1Api, apps: kclient.AppsV1Api, kubelet: Kubelet) -> Iterator[str]:
    """A namespace for one test; everything in it is deleted afterwards, and its containers are gone."""
    name = "t-" + "".join(random.choices(string.ascii_lowercase + string.digits, k=6))
    core.create_namespace({"metadata": {"name": name}}, _request_timeout=RT)
    yield name
    for dep in apps.list_namespaced_deployment(name, _request_timeout=RT).items:
        apps.delete_namespaced_deployment(dep.metadata.name, name, _request_timeout=RT)
    for svc in core.list_namespaced_service(name, _request_timeout=RT).items:
        core.delete_namespaced_service(svc.metadata.name, name, _request_timeout=RT)
    for pvc in core.list_namespaced_persistent_volume_claim(name, _request_timeout=RT).items:
        core.delete_namespaced_persistent_volume_claim(pvc.metadata.name, name, _request_timeout=RT)

    def pods_gone() -> bool:
        pods = core.list_namespaced_pod(name, _request_timeout=RT).items
        for pod in pods:
            with _suppress_404():
                core.delete_namespaced_pod(pod.metadata.name, name, grace_period_seconds=0, _request_timeout=RT)
        return not pods and not kubelet.docker.containers.list(
            all=True, filters={"label": [f"kubelet.clipper.test/prefix={kubelet.prefix}",
                                         f"kubelet.clipper.test/namespace={name}"]})

    wait_for(pods_gone, 60, f"the pods and containers of namespace {name} to go", poll=0.3)
    with _suppress_404():
        core.delete_namespace(name, _request_timeout=RT)


class _suppress_404:  # used like contextlib.suppress
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        return isinstance(exc, ApiException) and exc.status == 404


# ---------------------------------------------------------------------------------------------- helpers


def container(name: str, image: str, command: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "image": image, **extra}
    if command is not None:
        spec["command"] = command
    return spec


def sh(script: str) -> list[str]:
    return ["sh", "-c", script]


def make_deployment(apps: kclient.AppsV1Api, ns: str, name: str, containers: list[dict[str, Any]],
                    replicas: int = 1, labels: dict[str, str] | None = None, grace: int = 2) -> dict[str, Any]:
    labels = labels or {"app": name}
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": containers, "terminationGracePeriodSeconds": grace}}}}
    apps.create_namespaced_deployment(ns, body, _request_timeout=RT)
    return body


def make_pod(core: kclient.CoreV1Api, ns: str, name: str, containers: list[dict[str, Any]],
             labels: dict[str, str] | None = None, grace: int = 2, **spec: Any) -> None:
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
            "spec": {"containers": containers, "terminationGracePeriodSeconds": grace, "nodeName": "emulated-node",
                     **spec}}
    core.create_namespaced_pod(ns, body, _request_timeout=RT)


def pods_of(core: kclient.CoreV1Api, ns: str, app: str) -> list[Any]:
    return [p for p in core.list_namespaced_pod(ns, label_selector=f"app={app}", _request_timeout=RT).items
            if p.metadata.deletion_timestamp is None]


def is_ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


def ready_pods(core: kclient.CoreV1Api, ns: str, app: str, n: int) -> list[Any] | None:
    pods = pods_of(core, ns, app)
    return pods if len(pods) == n and all(is_ready(p) for p in pods) else None


def pod(core: kclient.CoreV1Api, ns: str, name: str) -> Any:
    return core.read_namespaced_pod(name, ns, _request_timeout=RT)


def pod_log(core: kclient.CoreV1Api, ns: str, name: str) -> str:
    return str(core.read_namespaced_pod_log(name, ns, _request_timeout=RT))


def redis_ping(host: str, port: int) -> bytes:
    with socket.create_connection((host, port), timeout=3) as s:
        s.sendall(b"PING\r\n")
        return s.recv(64)


REDIS_CONTAINER = container("redis", REDIS, ["redis-server", "--port", "6379", "--protected-mode", "no"],
                            ports=[{"name": "redis", "containerPort": 6379}],
                            readinessProbe={"tcpSocket": {"port": "redis"}, "periodSeconds": 1})


def sleeper(name: str = "main", script: str = "sleep 600 & wait", **extra: Any) -> dict[str, Any]:
    return container(name, FRONTEND, sh(script), **extra)


# ---------------------------------------------------------------------------------------------- tests


def test_node_is_registered(core: kclient.CoreV1Api, kubelet: Kubelet) -> None:
    node = core.read_node(kubelet.node_name, _request_timeout=RT)
    assert {(a.type, a.address) for a in node.status.addresses} == {("InternalIP", kubelet.node_address),
                                                                      ("Hostname", kubelet.node_name)}
    assert [c.status for c in node.status.conditions if c.type == "Ready"] == ["True"]


def test_redis_deployment_ready_reachable_and_nodeport(core: kclient.CoreV1Api, apps: kclient.AppsV1Api,
                                                       kubelet: Kubelet, ns: str) -> None:
    started = time.monotonic()
    make_deployment(apps, ns, "redis", [REDIS_CONTAINER])
    (p,) = wait_for(lambda: ready_pods(core, ns, "redis", 1), 60, "a ready redis pod")
    ready_after = time.monotonic() - started
    dep = wait_for(lambda: (d := apps.read_namespaced_deployment_status("redis", ns, _request_timeout=RT))
                   .status.ready_replicas == 1 and d, 30, "deployment status")
    assert dep.status.available_replicas == 1 and dep.status.updated_replicas == 1 and dep.status.replicas == 1
    assert dep.status.observed_generation == dep.metadata.generation
    assert {c.type: c.status for c in dep.status.conditions}["Available"] == "True"
    h = p.metadata.labels["pod-template-hash"]
    assert len(h) == 10 and p.metadata.name.startswith(f"redis-{h}-") and len(p.metadata.name) == len(f"redis-{h}-") + 5
    (owner,) = p.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid, owner.controller) == ("Deployment", "redis", dep.metadata.uid, True)
    assert p.spec.node_name == kubelet.node_name and p.status.phase == "Running"
    assert p.status.host_ip == kubelet.node_address
    (cs,) = p.status.container_statuses
    assert cs.ready and cs.started and cs.restart_count == 0 and cs.state.running is not None
    assert cs.container_id == f"docker://{kubelet.container_of(ns, p.metadata.name).id}"
    assert redis_ping(p.status.pod_ip, 6379) == b"+PONG\r\n"
    print(f"redis pod Ready {ready_after:.2f} s after the Deployment was created")

    core.create_namespaced_service(ns, {"metadata": {"name": "redis"}, "spec": {
        "type": "NodePort", "selector": {"app": "redis"}, "ports": [{"port": 6379, "targetPort": "redis"}]}},
        _request_timeout=RT)
    node_port = core.read_namespaced_service("redis", ns, _request_timeout=RT).spec.ports[0].node_port
    assert node_port
    assert wait_for(lambda: redis_ping(kubelet.node_address, node_port) == b"+PONG\r\n", 20, "PONG via the node port")
    core.delete_namespaced_service("redis", ns, _request_timeout=RT)

    def closed() -> bool:
        try:
            redis_ping(kubelet.node_address, node_port)
        except OSError:
            return True
        return False

    wait_for(closed, 20, "the node port to close")


def test_scale_subresource_creates_and_deletes_pods(core: kclient.CoreV1Api, apps: kclient.AppsV1Api,
                                                    kubelet: Kubelet, ns: str) -> None:
    make_deployment(apps, ns, "scaled", [REDIS_CONTAINER])
    wait_for(lambda: ready_pods(core, ns, "scaled", 1), 60, "one ready pod")
    apps.patch_namespaced_deployment_scale("scaled", ns, {"spec": {"replicas": 2}}, _request_timeout=RT)
    pods = wait_for(lambda: ready_pods(core, ns, "scaled", 2), 60, "two ready pods")
    assert len({p.status.pod_ip for p in pods}) == 2
    assert all(kubelet.container_of(ns, p.metadata.name) is not None for p in pods)
    wait_for(lambda: apps.read_namespaced_deployment("scaled", ns, _request_timeout=RT).status.ready_replicas == 2,
             20, "readyReplicas 2")
    apps.patch_namespaced_deployment_scale("scaled", ns, {"spec": {"replicas": 0}}, _request_timeout=RT)
    wait_for(lambda: not core.list_namespaced_pod(ns, _request_timeout=RT).items, 60, "no pods")
    wait_for(lambda: all(kubelet.container_of(ns, p.metadata.name) is None for p in pods), 20, "no containers")
    status = wait_for(lambda: (s := apps.read_namespaced_deployment("scaled", ns, _request_timeout=RT).status)
                      .replicas in (0, None) and s, 20, "status replicas 0")
    assert not status.ready_replicas


def test_rolling_update_and_garbage_collection(core: kclient.CoreV1Api, apps: kclient.AppsV1Api,
                                               kubelet: Kubelet, ns: str) -> None:
    make_deployment(apps, ns, "roll", [sleeper(env=[{"name": "V", "value": "1"}])])
    (first,) = wait_for(lambda: ready_pods(core, ns, "roll", 1), 60, "the first pod")
    apps.patch_namespaced_deployment("roll", ns, {"spec": {"template": {"spec": {"containers": [
        sleeper(env=[{"name": "V", "value": "2"}])]}}}}, _request_timeout=RT)
    (second,) = wait_for(lambda: [p for p in ready_pods(core, ns, "roll", 1) or []
                                  if p.metadata.uid != first.metadata.uid], 60, "the updated pod")
    assert second.metadata.labels["pod-template-hash"] != first.metadata.labels["pod-template-hash"]
    apps.delete_namespaced_deployment("roll", ns, _request_timeout=RT)
    wait_for(lambda: not core.list_namespaced_pod(ns, _request_timeout=RT).items, 60, "orphans collected")


def test_killed_container_is_restarted_in_place(core: kclient.CoreV1Api, apps: kclient.AppsV1Api,
                                                kubelet: Kubelet, ns: str) -> None:
    make_deployment(apps, ns, "crashy", [REDIS_CONTAINER])
    (p,) = wait_for(lambda: ready_pods(core, ns, "crashy", 1), 60, "a ready pod")
    ctr = kubelet.container_of(ns, p.metadata.name)
    ctr.kill()
    restarted = wait_for(lambda: (q := pod(core, ns, p.metadata.name)).status.container_statuses[0]
                         .restart_count == 1 and is_ready(q) and q, 30, "restartCount 1 and ready")
    cs = restarted.status.container_statuses[0]
    assert cs.last_state.terminated.exit_code == 137
    assert kubelet.container_of(ns, p.metadata.name).id == ctr.id  # in place
    assert restarted.status.pod_ip == p.status.pod_ip
    assert redis_ping(p.status.pod_ip, 6379) == b"+PONG\r\n"
    assert len(pods_of(core, ns, "crashy")) == 1


def test_crash_loop_back_off_and_restart_policy_never(core: kclient.CoreV1Api, ns: str) -> None:
    make_pod(core, ns, "crasher", [sleeper(script="echo run; exit 3")])
    seen: set[str] = set()

    def looping() -> bool:
        cs = pod(core, ns, "crasher").status.container_statuses[0]
        if cs.state.waiting is not None:
            seen.add(cs.state.waiting.reason)
        return cs.restart_count >= 2 and "CrashLoopBackOff" in seen and cs.last_state.terminated.exit_code == 3

    wait_for(looping, 30, "CrashLoopBackOff with restarts", poll=0.05)
    assert pod_log(core, ns, "crasher").count("run") == 1  # the log of the current (last) run only
    make_pod(core, ns, "once", [sleeper(script="exit 4")], restartPolicy="Never")
    failed = wait_for(lambda: (q := pod(core, ns, "once")).status.phase == "Failed" and q, 30, "phase Failed")
    assert failed.status.container_statuses[0].state.terminated.exit_code == 4
    make_pod(core, ns, "done", [sleeper(script="exit 0")], restartPolicy="OnFailure")
    wait_for(lambda: pod(core, ns, "done").status.phase == "Succeeded", 30, "phase Succeeded")


def test_exec_readiness_probe_and_liveness_restart(core: kclient.CoreV1Api, kubelet: Kubelet, ns: str) -> None:
    probe = {"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 1}
    make_pod(core, ns, "probed", [sleeper(readinessProbe=probe)])
    wait_for(lambda: pod(core, ns, "probed").status.container_statuses[0].state.running, 30, "running")
    time.sleep(1.5)  # two probe periods without the file: still not ready
    assert not is_ready(pod(core, ns, "probed"))
    ctr = kubelet.container_of(ns, "probed")
    assert ctr.exec_run(["touch", "/tmp/ready"]).exit_code == 0
    wait_for(lambda: is_ready(pod(core, ns, "probed")), 20, "ready after the file appears")
    assert ctr.exec_run(["rm", "/tmp/ready"]).exit_code == 0
    wait_for(lambda: not is_ready(pod(core, ns, "probed")), 20, "not ready after 3 failures")

    liveness = {"exec": {"command": ["test", "-f", "/tmp/alive"]}, "periodSeconds": 1, "failureThreshold": 2}
    make_pod(core, ns, "live", [sleeper(script="touch /tmp/alive; sleep 600 & wait", livenessProbe=liveness)])
    wait_for(lambda: is_ready(pod(core, ns, "live")), 30, "ready")
    kubelet.container_of(ns, "live").exec_run(["rm", "/tmp/alive"])  # the restarted run touches it again
    restarted = wait_for(lambda: (q := pod(core, ns, "live")).status.container_statuses[0].restart_count == 1
                         and is_ready(q) and q, 30, "restart after the liveness probe fails")
    assert restarted.status.container_statuses[0].last_state.terminated is not None


def test_http_probe_named_port(core: kclient.CoreV1Api, ns: str) -> None:
    server = "mkdir -p /tmp/www && cd /tmp/www && echo ok > ok && exec python -m http.server 8080"
    probe = {"httpGet": {"path": "/ok", "port": "http", "httpHeaders": [{"name": "X-Probe", "value": "1"}]},
             "periodSeconds": 1}
    make_pod(core, ns, "web", [container("web", FRONTEND, sh(server), ports=[{"name": "http", "containerPort": 8080}],
                                         readinessProbe=probe)])
    wait_for(lambda: is_ready(pod(core, ns, "web")), 30, "ready through an HTTP probe")


def test_env_expansion_fieldref_and_secret(core: kclient.CoreV1Api, ns: str) -> None:
    core.create_namespaced_secret(ns, {"metadata": {"name": "creds"}, "stringData": {"password": "s3cret"}},
                                  _request_timeout=RT)
    core.create_namespaced_config_map(ns, {"metadata": {"name": "conf"}, "data": {"MODE": "fast"}},
                                      _request_timeout=RT)
    env = [{"name": "A", "value": "hello"}, {"name": "B", "value": "$(A)-world-$$(A)-$(NOPE)"},
           {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
           {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
           {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
           {"name": "OPT", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "x", "optional": True}}}]
    script = 'echo "B=$B IP=$IP POD=$POD PW=$PW MODE=$MODE OPT=${OPT-unset}"; echo "ARG=$0"; sleep 600 & wait'
    make_pod(core, ns, "envy", [container("main", FRONTEND, ["sh", "-c", script], args=["$(A)"], env=env,
                                          envFrom=[{"configMapRef": {"name": "conf"}}], workingDir="/tmp")])
    out = wait_for(lambda: "ARG=" in (text := pod_log(core, ns, "envy")) and text, 30, "the pod's log")
    ip = wait_for(lambda: pod(core, ns, "envy").status.pod_ip, 20, "the pod IP in its status")  # written after start
    assert f"B=hello-world-$(A)-$(NOPE) IP={ip} POD=envy PW=s3cret MODE=fast OPT=unset" in out
    assert "ARG=hello" in out  # args alone after `sh -c script`: $(A) expanded, it is the script's $0
    tail = core.read_namespaced_pod_log("envy", ns, tail_lines=1, timestamps=True, _request_timeout=RT)
    assert "ARG=" in tail and "B=" not in tail


def test_missing_secret_is_a_config_error(core: kclient.CoreV1Api, ns: str) -> None:
    env = [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "nowhere", "key": "k"}}}]
    make_pod(core, ns, "nosecret", [sleeper(env=env)])
    cs = wait_for(lambda: (w := pod(core, ns, "nosecret").status.container_statuses[0].state.waiting)
                  and w.reason == "CreateContainerConfigError" and w, 30, "CreateContainerConfigError")
    assert "nowhere" in cs.message


def test_missing_image_reports_pull_errors(core: kclient.CoreV1Api, ns: str) -> None:
    image = "clipper/does-not-exist:0.0.1"
    make_pod(core, ns, "noimage", [container("main", image)])
    reasons: set[str] = set()

    def back_off() -> bool:
        w = pod(core, ns, "noimage").status.container_statuses[0].state.waiting
        if w is not None and w.reason in ("ErrImagePull", "ImagePullBackOff"):
            assert image in w.message
            reasons.add(w.reason)
        return "ImagePullBackOff" in reasons

    wait_for(back_off, 30, "ImagePullBackOff", poll=0.05)
    p = pod(core, ns, "noimage")
    assert p.status.phase == "Pending" and not is_ready(p)
    assert p.status.container_statuses[0].image == image


def test_headless_service_resolves_to_every_pod(core: kclient.CoreV1Api, apps: kclient.AppsV1Api,
                                                ns: str) -> None:
    core.create_namespaced_service(ns, {"metadata": {"name": "peers"}, "spec": {
        "clusterIP": "None", "selector": {"app": "peer"}, "ports": [{"port": 6379}]}}, _request_timeout=RT)
    make_deployment(apps, ns, "peer", [REDIS_CONTAINER], replicas=2)
    pods = wait_for(lambda: ready_pods(core, ns, "peer", 2), 60, "two ready peers")
    ips = {p.status.pod_ip for p in pods}
    names = ["peers", f"peers.{ns}", f"peers.{ns}.svc", f"peers.{ns}.svc.cluster.local"]
    script = "; ".join(f"echo {n}; getent ahostsv4 {n} | awk '{{print $1}}' | sort -u" for n in names)
    make_pod(core, ns, "client", [sleeper(script=f"{script}; echo END; sleep 600 & wait")])
    out = wait_for(lambda: "END" in (text := pod_log(core, ns, "client")) and text, 30, "the client's log")
    blocks = out.split("END")[0].split()
    for n in names:
        following = blocks[blocks.index(n) + 1 : blocks.index(n) + 3]
        assert set(following) == ips, (n, out)


def test_graceful_delete_sends_sigterm(core: kclient.CoreV1Api, kubelet: Kubelet, ns: str) -> None:
    script = "trap 'echo got TERM; sleep 2; exit 0' TERM; echo started; sleep 600 & wait; sleep 5 & wait"
    make_pod(core, ns, "graceful", [sleeper(script=script)], grace=20)
    wait_for(lambda: "started" in pod_log(core, ns, "graceful"), 30, "started")
    ctr = kubelet.container_of(ns, "graceful")
    core.delete_namespaced_pod("graceful", ns, grace_period_seconds=20, _request_timeout=RT)
    wait_for(lambda: "got TERM" in pod_log(core, ns, "graceful"), 20, "the TERM trap's output", poll=0.05)

    def gone() -> bool:
        try:
            pod(core, ns, "graceful")
        except ApiException as exc:
            return exc.status == 404
        return False

    wait_for(gone, 20, "the pod to be finalised")
    with pytest.raises(docker.errors.NotFound):
        ctr.reload()


def test_pvc_keeps_data_across_pods(core: kclient.CoreV1Api, kubelet: Kubelet, ns: str) -> None:
    core.create_namespaced_persistent_volume_claim(ns, {"metadata": {"name": "data"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}, _request_timeout=RT)
    wait_for(lambda: core.read_namespaced_persistent_volume_claim("data", ns, _request_timeout=RT).status.phase
             == "Bound", 20, "the claim to be bound")
    pvc = core.read_namespaced_persistent_volume_claim("data", ns, _request_timeout=RT)
    assert pvc.status.capacity == {"storage": "1Gi"} and pvc.status.access_modes == ["ReadWriteOnce"]
    script = 'echo "found=$(cat /data/f 2>/dev/null || echo none)"; echo kept > /data/f; echo written; sleep 600 & wait'
    spec = {"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}},
                        {"name": "scratch", "emptyDir": {}}]}
    mounts = [{"name": "d", "mountPath": "/data"}, {"name": "scratch", "mountPath": "/scratch"}]
    make_pod(core, ns, "writer", [sleeper(script=script, volumeMounts=mounts)], grace=0, **spec)
    assert "found=none" in wait_for(lambda: "written" in (t := pod_log(core, ns, "writer")) and t, 30, "writer")
    core.delete_namespaced_pod("writer", ns, _request_timeout=RT)
    wait_for(lambda: kubelet.container_of(ns, "writer") is None and not [
        p for p in core.list_namespaced_pod(ns, _request_timeout=RT).items if p.metadata.name == "writer"],
        30, "the first pod gone")
    make_pod(core, ns, "writer", [sleeper(script=script, volumeMounts=mounts)], grace=0, **spec)
    assert "found=kept" in wait_for(lambda: "written" in (t := pod_log(core, ns, "writer")) and t, 30, "reader")


def test_stop_removes_everything(docker_client: docker.DockerClient, cluster: Any) -> None:
    server, _ = cluster
    prefix = "ks" + "".join(random.choices(string.ascii_lowercase, k=6))
    other = Kubelet(server.kubeconfig, docker_client, name_prefix=prefix, node_name="second-node")
    with other:
        assert any(True for _ in other.docker_objects())  # its network
    assert list(other.docker_objects()) == []


def test_unscheduled_pod_is_bound_and_multi_container_pods_share_the_network(core: kclient.CoreV1Api,
                                                                              ns: str) -> None:
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "duo", "namespace": ns}, "spec": {
        "terminationGracePeriodSeconds": 1, "containers": [
            REDIS_CONTAINER,
            sleeper("client", "until redis-cli -h 127.0.0.1 ping 2>/dev/null || python -c \"import socket; "
                              "s=socket.create_connection(('127.0.0.1', 6379)); s.sendall(b'PING\\\\r\\\\n'); "
                              "print(s.recv(10))\"; do sleep 0.2; done; echo connected; sleep 600 & wait")]}}
    core.create_namespaced_pod(ns, body, _request_timeout=RT)
    p = wait_for(lambda: (q := pod(core, ns, "duo")).spec.node_name and is_ready(q) and q, 30, "bound and ready")
    assert [c.name for c in p.status.container_statuses] == ["redis", "client"]
    out = wait_for(lambda: "connected" in (t := core.read_namespaced_pod_log("duo", ns, container="client",
                                                                               _request_timeout=RT)) and t,
                   30, "the client container's log")
    assert "PONG" in out


def test_secret_and_config_map_volumes(core: kclient.CoreV1Api, ns: str) -> None:
    core.create_namespaced_secret(ns, {"metadata": {"name": "files"}, "stringData": {"token": "t0k"}},
                                  _request_timeout=RT)
    core.create_namespaced_config_map(ns, {"metadata": {"name": "cfg"}, "data": {"a.conf": "x=1", "b": "2"}},
                                      _request_timeout=RT)
    spec = {"volumes": [{"name": "s", "secret": {"secretName": "files"}},
                        {"name": "c", "configMap": {"name": "cfg", "items": [{"key": "a.conf", "path": "sub/a"}]}}]}
    mounts = [{"name": "s", "mountPath": "/etc/s", "readOnly": True}, {"name": "c", "mountPath": "/etc/c"}]
    script = 'echo "token=$(cat /etc/s/token) a=$(cat /etc/c/sub/a) b=$(ls /etc/c)"; sleep 600 & wait'
    make_pod(core, ns, "files", [sleeper(script=script, volumeMounts=mounts)], **spec)
    out = wait_for(lambda: "token=" in (t := pod_log(core, ns, "files")) and t, 30, "the pod's log")
    assert "token=t0k a=x=1 b=sub" in out
