"""Errors shared by the CLI and the modules its commands live in."""

from __future__ import annotations


class CliError(Exception):
    """A problem the user can fix, printed as one line without a traceback.

    Defined here, not in bot/__main__.py: under `python -m bot` that file runs as
    `__main__`, and importing it again as `bot.__main__` would make a second class."""
