"""``add_public_route``: a route of the management app the admin token does not guard (a page that asks for the
token itself), added from an ``on_startup`` callback as a plugin's ``clipper_startup`` does; every other route,
and every unknown path, still needs the token."""

from __future__ import annotations

from pathlib import Path

from aiohttp import test_utils, web

from clipper_core.config import Config
from clipper_core.context import ServerContext
from clipper_core.management import create_admin_app
from clipper_core.management.app import add_public_route
from clipper_core.plugins import PluginRegistry, make_plugin_manager
from clipper_core.state.memory import MemoryStateStore

TOKEN = "s3cret"


async def page(request: web.Request) -> web.Response:
    return web.Response(text="<html>a page</html>", content_type="text/html")


async def data(request: web.Request) -> web.Response:
    return web.json_response({"secret": 42})


async def test_a_public_route_added_at_startup_answers_without_the_token(tmp_path: Path) -> None:
    store = MemoryStateStore()
    await store.open()
    ctx = ServerContext(config=Config(home=tmp_path, state_store="memory", admin_token=TOKEN), store=store,
                        registry=PluginRegistry.create(make_plugin_manager()))
    app = create_admin_app(ctx)

    async def mount(app: web.Application) -> None:  # what a plugin's clipper_startup does
        add_public_route(app, "GET", "/page", page)
        app.router.add_get("/page/data", data)

    app.on_startup.append(mount)
    client = test_utils.TestClient(test_utils.TestServer(app))
    await client.start_server()
    try:
        response = await client.get("/page")
        assert (response.status, await response.text()) == (200, "<html>a page</html>")
        for path in ("/page/data", "/admin/ping", "/page/nothing", "/page/"):
            response = await client.get(path)
            assert response.status == 401, path
            assert "Authorization: Bearer" in (await response.json())["cause"]
        response = await client.get("/page/data", headers={"Authorization": f"Bearer {TOKEN}"})
        assert (response.status, await response.json()) == (200, {"secret": 42})
        response = await client.post("/page")  # the public route is GET only; another method is guarded
        assert response.status == 401
    finally:
        await client.close()
        await store.close()
