"""A server process: what it does once it serves."""

from __future__ import annotations

import gc
import re
import weakref
from pathlib import Path

from clipper_core import ClipperConnection, LocalContainerManager
from clipper_core.server.assembly import freeze_heap


def test_a_server_process_freezes_what_it_holds_since_start_up(tmp_path: Path) -> None:
    conn = ClipperConnection(LocalContainerManager(clipper_home=tmp_path / "home", clipper_query_port=0,
                                                   clipper_management_port=0, clipper_rpc_port=0))
    conn.start_clipper()
    try:
        assert conn.get_all_apps() == []  # it serves
    finally:
        conn.stop_all()
    log = (tmp_path / "home" / "logs" / "clipper.log").read_text()
    frozen = re.search(r"(\d+) objects held since start-up frozen out of the garbage collector's reach", log)
    assert frozen is not None, log
    assert int(frozen.group(1)) > 10_000  # modules, plugins and state: what a full collection no longer walks


def test_freezing_collects_first_so_no_garbage_is_kept_for_good() -> None:
    class Cycle:
        pass

    a, b = Cycle(), Cycle()
    a.other, b.other = b, a  # type: ignore[attr-defined]
    alive = weakref.ref(a)
    del a, b  # garbage now, but only a collection frees a cycle
    try:
        freeze_heap()
        assert alive() is None  # collected before the freeze, not kept in the permanent generation
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
