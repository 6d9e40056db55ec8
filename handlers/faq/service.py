"""The decision: answer, suggest up to three entries, hand over to a person, or admit
not knowing. Shared by the dialogue, `navbot ask` and `navbot faq-eval`."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from handlers.faq.kb import FAQ_DIR, Entry, KnowledgeBase, load_kb
from handlers.faq.matcher import Analyzer, Candidate, Index, lemma, normalise, thing
from texts import Region, TextsError, region_faq_answers

# Chosen on tests/faq_dev.jsonl and the dev sources of the real corpus with their
# robustness suite (see `navbot faq-eval` and bench/faq_bench.py).
# An entry's score: BLEND x its best phrasing + (1 - BLEND) x the whole entry as one text.
BLEND = 0.2
ANSWER_AT = 0.3
# Answer only when the runner-up is clearly behind; otherwise ask which one was meant.
MARGIN = 0.06
# A question of one word that no entry is asked with ("номинал") is answered only when
# that word belongs to one entry much more than to any other.
ONE_WORD_MARGIN = 0.15
SUGGEST_AT = 0.2
# Answer outright only when the base knows words carrying this share of the question
# (against the things it names that no entry mentions).
KNOWN_AT = 0.6
MAX_SUGGESTIONS = 3
# A part of a message counts as a question of its own with this many search terms.
MIN_CLAUSE_TERMS = 1
# When the runner-up is close but the best entry is this sure, answer the one of the two
# asked most like the question and offer the other as a button: a suggestion list costs
# the parent one more tap. Only when that entry has a phrasing this close to the question
# (weighted Jaccard of terms); otherwise two near-equal guesses stay a suggestion list.
CLOSE_AT = 0.6
CLOSE_OVERLAP = 0.6
# An entry far ahead of every other one (the runner-up scores at most LEAD_RATIO of it)
# is answered from a lower score: the question is asked in words of its own, but only
# one entry fits it.
LEAD_ANSWER_AT = 0.22
LEAD_RATIO = 0.7

# A sentence this long without punctuation may hold the question at its end.
RUN_ON_WORDS = 8
# A follow-up that leans on the message before it is this short at most.
FOLLOW_UP_WORDS = 6

ANSWER, SUGGEST, HANDOFF, UNKNOWN = "answer", "suggest", "handoff", "unknown"


@dataclass(frozen=True)
class Verdict:
    outcome: str
    entry: Entry | None = None
    score: float = 0.0
    suggestions: tuple[Entry, ...] = field(default_factory=tuple)
    # With an answer: other entries the question may also be about, offered as buttons.
    also: tuple[Entry, ...] = field(default_factory=tuple)

    @property
    def handoff(self) -> bool:
        """True when the parent is passed to a person: a handoff topic or "don't know"."""
        return self.outcome in (HANDOFF, UNKNOWN)


class Faq:
    def __init__(
        self,
        kb: KnowledgeBase,
        *,
        mode: str = "lemma",
        typos: bool = True,
        blend: float = BLEND,
        answer_at: float = ANSWER_AT,
        margin: float = MARGIN,
        suggest_at: float = SUGGEST_AT,
        known_at: float = KNOWN_AT,
        close_at: float = CLOSE_AT,
    ) -> None:
        self.kb = kb
        self.index = Index(kb, Analyzer(kb.lexicon, mode=mode, typos=typos), blend=blend)
        # While one message is decided, its sentences and tails are searched more than
        # once; the cache lives for one decide() call.
        self._search = lru_cache(maxsize=1024)(self.index.search)
        # A number not followed by a word of age ("а если 4?", "ему 4,5").
        ages = "|".join(sorted(map(re.escape, kb.lexicon.age_words), key=len, reverse=True))
        self._bare_number = re.compile(
            rf"\b(\d{{1,2}})(?:[.,]\d)?\b(?!\s*(?:{ages})\b)" if ages else r"(?!)"
        )
        self.answer_at = answer_at
        self.margin = margin
        self.suggest_at = suggest_at
        self.known_at = known_at
        self.close_at = close_at

    def decide(self, question: str, previous: str | None = None) -> Verdict:
        """The verdict on a message; `previous` is the parent's message before it, read
        together with a short follow-up that leans on it ("а если ему 4?")."""
        self._search.cache_clear()
        verdict = self._decide(question)
        if previous and verdict.outcome in (SUGGEST, UNKNOWN) and self._leans_on(question):
            joined = self._decide(
                f"{self._ages_spelled(question, previous)} {self.topic(previous)}"
            )
            if joined.outcome == ANSWER:
                return joined
        return verdict

    def _leans_on(self, question: str) -> bool:
        """A short message that continues the one before: it opens with "а"/"и"/"а если"
        or names the thing only by a pronoun ("а его где взять")."""
        words = normalise(question)
        if not words or len(words) > FOLLOW_UP_WORDS:
            return False
        return words[0] in self.kb.lexicon.follow_up_openers or bool(
            self.kb.lexicon.follow_up_pronouns.intersection(words)
        )

    def _pieces(self, parts: list[str], question: str) -> list[str]:
        """Where the question may sit in a long message: each of its sentences, and in a
        long run-on sentence without punctuation, its tail from each word that opens a
        question ("... всё сложно как активировать сертификат")."""
        opening = self.kb.lexicon.question_words
        pieces = [part for part in parts if part.strip() != question.strip()]
        for part in parts or [question]:
            words = part.split()
            if len(words) <= RUN_ON_WORDS:
                continue
            for i, word in enumerate(words[1:], start=1):
                if opening.intersection(normalise(word)):
                    pieces.append(" ".join(words[i:]))
        return pieces

    def _best_score(self, text: str) -> float:
        best = self._search(text).candidates[:1]
        return best[0].score if best else 0.0

    def topic(self, previous: str) -> str:
        """What a message was about: its nouns that the base knows ("С какого возраста
        дают сертификат?" -> "возраста сертификат"). Enough to read a follow-up with,
        and free of anything personal the message may have held."""
        return " ".join(
            word for word in normalise(previous) if thing(word) and lemma(word) in self.index.idf
        )

    def _ages_spelled(self, question: str, previous: str) -> str:
        """In a follow-up to a question about age, a bare number is an age ("а если 4?")."""
        lexicon = self.kb.lexicon
        about_age = lexicon.age_context.intersection(
            self.index.analyzer.terms(previous, fallback=False)
        ) or any(w in lexicon.age_words for w in normalise(previous))
        if not about_age:
            return question
        unit = lexicon.age_unit
        return self._bare_number.sub(lambda m: f"{m.group(1)} {unit}", question)

    def _decide(self, question: str) -> Verdict:
        found = self._search(question)
        candidates, triggered = found.candidates, found.triggered
        if triggered is not None:
            return Verdict(HANDOFF, triggered, 1.0)
        several, parts = self._several_questions(question)
        if len(several) <= 1:
            pieces = self._pieces(parts, question)
            if len(pieces) > 1:
                # A long message with one question inside: the question alone decides.
                alone = self._decide(max(pieces, key=self._best_score))
                if alone.outcome in (ANSWER, HANDOFF):
                    return alone
        if not candidates or candidates[0].score < self.suggest_at:
            score = candidates[0].score if candidates else 0.0
            return Verdict(UNKNOWN, None, round(score, 3))
        if len(several) > 1:
            # The first question is answered; the others are one tap away.
            return Verdict(ANSWER, several[0], round(candidates[0].score, 3), also=several[1:])
        top = candidates[0]
        runner_up = candidates[1].score if len(candidates) > 1 else 0.0
        if top.entry.handoff:
            # Without a trigger, only a question clearly like a handoff topic goes to a
            # person; a vague likeness ("кружки для детей с ОВЗ") is not a complaint.
            if top.score >= self.answer_at and top.score - runner_up >= self.margin:
                return Verdict(HANDOFF, top.entry, round(top.score, 3))
            candidates = [c for c in candidates if not c.entry.handoff]
            if not candidates or candidates[0].score < self.suggest_at:
                return Verdict(UNKNOWN, None, round(top.score, 3))
            top = candidates[0]
            runner_up = candidates[1].score if len(candidates) > 1 else 0.0
        margin = self.margin if found.terms > 1 or found.exact else ONE_WORD_MARGIN
        if top.score >= self.answer_at and found.known >= self.known_at:
            if top.score - runner_up >= margin:
                return Verdict(ANSWER, top.entry, round(top.score, 3))
            # (A single word that no entry is asked with stays a suggestion list.)
            if margin == self.margin and top.score >= self.close_at and top.score > runner_up:
                best, other = sorted(candidates[:2], key=lambda c: c.overlap, reverse=True)
                if best.overlap >= CLOSE_OVERLAP:
                    return Verdict(ANSWER, best.entry, round(top.score, 3), also=(other.entry,))
        if (
            top.score >= LEAD_ANSWER_AT
            and runner_up <= top.score * LEAD_RATIO
            and top.score - runner_up >= margin
            and found.known >= self.known_at
        ):
            return Verdict(ANSWER, top.entry, round(top.score, 3))
        suggestions = _suggestions(candidates, self.suggest_at)
        if not suggestions:
            return Verdict(UNKNOWN, None, round(top.score, 3))
        return Verdict(SUGGEST, top.entry, round(top.score, 3), suggestions)

    def _several_questions(self, question: str) -> tuple[tuple[Entry, ...], list[str]]:
        """For a message of several questions, each about another entry, the entry each
        part would be answered with, in the order asked; otherwise one entry at most."""
        analyzer = self.index.analyzer
        parts = [
            part
            for part in analyzer.clauses(question)
            if len(set(analyzer.terms(part, fallback=False))) >= MIN_CLAUSE_TERMS
        ]
        if len(parts) < 2:
            return (), parts
        entries: list[Entry] = []
        for part in parts:
            best = self._search(part).candidates[:1]
            if best and best[0].score >= self.answer_at and not best[0].entry.handoff:
                if best[0].entry not in entries:
                    entries.append(best[0].entry)
        return tuple(entries[:MAX_SUGGESTIONS]), parts


def _suggestions(candidates: list[Candidate], floor: float) -> tuple[Entry, ...]:
    picked = [c.entry for c in candidates if c.score >= floor * 0.8 and not c.entry.handoff]
    return tuple(picked[:MAX_SUGGESTIONS])


def answer_template(entry: Entry, region: Region) -> str:
    """The entry's answer, or the region profile's own answer for it (`[faq.<id>]`)."""
    return region_faq_answers(region).get(entry.id, entry.answer)


def render(entry: Entry, region: Region) -> str:
    return answer_template(entry, region).format(region=region)


def check_region(faq: Faq, region: Region) -> None:
    """The region's own answers name entries of the base, and every answer renders for
    this region with its placeholders filled."""
    answers = region_faq_answers(region)
    profile = f"texts/regions/{region.id}.toml"
    unknown = sorted(set(answers) - set(faq.kb.by_id))
    if unknown:
        raise TextsError(f"{profile}: [faq] names entries not in the base: {', '.join(unknown)}")
    for entry in faq.kb.entries:
        template = answers.get(entry.id, entry.answer)
        where = (
            f"{profile}: [faq.{entry.id}]"
            if entry.id in answers
            else f"texts/faq/{entry.source}: entry '{entry.id}'"
        )
        try:
            parsed = list(string.Formatter().parse(template))
        except ValueError as exc:
            raise TextsError(f"{where}: broken placeholder: {exc}") from None
        for _, name, _, _ in parsed:
            if not name:
                continue
            field_name = name.split(".", 1)[1] if name.startswith("region.") else ""
            value = getattr(region, field_name, None) if field_name else None
            if value is None or not str(value).strip():
                raise TextsError(
                    f"{where} uses {{{name}}}, which region '{region.id}' does not fill"
                )


def faq_for(region: Region) -> Faq:
    """The shared knowledge base, checked against the region the bot serves."""
    faq = load_faq()
    check_region(faq, region)
    return faq


@lru_cache(maxsize=4)
def load_faq(directory: Path = FAQ_DIR) -> Faq:
    """The knowledge base and its index, built once per process (changes need a restart)."""
    return Faq(load_kb(directory))
