"""Scoring the knowledge base on a labelled question file (`navbot faq-eval`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from handlers.faq.service import ANSWER, HANDOFF, Faq
from texts import TextsError


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
