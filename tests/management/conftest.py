"""The ``admin`` fixture: a fresh management API in process (tests/management/harness.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.management.harness import Admin, start_admin


@pytest.fixture
async def admin(tmp_path: Path) -> AsyncIterator[Admin]:
    admin = await start_admin(tmp_path)
    yield admin
    await admin.client.close()
