"""Short keys for button payloads longer than a platform allows (Telegram: 64 bytes).

A long payload is stored under a key derived from its hash, so the same payload
always gets the same key, the key works after a restart and in every worker.
"""

from __future__ import annotations

import base64
import hashlib

from sqlalchemy.exc import IntegrityError

from storage.db import Database
from storage.models import ButtonPayload

PREFIX = "~"


class PayloadKeys:
    CACHE_SIZE = 5000

    def __init__(self, db: Database) -> None:
        self.db = db
        self._known: dict[str, str] = {}

    @staticmethod
    def key_for(payload: str) -> str:
        digest = hashlib.sha256(payload.encode()).digest()
        return PREFIX + base64.urlsafe_b64encode(digest).decode()[:22]

    async def shorten(self, payload: str, max_bytes: int) -> str:
        """The payload itself when it fits and cannot be mistaken for a key, else a key
        (an empty payload too: Telegram wants 1-64 bytes of callback data)."""
        if payload and len(payload.encode()) <= max_bytes and not payload.startswith(PREFIX):
            return payload
        key = self.key_for(payload)
        if self._known.get(key) == payload:
            return key
        try:
            async with self.db.session() as session:
                if await session.get(ButtonPayload, key) is None:
                    session.add(ButtonPayload(key=key, payload=payload))
        except IntegrityError:
            pass  # another worker stored the same payload under the same key
        self._remember(key, payload)
        return key

    async def expand(self, data: str) -> str | None:
        """The payload behind button data; None for a key this bot never issued."""
        if not data.startswith(PREFIX):
            return data
        if data in self._known:
            return self._known[data]
        async with self.db.session() as session:
            row = await session.get(ButtonPayload, data)
        if row is None:
            return None
        self._remember(data, row.payload)
        return row.payload

    def _remember(self, key: str, payload: str) -> None:
        if len(self._known) >= self.CACHE_SIZE:
            self._known.clear()
        self._known[key] = payload
