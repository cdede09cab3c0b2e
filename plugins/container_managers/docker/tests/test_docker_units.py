"""The parts of clipper-docker that need no Docker engine: registration, names, ports, Dockerfiles, specs."""

from __future__ import annotations

import socket

import pytest
from clipper_docker import DockerContainerManager
from clipper_docker.images import model_dockerfile
from clipper_docker.names import check_cluster_name, container_name, model_image_name
from clipper_docker.ports import find_free_port, port_in_use_error, published_port, resolve_publish_ip
from clipper_docker.replicas import ReplicaSpec, merge_kwargs

from clipper_core import ClipperException
from clipper_core.plugins import PluginRegistry


def test_the_entry_point_registers_the_docker_manager() -> None:
    registry = PluginRegistry.create()
    assert registry.container_managers.get("docker") is DockerContainerManager
    assert DockerContainerManager.supports_build


def test_constructor_keeps_clippers_arguments_and_refuses_what_it_cannot_do() -> None:
    manager = DockerContainerManager("c1", docker_ip_address="localhost", clipper_query_port=1400)
    assert manager.get_query_addr() == "127.0.0.1:1400"  # before start: the requested port
    with pytest.raises(ClipperException, match="bridge network"):
        DockerContainerManager("c1", docker_network="host")
    with pytest.raises(ClipperException, match="fluentd"):
        DockerContainerManager("c1", use_centralized_log=True)
    with pytest.raises(ClipperException, match="invalid cluster name"):
        DockerContainerManager("Bad_Name")


@pytest.mark.parametrize("name", ["default-cluster", "a", "t123-x9"])
def test_valid_cluster_names(name: str) -> None:
    assert check_cluster_name(name) == name


@pytest.mark.parametrize("name", ["", "-a", "a-", "UPPER", "under_score", "x" * 41])
def test_invalid_cluster_names(name: str) -> None:
    with pytest.raises(ClipperException):
        check_cluster_name(name)


def test_names_of_containers_and_images() -> None:
    assert container_name("c", "query", 0) == "c-query-frontend-0"
    assert container_name("c", "management") == "c-mgmt-frontend"
    assert model_image_name("c", "m", "1") == "c-m:1"
    assert model_image_name("c", "m", "1", "registry.local:5000/") == "registry.local:5000/c-m:1"
    assert model_image_name("c", "Sum_Model.v2", "-1") == "c-sum_model.v2:_-1"  # what Docker accepts


def test_first_free_port_skips_a_taken_one() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        port = find_free_port("127.0.0.1", taken)
        assert port > taken
        assert find_free_port("127.0.0.1", taken, avoid=[port]) not in (taken, port)
    assert find_free_port("127.0.0.1", 0) == 0


def test_addresses_and_docker_port_errors() -> None:
    assert resolve_publish_ip("localhost") == "127.0.0.1"
    assert resolve_publish_ip("10.1.2.3") == "10.1.2.3"
    assert port_in_use_error(Exception("driver failed: Bind for 127.0.0.1:1337 failed: port is already allocated"))
    assert not port_in_use_error(Exception("no such image"))
    attrs = {"NetworkSettings": {"Ports": {"1337/tcp": [{"HostIp": "127.0.0.1", "HostPort": "41000"}],
                                           "7000/tcp": None}}}
    assert published_port(attrs, 1337) == 41000
    assert published_port(attrs, 7000) is None


def test_model_dockerfile_installs_from_wheels_as_root_then_restores_the_user() -> None:
    text = model_dockerfile("clipper/model-base:0.1.0", "clipper", ["six==1.17.0", "a b"], offline=True)
    assert text.splitlines() == [
        "FROM clipper/model-base:0.1.0",
        "USER root",
        "COPY wheels /tmp/clipper-wheels",
        "RUN python -m pip install --no-cache-dir --disable-pip-version-check --no-index "
        "--find-links /tmp/clipper-wheels 'six==1.17.0' 'a b' && rm -rf /tmp/clipper-wheels",
        "USER clipper",
        "COPY model /model",
    ]
    assert model_dockerfile("base", "", [], offline=True) == "FROM base\nCOPY model /model\n"
    assert "--no-index" not in model_dockerfile("base", "", ["six"], offline=False)


def test_extra_container_kwargs_merge_labels_and_environment() -> None:
    ours = {"labels": {"a": "1"}, "environment": {"X": "1"}, "network": "n"}
    merged = merge_kwargs(ours, {"labels": {"a": "2", "b": "2"}, "mem_limit": "1g", "network": "other"})
    assert merged == {"labels": {"a": "1", "b": "2"}, "environment": {"X": "1"}, "network": "other",
                      "mem_limit": "1g"}


def test_replica_spec_round_trips_through_json() -> None:
    spec = ReplicaSpec("m", "1", "doubles", "c-m:1", 3, frontend="c-query-frontend-0")
    assert ReplicaSpec.from_json(spec.to_json()) == spec
    assert spec.key == "m\x001"
