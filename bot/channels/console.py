"""The terminal channel: talk to the bot in a terminal, or script it through stdin.

Buttons are shown numbered; the parent answers with the number or the label.
When stdin is not a terminal, each line is one message and the replies are
printed after it, so the channel can be driven by a script or a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from typing import TextIO

from bot.delivery import Delivery
from handlers.core import Incoming, Reply
from handlers.engine import DialogueEngine

CHANNEL = "console"


class ConsoleSender:
    """Prints replies; numbers the buttons of one turn 1, 2, 3 ... across its replies.
    A message sent outside a turn (a notification) starts its own numbering."""

    # What a previous run left unprinted is not printed into this one.
    current_session_only = True

    def __init__(self, stdout: TextIO) -> None:
        self.stdout = stdout
        self.payloads: list[str] = []
        self._new_turn = True
        self._in_turn = False

    def start_turn(self) -> None:
        self._new_turn = True
        self._in_turn = True

    def end_turn(self) -> None:
        self._in_turn = False

    async def send(self, chat_id: str, reply: Reply) -> str | None:
        lines = [reply.text]
        if reply.buttons:
            if self._new_turn or not self._in_turn:
                self.payloads = []
                self._new_turn = False
            for button in reply.all_buttons():
                self.payloads.append(button.payload)
                lines.append(f"  [{len(self.payloads)}] {button.label}")
        self.stdout.write("\n".join(lines) + "\n\n")
        self.stdout.flush()
        return None


class ConsoleChannel:
    def __init__(
        self,
        engine: DialogueEngine,
        delivery: Delivery,
        *,
        user_id: str = "local",
        user_name: str = "",
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
    ) -> None:
        self.engine = engine
        self.delivery = delivery
        self.user_id = user_id
        self.user_name = user_name
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self.interactive = self.stdin.isatty()
        self.sender = ConsoleSender(self.stdout)
        delivery.register(CHANNEL, self.sender)

    def to_incoming(self, line: str) -> Incoming:
        text = line.strip()
        payload = None
        payloads = self.sender.payloads
        # ASCII digits only: '²'.isdigit() is true, but it is no button number
        if text.isascii() and text.isdigit() and 1 <= int(text) <= len(payloads):
            payload = payloads[int(text) - 1]
        return Incoming(
            channel=CHANNEL,
            user_id=self.user_id,
            chat_id=self.user_id,
            text=text,
            payload=payload,
            user_name=self.user_name,
        )

    async def handle(self, line: str) -> None:
        replies = await self.engine.handle(self.to_incoming(line))
        self.sender.start_turn()
        try:
            await self.delivery.deliver(CHANNEL, self.user_id, replies)
        finally:
            self.sender.end_turn()

    async def _readline(self) -> str:
        if self.interactive:
            self.stdout.write("> ")
            self.stdout.flush()
        return await self._read_in_daemon_thread()

    async def _read_in_daemon_thread(self) -> str:
        """stdin.readline() off the event loop, in a daemon thread: a read still blocked at
        shutdown (SIGTERM, Ctrl+C) must not keep the process alive, as the default
        executor's threads would."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[str] = loop.create_future()

        def deliver(line: str) -> None:
            if not done.done():
                done.set_result(line)

        def read() -> None:
            line = self.stdin.readline()
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                loop.call_soon_threadsafe(deliver, line)

        threading.Thread(target=read, name="console-stdin", daemon=True).start()
        return await done

    async def run(self) -> None:
        shown = await self.engine.last_buttons(CHANNEL, self.user_id)
        self.sender.payloads = [payload for _, payload in shown]
        if self.interactive:
            self.stdout.write(self.engine.texts("console.intro") + "\n\n")
            await self.handle("/start")
        while True:
            line = await self._readline()
            if not line or (self.interactive and not line.strip()):
                break
            if line.strip():
                await self.handle(line)
