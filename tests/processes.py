"""`navbot run` as a real process serving the project's fake messengers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.cli import write_config


class Bot:
    """`navbot run` as a subprocess serving the fakes; `kill()` is SIGKILL."""

    def __init__(
        self,
        tmp_path: Path,
        database: dict[str, str],
        telegram=None,
        vk=None,
        max_fake=None,
        *,
        env: dict[str, str] | None = None,
        name: str = "bot",
        args: list[str] | None = None,
    ) -> None:
        self.config = write_config(tmp_path, database)
        self.cwd = tmp_path
        self.env = {**os.environ, "NAVBOT_CONFIG": str(self.config)}
        if telegram is not None:
            self.env.update(
                {
                    "NAVBOT_TELEGRAM__TOKEN": telegram.token,
                    "NAVBOT_TELEGRAM__API_BASE": telegram.base,
                    "NAVBOT_TELEGRAM__POLLING_TIMEOUT": "1",
                }
            )
        if vk is not None:
            self.env.update(
                {
                    "NAVBOT_VK__TOKEN": vk.token,
                    "NAVBOT_VK__GROUP_ID": str(vk.group_id),
                    "NAVBOT_VK__API_BASE": f"{vk.base}/method",
                    "NAVBOT_VK__LONGPOLL_WAIT": "1",
                }
            )
        if max_fake is not None:
            self.env.update(
                {
                    "NAVBOT_MAX__TOKEN": max_fake.token,
                    "NAVBOT_MAX__API_BASE": max_fake.base,
                    "NAVBOT_MAX__POLLING_TIMEOUT": "1",
                }
            )
        self.env.update(env or {})
        self.args = list(args or [])
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tmp_path / f"{name}.log"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "run", *self.args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=self.env,
            )

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
