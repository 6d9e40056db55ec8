"""The terminal channel: talk to the bot in a terminal, or script it through stdin.

Buttons are shown numbered; the parent answers with the number or the label.
When stdin is not a terminal, each line is one message and the replies are
printed after it, so the channel can be driven by a script or a test.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from handlers.core import Incoming, Reply
from handlers.engine import DialogueEngine

CHANNEL = "console"


def render(replies: list[Reply]) -> tuple[str, list[str]]:
    """The replies as terminal text, and the payloads of the numbered buttons."""
    lines: list[str] = []
    payloads: list[str] = []
    for reply in replies:
        lines.append(reply.text)
        for row in reply.buttons:
            for button in row:
                payloads.append(button.payload)
                lines.append(f"  [{len(payloads)}] {button.label}")
        lines.append("")
    return "\n".join(lines), payloads


class ConsoleChannel:
    def __init__(
        self,
        engine: DialogueEngine,
        *,
        user_id: str = "local",
        user_name: str = "",
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
    ) -> None:
        self.engine = engine
        self.user_id = user_id
        self.user_name = user_name
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self.interactive = self.stdin.isatty()
        self._payloads: list[str] = []

    def to_incoming(self, line: str) -> Incoming:
        text = line.strip()
        payload = None
        if text.isdigit() and 1 <= int(text) <= len(self._payloads):
            payload = self._payloads[int(text) - 1]
        return Incoming(
            channel=CHANNEL,
            user_id=self.user_id,
            chat_id=self.user_id,
            text=text,
            payload=payload,
            user_name=self.user_name,
        )

    def show(self, replies: list[Reply]) -> None:
        text, payloads = render(replies)
        if payloads:
            self._payloads = payloads
        self.stdout.write(text + "\n")
        self.stdout.flush()

    async def _readline(self) -> str:
        if self.interactive:
            self.stdout.write("> ")
            self.stdout.flush()
        return await asyncio.to_thread(self.stdin.readline)

    async def run(self) -> None:
        shown = await self.engine.last_buttons(CHANNEL, self.user_id)
        self._payloads = [payload for _, payload in shown]
        if self.interactive:
            self.stdout.write(self.engine.texts("console.intro") + "\n\n")
            self.show(await self.engine.handle(self.to_incoming("/start")))
        while True:
            line = await self._readline()
            if not line or (self.interactive and not line.strip()):
                break
            if not line.strip():
                continue
            self.show(await self.engine.handle(self.to_incoming(line)))
