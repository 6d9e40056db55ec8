"""Button payloads parsed into typed values, in one place for every channel.

A payload is `<prefix>[:<action>[:<value>...]]`, e.g. "req:cancel:42". Each feature
declares the payloads it makes as a `Grammar`: its prefix, and for every action the
typed fields that follow. The router parses a pressed button with the grammar of its
prefix before the handler runs, so a handler reads checked values from `ctx.pressed`
(`ctx.pressed.action`, `ctx.pressed["request"]`) and never converts text itself.

Whatever does not parse (an unknown prefix or action, a field out of range, a
non-ASCII digit, too many parts, too long) is a button this bot did not make, or made
long ago: the parent is told the button is out of date and shown the menu. A handler
that finds a parsed value stale (a request of another parent, a child that is gone)
raises `StaleButton` for the same answer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from handlers.core import Context

# The longest payload accepted (the transcript keeps 255 characters of it).
MAX_PAYLOAD = 255
# Row ids are BIGINT on PostgreSQL: 1 .. 2**63 - 1.
MAX_ID = 2**63 - 1
_DIGITS = re.compile(r"[0-9]{1,19}")
_SLUG = re.compile(r"[a-z0-9_-]+")
_HEX = re.compile(r"[0-9a-f]+")


class BadPayload(ValueError):
    """A payload that is not one this bot makes."""


class StaleButton(Exception):
    """Raised by a handler: the pressed button refers to something no longer there or
    not the parent's own; they get the "out of date" answer and the menu."""


class Field:
    """One typed value of a payload."""

    def parse(self, raw: str, ctx: Context) -> Any:
        raise NotImplementedError


class Id(Field):
    """A database row id: ASCII digits, within BIGINT's positive range."""

    def parse(self, raw: str, ctx: Context) -> int:
        if not _DIGITS.fullmatch(raw):
            raise BadPayload("not an id")
        value = int(raw)
        if not 1 <= value <= MAX_ID:
            raise BadPayload("id out of range")
        return value


@dataclass(frozen=True)
class Number(Field):
    """A small whole number (a page, a step, an age) between `low` and `high`."""

    low: int
    high: int

    def parse(self, raw: str, ctx: Context) -> int:
        if not _DIGITS.fullmatch(raw) or not self.low <= int(raw) <= self.high:
            raise BadPayload("number out of range")
        return int(raw)


class OneOf(Field):
    """One of a known set of words."""

    def __init__(self, *values: str) -> None:
        self.values = frozenset(values)

    def parse(self, raw: str, ctx: Context) -> str:
        if raw not in self.values:
            raise BadPayload("unknown value")
        return raw


@dataclass(frozen=True)
class Slug(Field):
    """An identifier of lower-case ASCII letters, digits, '_' and '-' (an FAQ entry id)."""

    max_length: int = 64

    def parse(self, raw: str, ctx: Context) -> str:
        if len(raw) > self.max_length or not _SLUG.fullmatch(raw):
            raise BadPayload("not an identifier")
        return raw


@dataclass(frozen=True)
class Hex(Field):
    """A token of lower-case hex digits of exactly `length` characters."""

    length: int

    def parse(self, raw: str, ctx: Context) -> str:
        if len(raw) != self.length or not _HEX.fullmatch(raw):
            raise BadPayload("not a token")
        return raw


class MunicipalityId(Field):
    """A municipality of the active region profile; parsed into the Municipality."""

    def parse(self, raw: str, ctx: Context) -> Any:
        found = ctx.region.municipality(Slug().parse(raw, ctx))
        if found is None:
            raise BadPayload("not a municipality of this region")
        return found


class Either(Field):
    """The first of several fields that accepts the value."""

    def __init__(self, *choices: Field) -> None:
        self.choices = choices

    def parse(self, raw: str, ctx: Context) -> Any:
        for choice in self.choices:
            try:
                return choice.parse(raw, ctx)
            except BadPayload:
                continue
        raise BadPayload("no alternative fits")


@dataclass(frozen=True)
class Maybe(Field):
    """A trailing field that may be left out (then its value is None)."""

    inner: Field

    def parse(self, raw: str, ctx: Context) -> Any:
        return self.inner.parse(raw, ctx)


@dataclass(frozen=True)
class Pressed:
    """A parsed button press: the action and its typed values by name."""

    action: str = ""
    values: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def get(self, name: str, default: Any = None) -> Any:
        value = self.values.get(name)
        return default if value is None else value


class Grammar:
    """The payloads of one prefix: action -> {field name: Field}, in payload order.
    The action "" is the bare prefix ("req"); trailing fields may be `Maybe`."""

    def __init__(self, prefix: str, actions: Mapping[str, Mapping[str, Field]] | None = None):
        self.prefix = prefix
        self.actions = {"": {}} if actions is None else dict(actions)
        for name, fields in self.actions.items():
            kinds = [isinstance(f, Maybe) for f in fields.values()]
            if kinds != sorted(kinds):
                raise ValueError(f"{prefix}:{name}: optional fields must come last")

    def parse(self, payload: str, ctx: Context) -> Pressed:
        """The typed press of `payload` (which starts with this prefix), or BadPayload."""
        if len(payload) > MAX_PAYLOAD:
            raise BadPayload("too long")
        rest = payload[len(self.prefix) :]
        if rest and not rest.startswith(":"):
            raise BadPayload("another prefix")
        parts = rest[1:].split(":") if rest else []
        action, values = (parts[0], parts[1:]) if parts else ("", [])
        fields = self.actions.get(action)
        if fields is None:
            raise BadPayload("unknown action")
        required = sum(not isinstance(f, Maybe) for f in fields.values())
        if not required <= len(values) <= len(fields):
            raise BadPayload("wrong number of values")
        parsed: dict[str, Any] = dict.fromkeys(fields)
        for (name, kind), raw in zip(fields.items(), values, strict=False):
            parsed[name] = kind.parse(raw, ctx)
        return Pressed(action, parsed)
