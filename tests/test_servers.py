from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.servers import serve_asgi


def test_serve_asgi_answers_on_loopback() -> None:
    async def hello(_request: object) -> PlainTextResponse:
        return PlainTextResponse("hi")

    app = Starlette(routes=[Route("/", hello)])
    with serve_asgi(app) as url:
        assert httpx.get(url + "/").text == "hi"
