"""What a parent means by what they typed, when it is not a button press.

One mechanism for every screen that shows buttons. `resolve()` turns the typed text
into the payload of the button it means, or into one of this module's own payloads:

- a button's label, its start, the label with a typo or in another case;
- «да» / «ага» / «согласна» / «не надо»... for the button whose role is yes or no;
- a digit for the button of that number;
- control words (меню, назад, отмена / стоп, начать заново, помощь / ?) and topic words
  typed alone (регистрация, сертификат, кружок...) for their sections;
- emoji-only messages (👍, 😭) for a short human answer;
- anything else on a step's screen ("u:ask"): a question is answered from the FAQ and
  followed by the step's buttons, so one press returns to the step; a word that is not
  a question gets the step's short re-prompt ("u:again") instead of the FAQ's
  "no ready answer". On a step that takes any text (a comment), a question is asked
  about first ("u:which").

The engine calls `resolve()` with the buttons it last showed; the handlers below use the
transcript to show that screen again. The words live in texts/understanding.toml.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from rapidfuzz import fuzz
from sqlalchemy import select

from handlers.buttons import Grammar, OneOf
from handlers.core import Button, Context, Incoming, Reply, Router
from handlers.hotline import person_rows
from handlers.menu import menu_button
from storage.models import TranscriptEntry
from texts import TEXTS_DIR

router = Router("understanding")

PREFIX = "u"
WORDS_FILE = TEXTS_DIR / "understanding.toml"
# Fuzzy matching of a typed label: the whole label, or its start when long enough.
LABEL_SCORE = 85
PREFIX_TYPO_SCORE = 85
MIN_PREFIX = 3
# Another label this close to the best one makes the typed words ambiguous.
AMBIGUITY_GAP = 6
TOPIC_SCORE = 88
# A yes/no word may start a short answer: «да, удалите», «нет, не надо».
LEADING_ANSWER_WORDS = 3
# Payloads of screens that are not a step: the main menu and the FAQ's answers.
TOP_LEVEL = ("menu", "help", "contacts")
# How many transcript rows are read to find the screen the parent was on.
SCREEN_ROWS = 80
HEADLINE_LIMIT = 120
# The personal data this module keeps in the conversation state (a comment or question).
PENDING_KEY = "u_pending"

_DIGIT = re.compile(r"^\s*(?:№\s*)?(\d{1,3})\s*[.)]?\s*$")
_NOT_WORD = re.compile(r"[^\w\s]+")
_SKIN_AND_JOINERS = re.compile("[\U0001f3fb-\U0001f3ff\ufe0f\u200d\u20e3]")


@dataclass(frozen=True)
class Shown:
    label: str
    payload: str
    role: str = ""

    @classmethod
    def from_stored(cls, item: Sequence[str]) -> Shown:
        return cls(str(item[0]), str(item[1]), str(item[2]) if len(item) > 2 else "")


@dataclass(frozen=True)
class Words:
    phrases: dict[str, frozenset[str]]
    answer_starts: dict[str, frozenset[str]]
    topics: dict[str, frozenset[str]]
    good_emoji: frozenset[str]
    sad_emoji: frozenset[str]
    question_starts: tuple[tuple[str, ...], ...]
    numbers: dict[str, int]
    age_stems: tuple[tuple[str, int], ...]
    months: tuple[tuple[str, int], ...]
    day_endings: tuple[str, ...]
    year_words: tuple[str, ...]
    age_endings: tuple[str, ...]


def normalise(text: str) -> str:
    """Lower case, «ё» as «е», punctuation as spaces, spaces collapsed."""
    value = text.lower().replace("ё", "е")
    return " ".join(_NOT_WORD.sub(" ", value).split())


@cache
def words(path: Path = WORDS_FILE) -> Words:
    with path.open("rb") as handle:
        raw = tomllib.load(handle)

    def phrase_set(items: list[str]) -> frozenset[str]:
        return frozenset(normalise(item) or item.strip() for item in items)

    def number_table(table: dict[str, list[str]]) -> list[tuple[str, int]]:
        return [(normalise(word), int(n)) for n, forms in table.items() for word in forms]

    return Words(
        phrases={role: phrase_set(items) for role, items in raw["words"].items()},
        answer_starts={role: phrase_set(items) for role, items in raw["answer_starts"].items()},
        topics={payload: phrase_set(items) for payload, items in raw["topics"].items()},
        good_emoji=frozenset(raw["emoji"]["good"]),
        sad_emoji=frozenset(raw["emoji"]["sad"]),
        question_starts=tuple(tuple(normalise(s).split()) for s in raw["questions"]["starts"]),
        numbers=dict(number_table(raw["numbers"])),
        # Longest stems first: «одиннадцати» before «одно».
        age_stems=tuple(sorted(number_table(raw["age_stems"]), key=lambda x: -len(x[0]))),
        months=tuple(sorted(number_table(raw["months"]), key=lambda x: -len(x[0]))),
        day_endings=tuple(raw["forms"]["day_endings"]),
        year_words=tuple(raw["forms"]["year_words"]),
        age_endings=tuple(raw["forms"]["age_endings"]),
    )


# -- reading the words ---------------------------------------------------------------------
def phrase_role(text: str) -> tuple[str, bool]:
    """(role, True) when the whole message is one of the phrases of a role of
    texts/understanding.toml [words] (yes, no, menu, back, stop, restart, help, thanks);
    ("yes" | "no", False) when a yes/no word starts a short answer («да, удалите»);
    ("", False) otherwise."""
    lexicon = words()
    stripped = text.strip()
    norm = normalise(text)
    for role, phrases in lexicon.phrases.items():
        if norm in phrases or stripped in phrases:
            return role, True
    parts = norm.split()
    if parts and len(parts) <= LEADING_ANSWER_WORDS and "?" not in text:
        for role in ("yes", "no"):
            if parts[0] in lexicon.answer_starts[role]:
                return role, False
    return "", False


def emoji_kind(text: str) -> str:
    """ "good" / "sad" / "other" for a message of emoji (or brackets) only, else ""."""
    value = _SKIN_AND_JOINERS.sub("", "".join(text.split()))
    if not value or any(ch.isalnum() for ch in value):
        return ""
    if set(value) <= set(")"):
        return "good"
    if set(value) <= set("("):
        return "sad"
    if not any(unicodedata.category(ch) == "So" for ch in value):
        return ""
    lexicon = words()
    good = sum(ch in lexicon.good_emoji for ch in value)
    sad = sum(ch in lexicon.sad_emoji for ch in value)
    if sad > good:
        return "sad"
    return "good" if good else "other"


def looks_like_question(text: str) -> bool:
    """A question mark in a message of two words or more, or a question word first."""
    parts = normalise(text).split()
    if len(parts) < 2:
        return False
    if "?" in text:
        return True
    return any(tuple(parts[: len(start)]) == start for start in words().question_starts)


def topic_payload(text: str) -> str | None:
    """The section a topic word typed alone names («регистрация» -> "reg")."""
    norm = normalise(text)
    if not norm or len(norm.split()) > 3:
        return None
    for payload, phrases in words().topics.items():
        if norm in phrases:
            return payload
    if len(norm) < 6 or " " in norm:
        return None
    scored = [
        (fuzz.ratio(norm, phrase), payload)
        for payload, phrases in words().topics.items()
        for phrase in phrases
    ]
    best = max(scored, default=(0.0, ""))
    return best[1] if best[0] >= TOPIC_SCORE else None


def label_match(text: str, shown: Sequence[Shown], *, prefixes: bool = True) -> str | None:
    """The payload of the one button whose label the text is: exactly, its start (when
    `prefixes`), or with a typo; None when no label or more than one fits."""
    wanted = normalise(text)
    if not wanted:
        return None
    labels = [(normalise(item.label), item) for item in shown]
    exact = {item.payload for label, item in labels if label == wanted}
    if len(exact) == 1:
        return exact.pop()
    if exact:
        return None
    scored: list[tuple[float, str]] = []
    for label, item in labels:
        score = fuzz.ratio(wanted, label)
        if prefixes and len(wanted) >= MIN_PREFIX and len(wanted) < len(label):
            if label.startswith(wanted):
                score = 100.0
            elif len(wanted) >= 5:
                start = fuzz.ratio(wanted, label[: len(wanted)])
                if start >= PREFIX_TYPO_SCORE:
                    score = max(score, start - 1)
        if score >= LABEL_SCORE:
            scored.append((score, item.payload))
    if not scored:
        return None
    scored.sort(reverse=True)
    best_score, best = scored[0]
    rivals = {payload for score, payload in scored[1:] if score > best_score - AMBIGUITY_GAP}
    return None if rivals - {best} else best


def role_match(role: str, shown: Sequence[Shown]) -> str | None:
    payloads = {item.payload for item in shown if item.role == role}
    return payloads.pop() if len(payloads) == 1 else None


def digit_of(text: str) -> int | None:
    found = _DIGIT.match(text)
    return int(found.group(1)) if found else None


def is_step_screen(
    payloads: Sequence[str], top_level: set[str], trigger: str | None = None
) -> bool:
    """Whether these buttons belong to a step of a dialogue, not to the main menu or an
    FAQ answer (where a typed question is simply a new question): a button that leads
    deeper than a section, or a screen brought up by a button inside a section."""
    if any(p not in top_level and not p.startswith("faq:") for p in payloads):
        return True
    return trigger is not None and ":" in trigger and not trigger.startswith("faq:")


def resolve(
    text: str,
    *,
    step: str | None,
    shown: Sequence[Shown],
    menu: dict[str, str],
    free_step: bool = False,
    handles: Callable[[str], bool] = lambda payload: True,
) -> str | None:
    """The payload the typed `text` stands for, or None to let the router read it as
    text (the answer to a step waiting for typed input, or a question for the FAQ).

    `step` is the step waiting for typed input, if any; `shown` the buttons on screen;
    `menu` the main menu's normalised labels to payloads; `free_step` whether the step
    takes any text (a comment); `handles` whether a payload reaches a handler.
    """
    if not text.strip() or text.strip().startswith("/"):
        return None
    typed = step is not None
    # At a step waiting for a value only a whole label (a typo allowed) is a press: the
    # start of one may be the value itself.
    found = label_match(text, shown, prefixes=not typed)
    if found:
        return found
    if normalise(text) in menu:
        return menu[normalise(text)]

    role, whole = phrase_role(text)
    if role in ("yes", "no"):
        pressed = role_match(role, shown)
        if pressed:
            return pressed
        if whole and not typed and shown:
            return f"{PREFIX}:again"
    elif role == "menu":
        return "menu"
    elif role == "help":
        return "help"
    elif role == "back":
        return role_match("back", shown) or role_match("stop", shown) or "menu"
    elif role == "stop":
        return role_match("stop", shown) or f"{PREFIX}:stop"
    elif role == "restart":
        return role_match("restart", shown) or f"{PREFIX}:restart"
    elif role == "thanks":
        return f"{PREFIX}:emoji:good"

    kind = emoji_kind(text)
    if kind:
        return f"{PREFIX}:emoji:{kind}"

    if typed:
        if looks_like_question(text):
            return f"{PREFIX}:which" if free_step else f"{PREFIX}:ask"
        return None

    number = digit_of(text)
    if number is not None and shown:
        if 1 <= number <= len(shown):
            return shown[number - 1].payload
        return f"{PREFIX}:again"

    topic = topic_payload(text)
    if topic and handles(topic):
        return topic
    found = label_match(text, [Shown(label, payload) for label, payload in menu.items()])
    if found:
        return found
    return f"{PREFIX}:ask" if shown else None


# -- the screen the parent was on ----------------------------------------------------------
@dataclass
class Screen:
    replies: list[Reply]
    # The payload of the message that brought the screen up (None: typed text, a command).
    trigger: str | None = None

    @property
    def rows(self) -> list[list[Button]]:
        return [row for reply in self.replies for row in reply.buttons if row]

    @property
    def payloads(self) -> list[str]:
        return [button.payload for row in self.rows for button in row]

    def headline(self) -> str:
        """The first line of the screen's question (its first message with buttons), short
        enough to repeat."""
        asking = [r for r in self.replies if r.buttons and r.text.strip()] or self.replies
        first = next((r.text for r in asking if r.text.strip()), "")
        line = first.strip().splitlines()[0] if first.strip() else ""
        if len(line) > HEADLINE_LIMIT:
            line = line[:HEADLINE_LIMIT].rsplit(" ", 1)[0].rstrip(",.;:—- ") + "…"
        return line


def _reply_of(entry: TranscriptEntry) -> Reply:
    rows = (entry.buttons or {}).get("rows", [])
    return Reply(entry.text, [[Button(*map(str, stored)) for stored in row] for row in rows])


async def last_screen(ctx: Context) -> Screen:
    """What the bot said in the last turn that was not this module's own answer (a question
    answered mid-step keeps the step's screen), read from the transcript."""
    entries = (
        await ctx.session.scalars(
            select(TranscriptEntry)
            .where(TranscriptEntry.user_id == ctx.user.id)
            .order_by(TranscriptEntry.id.desc())
            .limit(SCREEN_ROWS)
        )
    ).all()
    collected: list[TranscriptEntry] = []
    trigger: str | None = None
    seen_current = False
    for entry in entries:
        if entry.direction == "in":
            if not seen_current:
                seen_current = True
                continue
            if (entry.payload or "").startswith(PREFIX + ":") or not collected:
                collected = []
                continue
            trigger = entry.payload
            break
        if seen_current and entry.kind in (None, "reply"):
            collected.append(entry)
    return Screen([_reply_of(entry) for entry in reversed(collected)], trigger)


def top_level_payloads(ctx: Context) -> set[str]:
    root = getattr(ctx.services, "router", None)
    items = root.menu_items if root is not None else []
    return {*TOP_LEVEL, *(item.payload for item in items)}


def _kept(button: Button) -> bool:
    return button.payload.startswith("faq:") or button.payload == "contacts"


def _decapitalised(line: str) -> str:
    if len(line) > 1 and line[0].isupper() and line[1].islower():
        return line[0].lower() + line[1:]
    return line


# -- answers -------------------------------------------------------------------------------
def show_again(ctx: Context, screen: Screen) -> None:
    """The step's short re-prompt: what it asked and its buttons again."""
    rows = screen.rows or [[menu_button(ctx)]]
    count = sum(len(row) for row in rows)
    text = ctx.texts("understanding.again")
    if screen.headline():
        text += "\n" + screen.headline()
    text += "\n" + ctx.texts("understanding.again_hint", n=count)
    ctx.reply(text, rows)


def show_continue(ctx: Context, screen: Screen) -> None:
    """After an answer given mid-step: the way back to the step, one press away."""
    rows = screen.rows
    # The answer keeps only its suggestions and the hotline: its links and «В меню» would
    # come before the step's buttons and take their numbers.
    for reply in ctx.replies:
        reply.buttons = [kept for row in reply.buttons if (kept := [b for b in row if _kept(b)])]
    headline = screen.headline()
    text = (
        ctx.texts("understanding.continue", step=_decapitalised(headline))
        if headline
        else ctx.texts("understanding.continue_plain")
    )
    ctx.reply(text, rows)


async def answer_question(incoming: Incoming, ctx: Context, question: str) -> None:
    """The FAQ's answer to `question`, as it answers any free text."""
    from handlers import faq

    asked = Incoming(**{**incoming.__dict__, "text": question, "payload": None})
    for handler in faq.router.free_text:
        if await handler(asked, ctx):
            return


def faq_knows(ctx: Context, question: str) -> bool:
    from handlers.faq import load_faq

    service = getattr(ctx.services, "faq", None) or load_faq()
    verdict = service.decide(question)
    return not verdict.handoff


BUTTONS = Grammar(
    PREFIX,
    {
        **{action: {} for action in ("ask", "again", "which", "answer", "keep")},
        **{action: {} for action in ("stop", "restart")},
        "emoji": {"kind": OneOf("good", "sad", "other")},
    },
)


@router.button(BUTTONS, keeps_step=True)
async def understood(incoming: Incoming, ctx: Context) -> None:
    action = ctx.pressed.action
    if action not in ("answer", "keep"):
        # A question held for «Ответить / Сохранить» is not kept past the next message.
        ctx.data.pop(PENDING_KEY, None)
    if action == "stop":
        _drop_drafts(ctx)
        ctx.say("understanding.stopped")
        ctx.show_menu()
        return
    if action == "restart":
        _drop_drafts(ctx)
        ctx.data.pop("reg", None)
        ctx.say("understanding.restarted")
        ctx.show_menu()
        return
    screen = await last_screen(ctx)
    step_screen = ctx.state.step is not None or is_step_screen(
        screen.payloads, top_level_payloads(ctx), screen.trigger
    )
    if action == "again":
        show_again(ctx, screen)
    elif action == "emoji":
        kind = ctx.pressed["kind"]
        if kind == "sad":
            ctx.reply(
                ctx.texts("understanding.emoji_sad") + "\n\n" + ctx.texts("hotline.regional"),
                person_rows(ctx) if not step_screen else [],
            )
            if step_screen:
                show_continue(ctx, screen)
        else:
            ctx.reply(ctx.texts("understanding.emoji_good"), screen.rows or [[menu_button(ctx)]])
    elif action == "ask":
        question = incoming.text.strip()
        if not step_screen:
            await answer_question(incoming, ctx, question)
        elif looks_like_question(question) or faq_knows(ctx, question):
            await answer_question(incoming, ctx, question)
            show_continue(ctx, screen)
        else:
            show_again(ctx, screen)
    elif action == "which":
        ctx.data[PENDING_KEY] = incoming.text.strip()
        ctx.say(
            "understanding.which",
            [
                [ctx.button("understanding.btn_answer", f"{PREFIX}:answer")],
                [ctx.button("understanding.btn_keep", f"{PREFIX}:keep")],
            ],
        )
    elif action in ("answer", "keep"):
        pending = ctx.data.pop(PENDING_KEY, "")
        root = getattr(ctx.services, "router", None)
        if not pending or ctx.state.step is None:
            show_again(ctx, screen)
        elif action == "answer":
            await answer_question(incoming, ctx, pending)
            show_continue(ctx, screen)
        elif root is not None:
            typed = Incoming(**{**incoming.__dict__, "text": pending, "payload": None})
            await root.dispatch(typed, ctx)
    else:
        show_again(ctx, screen)


def _drop_drafts(ctx: Context) -> None:
    ctx.finish()
    for key in ("child_draft", "req", PENDING_KEY):
        ctx.data.pop(key, None)
