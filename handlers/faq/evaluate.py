"""Scoring the knowledge base on a labelled question file (`navbot faq-eval`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from handlers.faq.service import ANSWER, HANDOFF, SUGGEST, Faq, render
from texts import Region, TextsError


@dataclass(frozen=True)
class Labelled:
    question: str
    entry_id: str | None  # None: must not be answered from the base
    # True: a topic for a person (complaint, money dispute, safety), to be handed over
    handoff: bool = False


@dataclass
class Report:
    total: int = 0
    answerable: int = 0
    answered: int = 0
    # answered questions that have an entry (the rest should not have been answered)
    answered_answerable: int = 0
    right: int = 0
    wrong: int = 0
    handoffs_due: int = 0
    handoffs_made: int = 0
    # questions handed over as a complaint/dispute/safety topic although they are not
    handoffs_wrong: int = 0
    misses: list[tuple[str, str | None, str, str | None, float]] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        """Of the questions answered, the share answered with the right entry."""
        return self.right / self.answered if self.answered else 0.0

    @property
    def coverage(self) -> float:
        """Of the questions the base should answer, the share it answered."""
        return self.answered_answerable / self.answerable if self.answerable else 0.0

    @property
    def wrong_rate(self) -> float:
        """Of all questions, the share given a wrong answer (or any answer when none is due)."""
        return self.wrong / self.total if self.total else 0.0

    def lines(self) -> list[str]:
        out = [
            f"questions: {self.total} (answerable: {self.answerable})",
            f"accuracy: {self.accuracy:.1%} ({self.right} of {self.answered} answered are right)",
            f"coverage: {self.coverage:.1%} ({self.answered_answerable} of "
            f"{self.answerable} answerable questions answered)",
            f"wrong answers: {self.wrong_rate:.1%} ({self.wrong} of {self.total})",
        ]
        if self.handoffs_due or self.handoffs_wrong:
            out.append(
                f"handoffs: {self.handoffs_made} of {self.handoffs_due} handed to a person; "
                f"{self.handoffs_wrong} other questions handed over by mistake"
            )
        if self.misses:
            out.append(f"misses ({len(self.misses)}):")
            for question, expected, outcome, got, score in self.misses:
                out.append(
                    f"  {question!r}: expected {expected or '-'}, got {outcome} "
                    f"{got or '-'} ({score:.2f})"
                )
        return out


def read_labelled(path: Path) -> list[Labelled]:
    items = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise TextsError(f"{path}: cannot read: {exc.strerror}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TextsError(f"{path}:{number}: not JSON: {exc.msg}") from None
        if not isinstance(raw, dict) or not isinstance(raw.get("q"), str) or "entry_id" not in raw:
            raise TextsError(f'{path}:{number}: expected {{"q": "...", "entry_id": "..." or null}}')
        items.append(Labelled(raw["q"], raw["entry_id"], raw.get("handoff") is True))
    if not items:
        raise TextsError(f"{path}: no labelled questions")
    return items


def evaluate(faq: Faq, items: list[Labelled]) -> Report:
    unknown = sorted({i.entry_id for i in items if i.entry_id and faq.kb.get(i.entry_id) is None})
    if unknown:
        raise TextsError(f"labelled file names entries not in the base: {', '.join(unknown)}")
    report = Report()
    for item in items:
        verdict = faq.decide(item.question)
        report.total += 1
        if item.entry_id is not None:
            report.answerable += 1
        got = verdict.entry.id if verdict.entry else None
        if item.handoff:
            report.handoffs_due += 1
            if verdict.outcome == HANDOFF:
                report.handoffs_made += 1
                continue
        elif verdict.outcome == HANDOFF:
            report.handoffs_wrong += 1
        if verdict.outcome == ANSWER:
            report.answered += 1
            if item.entry_id is not None:
                report.answered_answerable += 1
            if got == item.entry_id:
                report.right += 1
                continue
            report.wrong += 1
        elif item.entry_id is None:
            if item.handoff:
                report.misses.append((item.question, None, verdict.outcome, got, verdict.score))
            continue
        report.misses.append((item.question, item.entry_id, verdict.outcome, got, verdict.score))
    return report


# --- The corpus of real parents' questions (bench/corpus/faq_real.jsonl) -------------

LABELS = ("answer", "handoff", "not_covered")
SPLITS = ("dev", "heldout")


@dataclass(frozen=True)
class CorpusItem:
    """One question as a parent (or a centre answering parents) wrote it, and what a
    right reply to it is."""

    question: str
    source: str
    # Questions of one article (and its copies on other sites) share a group; the split
    # holds out whole groups.
    group: str
    split: str
    # "answer": one of `entries` answers it; "handoff": it must go to a person;
    # "not_covered": the base has no answer and must not pretend to have one.
    label: str
    entries: tuple[str, ...] = ()
    # Short phrases the answer text must contain (case and ё/е ignored).
    facts: tuple[str, ...] = ()
    # The parent's message before this one, for a question that leans on it.
    previous: str | None = None
    # How the robustness suite made it from a real question ("" for the original).
    variant: str = ""


def read_corpus(path: Path) -> list[CorpusItem]:
    items = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise TextsError(f"{path}: cannot read: {exc.strerror}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TextsError(f"{where}: not JSON: {exc.msg}") from None
        if not isinstance(raw, dict) or not all(
            isinstance(raw.get(key), str) and raw[key].strip()
            for key in ("q", "source", "group", "split", "label")
        ):
            raise TextsError(f"{where}: needs q, source, group, split and label")
        if raw["label"] not in LABELS:
            raise TextsError(f"{where}: label must be one of {', '.join(LABELS)}")
        if raw["split"] not in SPLITS:
            raise TextsError(f"{where}: split must be one of {', '.join(SPLITS)}")
        entries = tuple(raw.get("entries") or ())
        if (raw["label"] == "answer") != bool(entries):
            raise TextsError(f"{where}: entries are given exactly when the label is answer")
        items.append(
            CorpusItem(
                question=raw["q"],
                source=raw["source"],
                group=raw["group"],
                split=raw["split"],
                label=raw["label"],
                entries=entries,
                facts=tuple(raw.get("facts") or ()),
                previous=raw.get("previous"),
                variant=raw.get("variant", ""),
            )
        )
    if not items:
        raise TextsError(f"{path}: no questions")
    splits = {}
    for item in items:
        if splits.setdefault(item.group, item.split) != item.split:
            raise TextsError(f"{path}: source group '{item.group}' is in both splits")
    return items


def _plain(text: str) -> str:
    return " ".join(text.lower().replace("ё", "е").split())


@dataclass
class CorpusReport:
    total: int = 0
    covered: int = 0
    direct: int = 0
    direct_right: int = 0
    direct_with_facts: int = 0
    suggested: int = 0
    first_right: int = 0
    unanswered: int = 0
    suggestion_lists: int = 0
    handoffs_due: int = 0
    handoffs_made: int = 0
    not_covered: int = 0
    not_covered_answered: int = 0
    misses: list[str] = field(default_factory=list)

    @staticmethod
    def _share(part: int, whole: int) -> str:
        return f"{part / whole:.1%} ({part} of {whole})" if whole else "- (0 of 0)"

    @property
    def facts_rate(self) -> float:
        return self.direct_with_facts / self.direct if self.direct else 0.0

    @property
    def direct_rate(self) -> float:
        return self.direct / self.covered if self.covered else 0.0

    @property
    def reached_rate(self) -> float:
        return (self.direct_with_facts + self.first_right) / self.covered if self.covered else 0.0

    @property
    def suggestion_rate(self) -> float:
        return self.suggestion_lists / self.total if self.total else 0.0

    @property
    def handoff_recall(self) -> float:
        return self.handoffs_made / self.handoffs_due if self.handoffs_due else 1.0

    def lines(self, *, misses: bool = True) -> list[str]:
        s = self._share
        out = [
            f"questions: {self.total} (covered by the base: {self.covered}; must go to a "
            f"person: {self.handoffs_due}; not covered: {self.not_covered})",
            f"covered, answered directly: {s(self.direct, self.covered)}",
            f"covered, answered through a suggestion list: {s(self.suggested, self.covered)}",
            f"covered, not answered: {s(self.unanswered, self.covered)}",
            f"direct answers carrying the required facts: {s(self.direct_with_facts, self.direct)}",
            f"first suggestion right: {s(self.first_right, self.suggested)}",
            "covered, answered directly with the facts or by a right first suggestion: "
            f"{s(self.direct_with_facts + self.first_right, self.covered)}",
            f"suggestion lists, of all questions: {s(self.suggestion_lists, self.total)}",
            f"must go to a person, handed over: {s(self.handoffs_made, self.handoffs_due)}",
            f"not covered, answered anyway: {s(self.not_covered_answered, self.not_covered)}",
        ]
        if misses and self.misses:
            out.append(f"misses ({len(self.misses)}):")
            out.extend(f"  {line}" for line in self.misses)
        return out


def evaluate_corpus(faq: Faq, items: list[CorpusItem], region: Region) -> CorpusReport:
    """Score the base on corpus questions; answers are rendered for `region` so that the
    facts are checked in the text a parent of that region would read."""
    named = {e for item in items for e in item.entries}
    unknown = sorted(e for e in named if faq.kb.get(e) is None)
    if unknown:
        raise TextsError(f"corpus names entries not in the base: {', '.join(unknown)}")
    report = CorpusReport()
    for item in items:
        verdict = faq.decide(item.question, previous=item.previous)
        got = verdict.entry.id if verdict.entry else None
        report.total += 1
        if verdict.outcome == SUGGEST:
            report.suggestion_lists += 1
        shown = f"{item.question!r}" + (f" [{item.variant}]" if item.variant else "")
        if item.label == "handoff":
            report.handoffs_due += 1
            if verdict.outcome == HANDOFF:
                report.handoffs_made += 1
            else:
                report.misses.append(f"{shown}: must go to a person, got {verdict.outcome} {got}")
            continue
        if item.label == "not_covered":
            report.not_covered += 1
            if verdict.outcome == ANSWER:
                report.not_covered_answered += 1
                report.misses.append(f"{shown}: not covered, answered with {got}")
            continue
        report.covered += 1
        if verdict.outcome == ANSWER:
            report.direct += 1
            text = _plain(render(verdict.entry, region))
            right = got in item.entries
            report.direct_right += right
            if right and all(_plain(fact) in text for fact in item.facts):
                report.direct_with_facts += 1
            else:
                report.misses.append(f"{shown}: expected {'/'.join(item.entries)}, got {got}")
        elif verdict.outcome == SUGGEST:
            report.suggested += 1
            first = verdict.suggestions[0].id if verdict.suggestions else None
            if first in item.entries:
                report.first_right += 1
            else:
                report.misses.append(
                    f"{shown}: expected {'/'.join(item.entries)}, suggested "
                    f"{', '.join(e.id for e in verdict.suggestions)}"
                )
        else:
            report.unanswered += 1
            report.misses.append(
                f"{shown}: expected {'/'.join(item.entries)}, got {verdict.outcome}"
            )
    return report
