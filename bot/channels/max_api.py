"""A small client of the MAX Bot API (dev.max.ru/docs-api) on aiohttp.

REST with JSON bodies; the token goes only in the `Authorization` header (the API no
longer accepts it as a query parameter). Errors come back as an HTTP status with
`{"code": "...", "message": "..."}` and are raised as `MaxApiError`. One aiohttp
session with a connection pool sized for concurrent sends; every call has a short
timeout, the long poll its own.

TLS: since July 2026 the API is served from platform-api2.max.ru with a chain issued
by the Russian Trusted Root CA (Минцифры), which is in neither certifi nor Debian's
store. `max_ssl_context()` trusts the system store plus that root (shipped in
bot/channels/certs) and an optional `ca_file`, for this client's session only.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp

# Russian Trusted Root CA (SHA-256 D2:6D:2D:02:31:B7:C3:9F:92:CC:73:85:12:BA:54:10:35:19:
# E4:40:5D:68:B5:BD:70:3E:97:88:CA:8E:CF:31) and Russian Trusted Sub CA 2024 (SHA-256
# 21:55:78:50:36:C9:00:DB:B5:F1:BB:2A:15:69:C8:0C:55:59:5B:D6:BF:94:86:7A:29:BB:DD:BC:
# 7D:88:A3:F2), as published by the Ministry of Digital Development.
TRUSTED_CA = "certs/russian_trusted_ca.pem"
CALL_TIMEOUT = 15.0  # seconds for an ordinary call
CONNECT_TIMEOUT = 10.0
POOL_SIZE = 60  # parallel connections: sends up to the limit of 30 requests a second


class MaxApiError(Exception):
    """The API answered a call with an error status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def trusted_ca_pem() -> str:
    return (resources.files("bot.channels") / TRUSTED_CA).read_text(encoding="ascii")


def max_ssl_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """A context that trusts the system store, the Russian Trusted Root CA and `ca_file`.
    Used for the MAX API session only; nothing global changes."""
    context = ssl.create_default_context()
    context.load_verify_locations(cadata=trusted_ca_pem())
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return context


@dataclass(frozen=True)
class UpdateBatch:
    updates: list[dict[str, Any]]
    marker: int | None


class MaxApi:
    def __init__(
        self,
        token: str,
        api_base: str,
        ssl_context: ssl.SSLContext | None,
        timeout: float = CALL_TIMEOUT,
    ) -> None:
        self._token = token
        self.timeout = timeout
        self.api_base = api_base.rstrip("/")
        self._ssl = ssl_context
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=POOL_SIZE, ssl=self._ssl if self.api_base.startswith("https") else False
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"Authorization": self._token},
                timeout=aiohttp.ClientTimeout(total=self.timeout, connect=CONNECT_TIMEOUT),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        seconds: float | None = None,
    ) -> Any:
        params = {k: str(v) for k, v in (query or {}).items() if v is not None}
        options: dict[str, Any] = {"params": params}
        if body is not None:
            options["json"] = body
        if seconds is not None:
            options["timeout"] = aiohttp.ClientTimeout(total=seconds, connect=CONNECT_TIMEOUT)
        async with self.session.request(method, self.api_base + path, **options) as response:
            try:
                data = await response.json(content_type=None)
            except ValueError:
                data = None
            if response.status != 200:
                data = data if isinstance(data, dict) else {}
                raise MaxApiError(
                    response.status,
                    str(data.get("code") or "http.error"),
                    str(data.get("message") or response.reason or ""),
                )
            if not isinstance(data, dict):
                # 200 with something that is not the API's JSON object (a front end's
                # page, an answer cut off): as unusable as a 502
                raise MaxApiError(502, "bad.answer", "the answer is not a JSON object")
            return data

    # -- the methods the bot uses ------------------------------------------------------
    async def me(self) -> dict[str, Any]:
        return await self.call("GET", "/me")

    async def updates(
        self, marker: int | None, *, limit: int, wait: int, types: list[str]
    ) -> UpdateBatch:
        data = await self.call(
            "GET",
            "/updates",
            query={"marker": marker, "limit": limit, "timeout": wait, "types": ",".join(types)},
            seconds=wait + self.timeout,
        )
        marker = data.get("marker")
        updates = data.get("updates") or []
        if not isinstance(updates, list) or not isinstance(marker, int | None):
            raise MaxApiError(502, "bad.answer", "updates is not a list or marker a number")
        return UpdateBatch(updates, marker or None)

    async def send_message(self, user_id: str, body: dict[str, Any]) -> dict[str, Any]:
        data = await self.call("POST", "/messages", query={"user_id": user_id}, body=body)
        return data.get("message") or {}

    async def answer(self, callback_id: str, body: dict[str, Any]) -> None:
        await self.call("POST", "/answers", query={"callback_id": callback_id}, body=body)

    async def subscriptions(self) -> list[dict[str, Any]]:
        data = await self.call("GET", "/subscriptions")
        return list(data.get("subscriptions") or [])

    async def subscribe(self, url: str, types: list[str], secret: str) -> None:
        body: dict[str, Any] = {"url": url, "update_types": types}
        if secret:
            body["secret"] = secret
        data = await self.call("POST", "/subscriptions", body=body)
        if not data.get("success", False):
            raise MaxApiError(200, "subscription.failed", str(data.get("message") or ""))

    async def unsubscribe(self, url: str) -> None:
        await self.call("DELETE", "/subscriptions", query={"url": url})


def is_certificate_error(exc: BaseException) -> bool:
    """The connection failed because the server's certificate chain is not trusted."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | ssl.SSLCertVerificationError):
        return True
    cause = exc.__cause__ or exc.__context__
    return cause is not None and cause is not exc and is_certificate_error(cause)


NETWORK_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)
