"""Russian-aware retrieval over the knowledge base, offline and precomputed at load.

A question goes through: normalise (case, ё/е, Latin lookalikes inside Cyrillic
words, punctuation and emoji dropped) -> synonyms from the lexicon (slang,
abbreviations) -> lemmas (pymorphy3; an unknown word is first corrected to the
closest word of the base with rapidfuzz) -> stopwords dropped. Entries are
indexed the same way, one document per phrasing and per title; an entry scores
the best of its documents. The score is a TF-IDF cosine in [0, 1].
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz, process

from handlers.faq.kb import Entry, KnowledgeBase, Lexicon

_WORD = re.compile(r"[0-9a-zа-я]+")
_CYRILLIC = re.compile(r"[а-я]")
_LATIN = re.compile(r"[a-z]")


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
def _morph():
    import pymorphy3

    # Its "loading dictionaries" notes are not news to an administrator.
    logging.getLogger("pymorphy3").setLevel(logging.WARNING)
    return pymorphy3.MorphAnalyzer()


@lru_cache(maxsize=1)
def _stemmer():
    import snowballstemmer

    return snowballstemmer.stemmer("russian")


@lru_cache(maxsize=200_000)
def lemma(word: str) -> str:
    if not _CYRILLIC.search(word):
        return word
    return _morph().parse(word)[0].normal_form.replace("ё", "е")


@lru_cache(maxsize=200_000)
def known(word: str) -> bool:
    return not _CYRILLIC.search(word) or _morph().word_is_known(word)


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
        self._corrections: dict[str, str] = {}
        self._lookalikes = str.maketrans(lexicon.lookalikes)
        self._phrases: dict[tuple[str, ...], list[str]] = {}
        for key, value in lexicon.synonyms.items():
            self._phrases[tuple(key.split())] = value.split()
        self._longest = max((len(k) for k in self._phrases), default=1)
        self._reduce: Callable[[str], str] = {"lemma": lemma, "stem": stem}.get(mode, lambda w: w)

    def set_vocabulary(self, words: Iterable[str]) -> None:
        """Words of the base that a misspelt word of a question may be corrected to."""
        self.vocabulary = sorted({w for w in words if len(w) >= 4 and _CYRILLIC.search(w)})
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
                if (word,) in self._phrases:
                    out.append((word, self._phrases[(word,)]))
                    continue
                corrected = self._correct(word)
                if (corrected,) in self._phrases:
                    out.append((word, self._phrases[(corrected,)]))
                    continue
                base = self._reduce(corrected)
                out.append((word, self._phrases.get((base,), [base])))
        return out

    def terms(self, text: str) -> list[str]:
        """Search terms of a text; a text of stopwords only ("здравствуйте") keeps them."""
        stop = self.lexicon.stopwords
        meaningful: list[str] = []
        everything: list[str] = []
        for word, bases in self._analysed(text):
            for base in bases:
                everything.append(base)
                if word not in stop and base not in stop:
                    meaningful.append(base)
        return meaningful or everything


@dataclass(frozen=True)
class Candidate:
    entry: Entry
    score: float


@dataclass(frozen=True)
class Found:
    candidates: list[Candidate]
    triggered: Entry | None
    # Share of the question's weight carried by words the base knows (0..1): a question
    # mostly about something else ("сколько стоит ипотека") is not answered outright.
    known: float


class Index:
    """TF-IDF vectors of every phrasing and title, with an inverted index over terms."""

    def __init__(
        self,
        kb: KnowledgeBase,
        analyzer: Analyzer,
        *,
        with_answers: bool = False,
        blend: float = 0.5,
    ):
        self.kb = kb
        self.blend = blend
        self.analyzer = analyzer
        texts: list[tuple[Entry, str]] = []
        for entry in kb.entries:
            tags = " ".join(entry.tags)
            texts.append((entry, f"{entry.title} {tags}"))
            texts.extend((entry, phrasing) for phrasing in entry.phrasings)
            if with_answers:
                texts.append((entry, entry.answer))
        analyzer.set_vocabulary(
            [w for _, text in texts for w in normalise(text)]
            + [w for entry in kb.entries for w in normalise(entry.answer)]
        )
        bags = [(entry, Counter(analyzer.terms(text))) for entry, text in texts]
        bags = [(entry, bag) for entry, bag in bags if bag]
        merged: dict[str, Counter[str]] = defaultdict(Counter)
        for entry, bag in bags:
            merged[entry.id].update(bag)
        df: Counter[str] = Counter()
        for _, bag in bags:
            df.update(bag.keys())
        n = len(bags)
        self.idf = {t: math.log((n + 1) / (c + 0.5)) for t, c in df.items()}
        self.unknown_idf = math.log((n + 1) / 0.5)
        self.docs: list[Entry] = []
        self.postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for number, (entry, bag) in enumerate(bags):
            self.docs.append(entry)
            for term, weight in self._vector(bag).items():
                self.postings[term].append((number, weight))
        # The whole entry as one document too: every way of asking it at once.
        self.entry_postings: dict[str, list[tuple[Entry, float]]] = defaultdict(list)
        for entry in kb.entries:
            if merged.get(entry.id):
                for term, weight in self._vector(merged[entry.id]).items():
                    self.entry_postings[term].append((entry, weight))
        self.triggers: list[tuple[Entry, frozenset[str]]] = [
            (entry, frozenset(analyzer.terms(trigger)))
            for entry in kb.entries
            for trigger in entry.triggers
        ]

    def _vector(self, bag: Counter[str]) -> dict[str, float]:
        vector = {t: (1 + math.log(c)) * self.idf[t] for t, c in bag.items()}
        norm = math.sqrt(sum(v * v for v in vector.values()))
        return {t: v / norm for t, v in vector.items()}

    def query_vector(self, terms: list[str]) -> dict[str, float]:
        bag = Counter(terms)
        # A word the base has never seen weighs like the rarest word: a question about
        # something else should not look like a question the base can answer.
        vector = {t: (1 + math.log(c)) * self.idf.get(t, self.unknown_idf) for t, c in bag.items()}
        norm = math.sqrt(sum(v * v for v in vector.values())) or 1.0
        return {t: v / norm for t, v in vector.items()}

    def search(self, question: str, limit: int = 5) -> Found:
        """The best entries, best first; a handoff entry whose trigger fired (if any); and
        how much of the question the base knows at all."""
        terms = self.analyzer.terms(question)
        present = set(terms)
        triggered = next(
            (entry for entry, words in self.triggers if words and words <= present), None
        )
        vector = self.query_vector(terms)
        known = sum(w * w for t, w in vector.items() if t in self.idf)
        scores: dict[int, float] = defaultdict(float)
        whole: dict[str, float] = defaultdict(float)
        entries: dict[str, Entry] = {}
        for term, weight in vector.items():
            for number, doc_weight in self.postings.get(term, ()):
                scores[number] += weight * doc_weight
            for entry, doc_weight in self.entry_postings.get(term, ()):
                whole[entry.id] += weight * doc_weight
                entries[entry.id] = entry
        best: dict[str, float] = defaultdict(float)
        for number, score in scores.items():
            entry_id = self.docs[number].id
            best[entry_id] = max(best[entry_id], score)
        ranked = sorted(
            (
                Candidate(entries[i], min(1.0, self.blend * best[i] + (1 - self.blend) * whole[i]))
                for i in whole
            ),
            key=lambda c: c.score,
            reverse=True,
        )
        return Found(ranked[:limit], triggered, known)
