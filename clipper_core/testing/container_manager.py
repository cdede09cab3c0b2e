"""ContainerManagerContract: what every :class:`~clipper_core.interfaces.ContainerManager` must do, driven
through :class:`~clipper_core.ClipperConnection` as a user drives it.

A container-manager package subclasses it in one of its test modules (with a ``Test`` name), overrides the
class-scoped ``manager_factory`` fixture and :meth:`ContainerManagerContract.running`::

    from clipper_core.testing import ContainerManagerContract

    class TestMyManager(ContainerManagerContract):
        @pytest.fixture(scope="class")
        @classmethod
        def manager_factory(cls, tmp_path_factory):
            home = tmp_path_factory.mktemp("home")
            yield lambda: MyManager(home, port=0)   # every call: a new manager object for the same cluster
            MyManager(home).stop_all(graceful=False)  # whatever a failed test left behind

        def running(self, manager):
            return [...]                             # what of this cluster still runs (processes, containers)

Starting a cluster can take a minute (Docker), so the tests of a class share one: the ``cluster`` fixture
starts it (the class method :meth:`~ContainerManagerContract.start`; override it to pass options, or to
connect to a running one), registers an app, deploys a Python closure with one replica and links the two.
The tests run in the order they are defined; the last two stop the model, then the cluster. They are
synchronous, and every wait for another process is bounded (:func:`~clipper_core.testing.wait_until`,
``timeout`` seconds).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from clipper_core.client.admin_http import AdminClient, health_ok
from clipper_core.client.connection import ClipperConnection
from clipper_core.deployers.python import deploy_python_closure
from clipper_core.errors import ClipperException
from clipper_core.interfaces import ContainerManager
from clipper_core.testing.server import http_json, wait_until

__all__ = ["ContainerManagerContract"]

APP = "contract-app"
MODEL = "contract-model"


def _feature_sum() -> Callable[[Any], list[str]]:
    """The model: the sum of each input, as text. Made inside a function so that cloudpickle stores it by value
    (a replica, in a container, need not be able to import this module)."""
    def feature_sum(xs: Any) -> list[str]:
        return [str(sum(x)) for x in xs]

    return feature_sum


def _addresses(manager: ContainerManager) -> tuple[str, str, str]:
    return manager.get_admin_addr(), manager.get_query_addr(), manager.get_metric_addr()


class ContainerManagerContract:
    """Start (or connect), deploy, answer, resize, logs, stop the models, stop everything; the addresses."""

    timeout: ClassVar[float] = 60.0
    """Seconds to wait for another process: a replica to connect, a change to reach the query frontend."""

    @pytest.fixture(scope="class")
    @classmethod
    def manager_factory(cls) -> Iterator[Callable[[], ContainerManager]]:
        raise NotImplementedError("override the class-scoped 'manager_factory' fixture: yield a function that "
                                  "makes an unstarted manager of one cluster, clean up afterwards")
        yield  # pragma: no cover

    def running(self, manager: ContainerManager) -> list[str]:
        """What of ``manager``'s cluster runs now (process ids, container names ...): empty after stop_all."""
        raise NotImplementedError(f"override {type(self).__name__}.running(manager)")

    @classmethod
    def start(cls, conn: ClipperConnection) -> None:
        """Bring the cluster up; ``start_clipper()`` unless overridden."""
        conn.start_clipper()

    @pytest.fixture(scope="class")
    @classmethod
    def cluster(cls, manager_factory: Callable[[], ContainerManager]) -> Iterator[ClipperConnection]:
        """A started cluster serving APP with MODEL (one replica), as a connected ClipperConnection."""
        conn = ClipperConnection(manager_factory())
        try:
            cls.start(conn)
            conn.register_application(APP, "doubles", "-1.0", 3_000_000)
            deploy_python_closure(conn, MODEL, 1, "doubles", _feature_sum(), num_replicas=1)
            conn.link_model_to_app(APP, MODEL)
            yield conn
        finally:
            with contextlib.suppress(Exception):
                conn.cm.stop_all(graceful=False)

    # -- helpers --------------------------------------------------------------------------------------
    def wait_for_output(self, conn: ClipperConnection, features: list[float], expected: Any) -> None:
        """Query APP until it answers ``expected`` (not a default): a change made through the management API
        reaches a query frontend in another process a moment later."""
        last: list[Any] = []

        def answered() -> bool:
            status, answer = http_json(f"http://{conn.get_query_addr()}/{APP}/predict", {"input": features})
            last[:] = [status, answer]
            return (status == 200 and isinstance(answer, dict) and answer.get("default") is False
                    and answer.get("output") == expected)

        try:
            wait_until(answered, self.timeout, interval=0.05, what=f"{APP} to answer {expected!r}")
        except TimeoutError:
            raise AssertionError(f"{APP} did not answer {expected!r}; last answer: {last}") from None

    def wait_for_default(self, conn: ClipperConnection) -> None:
        def default() -> bool:
            status, answer = http_json(f"http://{conn.get_query_addr()}/{APP}/predict", {"input": [1.0]})
            return status == 200 and isinstance(answer, dict) and answer.get("default") is True

        wait_until(default, self.timeout, interval=0.05, what=f"{APP} to answer its default output")

    def wait_for_connected(self, conn: ClipperConnection, n: int) -> None:
        def connected() -> bool:
            replicas = conn.get_all_model_replicas(verbose=True)
            return sum(1 for r in replicas if r["model_name"] == MODEL) == n

        wait_until(connected, self.timeout, interval=0.05, what=f"{n} connected replicas of {MODEL}")

    # -- the tests, in order --------------------------------------------------------------------------
    def test_addresses(self, cluster: ClipperConnection) -> None:
        for what, addr in zip(("admin", "query", "metric"), _addresses(cluster.cm), strict=True):
            host, _, port = addr.rpartition(":")
            assert host and port.isdigit() and int(port) > 0, f"the {what} address {addr!r} is not host:port"
        assert (cluster.get_query_addr(), cluster.get_metric_addr()) == _addresses(cluster.cm)[1:]
        assert AdminClient(f"http://{cluster.cm.get_admin_addr()}", cluster.cm.admin_token).ping()
        assert health_ok(cluster.cm.get_query_addr())
        assert cluster.inspect_instance(), "no metrics on get_metric_addr()"

    def test_connect_finds_the_started_cluster(self, cluster: ClipperConnection,
                                               manager_factory: Callable[[], ContainerManager]) -> None:
        other = ClipperConnection(manager_factory())
        other.connect()
        assert _addresses(other.cm) == _addresses(cluster.cm)
        assert other.get_all_apps() == [APP] and other.get_linked_models(APP) == [MODEL]

    def test_the_deployed_model_answers_through_the_query_address(self, cluster: ClipperConnection) -> None:
        self.wait_for_output(cluster, [1.0, 2.0, 3.0], 6.0)
        status, batch = http_json(f"http://{cluster.get_query_addr()}/{APP}/predict",
                                  {"input_batch": [[1.0], [2.0, 3.0]]})
        assert status == 200 and [p["output"] for p in batch["batch_predictions"]] == [1.0, 5.0], batch
        assert cluster.get_num_replicas(MODEL) == 1

    def test_set_num_replicas_up_and_down(self, cluster: ClipperConnection) -> None:
        cluster.set_num_replicas(MODEL, 2)
        assert cluster.get_num_replicas(MODEL) == 2
        self.wait_for_connected(cluster, 2)
        self.wait_for_output(cluster, [2.0, 2.0], 4.0)
        cluster.set_num_replicas(MODEL, 1)
        assert cluster.get_num_replicas(MODEL) == 1
        self.wait_for_connected(cluster, 1)
        self.wait_for_output(cluster, [2.0, 3.0], 5.0)

    def test_get_logs_writes_files(self, cluster: ClipperConnection, tmp_path: Path) -> None:
        target = tmp_path / "logs"
        files = [Path(f) for f in cluster.get_clipper_logs(str(target))]
        assert files, "get_logs wrote no files"
        assert all(f.is_file() and f.parent == target for f in files), files
        assert any(f.stat().st_size > 0 for f in files), "every log file is empty"

    def test_stop_models(self, cluster: ClipperConnection) -> None:
        cluster.stop_models([MODEL])
        assert cluster.get_all_models() == []
        self.wait_for_connected(cluster, 0)
        self.wait_for_default(cluster)  # the app stays, with no model to answer

    def test_stop_all_leaves_nothing_running(self, cluster: ClipperConnection,
                                             manager_factory: Callable[[], ContainerManager]) -> None:
        manager = cluster.cm
        admin, query, _ = _addresses(manager)
        assert self.running(manager), "running() finds nothing of a started cluster"
        cluster.stop_all()
        assert self.running(manager) == []
        assert not health_ok(query)
        assert not AdminClient(f"http://{admin}", manager.admin_token, timeout=5).ping()
        with pytest.raises(ClipperException):
            ClipperConnection(manager_factory()).connect()
