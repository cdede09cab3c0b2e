"""Test helpers for clipper and its plugins, also loaded as a pytest plugin (entry point ``pytest11``).

* :class:`StateStoreContract`: the behaviour every state store must have (subclass it, override ``store``).
* :class:`CacheContract`: the same for prediction caches (override ``cache``).
* :class:`DeployerContract`: the same for deployers (override ``deployer``, ``model`` and ``batch``).
* :class:`PolicyContract`: the same for selection policies (override ``policy_class``).
* :class:`ContainerManagerContract`: the same for container managers, through ``ClipperConnection`` (override
  ``manager_factory`` and ``running``).
* :class:`RedisServer` and the ``redis_server`` / ``redis_url`` fixtures: a real redis-server on loopback.
* :class:`ServerThread`: a real embedded server on OS-picked ports, for end-to-end tests.
* fixtures: ``clipper_home`` (a fresh $CLIPPER_HOME), ``clipper_server`` (a running ServerThread) and
  ``clipper_conn`` (a ``ClipperConnection`` connected to it).
"""

from clipper_core.testing.cache import CacheContract
from clipper_core.testing.container_manager import ContainerManagerContract
from clipper_core.testing.deployer_contract import DeployerContract
from clipper_core.testing.fixtures import clipper_conn, clipper_home, clipper_server
from clipper_core.testing.policy import PolicyContract
from clipper_core.testing.redis import RedisServer, redis_server, redis_url
from clipper_core.testing.server import ServerThread, http_json, wait_until
from clipper_core.testing.services import service_unavailable
from clipper_core.testing.state import StateStoreContract

__all__ = ["CacheContract", "ContainerManagerContract", "DeployerContract", "PolicyContract", "RedisServer",
           "ServerThread", "StateStoreContract", "clipper_conn", "clipper_home", "clipper_server", "http_json",
           "redis_server", "redis_url", "service_unavailable", "wait_until"]
