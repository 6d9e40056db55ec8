"""Russian-aware retrieval over the knowledge base, offline and precomputed at load.

A question goes through: normalise (case, ё/е, Latin lookalikes inside Cyrillic
words, punctuation and emoji dropped) -> synonyms from the lexicon (slang,
abbreviations) -> lemmas (pymorphy3; an unknown word is first corrected to the
closest word of the base with rapidfuzz) -> stopwords dropped. Entries are
indexed the same way and ranked with BM25 (see `Index`); bench/faq_bench.py
compares this with TF-IDF cosine and with Snowball stems on the dev set.
"""

from __future__ import annotations

import heapq
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz, process

from handlers.faq.kb import Entry, KnowledgeBase, Lexicon
from texts.morph import analyzer as morph

_WORD = re.compile(r"[0-9a-zа-я]+")
_CYRILLIC = re.compile(r"[а-я]")
_LATIN = re.compile(r"[a-z]")
_SENTENCE_END = re.compile(r"(?:[?!;\n]|\.(?!\d))+")


def normalise(text: str, lookalikes: dict[int, str] | None = None) -> list[str]:
    """Lower-case words and numbers; ё->е; Latin lookalikes in Cyrillic words fixed."""
    text = text.lower().replace("ё", "е")
    words = []
    for word in _WORD.findall(text):
        if lookalikes and _CYRILLIC.search(word) and _LATIN.search(word):
            word = word.translate(lookalikes)
        words.append(word)
    return words


@lru_cache(maxsize=1)
def _stemmer():
    import snowballstemmer

    return snowballstemmer.stemmer("russian")


@lru_cache(maxsize=200_000)
def lemma(word: str) -> str:
    if not _CYRILLIC.search(word):
        return word
    return morph().parse(word)[0].normal_form.replace("ё", "е")


@lru_cache(maxsize=200_000)
def known(word: str) -> bool:
    return not _CYRILLIC.search(word) or morph().word_is_known(word)


@lru_cache(maxsize=200_000)
def thing(word: str) -> bool:
    """A dictionary noun: the name of a thing ("ипотека", "врач"), not a typo or a verb."""
    if not _CYRILLIC.search(word) or not known(word):
        return False
    return morph().parse(word)[0].tag.POS == "NOUN"


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    return _stemmer().stemWord(word) if _CYRILLIC.search(word) else word


class Analyzer:
    """Text -> search terms. `mode`: "lemma" (pymorphy3), "stem" (Snowball) or "surface".

    A synonym (one word or a phrase of up to three words, as written or as its lemma)
    is replaced by the lexicon's words as they are: they are already search terms."""

    def __init__(self, lexicon: Lexicon, *, mode: str = "lemma", typos: bool = True) -> None:
        self.lexicon = lexicon
        self.mode = mode
        self.typos = typos
        self.vocabulary: list[str] = []
        # Latin words the base itself uses (kept as they are, not transliterated).
        self.vocabulary_latin: frozenset[str] = frozenset()
        # Terms the index holds: a text of stopwords only keeps those of them it knows.
        self.indexed: frozenset[str] = frozenset()
        self._corrections: dict[str, str] = {}
        self._lookalikes = str.maketrans(lexicon.lookalikes)
        # Russian typed in Latin letters ("sertifikat kak poluchit"): longest spellings first.
        spellings = sorted(lexicon.translit, key=len, reverse=True)
        self._translit = re.compile("|".join(map(re.escape, spellings))) if spellings else None
        self._phrases: dict[tuple[str, ...], list[str]] = {}
        for key, value in lexicon.synonyms.items():
            self._phrases[tuple(key.split())] = value.split()
        self._longest = max((len(k) for k in self._phrases), default=1)
        self._reduce: Callable[[str], str] = {"lemma": lemma, "stem": stem}.get(mode, lambda w: w)
        # An age in years and a half keeps its whole part ("3,5 года" is 3, not 3 and 5).
        ages = "|".join(sorted(map(re.escape, lexicon.age_words), key=len, reverse=True))
        self._fraction = re.compile(rf"(\d+)[.,]\d+(?=\s*(?:{ages})\b)") if ages else None

    def cyrillic(self, word: str) -> str:
        """A Russian word typed in Latin letters, in Cyrillic ("poluchit" -> its Cyrillic)."""
        if self._translit is None:
            return word
        table = self.lexicon.translit
        return self._translit.sub(lambda m: table[m.group()], word)

    def set_vocabulary(self, words: Iterable[str]) -> None:
        """Words of the base that a misspelt word of a question may be corrected to."""
        words = set(words)
        self.vocabulary = sorted({w for w in words if len(w) >= 4 and _CYRILLIC.search(w)})
        self.vocabulary_latin = frozenset(w for w in words if _LATIN.search(w))
        self._corrections.clear()

    def _correct(self, word: str) -> str:
        if not self.typos or len(word) < 4 or known(word) or not self.vocabulary:
            return word
        if word not in self._corrections:
            cutoff = 80 if len(word) <= 6 else 75
            found = process.extractOne(
                word, self.vocabulary, scorer=fuzz.ratio, score_cutoff=cutoff
            )
            self._corrections[word] = found[0] if found else word
        return self._corrections[word]

    def _analysed(self, text: str) -> list[tuple[str, list[str]]]:
        """(word as written, its terms) for each word or synonym phrase of the text."""
        if self._fraction is not None:
            text = self._fraction.sub(r"\1", text.lower().replace("ё", "е"))
        words = normalise(text, self._lookalikes)
        out: list[tuple[str, list[str]]] = []
        i = 0
        while i < len(words):
            for size in range(min(self._longest, len(words) - i), 1, -1):
                phrase = tuple(words[i : i + size])
                if phrase in self._phrases:
                    out.append((" ".join(phrase), self._phrases[phrase]))
                    i += size
                    break
            else:
                word = words[i]
                i += 1
                if word.isdigit() and i < len(words) and words[i] in self.lexicon.age_words:
                    ages = self.lexicon.age_terms(word)
                    if ages is not None:
                        out.append((f"{word} {words[i]}", ages.split()))
                        i += 1
                        continue
                if (word,) in self._phrases:
                    out.append((word, self._phrases[(word,)]))
                    continue
                if self._translit and len(word) >= 2 and not _CYRILLIC.search(word):
                    if _LATIN.search(word) and word not in self.vocabulary_latin:
                        word_cyr = self.cyrillic(word)
                        if (word_cyr,) in self._phrases:
                            out.append((word, self._phrases[(word_cyr,)]))
                            continue
                        corrected = self._correct(word_cyr)
                        base = self._reduce(corrected)
                        out.append((word, self._phrases.get((base,), [base])))
                        continue
                corrected = self._correct(word)
                if (corrected,) in self._phrases:
                    out.append((word, self._phrases[(corrected,)]))
                    continue
                base = self._reduce(corrected)
                out.append((word, self._phrases.get((base,), [base])))
        return out

    def terms(self, text: str, *, fallback: bool = True) -> list[str]:
        """Search terms of a text; a text of stopwords only ("здравствуйте") keeps them
        unless `fallback` is off."""
        stop = self.lexicon.stopwords
        meaningful: list[str] = []
        everything: list[str] = []
        for word, bases in self._analysed(text):
            for base in bases:
                everything.append(base)
                if word not in stop and base not in stop:
                    meaningful.append(base)
        if meaningful or not fallback:
            return meaningful
        return [t for t in everything if t in self.indexed] or everything

    def clauses(self, text: str) -> list[str]:
        """The questions of a message: its sentences, and parts of a sentence joined by
        "и" where the next words open a new question ("сколько стоит и как оформить")."""
        opening = self.lexicon.question_words
        parts: list[str] = []
        for sentence in _SENTENCE_END.split(text):
            words = sentence.split()
            start = 0
            for i, word in enumerate(words):
                if i > start and normalise(word) == ["и"]:
                    following = normalise(" ".join(words[i + 1 : i + 4]))
                    if opening.intersection(following):
                        parts.append(" ".join(words[start:i]))
                        start = i + 1
            parts.append(" ".join(words[start:]))
        return [part for part in parts if part.strip()]


@dataclass(frozen=True)
class Candidate:
    entry: Entry
    score: float
    # How closely one way of asking the entry matches the question as a whole: the
    # weighted Jaccard of their terms (1.0: the same words, none missing, none extra).
    # Measured for the two best candidates only.
    overlap: float = 0.0


@dataclass(frozen=True)
class Found:
    candidates: list[Candidate]
    triggered: Entry | None
    # Share of the question's weight carried by words the base knows, against the things
    # it names that the base never mentions (0..1): a question about something else
    # ("сколько стоит ипотека") is not answered outright.
    known: float
    # How many distinct terms the question has, and whether the best entry has a
    # phrasing with exactly these terms: one word alone ("номинал") is a clear question
    # only when an entry is asked that way.
    terms: int = 0
    exact: bool = False


class Index:
    """BM25 over the entries, precomputed at load (k1=1.2, b=0.75).

    Each entry is indexed twice: as one document per phrasing (and one for its title
    and tags), and as the whole entry in one document. An entry scores
    BLEND x its best phrasing + (1 - BLEND) x the whole entry, divided by the most a
    question's words could score, so the score lies in [0, 1]. Only the entries that
    score best as a whole (SHORTLIST) are scored phrasing by phrasing."""

    K1 = 1.2
    B = 0.75
    SHORTLIST = 20
    EXACT_BONUS = 0.1

    def __init__(self, kb: KnowledgeBase, analyzer: Analyzer, *, blend: float = 0.2) -> None:
        self.kb = kb
        self.analyzer = analyzer
        self.blend = blend
        self.entries = kb.entries
        analyzer.set_vocabulary(
            w
            for entry in kb.entries
            # Trigger words too, so that a misspelt complaint still hands over.
            for text in (entry.title, entry.answer, *entry.tags, *entry.phrasings, *entry.triggers)
            for w in normalise(text, analyzer._lookalikes)
        )
        phrasing_bags: list[list[Counter[str]]] = []
        for entry in kb.entries:
            texts = [f"{entry.title} {' '.join(entry.tags)}", *entry.phrasings]
            bags = [Counter(analyzer.terms(text)) for text in texts]
            phrasing_bags.append([bag for bag in bags if bag])
        all_bags = [bag for bags in phrasing_bags for bag in bags]
        n = len(all_bags)
        df = Counter(term for bag in all_bags for term in bag)
        self.idf = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}
        # A word the base has never seen weighs like the rarest word: a question about
        # something else should not look like a question the base can answer.
        self.unknown_idf = math.log(1 + (n + 0.5) / 0.5)
        avg_phrasing = sum(sum(b.values()) for b in all_bags) / max(n, 1)
        wholes = [sum(bags, Counter()) for bags in phrasing_bags]
        avg_whole = sum(sum(b.values()) for b in wholes) / max(len(wholes), 1)
        self.phrasing_terms: list[list[frozenset[str]]] = [
            [frozenset(bag) for bag in bags] for bags in phrasing_bags
        ]
        self.phrasings: list[list[dict[str, float]]] = [
            [self._weights(bag, avg_phrasing) for bag in bags] for bags in phrasing_bags
        ]
        analyzer.indexed = frozenset(self.idf)
        self.postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for number, whole in enumerate(wholes):
            for term, weight in self._weights(whole, avg_whole).items():
                self.postings[term].append((number, weight))
        self.triggers: list[tuple[Entry, frozenset[str]]] = [
            (entry, frozenset(analyzer.terms(trigger)))
            for entry in kb.entries
            for trigger in entry.triggers
        ]

    def _overlap(self, terms: set[str], idf: dict[str, float], number: int) -> float:
        """The best weighted Jaccard between the question's terms and a phrasing's."""
        best = 0.0
        for phrasing in self.phrasing_terms[number]:
            shared = sum(idf[t] for t in terms & phrasing)
            if not shared:
                continue
            extra = sum(self.idf[t] for t in phrasing - terms)
            best = max(best, shared / (sum(idf.values()) + extra))
        return best

    def _weights(self, bag: Counter[str], average: float) -> dict[str, float]:
        length = sum(bag.values())
        scale = self.K1 * (1 - self.B + self.B * length / average)
        return {t: self.idf[t] * tf * (self.K1 + 1) / (tf + scale) for t, tf in bag.items()}

    def search(self, question: str, limit: int = 5) -> Found:
        """The best entries, best first; a handoff entry whose trigger fired (if any); and
        how much of the question the base knows at all."""
        terms = set(self.analyzer.terms(question))
        triggered = next(
            (entry for entry, words in self.triggers if words and words <= terms), None
        )
        idf = {t: self.idf.get(t, self.unknown_idf) for t in terms}
        mass = sum(idf.values()) * (self.K1 + 1) / self.K1
        # Words the base never uses count against it only when they name a thing
        # ("ипотека", "врач"): another verb or a typo is just another way to ask.
        inside = sum(v * v for t, v in idf.items() if t in self.idf)
        outside = sum(v * v for t, v in idf.items() if t not in self.idf and thing(t))
        known = inside / (inside + outside) if inside else 0.0
        whole: dict[int, float] = defaultdict(float)
        for term in terms:
            for number, weight in self.postings.get(term, ()):
                whole[number] += weight
        shortlist = heapq.nlargest(self.SHORTLIST, whole.items(), key=lambda item: item[1])
        ranked = []
        numbers = {}
        for number, whole_score in shortlist:
            best = max(
                (sum(weights.get(t, 0.0) for t in terms) for weights in self.phrasings[number]),
                default=0.0,
            )
            score = (self.blend * best + (1 - self.blend) * whole_score) / mass
            ranked.append(Candidate(self.entries[number], min(1.0, score)))
            numbers[self.entries[number].id] = number
        # An entry asked with exactly these words (in any form) is the likeliest meaning.
        ranked = [
            Candidate(c.entry, min(1.0, c.score + self.EXACT_BONUS))
            if terms in self.phrasing_terms[numbers[c.entry.id]]
            else c
            for c in ranked
        ]
        ranked.sort(key=lambda c: c.score, reverse=True)
        exact = bool(ranked) and terms in self.phrasing_terms[numbers[ranked[0].entry.id]]
        # How closely the two best are asked like the question (all the decision uses).
        ranked[:2] = [
            Candidate(c.entry, c.score, self._overlap(terms, idf, numbers[c.entry.id]))
            for c in ranked[:2]
        ]
        return Found(ranked[:limit], triggered, known, len(terms), exact)
