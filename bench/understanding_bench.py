"""How long reading a typed message against the screen takes (handlers/understanding.py),
the work the engine adds to every typed message before routing.

    .venv/bin/python bench/understanding_bench.py [--repeat 2000]

Prints the median and 99th percentile per message, for a screen of 4 buttons (a
registration step) and one of 8 (the catalogue's filters), over a mix of typed words:
labels, starts, typos, yes/no, control and topic words, digits, emoji, questions.
Asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from handlers import build_router  # noqa: E402
from handlers.understanding import Shown, normalise, resolve, words  # noqa: E402
from texts import Texts, load_region  # noqa: E402

TYPED = [
    "готово", "Готово, дальш", "не получаеться", "да", "ага", "не согласна", "меню", "назад",
    "стоп", "начать заново", "?", "👍", "😭😭😭", "регистрация", "5", "2",
    "а сертификат платный?", "показать", "Показвть", "сколько стоит кружок по сертификату",
]  # fmt: skip


def screens(texts: Texts) -> dict[str, list[Shown]]:
    step = [
        Shown(texts("registration.next"), "reg:next:3", "yes"),
        Shown(texts("registration.trouble"), "reg:help:3"),
        Shown(texts("common.back"), "reg:back:3", "back"),
        Shown(texts("common.to_menu"), "menu"),
    ]
    filters = [
        Shown(texts(key, **params), payload)
        for key, payload, params in [
            ("catalogue.btn_muni", "cat:m", {}),
            ("catalogue.btn_age", "cat:age", {}),
            ("catalogue.btn_dir", "cat:dir", {}),
            ("catalogue.btn_pay", "cat:pay", {}),
            ("catalogue.btn_keyword", "cat:kw", {}),
            ("catalogue.btn_show", "cat:show:0", {"n": 198}),
            ("catalogue.btn_reset", "cat:reset", {}),
            ("common.to_menu", "menu", {}),
        ]
    ]
    return {"registration step (4 buttons)": step, "catalogue filters (8 buttons)": filters}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    texts = Texts(load_region("stavropol"))
    router = build_router()
    menu = {normalise(texts(item.label_key)): item.payload for item in router.menu_items}
    words()  # loaded once at the first message
    for name, shown in screens(texts).items():
        times = []
        for _ in range(args.repeat):
            for typed in TYPED:
                start = time.perf_counter()
                resolve(typed, step=None, shown=shown, menu=menu, handles=router.handles)
                times.append(time.perf_counter() - start)
        times.sort()
        median = statistics.median(times) * 1e6
        p99 = times[int(len(times) * 0.99)] * 1e6
        print(f"{name}: median {median:.0f} µs, p99 {p99:.0f} µs over {len(times)} messages")


if __name__ == "__main__":
    main()
