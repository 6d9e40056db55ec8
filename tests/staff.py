"""A member of staff using the console over HTTP, against the real aiohttp server."""

from __future__ import annotations

import html
import re
from typing import Any

import aiohttp

from bot.web import address, create_web_app, serve
from storage.staff import add_staff

CSRF = re.compile(r'name="_csrf" value="([^"]+)"')
ADMIN_PASSWORD = "admin-password-1"
OPERATOR_PASSWORD = "operator-password-1"


async def create_accounts(app) -> None:
    async with app.db.session() as session:
        await add_staff(session, "admin", ADMIN_PASSWORD, "admin")
        await add_staff(session, "oper", OPERATOR_PASSWORD, "operator")


class Served:
    """The console of `app` served on a free port of 127.0.0.1."""

    def __init__(self, app) -> None:
        self.app = app
        self.web_app = create_web_app(app)

    async def start(self) -> str:
        self.runner = await serve(self.web_app, "127.0.0.1", 0)
        self.base = address(self.runner).rstrip("/")
        return self.base

    async def stop(self) -> None:
        await self.runner.cleanup()


class StaffClient:
    """A browser without JavaScript: cookies, forms, redirects not followed."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""
        self.last: aiohttp.ClientResponse | None = None

    async def close(self) -> None:
        await self.http.close()

    async def get(self, path: str, **params: Any) -> tuple[int, str]:
        async with self.http.get(self.base + path, params=params, allow_redirects=False) as r:
            self.last = r
            body = await r.text()
        found = CSRF.search(body)
        if found and "/signin" not in path:
            self.csrf = html.unescape(found.group(1))
        return r.status, body

    async def post(
        self, path: str, data: dict[str, str] | None = None, *, csrf: str | None = None
    ) -> tuple[int, str]:
        form = dict(data or {})
        token = self.csrf if csrf is None else csrf
        if token:
            form["_csrf"] = token
        async with self.http.post(self.base + path, data=form, allow_redirects=False) as r:
            self.last = r
            return r.status, await r.text()

    async def signin(self, login: str, password: str) -> tuple[int, str]:
        _, page = await self.get("/signin")
        token = html.unescape(CSRF.search(page).group(1))  # type: ignore[union-attr]
        status, body = await self.post(
            "/signin", {"login": login, "password": password, "next": "/conversations"}, csrf=token
        )
        if status == 303:
            await self.get("/conversations")
        return status, body
