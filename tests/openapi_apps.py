"""What both OpenAPI test modules (test_openapi.py, test_openapi_random.py) share: the apps their servers serve
(the ``query_server`` and ``admin_server`` fixtures are tests/conftest.py's), the hypothesis settings, and the
integers just beyond int64."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

# The apps the documents' examples name (Clipper's quickstart), and one app of every other input type.
APPS = {"hello-world": "doubles", "ints": "integers", "floats": "floats", "strings": "strings", "bytes": "bytes"}
MODEL, VERSION = "sum-model", "1"
BANDIT = "bandit"
SETTINGS = settings(derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))

INT64_MAX = 2**63 - 1
TOO_BIG = 2**63  # orjson reads integers up to 2**64 - 1 as int; SQLite stores at most 2**63 - 1
