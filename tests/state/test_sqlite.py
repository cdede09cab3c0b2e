"""The SQLite backend against the state store contract, plus what only a file-backed store has."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from clipper_core.errors import ClipperError
from clipper_core.inputs import InputType
from clipper_core.state.base import StateStore
from clipper_core.state.records import Application
from clipper_core.state.sqlite import SCHEMA_VERSION, SqliteStateStore
from clipper_core.testing import StateStoreContract


def _user_version(path: Path) -> int:
    """The schema version a database file says it has (``PRAGMA user_version``)."""
    db = sqlite3.connect(path)
    try:
        return int(db.execute("PRAGMA user_version").fetchone()[0])
    finally:
        db.close()


class TestSqliteStateStore(StateStoreContract):
    persistent = True

    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[StateStore]:
        self.opened: list[SqliteStateStore] = [SqliteStateStore(tmp_path / "state" / "clipper.db")]
        await self.opened[0].open()
        yield self.opened[0]
        for store in self.opened:
            await store.close()

    async def reopen(self, store: StateStore) -> StateStore:
        assert isinstance(store, SqliteStateStore)
        await store.close()
        fresh = SqliteStateStore(store.path)
        await fresh.open()
        self.opened.append(fresh)
        return fresh


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
async def opened(tmp_path: Path) -> AsyncIterator[SqliteStateStore]:
    store = SqliteStateStore(tmp_path / "private" / "nested" / "clipper.db")
    await store.open()
    yield store
    await store.close()


async def test_file_and_directory_are_owner_only(opened: SqliteStateStore) -> None:
    await opened.add_app(Application("a", InputType.INTS, "0", 1000))  # creates the WAL file
    assert _mode(opened.path.parent) == 0o700
    assert _mode(opened.path.parent.parent) == 0o700
    assert _mode(opened.path) == 0o600
    for suffix in ("-wal", "-shm"):
        side = opened.path.with_name(opened.path.name + suffix)
        if side.exists():
            assert _mode(side) & 0o077 == 0


async def test_existing_directory_is_left_alone(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    store = SqliteStateStore(str(tmp_path / "clipper.db"))
    await store.open()
    await store.close()
    assert _mode(tmp_path) == 0o755
    assert _mode(tmp_path / "clipper.db") == 0o600


async def test_second_store_on_the_same_file_sees_committed_data(opened: SqliteStateStore) -> None:
    other = SqliteStateStore(opened.path)
    await other.open()
    try:
        await opened.add_app(Application("a", InputType.INTS, "0", 1000))
        assert [a.name for a in await other.list_apps()] == ["a"]
        assert await other.next_replica_id("m", "1") == 0
        assert await opened.next_replica_id("m", "1") == 1
    finally:
        await other.close()


async def test_schema_version_and_pragmas(opened: SqliteStateStore) -> None:
    db = sqlite3.connect(opened.path)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"apps", "models", "current_versions", "links", "replicas", "replica_counters", "policy_state",
                "feedback", "changes", "frontends", "load_reports", "rollouts", "api_keys"} <= tables
        assert [r[1] for r in db.execute("PRAGMA table_info(rollouts)")] == ["model", "record"]
        assert [r[1] for r in db.execute("PRAGMA table_info(api_keys)")] == [
            "key_id", "app_name", "label", "salt", "digest", "created_at", "limits"]
        assert [r[1] for r in db.execute("PRAGMA table_info(apps)")][-3:] == ["require_api_key", "priority", "limits"]
        columns = [r[1] for r in db.execute("PRAGMA table_info(models)")]
        assert columns[-1] == "autoscaling"
    finally:
        db.close()


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "clipper.db"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    store = SqliteStateStore(path)
    with pytest.raises(ClipperError, match=f"schema version {SCHEMA_VERSION + 1}"):
        await store.open()
    await store.close()


async def test_a_version_1_file_is_migrated(tmp_path: Path) -> None:
    """A file written before the store was shared opens: the feed and registry tables are added, data kept."""
    from clipper_core.state import sqlite as sqlite_module

    path = tmp_path / "clipper.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(sqlite_module._SCHEMA_V1)
    db.execute("INSERT INTO apps VALUES ('old', 'doubles', '-1.0', 1000, 'default', '{}', 1)")
    db.execute("PRAGMA user_version = 1")
    db.close()
    store = SqliteStateStore(path)
    await store.open()
    try:
        assert [a.name for a in await store.list_apps()] == ["old"]
        await store.add_app(Application("new", InputType.INTS, "0", 1000))  # writes the feed
        await store.register_frontend("tcp://127.0.0.1:7000", ttl=30)
        assert await store.list_frontends() == ["tcp://127.0.0.1:7000"]
    finally:
        await store.close()
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("SELECT COUNT(*) FROM changes").fetchone()[0] == 1
    finally:
        db.close()


async def test_a_version_2_file_is_migrated(tmp_path: Path) -> None:
    """A file written before autoscaling opens: its models get ``autoscaling`` None (the column is added with
    'null'), the load table is added, and the data is kept; the migrated file opens again at the last version."""
    from clipper_core.state import sqlite as sqlite_module
    from clipper_core.state.records import Model

    path = tmp_path / "clipper.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(sqlite_module._SCHEMA_V1 + sqlite_module._SCHEMA_V2)
    db.execute("INSERT INTO models (name, version, input_type, labels, container_name, model_data_path, batch_size, "
               "batch_wait_timeout_micros, num_replicas, created_at) "
               "VALUES ('old', '1', 'doubles', '[\"a\"]', 'img', '/d', -1, 0, 2, 12.5)")
    db.execute("INSERT INTO current_versions VALUES ('old', '1')")
    db.execute("PRAGMA user_version = 2")
    db.close()
    old = Model("old", "1", InputType.DOUBLES, ("a",), "img", "/d", -1, 0, 2, 12.5)
    store = SqliteStateStore(path)
    await store.open()
    try:
        assert await store.list_models() == [old] and old.autoscaling is None
        assert await store.current_versions() == {"old": "1"}
        await store.update_model(old.replace(autoscaling={"max_replicas": 3}))
        await store.add_model(Model("new", "1", InputType.INTS, autoscaling={"min_replicas": 1}))
        await store.put_load("fe", {"old:1": {"queued": 1.0}})
        assert await store.list_load() == {"fe": {"old:1": {"queued": 1.0}}}
    finally:
        await store.close()
    assert _user_version(path) == SCHEMA_VERSION
    store = SqliteStateStore(path)
    await store.open()
    try:
        assert [m.autoscaling for m in await store.list_models()] == [{"min_replicas": 1}, {"max_replicas": 3}]
    finally:
        await store.close()


def _make_version_3_file(path: Path) -> None:
    """A file as clipper wrote it at schema version 3 (before rollouts): the migration steps up to 3, with data."""
    from clipper_core.state import sqlite as sqlite_module

    db = sqlite3.connect(path, isolation_level=None)
    try:
        for step in range(3):
            db.executescript(sqlite_module._MIGRATIONS[step])
        db.execute("INSERT INTO apps VALUES ('old', 'doubles', '-1.0', 1000, 'default', '{}', 1)")
        db.execute("INSERT INTO links VALUES ('old', 'm', 0)")
        db.execute("INSERT INTO models (name, version, input_type, labels, container_name, model_data_path, "
                   "batch_size, batch_wait_timeout_micros, num_replicas, created_at, autoscaling) "
                   "VALUES ('m', '1', 'doubles', '[]', 'img', '/d', -1, 0, 1, 12.5, '{\"max_replicas\":3}')")
        db.execute("INSERT INTO current_versions VALUES ('m', '1')")
        db.execute("INSERT INTO feedback VALUES ('old', 1, 7, NULL, '[1.0]', '2.0', 99.5)")
        db.execute("PRAGMA user_version = 3")
    finally:
        db.close()


async def test_a_version_3_file_is_migrated(tmp_path: Path) -> None:
    """A file written before rollouts opens: the table ``rollouts`` is added (empty), everything else is kept, a
    rollout can be stored and the file opens again at the last version with it."""
    from clipper_core.state.records import Feedback, Model

    path = tmp_path / "clipper.db"
    _make_version_3_file(path)
    old = Model("m", "1", InputType.DOUBLES, (), "img", "/d", -1, 0, 1, 12.5, {"max_replicas": 3})
    store = SqliteStateStore(path)
    await store.open()
    try:
        assert [a.name for a in await store.list_apps()] == ["old"]
        assert await store.get_links("old") == ["m"]
        assert await store.list_models() == [old]
        assert await store.current_versions() == {"m": "1"}
        assert await store.list_feedback("old") == [Feedback("old", 7, [1.0], 2.0, None, 99.5, 1)]
        assert await store.list_rollouts() == []
        await store.put_rollout({"model": "m", "candidate": "2", "weight": 0.25})
    finally:
        await store.close()
    assert _user_version(path) == SCHEMA_VERSION
    store = SqliteStateStore(path)
    await store.open()
    try:
        assert await store.list_rollouts() == [{"model": "m", "candidate": "2", "weight": 0.25}]
        assert await store.list_models() == [old]
        assert await store.append_feedback(Feedback("old", 8, [1.0], 3.0)) == 2
    finally:
        await store.close()


async def test_a_failed_migration_leaves_the_version_3_file_as_it_was(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The steps run in one transaction: a step that fails leaves neither a half-made schema nor a new version."""
    from clipper_core.state import sqlite as sqlite_module

    path = tmp_path / "clipper.db"
    _make_version_3_file(path)
    broken = sqlite_module._SCHEMA_V4 + "CREATE TABLE apps (name TEXT);"  # apps exists: fails after rollouts
    monkeypatch.setitem(sqlite_module._MIGRATIONS, 3, broken)
    store = SqliteStateStore(path)
    with pytest.raises(sqlite3.OperationalError, match="already exists"):
        await store.open()
    await store.close()
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 3
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "rollouts" not in tables and "load_reports" in tables
    finally:
        db.close()
    monkeypatch.undo()
    store = SqliteStateStore(path)
    await store.open()  # the real step then migrates it
    try:
        assert [a.name for a in await store.list_apps()] == ["old"] and await store.list_rollouts() == []
    finally:
        await store.close()


async def test_a_version_4_file_is_migrated(tmp_path: Path) -> None:
    """A file written before multi-tenancy opens: its apps get no key requirement, normal priority and no limits
    (the columns are added with 0, 'normal' and 'null'), the table ``api_keys`` is added (empty), everything else is
    kept; keys and the new fields can be stored, and the file opens again at the last version with them."""
    from clipper_core.state import sqlite as sqlite_module
    from clipper_core.state.records import ApiKey

    path = tmp_path / "clipper.db"
    db = sqlite3.connect(path, isolation_level=None)
    try:
        for step in range(4):
            db.executescript(sqlite_module._MIGRATIONS[step])
        db.execute("INSERT INTO apps VALUES ('old', 'doubles', '-1.0', 1000, 'exp3', '{\"gamma\":0.1}', 0)")
        db.execute("INSERT INTO links VALUES ('old', 'm', 0)")
        db.execute("INSERT INTO policy_state VALUES ('old', 3, X'0102')")
        db.execute("INSERT INTO rollouts VALUES ('m', '{\"model\":\"m\",\"weight\":0.5}')")
        db.execute("PRAGMA user_version = 4")
    finally:
        db.close()
    old = Application("old", InputType.DOUBLES, "-1.0", 1000, "exp3", {"gamma": 0.1}, False)
    key = ApiKey("0123456789ab", "old", "ci", "00" * 16, "ab" * 32, 12.5, {"max_concurrent": 2})
    store = SqliteStateStore(path)
    await store.open()
    try:
        (app,) = await store.list_apps()
        assert app == old and (app.require_api_key, app.priority, app.limits) == (False, "normal", None)
        assert await store.get_links("old") == ["m"] and await store.get_policy_state("old", 3) == b"\x01\x02"
        assert await store.list_rollouts() == [{"model": "m", "weight": 0.5}]
        assert await store.list_api_keys() == []
        await store.update_app(old.replace(require_api_key=True, priority="high", limits={"max_batch_size": 4}))
        await store.add_api_key(key)
    finally:
        await store.close()
    assert _user_version(path) == SCHEMA_VERSION
    store = SqliteStateStore(path)
    await store.open()
    try:
        assert await store.list_apps() == [old.replace(require_api_key=True, priority="high",
                                                       limits={"max_batch_size": 4})]
        assert await store.get_policy_state("old", 3) == b"\x01\x02"  # the same policy: what it learned stays
        assert await store.list_api_keys("old") == [key]
    finally:
        await store.close()


async def test_a_version_1_file_is_migrated_to_the_last_version(tmp_path: Path) -> None:
    from clipper_core.state import sqlite as sqlite_module

    path = tmp_path / "clipper.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(sqlite_module._SCHEMA_V1)
    db.execute("INSERT INTO models (name, version, input_type, labels, container_name, model_data_path, batch_size, "
               "batch_wait_timeout_micros, num_replicas, created_at) "
               "VALUES ('old', '1', 'integers', '[]', 'NO_CONTAINER', 'x', 4, 0, 0, 0.0)")
    db.execute("PRAGMA user_version = 1")
    db.close()
    store = SqliteStateStore(path)
    await store.open()
    try:
        (model,) = await store.list_models()
        assert (model.name, model.batch_size, model.autoscaling) == ("old", 4, None)
    finally:
        await store.close()


async def test_open_twice_and_close_twice(opened: SqliteStateStore) -> None:
    await opened.open()
    await opened.close()
    await opened.close()
    with pytest.raises(RuntimeError, match="not open"):
        await opened.list_apps()
    await opened.open()
    assert await opened.list_apps() == []


async def test_constructing_does_no_io(tmp_path: Path) -> None:
    SqliteStateStore(tmp_path / "d" / "clipper.db")
    assert not (tmp_path / "d").exists()


async def test_numpy_feedback_is_stored_as_json(opened: SqliteStateStore) -> None:
    np = pytest.importorskip("numpy")
    from clipper_core.state.records import Feedback

    await opened.append_feedback(Feedback("a", 0, np.array([1.5, 2.0]), np.float64(3.0)))
    (got,) = await opened.list_feedback("a")
    assert (got.input, got.label) == ([1.5, 2.0], 3.0)


async def test_a_frontend_registry_refresh_leaves_the_store_durable(tmp_path: Path) -> None:
    store = SqliteStateStore(tmp_path / "state.db")
    await store.open()
    try:
        await store.register_frontend("tcp://127.0.0.1:7000", ttl=5)
        assert await store.list_frontends() == ["tcp://127.0.0.1:7000"]
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL again for what must last
        await store.put_load("tcp://127.0.0.1:7000", {"m:1": {"queued": 0.0}})
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    finally:
        await store.close()
