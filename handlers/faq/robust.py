"""The robustness suite: the real questions (and the dev set) rewritten by rules the way
parents actually type, seeded so the same suite comes out every time
(`navbot faq-eval --suite robust`). The rules' words are data in
bench/corpus/robust_rules.toml.

Each question gives one variant per rule, with the same label:
    context    a greeting and a sentence about the family before the question
    typos      phone typos: a neighbouring key, a dropped or a doubled letter
    plain      lower case, no punctuation, «е» for «ё»
    fragment   a follow-up leaning on the question before it
    merged     the question followed by a second one about another entry
    slang      the slang parents use for the certificate, counts and clubs
"""

from __future__ import annotations

import random
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from handlers.faq.evaluate import CorpusItem
from texts import TextsError

SEED = 15
RULES_FILE = Path(__file__).resolve().parents[2] / "bench" / "corpus" / "robust_rules.toml"


@dataclass(frozen=True)
class Rules:
    greetings: tuple[str, ...]
    contexts: tuple[str, ...]
    neighbours: dict[str, str]
    slang: tuple[tuple[re.Pattern[str], str], ...]
    # entry id -> (follow-up, the entry that answers it)
    fragments: dict[str, tuple[tuple[str, str], ...]]
    seconds: tuple[tuple[str, str], ...]


def load_rules(path: Path = RULES_FILE) -> Rules:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TextsError(f"{path}: cannot read the robustness rules: {exc}") from None
    fragments: dict[str, list[tuple[str, str]]] = {}
    for item in raw.get("fragment", []):
        fragments.setdefault(item["after"], []).append((item["text"], item["entry"]))
    return Rules(
        greetings=tuple(raw["greetings"]),
        contexts=tuple(raw["contexts"]),
        neighbours=dict(raw["neighbours"]),
        slang=tuple((re.compile(i["pattern"]), i["slang"]) for i in raw.get("slang", [])),
        fragments={k: tuple(v) for k, v in fragments.items()},
        seconds=tuple((i["text"], i["entry"]) for i in raw.get("second", [])),
    )


def _typo(word: str, rng: random.Random, neighbours: dict[str, str]) -> str:
    kind = rng.randrange(3)
    i = rng.randrange(1, len(word) - 1)
    if kind == 0 and word[i] in neighbours:
        return word[:i] + rng.choice(neighbours[word[i]]) + word[i + 1 :]
    if kind == 1:
        return word[:i] + word[i + 1 :]
    return word[:i] + word[i] + word[i:]


def typos(text: str, rng: random.Random, neighbours: dict[str, str]) -> str:
    words = text.split()
    long = [i for i, w in enumerate(words) if len(w) >= 6 and w.isalpha()]
    for i in rng.sample(long, min(2, len(long))):
        words[i] = _typo(words[i], rng, neighbours)
    return " ".join(words)


def plain(text: str) -> str:
    text = text.lower().replace("ё", "е")
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


def slang(text: str, rules: Rules) -> str | None:
    out = text.lower()
    for pattern, replacement in rules.slang:
        out = pattern.sub(replacement, out)
    return out if out != text.lower() else None


def variants(item: CorpusItem, rng: random.Random, rules: Rules) -> list[CorpusItem]:
    def make(question: str, variant: str, **changes) -> CorpusItem:
        fields = {**item.__dict__, "question": question, "variant": variant, **changes}
        return CorpusItem(**fields)

    q = item.question
    out = [
        make(f"{rng.choice(rules.greetings)} {rng.choice(rules.contexts)} {q}", "context"),
        make(typos(q, rng, rules.neighbours), "typos"),
        make(plain(q), "plain"),
    ]
    spoken = slang(q, rules)
    if spoken:
        out.append(make(spoken, "slang"))
    if item.label == "answer":
        for follow_up, entry in rules.fragments.get(item.entries[0], ()):
            out.append(make(follow_up, "fragment", previous=q, entries=(entry,), facts=()))
        second, entry = rng.choice(rules.seconds)
        if entry not in item.entries:
            out.append(make(f"{q.rstrip()} {second}", "merged"))
    return out


def robust_suite(items: list[CorpusItem], seed: int = SEED) -> list[CorpusItem]:
    rng = random.Random(seed)
    rules = load_rules()
    return [variant for item in items for variant in variants(item, rng, rules)]
