"""The one pymorphy3 analyser of the process, shared by grammar (texts/grammar.py),
FAQ matching (handlers/faq/matcher.py) and transcript search (storage/search.py).

Each `MorphAnalyzer` holds its own copy of the Russian dictionaries, about 20 MiB;
one is loaded on first use and serves every caller."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def analyzer() -> Any:
    import pymorphy3

    # Its "loading dictionaries" notes are not news to an administrator.
    logging.getLogger("pymorphy3").setLevel(logging.WARNING)
    return pymorphy3.MorphAnalyzer()
