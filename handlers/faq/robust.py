"""The robustness suite: the real questions (and the dev set) rewritten by rules the way
parents actually type, seeded so the same suite comes out every time
(`navbot faq-eval --suite robust`).

Each question gives one variant per rule, with the same label:
    context    a greeting and a sentence about the family before the question
    typos      phone typos: a neighbouring key, a dropped or a doubled letter
    plain      lower case, no punctuation, «е» for «ё»
    fragment   a follow-up leaning on the question before it ("а если ему 4?")
    merged     the question followed by a second one about another entry
    slang      «серт», «скока», «допы», «кружок» -> «кружочек»...
"""

from __future__ import annotations

import random
import re

from handlers.faq.evaluate import CorpusItem

SEED = 15

GREETINGS = (
    "Добрый день!",
    "Здравствуйте.",
    "Добрый вечер, извините за беспокойство.",
    "Здравствуйте, девочки!",
    "Доброе утро",
)
CONTEXTS = (
    "у нас двое детей, старшему 9, младшей 6.",
    "сын ходит в школу, в третий класс.",
    "мы недавно зарегистрировались, в школе сказали что надо.",
    "дочка хочет на танцы, а я ничего в этом не понимаю.",
    "я в навигаторе первый раз, всё сложно.",
)
# Keys next to each other on the Russian phone keyboard.
NEIGHBOURS = {
    "а": "вп",
    "в": "аы",
    "е": "кн",
    "и": "мт",
    "к": "уе",
    "л": "до",
    "м": "си",
    "н": "ег",
    "о": "рл",
    "п": "ар",
    "р": "по",
    "с": "чм",
    "т": "иь",
    "у": "цк",
    "ы": "фв",
    "я": "чф",
}
SLANG = (
    (r"\bсертификат(а|ом|у|е|ы)?\b", "серт"),
    (r"\bсколько\b", "скока"),
    (r"\bдополнительного образования\b", "допов"),
    (r"\bкружок\b", "кружочек"),
    (r"\bкружки\b", "допы"),
    (r"\bребенка\b", "ребёнка"),
    (r"\bпожалуйста\b", "пж"),
    (r"\bчто\b", "чо"),
)
# Follow-ups to a question of these entries, and the entry that answers each.
FRAGMENTS = {
    "cert_age": (("а если ему 4?", "cert_under5"), ("а если 10 лет?", "cert_age")),
    "cert_under5": (("а если ему 4?", "cert_under5"), ("а если уже 6?", "cert_age")),
    "cert_how_get": (("а как его активировать?", "cert_activate"),),
    "cert_activate": (("а где его получить?", "cert_how_get"),),
    "cert_balance": (("а если он закончился?", "cert_nominal_spent"),),
    "cert_nominal_amount": (("а где его посмотреть?", "cert_balance"),),
}
# Second questions glued to the first, each about an entry of its own.
SECONDS = (
    ("и ещё, где посмотреть остаток?", "cert_balance"),
    ("и как записаться в кружок?", "enroll_how"),
    ("и какие документы брать?", "confirm_docs"),
    ("и сколько кружков можно?", "cert_how_many"),
)


def _typo(word: str, rng: random.Random) -> str:
    kind = rng.randrange(3)
    i = rng.randrange(1, len(word) - 1)
    if kind == 0 and word[i] in NEIGHBOURS:
        return word[:i] + rng.choice(NEIGHBOURS[word[i]]) + word[i + 1 :]
    if kind == 1:
        return word[:i] + word[i + 1 :]
    return word[:i] + word[i] + word[i:]


def typos(text: str, rng: random.Random) -> str:
    words = text.split()
    long = [i for i, w in enumerate(words) if len(w) >= 6 and w.isalpha()]
    for i in rng.sample(long, min(2, len(long))):
        words[i] = _typo(words[i], rng)
    return " ".join(words)


def plain(text: str) -> str:
    text = text.lower().replace("ё", "е")
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


def slang(text: str) -> str | None:
    out = text.lower()
    for pattern, replacement in SLANG:
        out = re.sub(pattern, replacement, out)
    return out if out != text.lower() else None


def variants(item: CorpusItem, rng: random.Random) -> list[CorpusItem]:
    def make(question: str, variant: str, **changes) -> CorpusItem:
        fields = {**item.__dict__, "question": question, "variant": variant, **changes}
        return CorpusItem(**fields)

    q = item.question
    out = [
        make(f"{rng.choice(GREETINGS)} {rng.choice(CONTEXTS)} {q}", "context"),
        make(typos(q, rng), "typos"),
        make(plain(q), "plain"),
    ]
    spoken = slang(q)
    if spoken:
        out.append(make(spoken, "slang"))
    if item.label == "answer":
        for follow_up, entry in FRAGMENTS.get(item.entries[0], ()):
            out.append(make(follow_up, "fragment", previous=q, entries=(entry,), facts=()))
        second, entry = rng.choice(SECONDS)
        if entry not in item.entries:
            out.append(make(f"{q.rstrip()} {second}", "merged"))
    return out


def robust_suite(items: list[CorpusItem], seed: int = SEED) -> list[CorpusItem]:
    rng = random.Random(seed)
    return [variant for item in items for variant in variants(item, rng)]
