"""`navbot ask`, `navbot faq-eval`, `navbot faq-check`: tools for the people who keep
the FAQ knowledge base (texts/faq/)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bot.app import App
from handlers.faq.dialogue import verdict_text
from handlers.faq.evaluate import (
    CorpusItem,
    evaluate,
    evaluate_corpus,
    read_corpus,
    read_labelled,
)
from handlers.faq.robust import robust_suite
from handlers.faq.service import SUGGEST, Faq, Verdict, check_region, load_faq
from texts import available_regions, load_region

ROOT = Path(__file__).resolve().parent.parent
REAL_CORPUS = ROOT / "bench" / "corpus" / "faq_real.jsonl"
DEV_SET = ROOT / "tests" / "faq_dev.jsonl"


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
        nargs="?",
        help='labelled questions, one JSON object a line: {"q": "...", "entry_id": "..."}; '
        "entry_id null means the question must not be answered from the base. Without it, "
        f"the corpus of real parents' questions ({REAL_CORPUS.relative_to(ROOT)}) is scored",
    )
    parser.add_argument(
        "--split",
        choices=("dev", "heldout", "all"),
        default="all",
        help="which sources of the corpus: the ones tuned on (dev), the held-out ones, or all",
    )
    parser.add_argument(
        "--suite",
        choices=("real", "robust"),
        default="real",
        help="real: the questions as found; robust: the same questions (and the dev set) "
        "rewritten by rules: greetings, typos, fragments, two questions in one, slang",
    )
    parser.add_argument("--quiet", action="store_true", help="figures only, without misses")


def corpus_items(split: str, suite: str) -> list[CorpusItem]:
    """The corpus questions of a split; for the robust suite, their rewritten variants and
    those of the dev set (whose questions count as dev sources)."""
    items = [i for i in read_corpus(REAL_CORPUS) if split == "all" or i.split == split]
    if suite == "robust":
        if split in ("dev", "all"):
            items += [
                CorpusItem(
                    question=item.question,
                    source=str(DEV_SET.relative_to(ROOT)),
                    group="dev-set",
                    split="dev",
                    label="handoff"
                    if item.handoff
                    else "answer"
                    if item.entry_id
                    else "not_covered",
                    entries=(item.entry_id,) if item.entry_id else (),
                )
                for item in read_labelled(DEV_SET)
            ]
        items = robust_suite(items)
    return items


async def cmd_faq_eval(app: App, args: argparse.Namespace) -> int:
    if args.file is not None:
        report = evaluate(_faq(app), read_labelled(args.file))
        print("\n".join(report.lines()))
        return 0
    items = corpus_items(args.split, args.suite)
    print(f"{args.suite} suite, {args.split} sources ({app.texts.region.id} answers)")
    report = evaluate_corpus(_faq(app), items, app.texts.region)
    print("\n".join(report.lines(misses=not args.quiet)))
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
