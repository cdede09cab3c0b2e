"""DockerContainerManager on a real Docker engine: Clipper's admin scenarios (clipper-reference §10.2) in Docker
mode, the cluster's containers, labels, ports and volume, two clusters side by side, rediscovery, restarts,
killed replicas, and model images built without a registry."""

from __future__ import annotations

import re
import socket
import threading
import time
from pathlib import Path

import docker
import pytest
from clipper_container.loaders import python_closure
from clipper_docker import DockerContainerManager
from clipper_docker.names import CLUSTER_LABEL, MODEL_NAME_LABEL, ROLE_LABEL
from docker_test_helpers import Make, predict, wait_for_output

from clipper_core import ClipperConnection, ClipperException
from clipper_core.deployers import python as python_deployer

pytestmark = pytest.mark.timeout(600)


def feature_sum(xs):  # type: ignore[no-untyped-def]
    return [str(sum(x)) for x in xs]


def double_sum(xs):  # type: ignore[no-untyped-def]
    return [str(2 * sum(x)) for x in xs]


def six_version(xs):  # type: ignore[no-untyped-def]
    import six  # installed in the model image by pkgs_to_install, not in clipper/model-base

    return [six.__version__ for _ in xs]


def cluster_containers(client: docker.DockerClient, cluster: str, role: str | None = None,
                       model: str | None = None) -> list[docker.models.containers.Container]:
    labels = [f"{CLUSTER_LABEL}={cluster}"] + ([f"{ROLE_LABEL}={role}"] if role else [])
    labels += [f"{MODEL_NAME_LABEL}={model}"] if model else []
    return list(client.containers.list(all=True, filters={"label": labels}))


def connected(conn: ClipperConnection, model: str, version: str) -> int:
    return sum(1 for r in conn.get_all_model_replicas(verbose=True)
               if r["model_name"] == model and str(r["model_version"]) == version)


def eventually(check, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{check.__doc__ or check} still false after {timeout} s"
        time.sleep(0.1)


def test_start_labels_ports_volume_rediscovery_and_stop_all(make_manager: Make,
                                                             docker_client: docker.DockerClient) -> None:
    manager = make_manager("life")
    conn = ClipperConnection(manager)
    conn.start_clipper()
    containers = cluster_containers(docker_client, manager.cluster)
    roles = sorted(c.labels[ROLE_LABEL] for c in containers)
    assert roles == ["management", "query", "redis", "supervisor"]
    for container in containers:
        assert manager.network in container.attrs["NetworkSettings"]["Networks"]
        for bindings in (container.attrs["NetworkSettings"]["Ports"] or {}).values():
            assert all(b["HostIp"] == "127.0.0.1" for b in bindings or [])
    redis = cluster_containers(docker_client, manager.cluster, "redis")[0]
    assert [m["Name"] for m in redis.attrs["Mounts"]] == [f"clipper-{manager.cluster}-redis"]
    assert manager.state.redis.config_get("appendonly") == {"appendonly": "yes"}
    assert manager.get_query_addr().startswith("127.0.0.1:")

    # Another manager (another process, say) finds the same cluster from its labels.
    again = DockerContainerManager(manager.cluster, docker_client=docker_client)
    other = ClipperConnection(again)
    other.connect()
    assert (again.get_query_addr(), again.get_admin_addr()) == (manager.get_query_addr(), manager.get_admin_addr())
    other.register_application("hello-world", "doubles", "-1.0", 100000)
    assert conn.get_all_apps() == ["hello-world"]

    def registered() -> bool:
        """the query frontend has heard of the app (through Redis, a moment after the admin call answered)"""
        return predict(again, "hello-world", {"input": [1.0]})[0] != 404

    eventually(registered)
    status, answer = predict(again, "hello-world", {"input": [1.0]})
    assert status == 200 and answer["default"] is True  # no model linked: the default output

    conn.stop_all()
    assert cluster_containers(docker_client, manager.cluster) == []
    assert docker_client.volumes.get(f"clipper-{manager.cluster}-redis")  # registrations are kept
    with pytest.raises(ClipperException, match="no running clipper cluster"):
        DockerContainerManager(manager.cluster, docker_client=docker_client).connect()


def test_two_clusters_side_by_side_first_free_ports(make_manager: Make, docker_client: docker.DockerClient) -> None:
    with socket.socket() as blocker:  # a port someone else holds: the cluster moves to the next free one
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        a = make_manager("one", clipper_query_port=taken)
        ClipperConnection(a).start_clipper()
        assert a.ports["query"][0] > taken
    # The second cluster asks for exactly the first one's ports.
    b = make_manager("two", clipper_query_port=a.ports["query"][0], clipper_management_port=a.ports["admin"],
                     clipper_rpc_port=a.ports["rpc"][0], redis_port=a.ports["redis"])
    conn_b = ClipperConnection(b)
    conn_b.start_clipper()
    ports_a = {a.ports["admin"], a.ports["redis"], *a.ports["query"], *a.ports["rpc"]}
    ports_b = {b.ports["admin"], b.ports["redis"], *b.ports["query"], *b.ports["rpc"]}
    assert len(ports_b) == 4 and not ports_a & ports_b

    conn_a = ClipperConnection(a)
    conn_a.connect()
    conn_a.register_application("only-in-a", "doubles", "-1.0", 100000)
    assert conn_b.get_all_apps() == []
    conn_a.stop_all()
    assert cluster_containers(docker_client, a.cluster) == []
    assert len([c for c in cluster_containers(docker_client, b.cluster) if c.status == "running"]) == 4
    assert b._admin().ping()


def test_clipper_admin_scenarios(make_manager: Make, docker_client: docker.DockerClient, tmp_path: Path) -> None:
    manager = make_manager("admin")
    conn = ClipperConnection(manager)
    conn.start_clipper()
    conn.register_application("hello-world", "doubles", "-1.0", 3_000_000)
    python_deployer.deploy_python_closure(conn, "sum-model", 1, "doubles", feature_sum, num_replicas=2)
    conn.link_model_to_app("hello-world", "sum-model")
    assert conn.get_num_replicas("sum-model") == 2
    assert len(cluster_containers(docker_client, manager.cluster, "model", "sum-model")) == 2
    assert connected(conn, "sum-model", "1") == 2  # ready means connected to the frontend
    wait_for_output(manager, "hello-world", {"input": [1.1, 2.2, 3.3]}, 6.6)
    status, batch = predict(manager, "hello-world", {"input_batch": [[1.0], [2.0, 3.0]]})
    assert status == 200 and [p["output"] for p in batch["batch_predictions"]] == [1.0, 5.0]

    conn.set_num_replicas("sum-model", 4)
    assert conn.get_num_replicas("sum-model") == 4 and connected(conn, "sum-model", "1") == 4
    conn.set_num_replicas("sum-model", 2)
    assert len(cluster_containers(docker_client, manager.cluster, "model")) == 2
    eventually(lambda: connected(conn, "sum-model", "1") == 2)
    wait_for_output(manager, "hello-world", {"input": [1.0, 2.0]}, 3.0)

    python_deployer.deploy_python_closure(conn, "sum-model", 2, "doubles", double_sum, num_replicas=1)
    wait_for_output(manager, "hello-world", {"input": [1.0, 2.0]}, 6.0)  # the new version is current
    assert conn.get_num_replicas("sum-model", 1) == 2
    conn.stop_inactive_model_versions(["sum-model"])
    assert conn.get_all_models() == ["sum-model:2"]
    remaining = cluster_containers(docker_client, manager.cluster, "model")
    assert [c.labels["ai.clipper.model.version"] for c in remaining] == ["2"]
    wait_for_output(manager, "hello-world", {"input": [1.0, 2.0]}, 6.0)

    logs = conn.get_clipper_logs(str(tmp_path / "logs"))
    assert sorted(Path(p).name for p in logs) == sorted(f"{c.name}.log" for c in
                                                        cluster_containers(docker_client, manager.cluster))
    replica_log = (tmp_path / "logs" / f"{remaining[0].name}.log").read_text()
    assert "WELCOME" in replica_log

    conn.stop_all()
    assert cluster_containers(docker_client, manager.cluster) == []


def test_killed_replica_is_replaced_and_app_keeps_answering(make_manager: Make,
                                                             docker_client: docker.DockerClient) -> None:
    manager = make_manager("kill")
    conn = ClipperConnection(manager)
    conn.start_clipper()
    conn.register_application("app", "doubles", "-1.0", 3_000_000)
    python_deployer.deploy_python_closure(conn, "sum-model", 1, "doubles", feature_sum, num_replicas=2)
    conn.link_model_to_app("app", "sum-model")
    wait_for_output(manager, "app", {"input": [1.0, 2.0]}, 3.0)

    victim = cluster_containers(docker_client, manager.cluster, "model")[0]
    victim.kill()  # docker kill: Docker's restart policy leaves it stopped; the supervisor replaces it
    answers = []

    def replaced() -> bool:
        """two running replicas again, neither of them the killed one, both connected"""
        status, answer = predict(manager, "app", {"input": [1.0, 2.0]})
        answers.append((status, answer))
        running = [c for c in cluster_containers(docker_client, manager.cluster, "model") if c.status == "running"]
        return (len(running) == 2 and victim.id not in {c.id for c in running}
                and connected(conn, "sum-model", "1") == 2)

    eventually(replaced, timeout=60)
    assert all(status == 200 for status, _ in answers)
    non_default = [a for _, a in answers if not a["default"] and a["output"] == 3.0]
    assert len(non_default) >= 0.9 * len(answers), answers
    wait_for_output(manager, "app", {"input": [1.0, 2.0]}, 3.0)
    supervisor = cluster_containers(docker_client, manager.cluster, "supervisor")[0]
    # "died with status 137 after 2.1 s; next replacement in 0.5 s" (a quick death: back-off) or
    # "stopped with status 137 after 30 s; replacing it" (it had run for a while)
    assert re.search(rf"replica {victim.name} of sum-model:1 (died|stopped) with status 137 after",
                     supervisor.logs().decode())


def test_pkgs_to_install_offline_and_a_second_build_is_cached(make_manager: Make, tmp_path: Path) -> None:
    manager = make_manager("pkgs")
    conn = ClipperConnection(manager)
    conn.start_clipper()
    model_dir = tmp_path / "six-model"
    python_closure.save(model_dir, six_version, input_type="strings", name="six-model", version="1")
    started = time.monotonic()
    image = conn.build_model("six-model", 1, str(model_dir), pkgs_to_install=["six"])
    cold = time.monotonic() - started
    first_id = manager.client.images.get(image).id
    started = time.monotonic()
    assert conn.build_model("six-model", 1, str(model_dir), pkgs_to_install=["six"]) == image
    warm = time.monotonic() - started
    assert manager.client.images.get(image).id == first_id  # every layer from the cache
    assert image == f"{manager.cluster}-six-model:1"
    print(f"model image with pkgs_to_install: cold {cold:.1f} s, warm {warm:.1f} s")

    conn.register_application("six-app", "strings", "none", 3_000_000)
    conn.deploy_model("six-model", 1, "strings", image)
    conn.link_model_to_app("six-app", "six-model")
    answer = wait_for_output(manager, "six-app", {"input": "x"}, manager.client.containers.run(
        image, ["-c", "import six; print(six.__version__)"], entrypoint=["python"], remove=True,
        network_mode="none").decode().strip())
    assert answer["default"] is False


def test_registrations_and_replicas_survive_a_restart(make_manager: Make, docker_client: docker.DockerClient) -> None:
    manager = make_manager("restart")
    conn = ClipperConnection(manager)
    conn.start_clipper()
    conn.register_application("app", "doubles", "-1.0", 3_000_000)
    python_deployer.deploy_python_closure(conn, "sum-model", 1, "doubles", feature_sum, num_replicas=1)
    conn.link_model_to_app("app", "sum-model")
    wait_for_output(manager, "app", {"input": [2.0, 2.0]}, 4.0)
    conn.stop_all()
    assert cluster_containers(docker_client, manager.cluster) == []

    restarted = ClipperConnection(DockerContainerManager(manager.cluster, clipper_query_port=0,
                                                         clipper_management_port=0, clipper_rpc_port=0,
                                                         redis_port=0, docker_client=docker_client,
                                                         docker_socket=manager.docker_socket))
    restarted.start_clipper()  # Redis reloads its append-only file from the volume
    assert restarted.get_all_apps() == ["app"]
    assert restarted.get_num_replicas("sum-model") == 1  # the replica count was remembered too
    wait_for_output(restarted.cm, "app", {"input": [2.0, 2.0]}, 4.0)  # type: ignore[arg-type]
    restarted.stop_all()


def test_a_model_that_cannot_load_fails_the_deploy_quickly(make_manager: Make, tmp_path: Path) -> None:
    manager = make_manager("broken")
    conn = ClipperConnection(manager)
    conn.start_clipper()
    model_dir = tmp_path / "broken"
    model_dir.mkdir()
    (model_dir / "clipper_model.json").write_text("{}")  # no loader: the container exits with status 4
    image = conn.build_model("broken", 1, str(model_dir))
    started = time.monotonic()
    with pytest.raises(ClipperException, match=r"exits with status 4 \(the model could not be loaded\)"):
        conn.deploy_model("broken", 1, "doubles", image, num_replicas=1)
    assert time.monotonic() - started < 60


def test_two_query_frontends_share_the_replicas(make_manager: Make) -> None:
    """num_frontend_replicas=2: each query frontend publishes its own port, and one replica (pointed at frontend
    0) serves both, having learned of frontend 1 through the RPC PEERS message."""
    manager = make_manager("two-frontends")
    conn = ClipperConnection(manager)
    conn.start_clipper(num_frontend_replicas=2)
    conn.register_application("app", "doubles", "-1.0", 3_000_000)
    python_deployer.deploy_python_closure(conn, "sum-model", 1, "doubles", feature_sum, num_replicas=1)
    conn.link_model_to_app("app", "sum-model")
    addrs = manager.get_query_addrs()
    assert len(set(addrs)) == 2
    for addr in addrs:
        wait_for_output(addr, "app", {"input": [1.0, 2.0]}, 3.0)
    conn.stop_all()


def slow_sum(xs):  # type: ignore[no-untyped-def]
    import time as t

    t.sleep(0.02 * len(xs))  # 50 inputs/s per replica, however they are batched
    return [str(sum(x)) for x in xs]


def test_the_management_containers_autoscaler_adds_replicas_under_load(make_manager: Make,
                                                                       docker_client: docker.DockerClient) -> None:
    """The autoscaler of the management container acts through a DockerContainerManager of the cluster (the
    engine's socket mounted, the cluster's Redis): load beyond one replica starts a second replica container."""
    manager = make_manager("autoscale")
    conn = ClipperConnection(manager)
    conn.start_clipper()
    conn.register_application("app", "doubles", "-1.0", 5_000_000)
    python_deployer.deploy_python_closure(conn, "slow", 1, "doubles", slow_sum, num_replicas=1)
    conn.link_model_to_app("app", "slow")
    wait_for_output(manager, "app", {"input": [1.0, 2.0]}, 3.0)
    conn.set_autoscaling("slow", min_replicas=1, max_replicas=2, target_inflight_per_replica=2,
                         upscale_delay_s=0.5, downscale_delay_s=600, smoothing_window_s=1.0)
    stop = threading.Event()
    answers: list[tuple[int, object]] = []
    counter = iter(range(10**9))

    def client() -> None:
        deadline = time.monotonic() + 90
        while not stop.is_set() and time.monotonic() < deadline:
            answers.append(predict(manager, "app", {"input": [1.0, float(next(counter))]}, timeout=10))

    threads = [threading.Thread(target=client, daemon=True) for _ in range(6)]
    for thread in threads:
        thread.start()
    try:
        def two_replicas() -> bool:
            """two running replica containers of slow"""
            return len([c for c in cluster_containers(docker_client, manager.cluster, "model", "slow")
                        if c.status == "running"]) == 2

        eventually(two_replicas, timeout=90)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=15)
    assert answers and all(status == 200 for status, _ in answers)
    status = conn.get_autoscaling("slow")["status"]
    assert status is not None and status["desired"] == 2, status
    assert conn.get_num_replicas("slow") == 2
    conn.stop_all()
