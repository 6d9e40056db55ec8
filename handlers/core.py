"""The channel-neutral shapes and the router.

A channel turns a platform update into an `Incoming`; the dialogue engine runs
the matching handler with a `Context`; the handler answers with `ctx.reply()` /
`ctx.say()`; the engine returns `Reply` objects for the channel to deliver.
Handlers never import a messenger library; channels never decide what to say.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from handlers.buttons import BadPayload, Grammar, Pressed, StaleButton

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from storage.models import User
    from texts import Region, Texts


def utcnow() -> datetime:
    return datetime.now(UTC)


# What PostgreSQL's text type cannot hold (NUL) and what UTF-8 cannot encode (lone
# surrogates, as a client may send in broken JSON); other control characters but tab,
# line feed and carriage return only garble a transcript.
_UNSTORABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def storable(text: str) -> str:
    """`text` without the characters a database cannot store or a parent cannot see."""
    return _UNSTORABLE.sub("", text)


# What a button means besides its label, so that words typed instead of pressing it
# («да», «не надо», «стоп», «назад») find it: see handlers/understanding.py.
ROLES = ("yes", "no", "stop", "back", "restart")


@dataclass(frozen=True)
class Button:
    label: str
    payload: str
    role: str = ""

    def stored(self) -> list[str]:
        """The button as kept in the conversation state: [label, payload(, role)]."""
        return [self.label, self.payload, self.role] if self.role else [self.label, self.payload]


@dataclass
class Reply:
    text: str
    buttons: list[list[Button]] = field(default_factory=list)
    # Id of the transcript row that records this reply, set by the outbox. Channels
    # derive idempotency keys from it (e.g. VK random_id).
    transcript_id: int | None = None
    # The parent (users.id) it goes to, set by the outbox.
    user_id: int | None = None
    # The reply asks for the parent's phone: a channel that can (MAX) adds its own
    # "share my phone" button; typing the number works everywhere.
    asks_phone: bool = False
    # The reply carries personal data (a child's name, a phone...): the outbox replaces
    # it in a channel where personal data are not collected (storage/outbox.py).
    personal: bool = False

    def all_buttons(self) -> list[Button]:
        return [button for row in self.buttons for button in row]

    def buttons_json(self) -> dict[str, Any] | None:
        """The keyboard as stored in the transcript: {"rows": [[[label, payload], ...], ...]}
        (a button with a role has it third), with "asks_phone": true when the reply asks
        for the phone."""
        if not self.buttons and not self.asks_phone:
            return None
        stored: dict[str, Any] = {"rows": [[b.stored() for b in row] for row in self.buttons]}
        if self.asks_phone:
            stored["asks_phone"] = True
        return stored

    @classmethod
    def from_stored(
        cls,
        text: str,
        buttons: dict[str, Any] | None,
        transcript_id: int | None = None,
        user_id: int | None = None,
    ) -> Reply:
        """The reply a transcript row records (the inverse of `buttons_json`)."""
        buttons = buttons or {}
        rows = [[Button(*button) for button in row] for row in buttons.get("rows", [])]
        asks_phone = bool(buttons.get("asks_phone"))
        return cls(text, rows, transcript_id, user_id, asks_phone=asks_phone)


@dataclass(frozen=True)
class Incoming:
    channel: str
    user_id: str
    chat_id: str
    text: str = ""
    payload: str | None = None
    update_id: str | None = None
    message_id: str | None = None
    time: datetime = field(default_factory=utcnow)
    user_name: str = ""
    # The kind of non-text content ("sticker", "photo", "voice", ...), if any.
    attachment: str | None = None

    def cleaned(self) -> Incoming:
        """This message with every field a parent or a platform typed made storable."""
        changes = {
            name: storable(value)
            for name in ("user_id", "chat_id", "text", "payload", "user_name", "attachment")
            if isinstance(value := getattr(self, name), str) and storable(value) != value
        }
        return replace(self, **changes) if changes else self

    def to_json(self) -> dict[str, Any]:
        """As stored in the inbox until it is handled."""
        return {**self.__dict__, "time": self.time.isoformat()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Incoming:
        moment = datetime.fromisoformat(data["time"])
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**{**known, "time": moment})


@dataclass
class State:
    """A user's place in a dialogue. `data` persists across dialogues: namespace its keys."""

    step: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def checked_data(self) -> dict[str, Any]:
        """The data as it will come back from storage; fails now if it is not JSON."""
        try:
            return json.loads(json.dumps(self.data, ensure_ascii=False))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"conversation data must be JSON-serialisable: {exc}") from exc


class Context:
    """What a handler sees (user, state, texts, storage, services) and where it answers."""

    def __init__(
        self,
        incoming: Incoming,
        user: User,
        state: State,
        texts: Texts,
        session: AsyncSession,
        services: Any,
        menu: Callable[[Context], Reply],
    ) -> None:
        self.incoming = incoming
        self.user = user
        self.state = state
        self.texts = texts
        self.session = session
        self.services = services
        # The words after a typed command ("/start <param>").
        self.args: list[str] = []
        # The pressed button, parsed by its prefix's grammar (handlers/buttons.py).
        self.pressed = Pressed()
        self.replies: list[Reply] = []
        self._menu = menu

    @property
    def region(self) -> Region:
        return self.texts.region

    @property
    def data(self) -> dict[str, Any]:
        return self.state.data

    def reply(self, text: str, buttons: list[list[Button]] | None = None) -> Reply:
        reply = Reply(text=text, buttons=buttons or [])
        self.replies.append(reply)
        return reply

    def say(self, key: str, buttons: list[list[Button]] | None = None, **params: Any) -> Reply:
        return self.reply(self.texts(key, **params), buttons)

    def button(self, label_key: str, payload: str, *, role: str = "", **params: Any) -> Button:
        return Button(self.texts(label_key, **params), payload, role)

    def go(self, step: str | None) -> None:
        self.state.step = step

    def finish(self) -> None:
        self.state.step = None

    def show_menu(self) -> Reply:
        self.finish()
        reply = self._menu(self)
        self.replies.append(reply)
        return reply


Handler = Callable[[Incoming, Context], Awaitable[None]]


@dataclass(frozen=True)
class MenuItem:
    order: int
    label_key: str
    payload: str


def _match_prefix(table: dict[str, Handler], value: str) -> tuple[str, Handler] | None:
    """Longest registered prefix p with value == p or value starting with p + ':'."""
    best: tuple[str, Handler] | None = None
    for prefix, handler in table.items():
        if (value == prefix or value.startswith(prefix + ":")) and (
            best is None or len(prefix) > len(best[0])
        ):
            best = (prefix, handler)
    return best


class Router:
    """Handlers of one feature. Routers are composed with `include`; free-text handlers
    run in inclusion order and the first that returns True wins, so put catch-alls last."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.commands: dict[str, Handler] = {}
        self.buttons: dict[str, Handler] = {}
        self.grammars: dict[str, Grammar] = {}
        # Button prefixes whose press leaves a step waiting for typed input in place.
        self.keeps_step: set[str] = set()
        # Steps where any text is a valid answer (a comment): a question there is asked about.
        self.free_steps: set[str] = set()
        self.steps: dict[str, Handler] = {}
        self.free_text: list[Callable[[Incoming, Context], Awaitable[bool]]] = []
        self.attachment: Handler | None = None
        self.menu_items: list[MenuItem] = []
        self.command_menu: list[tuple[str, str]] = []  # (command, description text key)

    # -- registration -------------------------------------------------------------------
    def command(self, *names: str, description_key: str | None = None):
        def register(handler: Handler) -> Handler:
            for name in names:
                self.commands[name.lstrip("/").lower()] = handler
            if description_key:
                self.command_menu.append((names[0].lstrip("/"), description_key))
            return handler

        return register

    def button(self, grammar: Grammar, *, keeps_step: bool = False):
        """Register the handler of the payloads `grammar` describes (its prefix); with
        `keeps_step`, a press leaves a step waiting for typed input in place."""

        def register(handler: Handler) -> Handler:
            self.buttons[grammar.prefix] = handler
            self.grammars[grammar.prefix] = grammar
            if keeps_step:
                self.keeps_step.add(grammar.prefix)
            return handler

        return register

    def step(self, prefix: str, *, free_text: bool = False):
        def register(handler: Handler) -> Handler:
            self.steps[prefix] = handler
            if free_text:
                self.free_steps.add(prefix)
            return handler

        return register

    def text(self):
        def register(
            handler: Callable[[Incoming, Context], Awaitable[bool]],
        ) -> Callable[[Incoming, Context], Awaitable[bool]]:
            self.free_text.append(handler)
            return handler

        return register

    def on_attachment(self, handler: Handler) -> Handler:
        self.attachment = handler
        return handler

    def menu_item(self, order: int, label_key: str, payload: str) -> None:
        self.menu_items.append(MenuItem(order, label_key, payload))

    def include(self, *routers: Router) -> Router:
        for router in routers:
            self.commands.update(router.commands)
            self.buttons.update(router.buttons)
            self.grammars.update(router.grammars)
            self.keeps_step.update(router.keeps_step)
            self.steps.update(router.steps)
            self.free_steps.update(router.free_steps)
            self.free_text.extend(router.free_text)
            self.attachment = router.attachment or self.attachment
            self.menu_items.extend(router.menu_items)
            self.command_menu.extend(router.command_menu)
        self.menu_items.sort(key=lambda item: item.order)
        return self

    def handles(self, payload: str) -> bool:
        """Whether a button with this payload reaches a handler."""
        return _match_prefix(self.buttons, payload) is not None

    def is_free_step(self, step: str | None) -> bool:
        """Whether the step `step` takes any text as its answer."""
        found = _match_prefix(self.steps, step or "")
        return found is not None and found[0] in self.free_steps

    # -- dispatch -----------------------------------------------------------------------
    async def dispatch(self, incoming: Incoming, ctx: Context) -> bool:
        """Run the handler for this message; False when nothing matched.

        A button press or a command means the parent has moved on: a step waiting for
        typed input is dropped first, and the handler sets a new one if it asks again.
        Buttons registered with `keeps_step` (answering a question mid-step) leave it.
        """
        text = incoming.text.strip()
        found = _match_prefix(self.buttons, incoming.payload) if incoming.payload else None
        keeps = found is not None and found[0] in self.keeps_step
        if (incoming.payload and not keeps) or text.startswith("/"):
            ctx.state.step = None
        if incoming.payload:
            try:
                if found is None:
                    raise BadPayload("unknown prefix")
                prefix, handler = found
                ctx.pressed = self.grammars[prefix].parse(incoming.payload, ctx)
                await handler(incoming, ctx)
            except (BadPayload, StaleButton):
                # Forged, damaged, or made by an older version of the bot.
                ctx.replies.clear()
                ctx.say("common.stale_button")
                ctx.show_menu()
            return True
        if text.startswith("/"):
            head, _, rest = text[1:].partition(" ")
            name = head.split("@", 1)[0].lower()
            handler = self.commands.get(name)
            if handler:
                ctx.args = rest.split() if rest.strip() else []
                await handler(incoming, ctx)
                return True
            return False
        if not text and incoming.attachment and self.attachment:
            await self.attachment(incoming, ctx)
            return True
        if ctx.state.step:
            found = _match_prefix(self.steps, ctx.state.step)
            if found:
                await found[1](incoming, ctx)
                return True
        for handler in self.free_text:
            if await handler(incoming, ctx):
                return True
        return False
