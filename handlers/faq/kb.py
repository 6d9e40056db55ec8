"""The FAQ knowledge base: entries as data under texts/faq/, validated at load.

Each `texts/faq/*.toml` file (except `lexicon.toml`) holds `[[entry]]` tables:

    id        unique, [a-z0-9_]+ (used in button payloads "faq:show:<id>")
    title     a short question, shown on a suggestion button
    answer    the answer, with region placeholders such as {region.navigator_url}
    phrasings ways parents ask it (at least two)
    tags      optional extra words for the search
    link      optional payload of a dialogue to continue with ("reg", "cert", ...)
    kind      "answer" (default) or "handoff": a question that must go to a person
    triggers  handoff entries only: phrases whose words, all present in a question
              in any form, hand it over at once

`lexicon.toml` holds the search vocabulary: stopwords and synonyms (slang,
abbreviations, Latin spellings) mapped to the words used in the entries, and the words
that open a question (to tell several questions in one message apart).
Staff edit these files; the bot reads them when it starts (`navbot faq-check`
validates them without starting the bot).
"""

from __future__ import annotations

import re
import string
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from texts import TEXTS_DIR, TextsError

FAQ_DIR = TEXTS_DIR / "faq"
LEXICON_FILE = "lexicon.toml"
KINDS = ("answer", "handoff")
_ID = re.compile(r"^[a-z0-9_]+$")
# Telegram limits callback data to 64 bytes; "faq:show:" takes 9 of them.
MAX_ID_BYTES = 48


@dataclass(frozen=True)
class Entry:
    id: str
    title: str
    answer: str
    phrasings: tuple[str, ...]
    tags: tuple[str, ...] = ()
    link: str | None = None
    kind: str = "answer"
    triggers: tuple[str, ...] = ()
    source: str = ""

    @property
    def handoff(self) -> bool:
        return self.kind == "handoff"


@dataclass(frozen=True)
class Lexicon:
    stopwords: frozenset[str] = frozenset()
    # word or phrase (normalised) -> replacement words
    synonyms: dict[str, str] = field(default_factory=dict)
    # Latin letter -> the Cyrillic letter it looks like
    lookalikes: dict[str, str] = field(default_factory=dict)
    # Latin spelling -> Cyrillic, for questions typed entirely in Latin letters
    translit: dict[str, str] = field(default_factory=dict)
    # "<number> <age word>" -> the terms of the age range the number falls in
    age_words: frozenset[str] = frozenset()
    ages: tuple[tuple[int, int, str], ...] = ()
    # Words that open a question: "... и как оформить" starts a second question.
    question_words: frozenset[str] = frozenset()
    # A short message opening with one of these, or naming the thing by one of these
    # pronouns, continues the message before it ("а если ему 4?").
    follow_up_openers: frozenset[str] = frozenset()
    follow_up_pronouns: frozenset[str] = frozenset()
    # Search terms that make a question one about age (a bare number after it is an age).
    age_context: frozenset[str] = frozenset()
    # The word that makes a bare number in a follow-up about age an age ("4" -> "4 лет").
    age_unit: str = ""

    def age_terms(self, number: str) -> str | None:
        value = int(number)
        return next((terms for low, high, terms in self.ages if low <= value <= high), None)


@dataclass(frozen=True)
class KnowledgeBase:
    entries: tuple[Entry, ...]
    lexicon: Lexicon
    by_id: dict[str, Entry] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_id", {entry.id: entry for entry in self.entries})

    def get(self, entry_id: str) -> Entry | None:
        return self.by_id.get(entry_id)


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise TextsError(f"{path}: not valid TOML: {exc}") from None


def _strings(path: Path, where: str, value: Any, *, required: bool, minimum: int = 0) -> tuple:
    if value is None and not required:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise TextsError(f"{path}: {where} must be a list of non-empty strings")
    if len(value) < minimum:
        raise TextsError(f"{path}: {where} needs at least {minimum} items")
    return tuple(v.strip() for v in value)


def _check_placeholders(path: Path, entry_id: str, template: str) -> None:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise TextsError(f"{path}: entry '{entry_id}': broken placeholder: {exc}") from None
    for _, name, _, _ in parsed:
        if name is not None and not name.startswith("region."):
            raise TextsError(
                f"{path}: entry '{entry_id}': unknown placeholder {{{name}}} "
                "(only {region.<field>} is allowed; write {{ and }} for literal braces)"
            )


def _entry(path: Path, index: int, raw: dict[str, Any]) -> Entry:
    entry_id = raw.get("id")
    if not isinstance(entry_id, str) or not _ID.match(entry_id):
        raise TextsError(f"{path}: entry #{index} needs an id of [a-z0-9_] characters")
    if len(entry_id.encode()) > MAX_ID_BYTES:
        raise TextsError(f"{path}: entry '{entry_id}': id longer than {MAX_ID_BYTES} characters")
    known = {"id", "title", "answer", "phrasings", "tags", "link", "kind", "triggers"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise TextsError(f"{path}: entry '{entry_id}': unknown key(s) {', '.join(unknown)}")
    for key in ("title", "answer"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise TextsError(f"{path}: entry '{entry_id}' needs a non-empty '{key}'")
    kind = raw.get("kind", "answer")
    if kind not in KINDS:
        raise TextsError(f"{path}: entry '{entry_id}': kind must be one of {', '.join(KINDS)}")
    link = raw.get("link")
    if link is not None and (not isinstance(link, str) or not link.strip()):
        raise TextsError(f"{path}: entry '{entry_id}': link must be a button payload")
    _check_placeholders(path, entry_id, raw["answer"])
    where = f"entry '{entry_id}'"
    return Entry(
        id=entry_id,
        title=raw["title"].strip(),
        answer=raw["answer"].strip(),
        phrasings=_strings(
            path, f"{where} phrasings", raw.get("phrasings"), required=True, minimum=2
        ),
        tags=_strings(path, f"{where} tags", raw.get("tags"), required=False),
        link=link,
        kind=kind,
        triggers=_strings(path, f"{where} triggers", raw.get("triggers"), required=False),
        source=path.name,
    )


def _words(path: Path, raw: dict[str, Any], key: str) -> frozenset[str]:
    values = _strings(path, key, raw.get(key), required=False)
    return frozenset(w.lower().replace("ё", "е") for w in values)


def _lexicon(path: Path) -> Lexicon:
    if not path.exists():
        return Lexicon()
    raw = _read(path)
    stopwords = _strings(path, "stopwords", raw.get("stopwords"), required=False)
    synonyms = raw.get("synonyms", {})
    if not isinstance(synonyms, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in synonyms.items()
    ):
        raise TextsError(f"{path}: [synonyms] must map words to words")
    lookalikes = raw.get("lookalikes", {})
    if not isinstance(lookalikes, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and len(k) == 1 and len(v) == 1
        for k, v in lookalikes.items()
    ):
        raise TextsError(f"{path}: lookalikes must map one letter to one letter")
    translit = raw.get("translit", {})
    if not isinstance(translit, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and k.isascii() and k.isalpha()
        for k, v in translit.items()
    ):
        raise TextsError(f"{path}: translit must map Latin letters to Cyrillic ones")
    ages = []
    for span, terms in raw.get("ages", {}).items():
        low, _, high = span.partition("-")
        if not (low.isdigit() and high.isdigit() and isinstance(terms, str)):
            raise TextsError(f'{path}: ages: expected "<from>-<to>" = "terms", got {span!r}')
        ages.append((int(low), int(high), terms.lower().replace("ё", "е")))
    return Lexicon(
        age_words=frozenset(_strings(path, "age_words", raw.get("age_words"), required=False)),
        ages=tuple(ages),
        lookalikes=lookalikes,
        translit={k.lower(): v.lower() for k, v in translit.items()},
        stopwords=frozenset(w.lower().replace("ё", "е") for w in stopwords),
        question_words=_words(path, raw, "question_words"),
        follow_up_openers=_words(path, raw, "follow_up_openers"),
        follow_up_pronouns=_words(path, raw, "follow_up_pronouns"),
        age_context=_words(path, raw, "age_context"),
        age_unit=str(raw.get("age_unit", "")).strip(),
        synonyms={
            k.lower().replace("ё", "е"): v.lower().replace("ё", "е") for k, v in synonyms.items()
        },
    )


def load_kb(directory: Path = FAQ_DIR) -> KnowledgeBase:
    """Every entry under `directory`; a broken file raises TextsError naming it."""
    if not directory.is_dir():
        raise TextsError(f"FAQ directory {directory} not found")
    entries: list[Entry] = []
    seen: dict[str, str] = {}
    for path in sorted(directory.glob("*.toml")):
        if path.name == LEXICON_FILE:
            continue
        raw = _read(path)
        unknown = sorted(set(raw) - {"entry"})
        if unknown:
            raise TextsError(f"{path}: unknown top-level key(s) {', '.join(unknown)}")
        for index, item in enumerate(raw.get("entry", []), start=1):
            entry = _entry(path, index, item)
            if entry.id in seen:
                raise TextsError(
                    f"{path}: entry id '{entry.id}' is already used in {seen[entry.id]}"
                )
            seen[entry.id] = path.name
            entries.append(entry)
    if not entries:
        raise TextsError(f"{directory}: no FAQ entries found")
    return KnowledgeBase(tuple(entries), _lexicon(directory / LEXICON_FILE))
