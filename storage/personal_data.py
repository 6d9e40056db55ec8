"""Every table, with the personal data it holds and what erasing a parent's data means
for it: the one place `/delete_my_data` and the retention purge go through.

- DELETE: the parent's rows are deleted; their number is kept in the audit entry
  `personal_data_deleted` (an anonymous count).
- BLANK: the row stays (the parent can go on using the bot) with the personal
  columns emptied.
- NONE: the table holds no personal data; the reason is written down.

A new table is declared here before it can be merged: tests/test_personal_data.py
fails for a mapped table that is missing, and for a table that refers to a parent
but is declared as holding nothing. `age_column` names the time the retention purge
(`erase_older_than`) compares with its date; a table without one keeps its rows until
the parent erases them. Erasure goes in the registry's order (requests before the
children they name, so each is counted).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.linking import linked_users
from storage.models import Base, ConversationState, InboxEntry, User
from storage.requests import audit

DELETE, BLANK, NONE = "delete", "blank", "none"

# Conversation data that holds nothing about a person and stays after erasure: the
# registration walkthrough's progress, the catalogue filters (without the typed
# keyword) and the pages of the municipality lists. Every other key (a child's or a
# request's draft, the phone kept for the next request, a keyword typed in a search,
# keys added by later dialogues) is removed.
KEPT_STATE_KEYS = ("reg", "cat", "municipality_page", "cat_muni_page")
TYPED_FILTER_KEYS = ("kw",)


@dataclass(frozen=True)
class Holding:
    table: str
    holds: str  # what personal data the table keeps, or why none
    erase: str  # DELETE, BLANK or NONE
    # How a parent's rows are found: "user_id" (a column referring to users.id), "id"
    # (the users table itself) or "platform" (channel + platform_user_id).
    owner: str = "user_id"
    counter: str | None = None  # DELETE: the name of the count in the audit entry
    blank: tuple[str, ...] = ()  # BLANK: the columns emptied
    age_column: str | None = None


REGISTRY: tuple[Holding, ...] = (
    Holding(
        "users",
        "the parent's display name in the messenger; the messenger ids are kept to answer; "
        "whether a person of the hotline has the conversation (cleared with the handoff)",
        BLANK,
        owner="id",
        blank=("name", "with_person_since"),
    ),
    Holding(
        "conversation_states",
        "drafts of a child and a request, the phone kept for the next request, a typed "
        "search keyword, the labels of the buttons last shown (children's names)",
        BLANK,
        blank=("step", "last_buttons"),
    ),
    Holding(
        "transcript",
        "every message in and out: names, dates of birth, phones, questions",
        DELETE,
        counter="messages",
        age_column="created_at",
    ),
    Holding(
        "inbox",
        "messages received and not yet handled, as the parent typed them",
        DELETE,
        owner="platform",
        age_column="created_at",
    ),
    Holding(
        "faq_unanswered",
        "questions typed by the parent (parents type names, phones, SNILS numbers into "
        "them) and their search terms, what the parent did next; staff logins that marked "
        "them are not the parent's",
        DELETE,
        counter="questions",
        age_column="created_at",
    ),
    Holding("consents", "that the parent consented, and when", DELETE, counter="consents"),
    Holding(
        "enrollment_requests",
        "the parent's phone and comment, which child goes to which program",
        DELETE,
        counter="requests",
    ),
    Holding(
        "children",
        "the child's full name, date of birth, certificate number",
        DELETE,
        counter="children",
    ),
    Holding(
        "reminders",
        "when the parent is reminded to confirm the child's data, and whether they "
        "confirmed or opted out (no names, no message texts); erased, nothing more is sent",
        DELETE,
        age_column="created_at",
    ),
    Holding(
        "campaign_deliveries",
        "which campaign the parent was sent and when (the message itself is in the transcript)",
        DELETE,
    ),
    Holding(
        "campaigns",
        "none: the announcement staff wrote and the filters it was sent by",
        NONE,
    ),
    Holding(
        "audit_log",
        "none: actions with request numbers, statuses and counts, never names or phones",
        NONE,
    ),
    Holding(
        "staff_users",
        "none of a parent's: hotline staff accounts (login, Argon2 hash, role)",
        NONE,
    ),
    Holding(
        "staff_sessions",
        "none of a parent's: signed-in staff browsers and which conversations they unmasked "
        "(users.id numbers only)",
        NONE,
    ),
    Holding(
        "staff_sign_in_attempts",
        "none of a parent's: failed staff sign-ins (login and address), for rate limiting",
        NONE,
    ),
    Holding(
        "button_payloads",
        "none: long button payloads the bot made itself (ids and codes, no typed text)",
        NONE,
    ),
    Holding(
        "processed_updates",
        "none: the messengers' update ids already handled, with no user id",
        NONE,
        age_column="created_at",
    ),
    Holding(
        "link_codes",
        "none typed by the parent: the hash of a one-time link code, the municipality and "
        "program chosen; deleted with the parent's data as it points at their conversation",
        DELETE,
        age_column="created_at",
    ),
    Holding(
        "handoffs",
        "the question that sent the parent to a person, who of staff took it and when",
        DELETE,
        counter="handoffs",
        age_column="created_at",
    ),
    Holding(
        "events",
        "none typed by the parent: step names, FAQ entry ids, deep-link sources; the link "
        "to the parent is emptied on erasure so the statistics keep their counts",
        BLANK,
        blank=("user_id",),
    ),
    Holding(
        "stats_daily",
        "none: anonymous daily counts per channel (messages, active parents, events by "
        "kind), rolled up by the ticker and kept when old messages are purged",
        NONE,
    ),
    Holding(
        "stats_rollup",
        "none: the last day whose anonymous counts are rolled up into stats_daily",
        NONE,
    ),
    Holding("programs", "none: the program catalogue", NONE),
    Holding("channel_cursors", "none: where a channel's long poll goes on", NONE),
)


def holding(table: str) -> Holding | None:
    return next((item for item in REGISTRY if item.table == table), None)


def _table(name: str):
    return Base.metadata.tables[name]


def _rows_of(item: Holding, users: list[User], inbox_until: Any):
    """The rows of the asking conversation (users[0]) and of every one linked with it."""
    table = _table(item.table)
    ids = [user.id for user in users]
    if item.owner == "id":
        return table.c.id.in_(ids)
    if item.owner == "platform":
        where = None
        for index, user in enumerate(users):
            mine = (table.c.channel == user.channel) & (
                table.c.platform_user_id == user.platform_user_id
            )
            if index == 0 and inbox_until is not None:
                mine = mine & inbox_until(table)
            where = mine if where is None else where | mine
        return where
    return table.c.user_id.in_(ids)


def clean_state_data(data: dict[str, Any]) -> dict[str, Any]:
    """Conversation data without anything about a person (see KEPT_STATE_KEYS)."""
    kept = {key: data[key] for key in KEPT_STATE_KEYS if key in data}
    if isinstance(kept.get("cat"), dict):
        kept["cat"] = {k: v for k, v in kept["cat"].items() if k not in TYPED_FILTER_KEYS}
    return kept


async def _current_inbox_row(session: AsyncSession, channel: str, update_id: str | None):
    if update_id is None:
        return None
    return await session.scalar(
        select(InboxEntry.id).where(
            InboxEntry.channel == channel, InboxEntry.update_id == str(update_id)
        )
    )


async def erase_person(
    session: AsyncSession,
    user: User,
    state: Any = None,
    incoming: Any = None,
) -> dict[str, int]:
    """Erase everything the registry lists about `user`, in the caller's transaction;
    returns the counts kept in the audit entry `personal_data_deleted`.

    `state` is the conversation state being handled (handlers.core.State), cleaned in
    memory too, since the engine saves it after the handler. `incoming` is the message
    that asked: messages of the parent still waiting in the inbox after it are kept,
    so they are answered; without it, all of them go."""
    inbox_until = None
    if incoming is not None:
        current = await _current_inbox_row(session, incoming.channel, incoming.update_id)
        if current is not None:
            inbox_until = lambda table: table.c.id <= current  # noqa: E731
        else:  # the asking message is not in the inbox: those that came before it
            inbox_until = lambda table: table.c.created_at <= incoming.time  # noqa: E731
    # The parent's conversations in other messengers linked with this one go too.
    users = [user] + [
        other for other in await linked_users(session, user.id) if other.id != user.id
    ]
    counts: dict[str, int] = {}
    for item in REGISTRY:
        if item.erase == NONE:
            continue
        table = _table(item.table)
        where = _rows_of(item, users, inbox_until)
        if item.erase == DELETE:
            found = await session.scalar(select(func.count()).select_from(table).where(where))
            await session.execute(delete(table).where(where))
            if item.counter:
                counts[item.counter] = found or 0
        else:
            await session.execute(
                update(table)
                .where(where)
                .values({name: _empty(table, name) for name in item.blank})
            )
    for each in users:
        row = await session.get(ConversationState, each.id)
        if row is not None:
            await session.refresh(row)
            row.data = clean_state_data(row.data or {})
    # The conversations are no longer one parent's: nothing links them any more.
    await session.execute(
        update(User).where(User.id.in_([each.id for each in users])).values(person_id=None)
    )
    if state is not None:
        state.step = None
        state.data = clean_state_data(state.data)
    for each in users:
        await session.refresh(each)
    audit(session, "personal_data_deleted", "parent", None, **counts)
    return counts


def _empty(table, name: str) -> Any:
    column = table.c[name]
    return None if column.nullable else ""


async def erase_older_than(session: AsyncSession, before: datetime) -> dict[str, int]:
    """The retention purge: delete every row of a table with an age column that is older
    than `before`; returns the number deleted per table."""
    counts: dict[str, int] = {}
    for item in REGISTRY:
        if item.age_column is None:
            continue
        table = _table(item.table)
        where = table.c[item.age_column] < before
        found = await session.scalar(select(func.count()).select_from(table).where(where))
        await session.execute(delete(table).where(where))
        counts[item.table] = found or 0
    if any(counts.values()):
        audit(session, "retention_purge", "system", None, before=before.isoformat(), **counts)
    return counts


__all__ = [
    "BLANK",
    "DELETE",
    "NONE",
    "REGISTRY",
    "Holding",
    "clean_state_data",
    "erase_older_than",
    "erase_person",
    "holding",
]
