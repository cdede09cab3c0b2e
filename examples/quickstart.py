"""The original Clipper quickstart, with only the imports and the container manager changed.

Run it with ``bash scripts/quickstart.sh`` (sets up the venv first) or ``.venv/bin/python examples/quickstart.py``.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request

from clipper_core import ClipperConnection, ClipperException, LocalContainerManager
from clipper_core.deployers import python as python_deployer


def feature_sum(xs):  # type: ignore[no-untyped-def]
    return [str(sum(x)) for x in xs]


def main() -> int:
    clipper_conn = ClipperConnection(LocalContainerManager())
    try:
        clipper_conn.start_clipper()
    except ClipperException as exc:
        if "already running" not in str(exc):
            raise
        clipper_conn.connect()
    if "hello-world" not in clipper_conn.get_all_apps():
        clipper_conn.register_application(name="hello-world", input_type="doubles", default_output="-1.0",
                                          slo_micros=100000)
    if not clipper_conn.get_linked_models("hello-world"):
        python_deployer.deploy_python_closure(clipper_conn, name="sum-model", version=1, input_type="doubles",
                                              func=feature_sum)
        clipper_conn.link_model_to_app(app_name="hello-world", model_name="sum-model")
    addr = clipper_conn.get_query_addr()
    print(f"clipper is serving queries on http://{addr}\n")
    print(f"$ curl -X POST --header 'Content-Type: application/json' -d '{{\"input\": [1.1, 2.2, 3.3]}}' "
          f"{addr}/hello-world/predict")
    # The replica may still be starting: Clipper answers the default output until it connects.
    for _ in range(100):
        request = urllib.request.Request(f"http://{addr}/hello-world/predict",
                                         data=json.dumps({"input": [1.1, 2.2, 3.3]}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
        if not answer["default"]:
            break
        time.sleep(0.1)  # polling a starting replica from a demo script, bounded to 10 s
    print(json.dumps(answer))
    return 0 if not answer["default"] else 1


if __name__ == "__main__":
    sys.exit(main())
