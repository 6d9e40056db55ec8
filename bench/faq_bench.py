"""FAQ benchmark: accuracy of matcher variants on the dev set, and answer time at the
shipped base (dev set; real corpus with its robustness suite) and at a base of 5,000
synthetic entries.

    .venv/bin/python bench/faq_bench.py [--entries 5000] [--repeat 3]

Prints numbers; asserts nothing. Variants are compared threshold-free (top-1: the best
entry is the right one) and at their own best answer threshold under the targets
(accuracy >= 90%, wrong answers <= 5%): the coverage each variant can reach.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.faq_tools import REAL_CORPUS, corpus_items  # noqa: E402
from handlers.faq import matcher  # noqa: E402
from handlers.faq.evaluate import Labelled, evaluate, read_corpus, read_labelled  # noqa: E402
from handlers.faq.kb import Entry, KnowledgeBase, load_kb  # noqa: E402
from handlers.faq.matcher import Analyzer, Candidate, Found, normalise  # noqa: E402
from handlers.faq.service import Faq  # noqa: E402

DEV_SET = ROOT / "tests" / "faq_dev.jsonl"
HOLDOUT_SETS = (
    ROOT / "tests" / "faq_holdout.jsonl",
    ROOT / "tests" / "faq_holdout2.jsonl",
    ROOT / "tests" / "faq_holdout3.jsonl",
)


class TfidfIndex:
    """The alternative: TF-IDF cosine (sublinear tf) over the same documents, same blend."""

    def __init__(
        self,
        kb: KnowledgeBase,
        analyzer: Analyzer,
        *,
        blend: float = 0.2,
    ):
        self.kb = kb
        self.blend = blend
        self.analyzer = analyzer
        texts: list[tuple[Entry, str]] = []
        for entry in kb.entries:
            tags = " ".join(entry.tags)
            texts.append((entry, f"{entry.title} {tags}"))
            texts.extend((entry, phrasing) for phrasing in entry.phrasings)
        analyzer.set_vocabulary(
            [w for _, text in texts for w in normalise(text)]
            + [w for entry in kb.entries for w in normalise(entry.answer)]
        )
        bags = [(entry, Counter(analyzer.terms(text))) for entry, text in texts]
        self.term_sets: dict[str, set[frozenset[str]]] = defaultdict(set)
        for entry, bag in bags:
            self.term_sets[entry.id].add(frozenset(bag))
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
        exact = bool(ranked) and frozenset(terms) in self.term_sets[ranked[0].entry.id]
        return Found(ranked[:limit], triggered, known, len(set(terms)), exact)


def top1(faq: Faq, items: list[Labelled]) -> float:
    answerable = [i for i in items if i.entry_id]
    right = 0
    for item in answerable:
        found = faq.index.search(item.question)
        if found.candidates and found.candidates[0].entry.id == item.entry_id:
            right += 1
    return right / len(answerable)


def best_operating_point(faq: Faq, items: list[Labelled]) -> tuple[str, object]:
    """The answer threshold and margin giving the most coverage within the targets."""
    best = None
    for answer_at in (0.2, 0.3, 0.4, 0.5, 0.6):
        for margin in (0.0, 0.02, 0.04, 0.06, 0.1):
            faq.answer_at, faq.margin = answer_at, margin
            faq.suggest_at = min(0.2, answer_at)
            report = evaluate(faq, items)
            if report.accuracy >= 0.9 and report.wrong_rate <= 0.05:
                if best is None or report.coverage > best[1].coverage:
                    best = (f"{answer_at:.1f}/{margin:.2f}", report)
    return best if best else ("-", None)


def compare(items: list[Labelled]) -> None:
    kb = load_kb()
    variants = [
        ("surface words, no typo fixing", dict(mode="surface", typos=False)),
        ("Snowball stems + rapidfuzz typos", dict(mode="stem")),
        ("pymorphy3 lemmas, no typo fixing", dict(typos=False)),
        ("pymorphy3 + rapidfuzz, best phrasing only", dict(blend=1.0)),
        ("pymorphy3 + rapidfuzz, whole entry only", dict(blend=0.0)),
        ("pymorphy3 + rapidfuzz, blend 0.2 (shipped)", {}),
    ]
    print(f"dev set: {len(items)} questions ({sum(1 for i in items if i.entry_id)} answerable)")
    header = f"{'variant':46} {'top-1':>6} {'at/margin':>9} {'acc':>6} {'cov':>6} {'wrong':>6}"
    for scoring in ("bm25 (shipped)", "tf-idf cosine"):
        print(f"\n[{scoring}]\n{header}")
        for name, options in variants:
            faq = Faq(kb, **options)
            if scoring == "tf-idf cosine":
                faq.index = TfidfIndex(kb, faq.index.analyzer, blend=faq.index.blend)
            first = top1(faq, items)
            at, report = best_operating_point(faq, items)
            if report is None:
                print(f"{name:46} {first:6.1%}   no threshold meets the targets")
                continue
            print(
                f"{name:46} {first:6.1%} {at:>9} {report.accuracy:6.1%} "
                f"{report.coverage:6.1%} {report.wrong_rate:6.1%}"
            )
    shipped = evaluate(Faq(kb), items)
    print(
        f"\nshipped thresholds: accuracy {shipped.accuracy:.1%}, coverage {shipped.coverage:.1%},"
        f" wrong {shipped.wrong_rate:.1%}"
    )
    for path in HOLDOUT_SETS:
        holdout = evaluate(Faq(kb), read_labelled(path))
        print(
            f"{path.name} ({holdout.total} questions), shipped thresholds: accuracy "
            f"{holdout.accuracy:.1%}, coverage {holdout.coverage:.1%}, "
            f"wrong {holdout.wrong_rate:.1%}; handoffs {holdout.handoffs_made} of "
            f"{holdout.handoffs_due}, {holdout.handoffs_wrong} by mistake"
        )


def timings(
    faq: Faq, questions: list[str | tuple[str, str | None]], repeat: int, cold: bool
) -> list[float]:
    """Milliseconds per answer; a question may come with the message before it."""
    samples = []
    for _ in range(repeat):
        for question in questions:
            text, previous = question if isinstance(question, tuple) else (question, None)
            if cold:
                matcher.lemma.cache_clear()
                matcher.known.cache_clear()
                faq.index.analyzer._corrections.clear()
            start = time.perf_counter()
            faq.decide(text, previous=previous)
            samples.append((time.perf_counter() - start) * 1000)
    return samples


def describe(label: str, samples: list[float]) -> None:
    samples = sorted(samples)
    p95 = samples[int(len(samples) * 0.95) - 1]
    print(
        f"{label:44} median {statistics.median(samples):6.2f} ms   p95 {p95:6.2f} ms   "
        f"max {samples[-1]:6.2f} ms   ({len(samples)} answers)"
    )


def synthetic(kb: KnowledgeBase, size: int, seed: int = 5) -> KnowledgeBase:
    """`size` extra entries built from the base's own words plus a made-up topic word each,
    so they share vocabulary with real questions the way a grown base would."""
    rng = random.Random(seed)
    words = sorted({w for e in kb.entries for p in e.phrasings for w in p.split()})
    entries = list(kb.entries)
    template = kb.entries[0]
    for number in range(size):
        topic = "".join(rng.choice("бвгдклмнпрстфх") + rng.choice("аеиоу") for _ in range(4))
        phrasings = tuple(
            " ".join([*rng.sample(words, 5), topic]) for _ in range(rng.randint(3, 6))
        )
        entries.append(
            replace(
                template,
                id=f"synthetic_{number}",
                title=topic,
                phrasings=phrasings,
                tags=(),
                link=None,
                triggers=(),
            )
        )
    return KnowledgeBase(tuple(entries), kb.lexicon)


def speed(items: list[Labelled], size: int, repeat: int) -> None:
    questions = [item.question for item in items]
    kb = load_kb()
    start = time.perf_counter()
    faq = Faq(kb)
    print(
        f"\nshipped base: {len(kb.entries)} entries, index built in "
        f"{(time.perf_counter() - start) * 1000:.0f} ms"
    )
    describe("  answer time, cold caches", timings(faq, questions, 1, cold=True))
    describe("  answer time, warm caches", timings(faq, questions, repeat, cold=False))
    messages = [(i.question, i.previous) for i in corpus_items("all", "robust")]
    messages += [(i.question, None) for i in read_corpus(REAL_CORPUS)]
    describe("  real corpus + robust suite, cold caches", timings(faq, messages, 1, cold=True))
    describe(
        "  real corpus + robust suite, warm caches", timings(faq, messages, repeat, cold=False)
    )

    big = synthetic(kb, size)
    start = time.perf_counter()
    faq = Faq(big)
    print(
        f"synthetic base: {len(big.entries)} entries, index built in "
        f"{(time.perf_counter() - start):.1f} s"
    )
    describe("  answer time, cold caches", timings(faq, questions, 1, cold=True))
    describe("  answer time, warm caches", timings(faq, questions, repeat, cold=False))
    report = evaluate(faq, items)
    print(
        f"  dev set on the synthetic base: accuracy {report.accuracy:.1%}, "
        f"coverage {report.coverage:.1%}, wrong {report.wrong_rate:.1%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=5000, help="synthetic base size")
    parser.add_argument("--repeat", type=int, default=3, help="passes over the dev set")
    parser.add_argument("--skip-compare", action="store_true")
    args = parser.parse_args()
    items = read_labelled(DEV_SET)
    if not args.skip_compare:
        compare(items)
    speed(items, args.entries, args.repeat)


if __name__ == "__main__":
    main()
