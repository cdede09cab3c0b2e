"""Security defaults: the admin API on loopback, owner-only files, nothing a client sends is unpickled."""

from __future__ import annotations

import ast
import stat
from pathlib import Path

import clipper_core
from clipper_core import ClipperConnection, LocalContainerManager
from clipper_core.config import Config
from clipper_core.deployers import python as python_deployer
from clipper_core.testing import ServerThread
from tests import models

CORE = Path(clipper_core.__file__).parent
QUERY_PATH = [*sorted((CORE / "frontend").glob("*.py")), *sorted((CORE / "rpc").glob("*.py")),
              *sorted((CORE / "serving").glob("*.py")), CORE / "inputs.py", CORE / "http_api.py", CORE / "metrics.py"]
UNPICKLERS = {"pickle", "cloudpickle", "dill", "marshal", "joblib", "shelve", "_pickle"}


def test_query_path_never_imports_an_unpickler() -> None:
    for path in QUERY_PATH:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                names = {(node.module or "").split(".")[0]}
            else:
                continue
            assert not names & UNPICKLERS, f"{path.name} imports {names & UNPICKLERS}"


def test_admin_api_binds_loopback_by_default(tmp_path: Path) -> None:
    assert Config().admin_host == "127.0.0.1"
    assert Config().query_host == "127.0.0.1"
    with ServerThread(tmp_path / "home") as server:
        assert server.server.admin_addr.startswith("127.0.0.1:")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_state_models_and_logs_are_owner_only(tmp_path: Path) -> None:
    home = tmp_path / "home"
    conn = ClipperConnection(LocalContainerManager(clipper_home=home, clipper_query_port=0,
                                                   clipper_management_port=0, clipper_rpc_port=0))
    conn.start_clipper()
    try:
        python_deployer.deploy_python_closure(conn, name="m", version=1, input_type="doubles",
                                              func=models.feature_sum)
        model_dir = home / "models" / "m" / "1"
        assert mode(home) == 0o700
        assert mode(model_dir) == 0o700
        assert all(mode(f) == 0o600 for f in model_dir.iterdir())
        assert mode(home / "logs") == 0o700
        assert all(mode(f) == 0o600 for f in (home / "logs").iterdir())
        assert mode(home / "state.db") == 0o600
        assert mode(home / "runtime.json") == 0o600
    finally:
        conn.stop_all()
