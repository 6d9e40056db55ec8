"""The staff console's pages: sign-in, conversations, requests, the audit log, accounts.

Everything a parent typed reaches the page through Jinja2's autoescaping, and personal
data through `Masker`, which hides it unless this session unmasked the conversation (a
POST written to the audit log).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select

from bot.web import exports
from bot.web.masking import (
    found_values,
    mask_date,
    mask_known,
    mask_name,
    mask_number,
    mask_phone,
    mask_text,
)
from bot.web.queries import (
    CHANNELS,
    ConversationFilters,
    RequestFilters,
    audit_page,
    conversation,
    conversations,
    page_number,
    request_history,
    requests_page,
)
from bot.web.security import (
    APP_KEY,
    CSRF_FIELD,
    SESSION_COOKIE,
    SIGNIN_COOKIE,
    access,
    base_context,
    client_address,
    new_signin_token,
    render_error,
    set_cookie,
    signin_token_ok,
    staff_of,
)
from storage.models import (
    REQUEST_STATUSES,
    STAFF_ROLES,
    Child,
    EnrollmentRequest,
    Program,
    StaffSession,
    StaffUser,
    User,
)
from storage.requests import NEEDS_REASON, STAFF_STATUSES, TRANSITIONS, StatusChangeError
from storage.staff import (
    MIN_PASSWORD,
    StaffError,
    add_staff,
    check_login,
    close_session,
    find_staff,
    list_staff,
    open_session,
    recent_failures,
    record_failure,
    set_active,
    set_password,
    set_role,
    staff_audit,
    token_id,
    verify_password,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MenuItem:
    """An entry of the console's top menu, shown to `role` and above."""

    path: str
    key: str  # its label is staff.menu.<key> under texts/
    role: str


MENU = [
    MenuItem("/conversations", "conversations", "operator"),
    MenuItem("/requests", "requests", "operator"),
    MenuItem("/audit", "audit", "admin"),
    MenuItem("/accounts", "accounts", "admin"),
]


def _app(request: web.Request) -> Any:
    return request.app[APP_KEY]


def _zone(request: web.Request) -> ZoneInfo:
    return ZoneInfo(_app(request).region.timezone)


def _t(request: web.Request, key: str, **params: Any) -> str:
    return _app(request).texts(f"staff.{key}", **params)


class Masker:
    """Personal data of one conversation, masked unless the session unmasked it. `names`
    and `values` are this conversation's known data (children's names, dates of birth,
    certificate numbers, phones): masked wherever they stand, in the bot's messages too."""

    def __init__(self, shown: bool, names: Iterable[str] = (), values: Iterable[str] = ()) -> None:
        self.shown = shown
        self.names = [name for name in names if name]
        self.values = [value for value in values if value]

    def text(self, value: str | None) -> str:
        """Text a parent typed: everything that looks like personal data is masked."""
        return value or "" if self.shown else mask_text(value or "", self.names, self.values)

    def said(self, entry: Any) -> str:
        """A transcript message: the parent's masked like typed text; the bot's own
        words (examples, the hotline's number) are kept, echoes of known data masked."""
        if entry.direction == "in":
            return self.text(entry.text)
        return entry.text or "" if self.shown else mask_known(entry.text, self.names, self.values)

    def label(self, value: str) -> str:
        """A button's label (a child's name on «Кого записываем» buttons, say)."""
        return value if self.shown else mask_known(value, self.names, self.values)

    def name(self, value: str | None) -> str:
        return value or "" if self.shown else mask_name(value or "")

    def phone(self, value: str | None) -> str:
        return value or "" if self.shown else mask_phone(value or "")

    def number(self, value: str | None) -> str:
        return value or "" if self.shown else mask_number(value or "")

    def birth(self, value: date | None) -> str:
        if value is None:
            return ""
        return value.strftime("%d.%m.%Y") if self.shown else mask_date(value)

    def parent(self, user: User) -> str:
        """The parent's messenger name: the first word and an initial when masked."""
        if self.shown or not user.name:
            return user.name
        first, *rest = user.name.split()
        return " ".join([first, *(f"{word[:1]}." for word in rest)])


class Views:
    """Formatting helpers handed to templates as `v`."""

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.zone = _zone(request)
        self.region = _app(request).region

    def t(self, key: str, **params: Any) -> str:
        return _t(self.request, key, **params)

    def when(self, moment: datetime | None, *, seconds: bool = False) -> str:
        if moment is None:
            return ""
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return moment.astimezone(self.zone).strftime(
            "%d.%m.%Y %H:%M:%S" if seconds else "%d.%m.%Y %H:%M"
        )

    def channel(self, name: str) -> str:
        texts = _app(self.request).texts
        return texts(f"staff.channel.{name}") if texts.has(f"staff.channel.{name}") else name

    def municipality(self, municipality_id: str | None) -> str:
        found = self.region.municipality(municipality_id)
        return found.name if found else (municipality_id or "—")

    def status(self, status: str) -> str:
        return self.t(f"status.{status}")

    def step(self, step: str | None) -> str:
        if not step:
            return ""
        texts = _app(self.request).texts
        key = f"staff.steps.{step.split(':', 1)[0]}"
        return f"{texts(key)} ({step})" if texts.has(key) else step

    def author(self, entry: Any) -> str:
        if entry.direction == "in":
            return self.t("author.parent")
        if entry.author and entry.author.startswith("staff:"):
            return self.t("author.staff", login=entry.author.removeprefix("staff:"))
        return self.t("author.bot")

    def delivery(self, entry: Any) -> str:
        if entry.direction != "out" or not entry.status:
            return ""
        key = f"delivery.{entry.status}"
        return self.t(key) if _app(self.request).texts.has(f"staff.{key}") else entry.status

    def buttons(self, entry: Any) -> list[list[str]]:
        rows = (entry.buttons or {}).get("rows", []) if isinstance(entry.buttons, dict) else []
        return [[str(button[0]) for button in row if button] for row in rows]

    def pressed(self, entry: Any, earlier: list[Any]) -> str:
        """The label of the button a parent pressed (its payload looked up in what the bot
        had shown before), or the payload itself."""
        if entry.direction != "in" or not entry.payload:
            return ""
        for previous in reversed(earlier):
            if previous.direction != "out" or not isinstance(previous.buttons, dict):
                continue
            for row in previous.buttons.get("rows", []):
                for button in row:
                    if len(button) > 1 and button[1] == entry.payload:
                        return str(button[0])
        return ""

    def audit_action(self, action: str) -> str:
        texts = _app(self.request).texts
        return texts(f"staff.audit.{action}") if texts.has(f"staff.audit.{action}") else action

    def actor(self, entry: Any) -> str:
        if entry.staff_login:
            return entry.staff_login
        texts = _app(self.request).texts
        key = f"staff.actor.{entry.actor}"
        return texts(key) if texts.has(key) else entry.actor

    def details(self, entry: Any) -> list[tuple[str, str]]:
        """An audit entry's details with Russian names and values where known."""
        texts = _app(self.request).texts
        shown = []
        for key, value in (entry.detail or {}).items():
            label = texts(f"staff.detail.{key}") if texts.has(f"staff.detail.{key}") else key
            if key in ("before", "after") and texts.has(f"staff.status.{value}"):
                value = texts(f"staff.status.{value}")
            elif key == "role" and texts.has(f"staff.roles.{value}"):
                value = texts(f"staff.roles.{value}")
            elif key == "resolution" and texts.has(f"staff.upkeep.view.{value}"):
                value = texts(f"staff.upkeep.view.{value}")
            elif key == "channel":
                value = self.channel(str(value))
            elif isinstance(value, dict):
                value = ", ".join(f"{k}={v}" for k, v in value.items()) or "—"
            shown.append((label, str(value)))
        return shown

    def role(self, role: str) -> str:
        return self.t(f"roles.{role}")

    def qs(self, values: dict[str, str]) -> str:
        return urlencode(values)


def page(request: web.Request, template: str, context: dict[str, Any], status: int = 200):
    context = {**base_context(request), "v": Views(request), **context}
    return aiohttp_jinja2.render_template(template, request, context, status=status)


def _safe_next(value: str) -> str:
    if value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/conversations"


# -- sign-in ---------------------------------------------------------------------------------


def _signin_page(request: web.Request, error: str = "", login: str = "", status: int = 200):
    token = new_signin_token()
    response = page(
        request,
        "signin.html",
        {
            "error": error,
            "login": login,
            "signin_token": token,
            "next": _safe_next(request.query.get("next", "")),
        },
        status=status,
    )
    set_cookie(request, response, SIGNIN_COOKIE, token)
    return response


@access("public")
async def signin_form(request: web.Request) -> web.StreamResponse:
    return _signin_page(request)


@access("public")
async def signin(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    login = str(form.get("login", "")).strip().lower()[:64]
    password = str(form.get("password", ""))
    target = _safe_next(str(form.get("next", "")))
    if not signin_token_ok(request, str(form.get(CSRF_FIELD, ""))):
        return _signin_page(request, _t(request, "signin.expired_form"), login, status=403)
    app = _app(request)
    cfg = app.settings.web
    address = client_address(request)
    window = timedelta(minutes=cfg.signin_window_minutes)
    async with app.db.session() as session:
        by_login, by_address, oldest = await recent_failures(session, login, address, window)
    if by_login >= cfg.signin_limit_account or by_address >= cfg.signin_limit_address:
        wait = (oldest + window - datetime.now(UTC)) if oldest else window
        minutes = max(1, int(wait.total_seconds() // 60) + 1)
        log.warning("console sign-in refused: too many failures (login or address)")
        return _signin_page(request, _t(request, "signin.limited", minutes=minutes), login, 429)
    async with app.db.session() as session:
        user = await find_staff(session, login)
        if not verify_password(user, password):
            await record_failure(session, login, address)
            staff_audit(session, "staff_signin_failed", None, login=login)
            ok = False
        else:
            assert user is not None
            token, _ = await open_session(session, user)
            staff_audit(session, "staff_signin", user.login)
            ok = True
    if not ok:
        return _signin_page(request, _t(request, "signin.wrong"), login, status=401)
    response = web.HTTPSeeOther(target)
    set_cookie(request, response, SESSION_COOKIE, token)
    response.del_cookie(SIGNIN_COOKIE, path="/")
    raise response


@access("operator")
async def signout(request: web.Request) -> web.StreamResponse:
    staff = staff_of(request)
    async with _app(request).db.session() as session:
        await close_session(session, staff.token)
        staff_audit(session, "staff_signout", staff.login)
    response = web.HTTPSeeOther("/signin")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


@access("operator")
async def home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/conversations")


# -- conversations ---------------------------------------------------------------------------


@access("operator")
async def conversations_page(request: web.Request) -> web.StreamResponse:
    app = _app(request)
    staff = staff_of(request)
    filters = ConversationFilters.from_query(request.query)
    async with app.db.session() as session:
        rows, more = await conversations(
            session,
            filters,
            _zone(request),
            timedelta(hours=app.settings.web.stuck_after_hours),
        )
    maskers = {
        row.user.id: Masker(row.user.id in staff.unmasked, row.children, row.values) for row in rows
    }
    return page(
        request,
        "conversations.html",
        {
            "rows": rows,
            "more": more,
            "filters": filters,
            "maskers": maskers,
            "channels": CHANNELS,
            "municipalities": app.region.municipalities,
        },
    )


@access("operator")
async def conversation_page(request: web.Request) -> web.StreamResponse:
    app = _app(request)
    staff = staff_of(request)
    user_id = _int(request.match_info["user_id"])
    before = _int(request.query.get("before", ""))
    from bot.web.handoff import handoff_context

    async with app.db.session() as session:
        found = await conversation(session, user_id, before or None) if user_id else None
        handoff = await handoff_context(request, session, user_id) if found else {}
    if found is None:
        return render_error(request, 404, "not_found")
    children = [*found.children, *(child for _, _, child in found.requests)]
    values = [value for child in children for value in child_values(child)]
    values += [request.phone for request, _, _ in found.requests]
    for entry in found.messages:
        if entry.direction == "in":
            values += found_values(entry.text)
    masker = Masker(found.user.id in staff.unmasked, [c.full_name for c in children], values)
    return page(
        request,
        "conversation.html",
        {"c": found, "m": masker, "shown": masker.shown, **handoff},
    )


def child_values(child: Child) -> list[str]:
    return [child.birth_date.strftime("%d.%m.%Y"), child.certificate_number or ""]


def _int(value: str) -> int:
    return int(value) if value.isdigit() and len(value) < 19 else 0


async def _set_unmasked(request: web.Request, show: bool) -> web.StreamResponse:
    app = _app(request)
    staff = staff_of(request)
    user_id = _int(request.match_info["user_id"])
    form = await request.post()
    back = _safe_next(str(form.get("back", "")) or f"/conversations/{user_id}")
    async with app.db.session() as session:
        user = await session.get(User, user_id) if user_id else None
        if user is None:
            return render_error(request, 404, "not_found")
        row = await session.get(StaffSession, token_id(staff.token))
        assert row is not None
        shown = set(row.unmasked or [])
        if show and user_id not in shown:
            shown.add(user_id)
            staff_audit(session, "unmask", staff.login, user_id=user_id, channel=user.channel)
        elif not show:
            shown.discard(user_id)
        row.unmasked = sorted(shown)
    raise web.HTTPSeeOther(back)


@access("operator")
async def unmask(request: web.Request) -> web.StreamResponse:
    return await _set_unmasked(request, True)


@access("operator")
async def remask(request: web.Request) -> web.StreamResponse:
    return await _set_unmasked(request, False)


# -- requests --------------------------------------------------------------------------------


@access("operator")
async def requests_list(request: web.Request) -> web.StreamResponse:
    app = _app(request)
    staff = staff_of(request)
    filters = RequestFilters.from_query(request.query, REQUEST_STATUSES)
    async with app.db.session() as session:
        rows, more = await requests_page(session, filters, _zone(request))
    maskers = {
        req.id: Masker(req.user_id in staff.unmasked, [child.full_name], [req.phone])
        for req, _, child, _ in rows
    }
    return page(
        request,
        "requests.html",
        {
            "rows": rows,
            "more": more,
            "filters": filters,
            "maskers": maskers,
            "statuses": REQUEST_STATUSES,
            "municipalities": app.region.municipalities,
        },
    )


async def _request_context(request: web.Request, request_id: int) -> dict[str, Any] | None:
    app = _app(request)
    staff = staff_of(request)
    async with app.db.session() as session:
        found = (
            await session.execute(
                select(EnrollmentRequest, Program, Child, User)
                .join(Program, Program.id == EnrollmentRequest.program_id)
                .join(Child, Child.id == EnrollmentRequest.child_id)
                .join(User, User.id == EnrollmentRequest.user_id)
                .where(EnrollmentRequest.id == request_id)
            )
        ).first()
        if found is None:
            return None
        history = await request_history(session, request_id)
    req, program, child, user = found
    allowed = [s for s in STAFF_STATUSES if s in TRANSITIONS.get(req.status, set())]
    return {
        "r": req,
        "program": program,
        "child": child,
        "user": user,
        "history": history,
        "m": Masker(
            user.id in staff.unmasked, [child.full_name], [req.phone, *child_values(child)]
        ),
        "shown": user.id in staff.unmasked,
        "allowed": allowed,
        "needs_reason": NEEDS_REASON,
        "reasons": [line for line in app.texts("staff.status_change.reasons").splitlines() if line],
    }


@access("operator")
async def request_page(request: web.Request) -> web.StreamResponse:
    context = await _request_context(request, _int(request.match_info["request_id"]))
    if context is None:
        return render_error(request, 404, "not_found")
    context["notice"] = request.query.get("done", "") == "1"
    return page(request, "request.html", {**context, "message": "", "error": ""})


@access("operator")
async def request_status(request: web.Request) -> web.StreamResponse:
    app = _app(request)
    staff = staff_of(request)
    request_id = _int(request.match_info["request_id"])
    form = await request.post()
    status = str(form.get("status", ""))
    reason = str(form.get("reason_text", "")).strip() or str(form.get("reason", "")).strip()
    error = message = ""
    if status in NEEDS_REASON and not reason:
        error = _t(request, "status_change.need_reason")
    elif status not in STAFF_STATUSES:
        error = _t(request, "status_change.error", reason=status or "—")
    else:
        try:
            change = await app.services.request_status.change(
                request_id, status, reason[:1000], by=staff.login
            )
        except StatusChangeError as exc:
            error = _t(request, "status_change.error", reason=str(exc))
        else:
            told = _t(
                request, "status_change.told_yes" if change.notified else "status_change.told_no"
            )
            message = _t(
                request,
                "status_change.done",
                number=request_id,
                before=_t(request, f"status.{change.before}"),
                after=_t(request, f"status.{change.after}"),
                told=told,
            )
    context = await _request_context(request, request_id)
    if context is None:
        return render_error(request, 404, "not_found")
    return page(
        request,
        "request.html",
        {**context, "message": message, "error": error, "notice": False},
        status=400 if error else 200,
    )


@access("admin")
async def requests_export(request: web.Request) -> web.StreamResponse:
    app = _app(request)
    staff = staff_of(request)
    form = await request.post()
    fmt = "xlsx" if form.get("format") == "xlsx" else "csv"
    filters = RequestFilters.from_query(form, REQUEST_STATUSES)
    async with app.db.session() as session:
        rows = await exports.request_records(session, filters, app.region, app.texts)
        staff_audit(
            session,
            "export",
            staff.login,
            format=fmt,
            rows=len(rows) - 1,
            filters=filters.query_string(page=""),
        )
    stamp = datetime.now(_zone(request)).strftime("%Y-%m-%d_%H%M")
    body, content_type = exports.encode(rows, fmt, app.texts("staff.export.sheet"))
    return web.Response(
        body=body,
        headers={
            "Content-Type": content_type,
            "Content-Disposition": f'attachment; filename="requests_{stamp}.{fmt}"',
        },
    )


# -- audit and accounts ----------------------------------------------------------------------


@access("admin")
async def audit_log(request: web.Request) -> web.StreamResponse:
    action = request.query.get("action", "")[:64]
    login = request.query.get("login", "").strip().lower()[:64]
    number = page_number(request.query.get("page"))
    async with _app(request).db.session() as session:
        entries, more = await audit_page(session, action, login, number)
    actions = [key.removeprefix("staff.audit.") for key in _audit_keys(request)]
    return page(
        request,
        "audit.html",
        {
            "entries": entries,
            "more": more,
            "action": action,
            "login": login,
            "page_no": number,
            "actions": actions,
        },
    )


def _audit_keys(request: web.Request) -> list[str]:
    return [key for key in _app(request).texts.keys() if key.startswith("staff.audit.")]


@access("admin")
async def accounts(request: web.Request) -> web.StreamResponse:
    return await _accounts_page(request)


async def _accounts_page(
    request: web.Request, message: str = "", error: str = "", status: int = 200
) -> web.StreamResponse:
    async with _app(request).db.session() as session:
        users = await list_staff(session)
    return page(
        request,
        "accounts.html",
        {
            "users": users,
            "roles": STAFF_ROLES,
            "message": message,
            "error": error,
            "min_password": MIN_PASSWORD,
        },
        status=status,
    )


def _account_error(request: web.Request, exc: StaffError, login: str) -> str:
    text = str(exc)
    if "taken" in text:
        return _t(request, "accounts.taken", login=login)
    if "password" in text:
        return _t(request, "accounts.short_password", n=MIN_PASSWORD)
    if "login" in text:
        return _t(request, "accounts.bad_login")
    return _t(request, "accounts.error", reason=text)


@access("admin")
async def account_add(request: web.Request) -> web.StreamResponse:
    staff = staff_of(request)
    form = await request.post()
    login = str(form.get("login", "")).strip().lower()
    password = str(form.get("password", ""))
    if password != str(form.get("password2", "")):
        return await _accounts_page(request, error=_t(request, "accounts.mismatch"), status=400)
    try:
        async with _app(request).db.session() as session:
            await add_staff(session, login, password, str(form.get("role", "")), by=staff.login)
    except StaffError as exc:
        return await _accounts_page(request, error=_account_error(request, exc, login), status=400)
    return await _accounts_page(request, message=_t(request, "accounts.added", login=login))


@access("admin")
async def account_change(request: web.Request) -> web.StreamResponse:
    staff = staff_of(request)
    form = await request.post()
    action = str(form.get("action", ""))
    account_id = _int(request.match_info["account_id"])
    try:
        async with _app(request).db.session() as session:
            user = await session.get(StaffUser, account_id) if account_id else None
            if user is None:
                return render_error(request, 404, "not_found")
            login = user.login
            if user.id == staff.id and action in ("disable", "role"):
                return await _accounts_page(request, error=_t(request, "accounts.own"), status=400)
            if action == "disable":
                await set_active(session, user, False, by=staff.login)
                message = _t(request, "accounts.disabled", login=login)
            elif action == "enable":
                await set_active(session, user, True, by=staff.login)
                message = _t(request, "accounts.enabled", login=login)
            elif action == "role":
                role = str(form.get("role", ""))
                await set_role(session, user, role, by=staff.login)
                message = _t(
                    request, "accounts.role", login=login, role=_t(request, f"roles.{role}")
                )
            elif action == "password":
                password = str(form.get("password", ""))
                if password != str(form.get("password2", "")):
                    return await _accounts_page(
                        request, error=_t(request, "accounts.mismatch"), status=400
                    )
                await set_password(session, user, password, by=staff.login)
                message = _t(request, "accounts.password", login=login)
            else:
                return render_error(request, 400, "bad_request")
    except StaffError as exc:
        return await _accounts_page(request, error=_account_error(request, exc, ""), status=400)
    if action == "password" and account_id == staff.id:
        raise web.HTTPSeeOther("/signin")
    return await _accounts_page(request, message=message)


def add_console_routes(web_app: web.Application) -> None:
    router = web_app.router
    router.add_get("/signin", signin_form)
    router.add_post("/signin", signin)
    router.add_post("/signout", signout)
    router.add_get("/", home)
    router.add_get("/conversations", conversations_page)
    router.add_get("/conversations/{user_id}", conversation_page)
    router.add_post("/conversations/{user_id}/unmask", unmask)
    router.add_post("/conversations/{user_id}/mask", remask)
    router.add_get("/requests", requests_list)
    router.add_post("/requests/export", requests_export)
    router.add_get("/requests/{request_id}", request_page)
    router.add_post("/requests/{request_id}/status", request_status)
    router.add_get("/audit", audit_log)
    router.add_get("/accounts", accounts)
    router.add_post("/accounts", account_add)
    router.add_post("/accounts/{account_id}", account_change)


__all__ = ["MENU", "MenuItem", "add_console_routes", "check_login"]
