"""Who may see what in the console: sessions, roles, CSRF tokens, security headers.

Every route states its access with `@access(...)`: "public" (sign-in, static files, the
Telegram webhook), "operator" or "admin". A route that states nothing is treated as
admin-only, so a forgotten declaration fails closed. The middlewares here:

- `headers_middleware`: Content-Security-Policy without inline scripts, frame-ancestors
  and X-Frame-Options, nosniff, no referrer; `no-store` on every console page.
- `auth_middleware`: finds the session of the cookie (idle and absolute expiry), sends a
  browser without one to the sign-in page, refuses a role too low, and refuses every
  state-changing request whose CSRF token is not the session's.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from aiohttp import web

from storage.staff import session_for

SESSION_COOKIE = "navbot_staff"
SIGNIN_COOKIE = "navbot_signin"
CSRF_FIELD = "_csrf"
CSRF_HEADER = "X-CSRF-Token"
ROLE_RANK = {"operator": 1, "admin": 2}
CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; "
    "img-src 'self' data:; font-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Staff:
    """The signed-in member of staff of this request."""

    id: int
    login: str
    role: str
    token: str
    csrf: str
    unmasked: set[int] = field(default_factory=set)

    @property
    def admin(self) -> bool:
        return self.role == "admin"


STAFF_KEY = web.RequestKey("navbot_staff", Staff)
APP_KEY = web.AppKey("navbot_app", object)
SETTINGS_KEY = web.AppKey("navbot_settings", object)
MENU_KEY = web.AppKey("navbot_menu", list)


def access(level: str) -> Callable[[Handler], Handler]:
    if level not in ("public", *ROLE_RANK):
        raise ValueError(level)

    def mark(handler: Handler) -> Handler:
        handler.navbot_access = level  # type: ignore[attr-defined]
        return handler

    return mark


def route_access(request: web.Request) -> str:
    route = request.match_info.route
    if isinstance(route.resource, web.StaticResource):
        return "public"
    if request.match_info.http_exception is not None:
        # no such page / method: let aiohttp answer 404 / 405 (nothing is shown)
        return "public"
    return getattr(route.handler, "navbot_access", "admin")


def staff_of(request: web.Request) -> Staff:
    return request[STAFF_KEY]


def cookie_secure(request: web.Request) -> bool:
    setting = request.app[SETTINGS_KEY].web.cookie_secure
    if setting != "auto":
        return setting == "always"
    forwarded = request.headers.get("X-Forwarded-Proto", "")
    return request.secure or (request.remote in ("127.0.0.1", "::1") and forwarded == "https")


def set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        httponly=True,
        samesite="Strict",
        secure=cookie_secure(request),
        path="/",
    )


def signin_redirect(request: web.Request) -> web.HTTPException:
    target = request.path_qs if request.method == "GET" else "/"
    return web.HTTPSeeOther(f"/signin?next={quote(target, safe='')}")


@web.middleware
async def headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
        _secure_headers(request, response)
        raise
    _secure_headers(request, response)
    return response


def _secure_headers(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    if not request.path.startswith("/static/"):
        # pages carry personal data: never kept in a browser or proxy cache
        headers["Cache-Control"] = "no-store"
        headers["Pragma"] = "no-cache"


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    level = route_access(request)
    if level == "public":
        return await handler(request)
    app = request.app[APP_KEY]
    cfg = app.settings.web
    token = request.cookies.get(SESSION_COOKIE, "")
    async with app.db.session() as session:
        found = await session_for(
            session,
            token,
            idle=timedelta(minutes=cfg.session_idle_minutes),
            lifetime=timedelta(hours=cfg.session_hours),
        )
        if found is not None:
            row, user = found
            staff = Staff(
                user.id, user.login, user.role, token, row.csrf_token, set(row.unmasked or [])
            )
    if found is None:
        raise signin_redirect(request)
    request[STAFF_KEY] = staff
    if ROLE_RANK[staff.role] < ROLE_RANK[level]:
        return render_error(request, 403, "forbidden")
    if request.method not in SAFE_METHODS and not await _csrf_ok(request, staff.csrf):
        return render_error(request, 403, "csrf")
    return await handler(request)


async def _csrf_ok(request: web.Request, expected: str) -> bool:
    given = request.headers.get(CSRF_HEADER, "")
    if not given and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        form = await request.post()
        given = str(form.get(CSRF_FIELD, ""))
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


def new_signin_token() -> str:
    return secrets.token_urlsafe(32)


def signin_token_ok(request: web.Request, given: str) -> bool:
    """The sign-in form's token is the one in its own cookie (double submit)."""
    expected = request.cookies.get(SIGNIN_COOKIE, "")
    return bool(given and expected) and hmac.compare_digest(given.encode(), expected.encode())


def render_error(request: web.Request, status: int, reason: str) -> web.Response:
    from bot.web.console import page

    return page(request, "error.html", {"reason": reason, "status": status}, status=status)


def client_address(request: web.Request) -> str:
    return request.remote or "unknown"


def base_context(request: web.Request) -> dict[str, Any]:
    """What every page template sees: the member of staff, the CSRF token, the menu."""
    staff = request.get(STAFF_KEY)
    menu = [
        item
        for item in request.app[MENU_KEY]
        if staff is not None and ROLE_RANK[staff.role] >= ROLE_RANK[item.role]
    ]
    return {
        "staff": staff,
        "csrf": staff.csrf if staff else "",
        "csrf_field": CSRF_FIELD,
        "menu": menu,
        "path": request.path,
    }
