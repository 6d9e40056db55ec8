"""Every word a parent or staff member reads, loaded from TOML files beside this module.

- `texts/ru/*.toml`: UI strings. A file `menu.toml` with a key `greeting` is
  addressed as "menu.greeting". Nested tables add more dots.
- `texts/regions/<id>.toml`: a region profile (see `Region`). Its optional `[texts]`
  table replaces UI strings where the region's procedure differs, addressed like the
  files: `[texts.certificate] how = "..."` replaces "certificate.how".

Strings use `str.format` placeholders. `{region.navigator_url}` and the other
region fields are filled from the active region profile; any other name must be
passed by the caller. A value that is a list of three strings is a Russian
plural: forms for 1, 2-4 and 5+ ("{n} заявка", "{n} заявки", "{n} заявок"),
chosen by the `n` argument. Agreement inside a template ("до {high:год,gent}",
"{name:datv}") is texts.grammar's.
"""

from __future__ import annotations

import datetime as dt
import string
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from texts.grammar import wrapped

TEXTS_DIR = Path(__file__).resolve().parent
REGIONS_DIR = TEXTS_DIR / "regions"


class TextsError(Exception):
    """A broken texts file or region profile: one line naming the file and the problem."""


# Where a municipality has no confirmation point or no hotline of its own in the profile,
# parents are sent to the regional centre; the profile says so with `fallback = "regional"`.
REGIONAL_FALLBACK = "regional"


@dataclass(frozen=True)
class ConfirmationPoint:
    """A place where parents confirm the child's data (or get the certificate issued),
    as published by the regional or municipal centre at `source` on the date `found`."""

    organisation: str
    address: str
    source: str
    found: dt.date
    hours: str = ""
    phone: str = ""


@dataclass(frozen=True)
class MunicipalHotline:
    """The municipality's own line (usually its support centre, МОЦ), with its source."""

    name: str
    phone: str
    source: str
    found: dt.date
    email: str = ""
    hours: str = ""


@dataclass(frozen=True)
class Municipality:
    id: str
    name: str
    # True: certificates with a nominal (personalised financing) are issued here;
    # False: only «сертификат учёта»; None: not known, the parent is sent to the МОЦ.
    nominal: bool | None = None
    nominal_since: int | None = None
    aliases: tuple[str, ...] = ()
    confirmation_points: tuple[ConfirmationPoint, ...] = ()
    hotline: MunicipalHotline | None = None
    # REGIONAL_FALLBACK when the regional centre stands in for missing points or hotline;
    # `fallback_searched` is the day the public sources were searched without result.
    fallback: str | None = None
    fallback_searched: dt.date | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def hotline_phone(self) -> str:
        return self.hotline.phone if self.hotline else ""

    @property
    def regional_fallback(self) -> bool:
        return self.fallback == REGIONAL_FALLBACK


@dataclass(frozen=True)
class Region:
    id: str
    code: str
    name: str
    name_prepositional: str
    navigator_url: str
    navigator_url_alt: str
    timezone: str
    hotline_name: str
    hotline_phone: str
    hotline_email: str
    municipalities: tuple[Municipality, ...]
    extra: Mapping[str, Any] = field(default_factory=dict)

    def municipality(self, municipality_id: str | None) -> Municipality | None:
        for item in self.municipalities:
            if item.id == municipality_id:
                return item
        return None

    @property
    def hotline_contacts(self) -> str:
        parts = [self.hotline_phone]
        if self.hotline_email:
            parts.append(self.hotline_email)
        return ", ".join(p for p in parts if p)


def available_regions(directory: Path = REGIONS_DIR) -> list[str]:
    """Region ids with a profile in `directory` (`<id>.consent.toml` is not a profile)."""
    return sorted(p.stem for p in directory.glob("*.toml") if "." not in p.stem)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise TextsError(f"{path}: not valid TOML: {exc}") from None


_POINT_KEYS = {"organisation", "address", "hours", "phone", "source", "found"}
_HOTLINE_KEYS = {"name", "phone", "email", "hours", "source", "found"}
_MUNICIPALITY_KEYS = {
    "id",
    "name",
    "nominal",
    "nominal_since",
    "aliases",
    "confirmation_points",
    "hotline",
    "fallback",
    "fallback_searched",
}


def _date(where: str, key: str, value: Any) -> dt.date:
    """A TOML date (`found = 2026-12-02`) or the same written as a string."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise TextsError(f"{where}: '{key}' must be a date like 2026-12-02") from None


def _sourced(where: str, item: Any, keys: set[str], required: tuple[str, ...]) -> dict[str, Any]:
    """A table of a published fact: known keys only, `required` non-empty, an http(s)
    `source` it was read from and the date it was `found` there."""
    if not isinstance(item, Mapping):
        raise TextsError(f"{where}: expected a table")
    unknown = sorted(set(item) - keys)
    if unknown:
        raise TextsError(f"{where}: unknown key(s) {', '.join(unknown)}")
    values = {key: str(item.get(key, "")).strip() for key in keys - {"found"}}
    missing = [key for key in (*required, "source") if not values[key]]
    if "found" not in item:
        missing.append("found")
    if missing:
        raise TextsError(f"{where}: needs {' and '.join(missing)}")
    if not values["source"].startswith(("https://", "http://")):
        raise TextsError(
            f"{where}: 'source' must be the address (http:// or https://) it was read at"
        )
    values["found"] = _date(where, "found", item["found"])
    return values


def _municipality(path: Path, index: int, item: Any) -> Municipality:
    if not isinstance(item, Mapping) or "id" not in item or "name" not in item:
        raise TextsError(f"{path}: municipality #{index} needs 'id' and 'name'")
    where = f"{path}: municipality '{item['id']}'"
    if "hotline_phone" in item:
        raise TextsError(
            f"{where}: 'hotline_phone' is replaced by a [municipalities.hotline] table "
            "with name, phone, source and found"
        )
    raw_points = item.get("confirmation_points", [])
    if not isinstance(raw_points, list):
        raise TextsError(
            f"{where}: confirmation_points must be a list of [[municipalities.confirmation_points]]"
        )
    points = tuple(
        ConfirmationPoint(
            **_sourced(f"{where}, point #{number}", point, _POINT_KEYS, ("organisation", "address"))
        )
        for number, point in enumerate(raw_points, start=1)
    )
    hotline = None
    if "hotline" in item:
        hotline = MunicipalHotline(
            **_sourced(f"{where}, hotline", item["hotline"], _HOTLINE_KEYS, ("name", "phone"))
        )
    fallback = item.get("fallback")
    searched = None
    if fallback is not None:
        if fallback != REGIONAL_FALLBACK:
            raise TextsError(f"{where}: 'fallback' can only be \"{REGIONAL_FALLBACK}\"")
        if points and hotline:
            raise TextsError(f"{where}: 'fallback' is set but points and hotline are both listed")
        if "fallback_searched" not in item:
            raise TextsError(
                f"{where}: 'fallback' needs 'fallback_searched', the day sources were searched"
            )
        searched = _date(where, "fallback_searched", item["fallback_searched"])
    elif not points or hotline is None:
        lacking = " and ".join(
            name
            for name, present in (("confirmation points", points), ("a hotline", hotline))
            if not present
        )
        raise TextsError(
            f"{where}: has no {lacking}: list them with their source, or set "
            f'fallback = "{REGIONAL_FALLBACK}" to send parents to the regional centre'
        )
    return Municipality(
        id=item["id"],
        name=item["name"],
        nominal=item.get("nominal"),
        nominal_since=item.get("nominal_since"),
        aliases=tuple(item.get("aliases", ())),
        confirmation_points=points,
        hotline=hotline,
        fallback=fallback,
        fallback_searched=searched,
        extra={k: v for k, v in item.items() if k not in _MUNICIPALITY_KEYS},
    )


def load_region(region_id: str, directory: Path = REGIONS_DIR) -> Region:
    path = directory / f"{region_id}.toml"
    if not path.exists():
        known = ", ".join(available_regions(directory)) or "none"
        raise TextsError(
            f"region profile '{region_id}' not found: expected file {path} (available: {known})"
        )
    raw = _read_toml(path)
    required = ("code", "name", "name_prepositional", "navigator_url", "timezone", "hotline")
    missing = [key for key in required if key not in raw]
    if missing:
        raise TextsError(f"{path}: missing key(s) {', '.join(missing)}")
    hotline = raw["hotline"]
    if not isinstance(hotline, Mapping) or not str(hotline.get("phone", "")).strip():
        raise TextsError(
            f"{path}: [hotline] needs a phone: the regional centre every fallback uses"
        )
    municipalities = [
        _municipality(path, index, item)
        for index, item in enumerate(raw.get("municipalities", []), start=1)
    ]
    if not municipalities:
        raise TextsError(f"{path}: no [[municipalities]] listed")
    ids = [m.id for m in municipalities]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise TextsError(f"{path}: duplicate municipality id(s) {', '.join(duplicates)}")
    top_keys = set(required) | {"navigator_url_alt", "municipalities", "id"}
    return Region(
        id=region_id,
        code=str(raw["code"]),
        name=raw["name"],
        name_prepositional=raw["name_prepositional"],
        navigator_url=raw["navigator_url"],
        navigator_url_alt=raw.get("navigator_url_alt", ""),
        timezone=raw["timezone"],
        hotline_name=hotline.get("name", ""),
        hotline_phone=hotline.get("phone", ""),
        hotline_email=hotline.get("email", ""),
        municipalities=tuple(municipalities),
        extra={
            **{k: v for k, v in raw.items() if k not in top_keys},
            # Further hotline fields (e.g. a technical support line), as written.
            "hotline": {k: v for k, v in hotline.items() if k not in ("name", "phone", "email")},
        },
    )


def plural_form(n: int) -> int:
    """Index of the Russian plural form for n: 0 (1, 21), 1 (2-4, 22-24), 2 (the rest)."""
    n = abs(n)
    if n % 10 == 1 and n % 100 != 11:
        return 0
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return 1
    return 2


def _flatten(prefix: str, table: Mapping[str, Any], out: dict[str, Any], path: Path) -> None:
    for key, value in table.items():
        full = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping):
            _flatten(full, value, out, path)
        elif isinstance(value, str) or (
            isinstance(value, list) and len(value) == 3 and all(isinstance(v, str) for v in value)
        ):
            out[full] = value
        else:
            raise TextsError(f"{path}: '{full}' must be a string or a list of 3 plural forms")


def region_overrides(region: Region, strings: Mapping[str, Any]) -> dict[str, Any]:
    """The region profile's `[texts]` replacements, checked against the shared `strings`:
    each must replace an existing key with a value of the same shape."""
    table = region.extra.get("texts", {})
    where = Path(f"texts/regions/{region.id}.toml")
    if not isinstance(table, Mapping):
        raise TextsError(f"{where}: 'texts' must be a table of replaced UI strings")
    overrides: dict[str, Any] = {}
    _flatten("", table, overrides, where)
    for key, value in overrides.items():
        if key not in strings:
            raise TextsError(f"{where}: [texts] replaces '{key}', which is not a UI string")
        if isinstance(value, list) != isinstance(strings[key], list):
            raise TextsError(f"{where}: [texts] '{key}' must keep the shape of the shared text")
    return overrides


def region_faq_answers(region: Region) -> dict[str, str]:
    """The region profile's FAQ answers, `[faq.<entry_id>] answer = "..."`, by entry id.

    Only the shape is checked here; the FAQ checks that each id names one of its
    entries (handlers/faq/service.py, `check_region`)."""
    table = region.extra.get("faq", {})
    where = Path(f"texts/regions/{region.id}.toml")
    if not isinstance(table, Mapping):
        raise TextsError(f"{where}: 'faq' must hold tables [faq.<entry id>] with an answer")
    answers: dict[str, str] = {}
    for entry_id, item in table.items():
        if (
            not isinstance(item, Mapping)
            or set(item) != {"answer"}
            or not isinstance(item["answer"], str)
            or not item["answer"].strip()
        ):
            raise TextsError(f"{where}: [faq.{entry_id}] must hold only a non-empty 'answer'")
        answers[entry_id] = item["answer"].strip()
    return answers


class Texts:
    """The UI strings of one language, rendered against one region profile."""

    def __init__(self, region: Region, directory: Path = TEXTS_DIR / "ru") -> None:
        self.region = region
        self._strings: dict[str, Any] = {}
        for path in sorted(directory.glob("*.toml")):
            _flatten(path.stem, _read_toml(path), self._strings, path)
        self._strings.update(region_overrides(region, self._strings))

    def keys(self) -> Iterator[str]:
        return iter(self._strings)

    def has(self, key: str) -> bool:
        return key in self._strings

    def raw(self, key: str) -> str | list[str]:
        try:
            return self._strings[key]
        except KeyError:
            raise KeyError(f"no text '{key}' under texts/ru") from None

    def __call__(self, key: str, /, **params: Any) -> str:
        value = self.raw(key)
        if isinstance(value, list):
            if "n" not in params:
                raise KeyError(f"text '{key}' has plural forms and needs n=")
            value = value[plural_form(int(params["n"]))]
        return value.format(region=self.region, **{k: wrapped(v) for k, v in params.items()})

    @staticmethod
    def placeholders(template: str) -> set[str]:
        """Top-level placeholder names used by a template ("region", "name", ...)."""
        names = set()
        for _, field_name, _, _ in string.Formatter().parse(template):
            if field_name:
                names.add(field_name.split(".")[0].split("[")[0])
        return names
