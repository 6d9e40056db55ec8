"""Run `navbot` as a real process, the way an administrator or a parent's terminal does."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path


def write_config(directory: Path, database: dict[str, str], region: str = "stavropol") -> Path:
    lines = [
        "[bot]",
        f'data_dir = "{directory / "data"}"',
        f'region = "{region}"',
        "[database]",
        *(f'{key} = "{value}"' for key, value in database.items()),
        # the staff console of `navbot run` on any free port: tests run side by side
        "[web]",
        "port = 0",
    ]
    path = directory / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def navbot(*args: str, stdin: str = "", cwd: Path | None = None, env: dict | None = None):
    """Run `python -m bot ARGS` to completion; returns the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


class LiveProcess:
    """A `navbot` process fed line by line, whose output is read as it comes."""

    def __init__(self, *args: str, cwd: Path | None = None, env: dict | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            bufsize=1,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output = ""
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def expect(self, fragment: str, timeout: float = 60) -> str:
        """Read output until `fragment` appears; returns everything read since the last call."""
        seen = ""
        deadline = time.monotonic() + timeout
        while fragment not in seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{fragment!r} not printed; got:\n{seen}")
            try:
                seen += self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
        self.output += seen
        return seen

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)

    def close(self) -> int:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        return self.proc.wait(timeout=60)
