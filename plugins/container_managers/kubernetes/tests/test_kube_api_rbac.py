"""Service accounts, their tokens, RBAC and the HTTPS endpoint of the emulated kube-apiserver (``kube_api/``),
driven through the official ``kubernetes`` client (with the admin kubeconfig, with a kubeconfig holding a
service-account token, and with the client's in-cluster configuration) and plain HTTP(S).

Everything listens on 127.0.0.1 only; every wait is bounded; nothing sleeps to order events.
"""

from __future__ import annotations

import base64
import json
import queue
import socket
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from kube_api import ApiServerHandle, HttpsEndpoint, running_api_server, write_kubeconfig
from kubernetes.client import ApiClient, AppsV1Api, CoreV1Api, RbacAuthorizationV1Api
from kubernetes.client.exceptions import ApiException

WAIT = 10.0  # seconds: the bound of every wait in this module
RBAC = "rbac.authorization.k8s.io"
NS = "team"
OTHER = "elsewhere"


# --------------------------------------------------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------------------------------------------------


@pytest.fixture
def api() -> Iterator[ApiServerHandle]:
    with running_api_server() as handle:
        yield handle
        assert handle.errors() == [], "the emulator raised unexpected exceptions"


@pytest.fixture
def admin(api: ApiServerHandle) -> Iterator[ApiClient]:
    client = kubernetes.config.new_client_from_config(config_file=api.kubeconfig)
    yield client
    client.close()


@pytest.fixture
def core(admin: ApiClient) -> CoreV1Api:
    return CoreV1Api(admin)


@pytest.fixture
def rbac(admin: ApiClient) -> RbacAuthorizationV1Api:
    return RbacAuthorizationV1Api(admin)


@pytest.fixture
def apps(admin: ApiClient) -> AppsV1Api:
    return AppsV1Api(admin)


@pytest.fixture
def team(core: CoreV1Api) -> str:
    """Two namespaces, ``team`` (with a ServiceAccount ``bot``) and ``elsewhere``, each with a pod ``p``."""
    for name in (NS, OTHER):
        core.create_namespace({"metadata": {"name": name}})
        core.create_namespaced_pod(name, {"metadata": {"name": "p"},
                                          "spec": {"containers": [{"name": "main", "image": "busybox:1.36"}]}})
    core.create_namespaced_service_account(NS, {"metadata": {"name": "bot"}})
    return NS


class Clients:
    """The official client authenticated as one service account (a kubeconfig with its token)."""

    def __init__(self, api: ApiServerHandle, tmp_path: Path, namespace: str, name: str) -> None:
        self.user = f"system:serviceaccount:{namespace}:{name}"
        self.token = api.service_account_token(namespace, name)
        path = write_kubeconfig(tmp_path / f"{namespace}-{name}.yaml", api.url, self.token)
        self.client = kubernetes.config.new_client_from_config(config_file=str(path))
        self.core, self.apps = CoreV1Api(self.client), AppsV1Api(self.client)
        self.rbac = RbacAuthorizationV1Api(self.client)


@pytest.fixture
def as_sa(api: ApiServerHandle, tmp_path: Path) -> Iterator[Callable[[str, str], Clients]]:
    made: list[Clients] = []

    def make(namespace: str = NS, name: str = "bot") -> Clients:
        made.append(Clients(api, tmp_path, namespace, name))
        return made[-1]

    yield make
    for clients in made:
        clients.client.close()


def status_of(call: Callable[[], Any]) -> int:
    """The HTTP status of a client call: 200 when it succeeds, else the ApiException's."""
    try:
        call()
    except ApiException as exc:
        return int(exc.status)
    return 200


def api_error(call: Callable[[], Any], status: int) -> dict[str, Any]:
    with pytest.raises(ApiException) as caught:
        call()
    assert caught.value.status == status, caught.value.body
    body: dict[str, Any] = json.loads(caught.value.body)
    assert body["kind"] == "Status" and body["code"] == status
    return body


def raw(url: str, path: str, token: str | None, method: str = "GET", body: Any = None,
        context: ssl.SSLContext | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + path, data=data, method=method, headers={"Content-Type": "application/json"})
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=WAIT, context=context) as response:
            text = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        text, status = exc.read(), exc.code
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text.decode()


def role(name: str, rules: list[dict[str, Any]], cluster: bool = False) -> dict[str, Any]:
    return {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole" if cluster else "Role", "metadata": {"name": name},
            "rules": rules}


def binding(name: str, role_name: str, subjects: list[dict[str, Any]], kind: str = "Role",
            cluster: bool = False) -> dict[str, Any]:
    return {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRoleBinding" if cluster else "RoleBinding",
            "metadata": {"name": name}, "roleRef": {"apiGroup": RBAC, "kind": kind, "name": role_name},
            "subjects": subjects}


def sa_subject(name: str = "bot", namespace: str | None = NS) -> dict[str, Any]:
    subject = {"kind": "ServiceAccount", "name": name}
    if namespace is not None:
        subject["namespace"] = namespace
    return subject


def grant(rbac: RbacAuthorizationV1Api, rules: list[dict[str, Any]], namespace: str = NS, name: str = "r",
          subjects: list[dict[str, Any]] | None = None) -> None:
    """A Role ``name`` with ``rules`` in ``namespace``, bound to ``team/bot`` (or ``subjects``)."""
    rbac.create_namespaced_role(namespace, role(name, rules))
    rbac.create_namespaced_role_binding(namespace, binding(name, name, subjects or [sa_subject()]))


def deployment(name: str = "web") -> dict[str, Any]:
    labels = {"app": name}
    return {"metadata": {"name": name}, "spec": {
        "replicas": 1, "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "m", "image": "nginx:1.27"}]}}}}


# --------------------------------------------------------------------------------------------------------------------
# The resources: discovery, CRUD, validation
# --------------------------------------------------------------------------------------------------------------------


def test_discovery_lists_service_accounts_and_the_rbac_group(admin: ApiClient, core: CoreV1Api) -> None:
    sa = {r.name: r for r in core.get_api_resources().resources}["serviceaccounts"]
    assert (sa.kind, sa.namespaced, sa.short_names) == ("ServiceAccount", True, ["sa"])
    assert set(sa.verbs) == {"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}
    group = kubernetes.client.RbacAuthorizationApi(admin).get_api_group()
    assert (group.name, group.preferred_version.group_version) == (RBAC, f"{RBAC}/v1")
    resources = {r.name: r for r in RbacAuthorizationV1Api(admin).get_api_resources().resources}
    assert {name: r.namespaced for name, r in resources.items()} == {
        "roles": True, "rolebindings": True, "clusterroles": False, "clusterrolebindings": False}
    assert resources["clusterrolebindings"].kind == "ClusterRoleBinding"


def test_role_and_binding_crud_list_watch_patch(api: ApiServerHandle, rbac: RbacAuthorizationV1Api,
                                                core: CoreV1Api) -> None:
    core.create_namespace({"metadata": {"name": NS}})
    events: queue.Queue[tuple[str, str]] = queue.Queue()
    watch = kubernetes.watch.Watch()
    # from the list's resourceVersion: every later event, however late the watch connects (without one, a watch
    # that connected after the patch saw the patched role as ADDED and no MODIFIED; it failed once in CI)
    since = rbac.list_namespaced_role(NS).metadata.resource_version

    def collect() -> None:
        for event in watch.stream(rbac.list_namespaced_role, NS, resource_version=since,
                                  timeout_seconds=int(WAIT)):
            events.put((event["type"], event["raw_object"]["metadata"]["name"]))
            if event["type"] == "DELETED":
                return

    thread = threading.Thread(target=collect, daemon=True)
    thread.start()
    created = rbac.create_namespaced_role(NS, role("reader", [{"apiGroups": [""], "resources": ["pods"],
                                                               "verbs": ["get"]}]))
    assert created.metadata.uid and created.kind == "Role"
    rbac.patch_namespaced_role("reader", NS, {"rules": [{"apiGroups": [""], "resources": ["pods"],
                                                         "verbs": ["get", "list"]}]})
    assert rbac.read_namespaced_role("reader", NS).rules[0].verbs == ["get", "list"]
    assert [r.metadata.name for r in rbac.list_namespaced_role(NS).items] == ["reader"]
    rbac.delete_namespaced_role("reader", NS)
    assert [events.get(timeout=WAIT) for _ in range(3)] == [("ADDED", "reader"), ("MODIFIED", "reader"),
                                                            ("DELETED", "reader")]
    thread.join(WAIT)
    rbac.create_cluster_role(role("c1", [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}],
                                  cluster=True))
    rbac.create_cluster_role_binding(binding("c1", "c1", [sa_subject()], kind="ClusterRole", cluster=True))
    crb = rbac.read_cluster_role_binding("c1")
    assert crb.metadata.namespace is None and crb.role_ref.kind == "ClusterRole"
    rbac.delete_collection_cluster_role_binding(label_selector="kubernetes.io/bootstrapping!=rbac-defaults")
    assert [b["metadata"]["name"] for b in api.objects("clusterrolebindings")] == [
        "cluster-admin", "system:discovery", "system:public-info-viewer"]


def test_the_default_cluster_policy(rbac: RbacAuthorizationV1Api) -> None:
    roles = {r.metadata.name: r for r in rbac.list_cluster_role().items}
    assert set(roles) == {"cluster-admin", "system:discovery", "system:public-info-viewer"}
    assert "/apis/*" in roles["system:discovery"].rules[0].non_resource_urls
    bindings = {b.metadata.name: b for b in rbac.list_cluster_role_binding().items}
    assert [(s.kind, s.name) for s in bindings["system:discovery"].subjects] == [("Group", "system:authenticated")]
    assert [(s.kind, s.name) for s in bindings["cluster-admin"].subjects] == [("Group", "system:masters")]


def _rule(**fields: Any) -> dict[str, Any]:
    return {"verbs": ["get"], **fields}


@pytest.mark.parametrize(("plural", "body", "expected"), [
    ("roles", role("r", [_rule(resources=["pods"])]),
     'Role.rbac.authorization.k8s.io "r" is invalid: rules[0].apiGroups: Required value: resource rules must supply '
     'at least one api group'),
    ("roles", role("r", [_rule(apiGroups=[""])]), "rules[0].resources: Required value"),
    ("roles", role("r", [{"apiGroups": [""], "resources": ["pods"], "verbs": []}]),
     "rules[0].verbs: Required value: verbs must contain at least one value"),
    ("roles", role("r", [_rule(nonResourceURLs=["/x"])]), "namespaced rules cannot apply to non-resource URLs"),
    ("clusterroles", role("r", [_rule(nonResourceURLs=["/x"], resources=["pods"])], cluster=True),
     "rules cannot apply to both regular resources and non-resource URLs"),
    ("roles", role("r", [_rule(apiGroups=[""], resources=["pods"], bogus=1)]),
     'rules[0].bogus: Invalid value: unknown field "bogus"'),
    ("roles", role("a/b", [_rule(apiGroups=[""], resources=["pods"])]), "metadata.name: Invalid value: \"a/b\": may "
                                                                        "not contain '/'"),
    ("rolebindings", binding("b", "r", [sa_subject()], kind="Widget"),
     'roleRef.kind: Unsupported value: "Widget": supported values: "Role", "ClusterRole"'),
    ("clusterrolebindings", binding("b", "r", [sa_subject()], kind="Role", cluster=True),
     'roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"'),
    ("clusterrolebindings", binding("b", "r", [sa_subject(namespace=None)], kind="ClusterRole", cluster=True),
     "subjects[0].namespace: Required value"),
    ("rolebindings", binding("b", "r", [{"kind": "Robot", "name": "x"}]),
     'subjects[0].kind: Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"'),
    ("rolebindings", {"metadata": {"name": "b"}, "subjects": [sa_subject()]}, "roleRef: Required value"),
    ("serviceaccounts", {"metadata": {"name": "Bad_Name"}}, 'metadata.name: Invalid value: "Bad_Name"'),
])
def test_invalid_rbac_objects_and_service_accounts_are_422(api: ApiServerHandle, plural: str, body: dict[str, Any],
                                                           expected: str) -> None:
    group = "/api/v1" if plural == "serviceaccounts" else f"/apis/{RBAC}/v1"
    scope = "" if plural.startswith("cluster") else "/namespaces/default"
    status, answer = raw(api.url, f"{group}{scope}/{plural}", api.token, "POST", body)
    assert status == 422, answer
    assert answer["reason"] == "Invalid" and expected in answer["message"], answer["message"]


def test_rbac_names_are_path_segments_and_subjects_are_defaulted(rbac: RbacAuthorizationV1Api) -> None:
    rbac.create_cluster_role(role("clipper:autoscaler", [_rule(apiGroups=["apps"], resources=["deployments"])],
                                  cluster=True))
    created = rbac.create_namespaced_role_binding("default", binding("b", "clipper:autoscaler", [
        {"kind": "Group", "name": "system:serviceaccounts"}], kind="ClusterRole"))
    assert created.subjects[0].api_group == RBAC


def test_the_role_ref_of_a_binding_cannot_change(rbac: RbacAuthorizationV1Api) -> None:
    rbac.create_namespaced_role_binding("default", binding("b", "r1", [sa_subject()]))
    body = api_error(lambda: rbac.patch_namespaced_role_binding("b", "default", {"roleRef": {"name": "r2"}}), 422)
    assert "roleRef: Invalid value" in body["message"] and "cannot change roleRef" in body["message"]
    rbac.patch_namespaced_role_binding("b", "default", {"subjects": [sa_subject("other")]})


def test_every_namespace_has_a_default_service_account(api: ApiServerHandle, core: CoreV1Api) -> None:
    assert sorted((sa["metadata"]["namespace"], sa["metadata"]["name"]) for sa in api.objects("serviceaccounts")) == [
        ("default", "default"), ("kube-public", "default"), ("kube-system", "default")]
    core.create_namespace({"metadata": {"name": NS}})
    first = core.read_namespaced_service_account("default", NS)
    assert first.metadata.uid and first.metadata.namespace == NS
    core.delete_namespaced_service_account("default", NS)  # the ServiceAccount controller makes it again
    again = core.read_namespaced_service_account("default", NS)
    assert again.metadata.uid != first.metadata.uid
    core.create_namespaced_service_account(NS, {"metadata": {"name": "bot"}, "automountServiceAccountToken": False})
    core.delete_collection_namespaced_service_account(NS)
    assert [sa.metadata.name for sa in core.list_namespaced_service_account(NS).items] == ["default"]
    core.delete_namespace(NS)
    assert api.objects("serviceaccounts", NS) == []


def test_pod_admission_defaults_and_requires_the_service_account(core: CoreV1Api) -> None:
    spec = {"containers": [{"name": "main", "image": "busybox:1.36"}]}
    created = core.create_namespaced_pod("default", {"metadata": {"name": "a"}, "spec": spec})
    assert (created.spec.service_account_name, created.spec.service_account) == ("default", "default")
    body = api_error(lambda: core.create_namespaced_pod("default", {"metadata": {"name": "b"}, "spec": {
        **spec, "serviceAccountName": "ghost"}}), 403)
    assert body["reason"] == "Forbidden"
    assert body["message"] == ('pods "b" is forbidden: error looking up service account default/ghost: '
                               'serviceaccount "ghost" not found')
    core.create_namespaced_service_account("default", {"metadata": {"name": "ghost"}})
    assert core.create_namespaced_pod("default", {"metadata": {"name": "b"}, "spec": {
        **spec, "serviceAccountName": "ghost"}}).spec.service_account == "ghost"


# --------------------------------------------------------------------------------------------------------------------
# Service-account tokens
# --------------------------------------------------------------------------------------------------------------------


def test_a_service_account_token_authenticates_as_the_account(api: ApiServerHandle, team: str) -> None:
    token = api.service_account_token(NS, "bot")
    _header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["sub"] == "system:serviceaccount:team:bot"
    assert claims["kubernetes.io"]["serviceaccount"]["name"] == "bot" and signature
    assert raw(api.url, "/version", token)[0] == 200
    assert raw(api.url, "/api/v1/namespaces/team/pods", token)[0] == 403  # authenticated, not authorized
    events = api.requests_by("system:serviceaccount:team:bot")
    assert [(e.verb, e.resource, e.namespace, e.code) for e in events] == [("get", "", None, 200),
                                                                          ("list", "pods", "team", 403)]
    assert [e.path for e in api.denied_requests("system:serviceaccount:team:bot")] == ["/api/v1/namespaces/team/pods"]


@pytest.mark.parametrize("token", ["not-a-token", "a.b.c", None])
def test_unknown_tokens_are_401(api: ApiServerHandle, team: str, token: str | None) -> None:
    status, body = raw(api.url, "/api/v1/namespaces/team/pods", token)
    assert (status, body["reason"]) == (401, "Unauthorized")


def test_a_token_of_another_server_is_401(api: ApiServerHandle, team: str) -> None:
    with running_api_server() as other:
        other_token = other.service_account_token("default", "default")
        assert raw(other.url, "/api/v1/namespaces/default/pods", other_token)[0] == 403
        assert raw(api.url, "/version", other_token)[0] == 401


def test_a_token_stops_working_when_its_service_account_is_deleted(api: ApiServerHandle, core: CoreV1Api,
                                                                   team: str) -> None:
    token = api.service_account_token(NS, "bot")
    assert raw(api.url, "/version", token)[0] == 200
    core.delete_namespaced_service_account("bot", NS)
    assert raw(api.url, "/version", token)[0] == 401
    core.create_namespaced_service_account(NS, {"metadata": {"name": "bot"}})  # a new account, a new uid
    assert raw(api.url, "/version", token)[0] == 401
    assert raw(api.url, "/version", api.service_account_token(NS, "bot"))[0] == 200


def test_no_token_for_a_missing_service_account(api: ApiServerHandle) -> None:
    with pytest.raises(Exception, match='serviceaccounts "ghost" not found'):
        api.service_account_token("default", "ghost")


def test_the_admin_token_is_not_subject_to_rbac_but_to_the_deny_list(api: ApiServerHandle, core: CoreV1Api,
                                                                     rbac: RbacAuthorizationV1Api, as_sa: Any,
                                                                     team: str) -> None:
    grant(rbac, [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}])
    bot = as_sa()
    api.deny("list", "pods", namespace=NS)
    assert status_of(lambda: core.list_namespaced_pod(NS)) == 403
    assert status_of(lambda: bot.core.list_namespaced_pod(NS)) == 200  # the deny list is the admin's only
    api.allow_all()
    assert status_of(lambda: core.list_namespaced_pod(NS)) == 200
    assert api.requests_by("system:serviceaccount:default:clipper")[-1].code == 200  # the admin's user name


def test_a_denial_of_the_admin_names_an_object_with_colons_whole(api: ApiServerHandle,
                                                                  rbac: RbacAuthorizationV1Api) -> None:
    api.deny("get", "clusterroles", group=RBAC)
    body = api_error(lambda: rbac.read_cluster_role("system:public-info-viewer"), 403)
    assert body["message"] == ('clusterroles.rbac.authorization.k8s.io "system:public-info-viewer" is forbidden: '
                               'User "system:serviceaccount:default:clipper" cannot get resource "clusterroles" in API '
                               'group "rbac.authorization.k8s.io" at the cluster scope')
    assert api_error(lambda: rbac.read_cluster_role("a:b:c"), 403)["reason"] == "Forbidden"


def test_fail_next_for_one_user(api: ApiServerHandle, core: CoreV1Api, rbac: RbacAuthorizationV1Api, as_sa: Any,
                                team: str) -> None:
    grant(rbac, [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}])
    bot = as_sa()
    api.fail_next("list", "pods", status=503, reason="ServiceUnavailable", user=bot.user)
    assert status_of(lambda: core.list_namespaced_pod(NS)) == 200
    assert status_of(lambda: bot.core.list_namespaced_pod(NS)) == 503
    assert status_of(lambda: bot.core.list_namespaced_pod(NS)) == 200


# --------------------------------------------------------------------------------------------------------------------
# RBAC
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/version", "/version/", "/api", "/api/", "/apis", "/apis/", "/api/v1",
                                  f"/apis/{RBAC}/v1", "/apis/apps", "/healthz", "/readyz"])
def test_discovery_is_allowed_to_every_service_account(api: ApiServerHandle, team: str, path: str) -> None:
    assert raw(api.url, path, api.service_account_token(NS, "bot"))[0] == 200


def test_other_paths_are_forbidden_unless_a_cluster_role_allows_them(api: ApiServerHandle,
                                                                     rbac: RbacAuthorizationV1Api, team: str) -> None:
    api.call(lambda: api.server["get /metrics"] << b"metrics 1\n")
    token = api.service_account_token(NS, "bot")
    status, body = raw(api.url, "/metrics", token)
    assert status == 403
    assert body["message"] == 'forbidden: User "system:serviceaccount:team:bot" cannot get path "/metrics"'
    rbac.create_cluster_role(role("metrics", [{"nonResourceURLs": ["/metr*"], "verbs": ["get"]}], cluster=True))
    rbac.create_cluster_role_binding(binding("metrics", "metrics", [sa_subject()], kind="ClusterRole", cluster=True))
    assert raw(api.url, "/metrics", token) == (200, "metrics 1\n")
    assert raw(api.url, "/metrics", api.service_account_token("default", "default"))[0] == 403


def test_role_and_role_binding_allow_only_their_rules_in_their_namespace(rbac: RbacAuthorizationV1Api, as_sa: Any,
                                                                         team: str) -> None:
    grant(rbac, [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}])
    bot = as_sa()
    assert [p.metadata.name for p in bot.core.list_namespaced_pod(NS).items] == ["p"]
    assert bot.core.read_namespaced_pod("p", NS).metadata.name == "p"
    stream = kubernetes.watch.Watch().stream(bot.core.list_namespaced_pod, NS, timeout_seconds=1)
    assert [event["type"] for event in stream] == ["ADDED"]
    assert status_of(lambda: bot.core.delete_namespaced_pod("p", NS)) == 403
    assert status_of(lambda: bot.core.list_namespaced_pod(OTHER)) == 403
    assert status_of(lambda: bot.core.list_namespaced_secret(NS)) == 403
    assert status_of(lambda: bot.core.list_pod_for_all_namespaces()) == 403  # a Role never grants cluster-wide
    body = api_error(lambda: bot.core.read_namespaced_secret("s", NS), 403)
    assert body["message"] == ('secrets "s" is forbidden: User "system:serviceaccount:team:bot" cannot get resource '
                               '"secrets" in API group "" in the namespace "team"')
    assert body["details"] == {"name": "s", "kind": "secrets"}
    rbac.delete_namespaced_role_binding("r", NS)  # revoked at once
    assert status_of(lambda: bot.core.list_namespaced_pod(NS)) == 403


def test_forbidden_messages_name_the_group_and_the_cluster_scope(as_sa: Any, team: str) -> None:
    bot = as_sa()
    body = api_error(lambda: bot.apps.patch_namespaced_deployment_scale("web", NS, {"spec": {"replicas": 2}}), 403)
    assert body["message"] == ('deployments.apps "web" is forbidden: User "system:serviceaccount:team:bot" cannot '
                               'patch resource "deployments/scale" in API group "apps" in the namespace "team"')
    assert body["details"] == {"name": "web", "group": "apps", "kind": "deployments"}
    body = api_error(lambda: bot.core.list_node(), 403)
    assert body["message"] == ('nodes is forbidden: User "system:serviceaccount:team:bot" cannot list resource "nodes" '
                               'in API group "" at the cluster scope')
    body = api_error(lambda: bot.apps.create_namespaced_deployment(NS, deployment()), 403)
    assert body["message"].startswith('deployments.apps is forbidden: User "system:serviceaccount:team:bot" cannot '
                                      'create resource "deployments"')


def test_a_cluster_role_through_a_role_binding_applies_in_that_namespace_only(rbac: RbacAuthorizationV1Api,
                                                                              as_sa: Any, team: str) -> None:
    rbac.create_cluster_role(role("pod-reader", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
                                  cluster=True))
    rbac.create_namespaced_role_binding(NS, binding("read", "pod-reader", [sa_subject()], kind="ClusterRole"))
    bot = as_sa()
    assert status_of(lambda: bot.core.list_namespaced_pod(NS)) == 200
    assert status_of(lambda: bot.core.list_namespaced_pod(OTHER)) == 403
    assert status_of(lambda: bot.core.list_pod_for_all_namespaces()) == 403


def test_a_cluster_role_binding_applies_everywhere(rbac: RbacAuthorizationV1Api, as_sa: Any, team: str) -> None:
    rbac.create_cluster_role(role("reader", [{"apiGroups": [""], "resources": ["pods", "nodes"], "verbs": ["list"]}],
                                  cluster=True))
    rbac.create_cluster_role_binding(binding("reader", "reader", [sa_subject()], kind="ClusterRole", cluster=True))
    bot = as_sa()
    assert status_of(lambda: bot.core.list_namespaced_pod(OTHER)) == 200
    assert len(bot.core.list_pod_for_all_namespaces().items) == 2
    assert status_of(lambda: bot.core.list_node()) == 200
    assert status_of(lambda: bot.core.read_namespaced_pod("p", OTHER)) == 403  # list only


def test_a_role_binding_to_a_role_of_another_namespace_grants_nothing(rbac: RbacAuthorizationV1Api, as_sa: Any,
                                                                      team: str) -> None:
    rbac.create_namespaced_role(OTHER, role("r", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]))
    rbac.create_namespaced_role_binding(NS, binding("r", "r", [sa_subject()]))  # Role "r" looked up in "team"
    assert status_of(lambda: as_sa().core.list_namespaced_pod(NS)) == 403


@pytest.mark.parametrize(("subject", "allowed"), [
    ({"kind": "Group", "name": "system:serviceaccounts"}, True),
    ({"kind": "Group", "name": "system:serviceaccounts:team"}, True),
    ({"kind": "Group", "name": "system:serviceaccounts:elsewhere"}, False),
    ({"kind": "Group", "name": "system:authenticated"}, True),
    ({"kind": "Group", "name": "system:masters"}, False),
    ({"kind": "User", "name": "system:serviceaccount:team:bot"}, True),
    ({"kind": "User", "name": "bot"}, False),
    ({"kind": "ServiceAccount", "name": "bot"}, True),  # no namespace: the RoleBinding's
    ({"kind": "ServiceAccount", "name": "bot", "namespace": "elsewhere"}, False),
    ({"kind": "ServiceAccount", "name": "default", "namespace": "team"}, False),
])
def test_binding_subjects(rbac: RbacAuthorizationV1Api, as_sa: Any, team: str, subject: dict[str, Any],
                          allowed: bool) -> None:
    grant(rbac, [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}], subjects=[subject])
    assert status_of(lambda: as_sa().core.list_namespaced_pod(NS)) == (200 if allowed else 403)


def test_resource_names_restrict_to_the_named_objects(core: CoreV1Api, rbac: RbacAuthorizationV1Api, as_sa: Any,
                                                      team: str) -> None:
    for name in ("mine", "theirs"):
        core.create_namespaced_config_map(NS, {"metadata": {"name": name}, "data": {"k": "v"}})
    grant(rbac, [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["mine"],
                  "verbs": ["get", "list", "watch", "update", "patch", "create", "delete"]}])
    bot = as_sa()
    assert bot.core.read_namespaced_config_map("mine", NS).data == {"k": "v"}
    bot.core.patch_namespaced_config_map("mine", NS, {"data": {"k": "w"}})
    assert status_of(lambda: bot.core.read_namespaced_config_map("theirs", NS)) == 403
    assert status_of(lambda: bot.core.list_namespaced_config_map(NS)) == 403
    listed = bot.core.list_namespaced_config_map(NS, field_selector="metadata.name=mine")
    assert [c.metadata.name for c in listed.items] == ["mine"]
    assert status_of(lambda: bot.core.list_namespaced_config_map(NS, field_selector="metadata.name=theirs")) == 403
    assert status_of(lambda: bot.core.create_namespaced_config_map(NS, {"metadata": {"name": "mine2"}})) == 403
    assert status_of(lambda: bot.core.delete_namespaced_config_map("mine", NS)) == 200


def test_the_scale_subresource_is_authorized_apart_from_the_deployment(apps: AppsV1Api, rbac: RbacAuthorizationV1Api,
                                                                       as_sa: Any, team: str) -> None:
    apps.create_namespaced_deployment(NS, deployment("web"))
    grant(rbac, [{"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["get", "patch", "update"]},
                 {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch"]}],
          name="scaler")
    bot = as_sa()
    bot.apps.patch_namespaced_deployment_scale("web", NS, {"spec": {"replicas": 3}})
    scale = bot.apps.read_namespaced_deployment_scale("web", NS)
    scale.spec.replicas = 2
    bot.apps.replace_namespaced_deployment_scale("web", NS, scale)
    assert apps.read_namespaced_deployment("web", NS).spec.replicas == 2
    assert status_of(lambda: bot.apps.patch_namespaced_deployment("web", NS, {"spec": {"replicas": 5}})) == 403
    current = bot.apps.read_namespaced_deployment("web", NS)
    assert status_of(lambda: bot.apps.replace_namespaced_deployment("web", NS, current)) == 403
    assert status_of(lambda: bot.apps.patch_namespaced_deployment_status("web", NS, {"status": {}})) == 403
    # and the other way round: the deployment, not its scale
    rbac.patch_namespaced_role("scaler", NS, {"rules": [{"apiGroups": ["apps"], "resources": ["deployments"],
                                                         "verbs": ["get", "patch"]}]})
    bot.apps.patch_namespaced_deployment("web", NS, {"spec": {"replicas": 4}})
    assert status_of(lambda: bot.apps.patch_namespaced_deployment_scale("web", NS, {"spec": {"replicas": 1}})) == 403
    assert status_of(lambda: bot.apps.read_namespaced_deployment_scale("web", NS)) == 403
    assert apps.read_namespaced_deployment("web", NS).spec.replicas == 4


def test_wildcards_and_star_subresources(apps: AppsV1Api, core: CoreV1Api, rbac: RbacAuthorizationV1Api, as_sa: Any,
                                         team: str) -> None:
    apps.create_namespaced_deployment(NS, deployment("web"))
    grant(rbac, [{"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["get"]},
                 {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}], name="subs")
    bot = as_sa()
    assert bot.apps.read_namespaced_deployment_scale("web", NS).spec.replicas == 1
    assert status_of(lambda: bot.apps.read_namespaced_deployment("web", NS)) == 403
    assert status_of(lambda: bot.core.read_namespaced_pod_log("p", NS)) == 200
    assert status_of(lambda: bot.core.read_namespaced_pod("p", NS)) == 403
    grant(rbac, [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}], name="all")
    assert status_of(lambda: bot.core.delete_namespaced_pod("p", NS)) == 200
    assert status_of(lambda: bot.core.create_namespaced_secret(NS, {"metadata": {"name": "s"}})) == 200
    assert status_of(lambda: bot.core.delete_collection_namespaced_secret(NS)) == 200
    assert status_of(lambda: bot.core.list_namespaced_secret(OTHER)) == 403  # still only in its namespace


def test_a_role_may_allow_reading_its_own_namespace(core: CoreV1Api, rbac: RbacAuthorizationV1Api, as_sa: Any,
                                                    team: str) -> None:
    grant(rbac, [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]}])
    bot = as_sa()
    assert bot.core.read_namespace(NS).metadata.name == NS  # /api/v1/namespaces/team is "in" the namespace team
    assert status_of(lambda: bot.core.read_namespace(OTHER)) == 403
    assert status_of(lambda: bot.core.list_namespace()) == 403


def test_requests_by_records_each_request_of_a_user(api: ApiServerHandle, apps: AppsV1Api,
                                                    rbac: RbacAuthorizationV1Api, as_sa: Any, team: str) -> None:
    apps.create_namespaced_deployment(NS, deployment("web"))
    grant(rbac, [{"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["patch"]}])
    bot = as_sa()
    bot.apps.patch_namespaced_deployment_scale("web", NS, {"spec": {"replicas": 2}})
    status_of(lambda: bot.apps.delete_namespaced_deployment("web", NS))
    assert [(e.verb, e.resource, e.group, e.namespace, e.name, e.code) for e in api.requests_by(bot.user)] == [
        ("patch", "deployments/scale", "apps", NS, "web", 200), ("delete", "deployments", "apps", NS, "web", 403)]
    assert [e.verb for e in api.denied_requests(bot.user)] == ["delete"]
    assert api.requests_by("system:serviceaccount:team:nobody") == []


# --------------------------------------------------------------------------------------------------------------------
# The HTTPS endpoint
# --------------------------------------------------------------------------------------------------------------------


def _tls_context(endpoint: HttpsEndpoint) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=endpoint.ca_pem)


def test_serve_https_answers_the_official_in_cluster_configuration(api: ApiServerHandle,
                                                                   rbac: RbacAuthorizationV1Api, team: str,
                                                                   tmp_path: Path) -> None:
    grant(rbac, [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}])
    endpoint = api.serve_https("127.0.0.1")
    assert endpoint.url == f"https://127.0.0.1:{endpoint.port}" and "ca_pem" not in repr(endpoint)
    (tmp_path / "token").write_text(api.service_account_token(NS, "bot"))
    (tmp_path / "ca.crt").write_text(endpoint.ca_pem)
    environ = {"KUBERNETES_SERVICE_HOST": endpoint.host, "KUBERNETES_SERVICE_PORT": str(endpoint.port)}
    configuration = kubernetes.client.Configuration()
    kubernetes.config.incluster_config.InClusterConfigLoader(
        token_filename=str(tmp_path / "token"), cert_filename=str(tmp_path / "ca.crt"),
        environ=environ).load_and_set(configuration)
    with ApiClient(configuration) as client:
        assert [p.metadata.name for p in CoreV1Api(client).list_namespaced_pod(NS).items] == ["p"]
        assert status_of(lambda: CoreV1Api(client).list_namespaced_secret(NS)) == 403
    user = "system:serviceaccount:team:bot"
    assert [(e.verb, e.resource, e.code) for e in api.requests_by(user)] == [("list", "pods", 200),
                                                                             ("list", "secrets", 403)]


def test_the_https_certificate_is_for_the_address_and_the_service_names(api: ApiServerHandle) -> None:
    endpoint = api.serve_https("127.0.0.1")
    for name in ("127.0.0.1", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "kubernetes"):
        with socket.create_connection((endpoint.host, endpoint.port), timeout=WAIT) as sock, \
                _tls_context(endpoint).wrap_socket(sock, server_hostname=name) as tls:
            assert tls.version() is not None
    with socket.create_connection((endpoint.host, endpoint.port), timeout=WAIT) as sock, \
            pytest.raises(ssl.SSLCertVerificationError):
        _tls_context(endpoint).wrap_socket(sock, server_hostname="example.com")
    with pytest.raises(urllib.error.URLError):  # not trusted without the CA
        urllib.request.urlopen(endpoint.url + "/version", timeout=WAIT)
    assert raw(endpoint.url, "/version", api.token, context=_tls_context(endpoint))[0] == 200  # the admin too
    assert raw(endpoint.url, "/version", None, context=_tls_context(endpoint))[0] == 401


def test_https_listens_on_one_address_and_stops(api: ApiServerHandle) -> None:
    with pytest.raises(ValueError, match="wildcard"):
        api.serve_https("0.0.0.0")
    with pytest.raises(ValueError):
        api.serve_https("localhost")  # an IP address only: the certificate is for it
    endpoint = api.serve_https("127.0.0.1")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.2", endpoint.port), timeout=WAIT).close()
    api.stop_https(endpoint)
    with pytest.raises(OSError):
        socket.create_connection((endpoint.host, endpoint.port), timeout=WAIT).close()


def test_https_stops_with_the_server() -> None:
    with running_api_server() as api:
        endpoint = api.serve_https("127.0.0.1")
        socket.create_connection((endpoint.host, endpoint.port), timeout=WAIT).close()
    with pytest.raises(OSError):
        socket.create_connection((endpoint.host, endpoint.port), timeout=WAIT).close()
