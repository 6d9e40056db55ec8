"""`navbot ask`, `navbot faq-eval`, `navbot faq-check`: tools for the people who keep
the FAQ knowledge base (texts/faq/)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bot.app import App
from handlers.faq.dialogue import verdict_text
from handlers.faq.evaluate import evaluate, read_labelled
from handlers.faq.service import SUGGEST, Faq, Verdict, check_region, load_faq
from texts import available_regions, load_region


def _faq(app: App) -> Faq:
    return getattr(app.services, "faq", None) or load_faq()


def _text(app: App, verdict: Verdict) -> str:
    text = verdict_text(app.texts, verdict)
    if verdict.outcome == SUGGEST:
        text += "".join(f"\n• {entry.title}" for entry in verdict.suggestions)
    return text


def add_ask_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "question",
        nargs="?",
        help="the question; without it, questions are read from stdin one per line and "
        'answered as JSON lines {"question", "answer", "entry_id", "score", "handoff"}',
    )


async def cmd_ask(app: App, args: argparse.Namespace) -> int:
    faq = _faq(app)
    if args.question is not None:
        print(_text(app, faq.decide(args.question)))
        return 0
    for line in sys.stdin:
        question = line.strip()
        if not question:
            continue
        verdict = faq.decide(question)
        row = {
            "question": question,
            "answer": _text(app, verdict),
            "entry_id": verdict.entry.id if verdict.entry else None,
            "score": verdict.score,
            "handoff": verdict.handoff,
            "outcome": verdict.outcome,
            "suggestions": [entry.id for entry in verdict.suggestions],
        }
        print(json.dumps(row, ensure_ascii=False), flush=True)
    return 0


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file",
        type=Path,
        help='labelled questions, one JSON object a line: {"q": "...", "entry_id": "..."}; '
        "entry_id null means the question must not be answered from the base",
    )


async def cmd_faq_eval(app: App, args: argparse.Namespace) -> int:
    report = evaluate(_faq(app), read_labelled(args.file))
    print("\n".join(report.lines()))
    return 0


async def cmd_faq_check(app: App, args: argparse.Namespace) -> int:
    """The base loaded and indexed when the app was built; check it against every region
    and name links to dialogues this bot does not have (their buttons stay hidden)."""
    faq = _faq(app)
    regions = available_regions()
    for region_id in regions:
        check_region(faq, load_region(region_id))
    entries = faq.kb.entries
    for entry in entries:
        if entry.link and not app.router.handles(entry.link):
            print(
                f"note: entry '{entry.id}' links to '{entry.link}', which no dialogue "
                "handles yet: its button is not shown",
                file=sys.stderr,
            )
    handoff = sum(1 for entry in entries if entry.handoff)
    files = len({entry.source for entry in entries})
    print(
        f"knowledge base OK: {len(entries) - handoff} answers and {handoff} handoff topics "
        f"in {files} files; answers render in every region ({', '.join(regions)})"
    )
    return 0
