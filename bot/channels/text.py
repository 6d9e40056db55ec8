"""Splitting long replies for messengers with a message length limit."""

from __future__ import annotations

from collections.abc import Callable


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units; a lone surrogate is one)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _fit(text: str, limit: int, measure: Callable[[str], int]) -> int:
    """The longest prefix length n with measure(text[:n]) <= limit."""
    low, high = 0, min(len(text), limit)
    while low < high:
        middle = (low + high + 1) // 2
        if measure(text[:middle]) <= limit:
            low = middle
        else:
            high = middle - 1
    return low


def split_text(text: str, limit: int, measure: Callable[[str], int] = len) -> list[str]:
    """Parts of at most `limit` (by `measure`), cut at paragraph breaks, else line
    breaks, else spaces, else anywhere."""
    parts: list[str] = []
    rest = text
    while measure(rest) > limit:
        fit = _fit(rest, limit, measure)
        cut = -1
        for separator in ("\n\n", "\n", " "):
            cut = rest.rfind(separator, 0, fit)
            if cut > 0:
                break
        if cut <= 0:
            cut = max(fit, 1)
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip("\n ")
    parts.append(rest)
    return [part for part in parts if part.strip()] or [text]
