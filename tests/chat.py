"""A test client that talks to the dialogue engine like a parent: types text, presses
buttons by their label, and reads what the bot answered."""

from __future__ import annotations

import itertools

from handlers.core import Button, Incoming, Reply
from handlers.engine import DialogueEngine

_update_ids = itertools.count(1)


class ChatClient:
    def __init__(self, engine: DialogueEngine, *, channel: str = "test", user_id: str = "1001"):
        self.engine = engine
        self.channel = channel
        self.user_id = user_id
        self.replies: list[Reply] = []
        self.history: list[Reply] = []

    async def send(self, text: str = "", *, payload: str | None = None, **extra) -> list[Reply]:
        incoming = Incoming(
            channel=self.channel,
            user_id=self.user_id,
            chat_id=self.user_id,
            text=text,
            payload=payload,
            update_id=str(next(_update_ids)),
            **extra,
        )
        self.replies = await self.engine.handle(incoming)
        self.history.extend(self.replies)
        return self.replies

    @property
    def text(self) -> str:
        """Everything the bot said in answer to the last message."""
        return "\n\n".join(reply.text for reply in self.replies)

    @property
    def buttons(self) -> list[Button]:
        return [button for reply in self.replies for button in reply.all_buttons()]

    @property
    def labels(self) -> list[str]:
        return [button.label for button in self.buttons]

    def find(self, label: str) -> Button:
        exact = [b for b in self.buttons if b.label == label]
        partial = [b for b in self.buttons if label.lower() in b.label.lower()]
        found = exact or partial
        if not found:
            raise AssertionError(f"no button {label!r}; shown: {self.labels}")
        return found[0]

    async def press(self, label: str) -> list[Reply]:
        button = self.find(label)
        return await self.send(button.label, payload=button.payload)
