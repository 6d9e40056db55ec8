"""Questions the bot did not answer well, grouped by what they ask, for the staff's
knowledge-base upkeep page (bot/web/upkeep.py).

Each stored question keeps its *terms*: the matcher's features (handlers/faq/matcher.py)
read for grouping rather than for answering. Words are lemmatised with pymorphy3, a
misspelt word is corrected to the closest word of the base with rapidfuzz, slang and
abbreviations go through the lexicon's synonyms, and stopwords are dropped. Unlike the
matcher, a known word keeps its own lemma (the lexicon reads «бассейн» and
«робототехника» both as «кружок», which answers well and groups badly), and personal
data is left out: numbers (and the "лет" of an age), and names, surnames and
patronymics.

`group` then clusters the distinct term sets: the most frequent set of a group is its
leader, every other set joins the leader it is most like (weighted Jaccard, the base's
IDF as weights, a misspelt word matching its correct form) when that is at least
`JOIN_AT`, and starts a group of its own otherwise. Misspellings of words the base does
not know («ипотку») are first mapped to the closest word the questions use.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process

from handlers.faq.matcher import Analyzer, Index, known, lemma, normalise, thing
from texts.morph import analyzer as morph

# Two term sets this alike (0..1) are one question asked two ways.
JOIN_AT = 0.5
# A word the dictionary does not know matches a known one at this rapidfuzz ratio; two
# dictionary words must be closer still («платить» and «оплатить», not «круг» and «кружок»).
TYPO_RATIO = 75
KNOWN_RATIO = 88
MIN_FUZZY_LENGTH = 4
PERSON_TAGS = frozenset({"Name", "Surn", "Patr"})
# The weight of a term that is not a noun, against a noun's.
VERB_SHARE = 0.5


def _personal(word: str) -> bool:
    """A name, surname or patronymic, or anything with a digit in it (phones, СНИЛС,
    certificate numbers, dates)."""
    if any(ch.isdigit() for ch in word):
        return True
    if not known(word):
        return False
    return bool(PERSON_TAGS & morph().parse(word)[0].tag.grammemes)


def question_terms(analyzer: Analyzer, text: str) -> list[str]:
    """The sorted distinct grouping terms of a question."""
    lexicon = analyzer.lexicon
    stop = lexicon.stopwords | lexicon.age_words
    found: set[str] = set()
    for word in normalise(text, analyzer._lookalikes):
        if len(word) < 2 or word in stop or _personal(word):
            continue
        if known(word):
            bases = [lemma(word)]
        elif (word,) in analyzer._phrases:  # slang and abbreviations («серт»)
            bases = analyzer._phrases[(word,)]
        else:
            corrected = analyzer._correct(word)
            if corrected != word:
                bases = analyzer._phrases.get((corrected,), [lemma(corrected)])
            else:
                bases = [word]  # a misspelling the base cannot correct: kept as written
        found.update(base for base in bases if base not in stop)
    return sorted(found)


def terms_key(analyzer: Analyzer, text: str) -> str:
    """What faq_unanswered.terms holds for a question."""
    return " ".join(question_terms(analyzer, text))


@dataclass
class Group:
    """Term sets asked as one question: `keys` are faq_unanswered.terms values."""

    leader: str
    keys: list[str] = field(default_factory=list)


def group(counts: Mapping[str, int], index: Index) -> list[Group]:
    """Cluster distinct term sets (with how many questions have each); the biggest groups
    first. The result depends only on `counts`, so the same questions always give the
    same groups."""
    order = sorted(counts, key=lambda key: (-counts[key], key))
    canonical = _canonical_terms(order, counts, index)
    sets = {key: frozenset(canonical.get(t, t) for t in key.split()) for key in order}
    weight = _weights(index)
    groups: list[Group] = []
    leaders: list[frozenset[str]] = []
    posting: dict[str, list[int]] = defaultdict(list)
    for key in order:
        terms = sets[key]
        if not terms:
            # Nothing to compare by (a greeting, a number alone): one group of those.
            found = next((i for i, g in enumerate(groups) if not leaders[i]), None)
        else:
            found = _best_leader(terms, leaders, posting, weight)
        if found is None:
            found = len(groups)
            groups.append(Group(key))
            leaders.append(terms)
            for term in terms:
                posting[term].append(found)
        groups[found].keys.append(key)
    totals = [sum(counts[key] for key in g.keys) for g in groups]
    ranked = sorted(range(len(groups)), key=lambda i: (-totals[i], i))
    return [groups[i] for i in ranked]


def _weights(index: Index):
    """The base's IDF of a term (a word it never uses weighs as its rarest); a word that
    is not a noun weighs half: what a question is about is named by its nouns
    («ипотека»), its verbs vary from parent to parent («оплатить», «погасить»)."""
    idf, unknown = index.idf, index.unknown_idf
    cache: dict[str, float] = {}

    def weight(term: str) -> float:
        if term not in cache:
            base = idf.get(term, unknown)
            cache[term] = base if thing(term) or not known(term) else base * VERB_SHARE
        return cache[term]

    return weight


def _best_leader(
    terms: frozenset[str],
    leaders: list[frozenset[str]],
    posting: Mapping[str, list[int]],
    weight,
) -> int | None:
    # Prefix filter: a leader sharing none of the heaviest terms that carry more than
    # 1 - JOIN_AT of the weight cannot reach JOIN_AT (fuzzy matches aside).
    heavy = sorted(terms, key=lambda t: (-weight(t), t))
    total = sum(weight(t) for t in heavy)
    candidates: set[int] = set()
    carried = 0.0
    for term in heavy:
        candidates.update(posting.get(term, ()))
        carried += weight(term)
        if carried > (1 - JOIN_AT) * total:
            break
    best, best_score = None, JOIN_AT
    for number in sorted(candidates):
        score = similarity(terms, leaders[number], weight)
        if score >= best_score + (1e-9 if best is not None else 0.0):
            best, best_score = number, score
    return best


def _close(a: str, b: str) -> bool:
    if min(len(a), len(b)) < MIN_FUZZY_LENGTH:
        return False
    need = KNOWN_RATIO if known(a) and known(b) else TYPO_RATIO
    return fuzz.ratio(a, b) >= need


def similarity(a: Iterable[str], b: Iterable[str], weight) -> float:
    """Weighted Jaccard of two term sets, a term of one matching a close spelling of a
    term of the other (the pair weighs as its heavier term)."""
    a, b = set(a), set(b)
    shared = sum(weight(t) for t in a & b)
    only_b = sorted(b - a)
    matched = 0.0
    unmatched = 0.0
    for term in sorted(a - b):
        partner = next((p for p in only_b if _close(term, p)), None)
        if partner is None:
            unmatched += weight(term)
        else:
            only_b.remove(partner)
            matched += max(weight(term), weight(partner))
    unmatched += sum(weight(t) for t in only_b)
    union = shared + matched + unmatched
    return (shared + matched) / union if union else 1.0


def _canonical_terms(order: list[str], counts: Mapping[str, int], index: Index) -> dict[str, str]:
    """Each misspelt term (not a dictionary word, not a word of the base) mapped to the
    closest term the questions or the base use that is a dictionary word or more frequent."""
    frequency: dict[str, int] = defaultdict(int)
    for key in order:
        for term in key.split():
            frequency[term] += counts[key]
    vocabulary = sorted(
        {t for t in frequency if len(t) >= MIN_FUZZY_LENGTH and (known(t) or t in index.idf)}
        | {t for t in index.idf if len(t) >= MIN_FUZZY_LENGTH}
    )
    mapping: dict[str, str] = {}
    for term in sorted(frequency, key=lambda t: (-frequency[t], t)):
        if len(term) < MIN_FUZZY_LENGTH or known(term) or term in index.idf:
            continue
        found = process.extractOne(term, vocabulary, scorer=fuzz.ratio, score_cutoff=TYPO_RATIO)
        if found is not None:
            mapping[term] = found[0]
        else:
            # A misspelling of a word nobody spelt right: later ones may map onto it.
            vocabulary.append(term)
    return mapping
