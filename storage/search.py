"""Full-text search over the transcript in Russian word forms.

PostgreSQL: a stored generated column `transcript.search_vector` =
`to_tsvector('russian', text)` with a GIN index; the query is
`plainto_tsquery('russian', ...)`, so the server's Russian stemmer matches word forms
(and a row is checked without stemming its text again).

SQLite: an FTS5 table `transcript_fts` whose rowid is the transcript row's id and whose
column `lemmas` holds the message's words as pymorphy3 lemmas («сертификата» is stored as
«сертификат»), the column `owner` the conversation ("u<users.id>"), so one
conversation's matches are found in the index alone. Triggers keep it in step with the
transcript; the lemmas come from the SQL function `navbot_lemmas()`, which storage.db
registers on every connection.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache

from sqlalchemy import (
    BigInteger,
    any_,
    column,
    exists,
    func,
    literal,
    literal_column,
    select,
    table,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, distinct_on

from storage.models import TranscriptEntry
from texts.morph import analyzer as morph

# Tables that exist only on SQLite and are not declared as models (FTS5 and its shadows).
SEARCH_TABLES = ("transcript_fts",)
# PostgreSQL's stored tsvector column and its GIN index, likewise made by the migration
# alone (the column exists on PostgreSQL only; the models never write it).
SEARCH_INDEXES = ("ix_transcript_fts",)
SEARCH_COLUMNS = ("search_vector",)

_WORD = re.compile(r"[0-9a-z\u0430-\u044f\u0451]+")
_CYRILLIC = re.compile(r"[\u0430-\u044f]")

SQLITE_DDL = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS transcript_fts USING fts5("
    "lemmas, owner, tokenize = 'unicode61 remove_diacritics 0')",
    "CREATE TRIGGER IF NOT EXISTS transcript_fts_insert AFTER INSERT ON transcript BEGIN "
    "INSERT INTO transcript_fts(rowid, lemmas, owner) "
    "VALUES (new.id, navbot_lemmas(new.text), 'u' || new.user_id); END",
    "CREATE TRIGGER IF NOT EXISTS transcript_fts_delete AFTER DELETE ON transcript BEGIN "
    "DELETE FROM transcript_fts WHERE rowid = old.id; END",
    "CREATE TRIGGER IF NOT EXISTS transcript_fts_update AFTER UPDATE OF text ON transcript BEGIN "
    "UPDATE transcript_fts SET lemmas = navbot_lemmas(new.text) WHERE rowid = new.id; END",
    # rows written before the index existed
    "INSERT INTO transcript_fts(rowid, lemmas, owner) "
    "SELECT id, navbot_lemmas(text), 'u' || user_id FROM transcript",
)
SQLITE_DROP = (
    "DROP TRIGGER IF EXISTS transcript_fts_update",
    "DROP TRIGGER IF EXISTS transcript_fts_delete",
    "DROP TRIGGER IF EXISTS transcript_fts_insert",
    "DROP TABLE IF EXISTS transcript_fts",
)
POSTGRESQL_DDL = (
    "ALTER TABLE transcript ADD COLUMN IF NOT EXISTS search_vector tsvector "
    "GENERATED ALWAYS AS (to_tsvector('russian', coalesce(text, ''))) STORED",
    "CREATE INDEX IF NOT EXISTS ix_transcript_fts ON transcript USING gin (search_vector)",
)
POSTGRESQL_DROP = (
    "DROP INDEX IF EXISTS ix_transcript_fts",
    "ALTER TABLE transcript DROP COLUMN IF EXISTS search_vector",
)


@lru_cache(maxsize=200_000)
def _lemma(word: str) -> str:
    if not _CYRILLIC.search(word):
        return word
    return morph().parse(word)[0].normal_form.replace("ё", "е")


def words(value: str) -> list[str]:
    return _WORD.findall(value.lower().replace("ё", "е"))


def lemmas(value: str | None) -> str:
    """The words of `value` as lemmas, space-separated (the SQLite index's text)."""
    if not value:
        return ""
    return " ".join(_lemma(word) for word in words(value))


def register_sqlite_functions(dbapi_connection) -> None:  # type: ignore[no-untyped-def]
    dbapi_connection.create_function("navbot_lemmas", 1, lemmas, deterministic=True)


def fts5_query(query: str) -> str:
    """Every lemma of the query must occur in the message's lemmas:
    «сертификата получить» -> lemmas : ("сертификат" "получить")."""
    terms = " ".join(f'"{_lemma(word)}"' for word in words(query))
    return f"lemmas : ({terms})"


_FTS = table("transcript_fts", column("rowid"))


def _fts_match(q: str):  # type: ignore[no-untyped-def]
    return text("transcript_fts MATCH :q").bindparams(q=q)


# Up to this many matching rows the matches are found first, then their conversations;
# past it the conversations are walked newest first and each is checked on its own.
SET_LIMIT = 20_000


def _pg_match(query: str):  # type: ignore[no-untyped-def]
    return text("transcript.search_vector @@ plainto_tsquery('russian', :q)").bindparams(q=query)


async def _pg_estimate(session, query: str) -> int:  # type: ignore[no-untyped-def]
    """The planner's estimate of matching rows for the query's least frequent word."""
    estimates = []
    for word in dict.fromkeys(words(query)):
        plan = await session.scalar(
            text(
                "EXPLAIN (FORMAT JSON) SELECT 1 FROM transcript "
                "WHERE search_vector @@ plainto_tsquery('russian', :q)"
            ).bindparams(q=word)
        )
        plan = json.loads(plan) if isinstance(plan, str) else plan
        estimates.append(int(plan[0]["Plan"]["Plan Rows"]))
    return min(estimates) if estimates else 0


async def _pg_conversation_matches(session, query: str, user_id_column):  # type: ignore[no-untyped-def]
    """Few matches: found first through the GIN index, then their conversations. Many:
    the conversations are walked newest first (after the other filters) and each row of
    theirs checked against its stored tsvector, a subplan per conversation that the
    planner cannot turn into a scan of every match."""
    if await _pg_estimate(session, query) <= SET_LIMIT:
        found = list(
            await session.scalars(
                select(TranscriptEntry.user_id).where(_pg_match(query)).distinct()
            )
        )
        return user_id_column == any_(literal(found or [0], ARRAY(BigInteger)))
    one = (
        select(literal_column("1"))
        .select_from(TranscriptEntry)
        .where(TranscriptEntry.user_id == user_id_column, _pg_match(query))
        .limit(1)
        .scalar_subquery()
    )
    return one.is_not(None)


async def conversation_matches(session, query: str, user_id_column):  # type: ignore[no-untyped-def]
    """A condition on users: some message of the conversation has every word of `query`
    in any form. None for a query with no words."""
    if not words(query):
        return None
    if session.bind.dialect.name == "postgresql":
        return await _pg_conversation_matches(session, query, user_id_column)
    q = fts5_query(query)
    hits = await session.scalar(
        text(
            "SELECT count(*) FROM (SELECT rowid FROM transcript_fts "
            "WHERE transcript_fts MATCH :q LIMIT :n)"
        ).bindparams(q=q, n=SET_LIMIT + 1)
    )
    if hits <= SET_LIMIT:
        matching = (
            select(TranscriptEntry.user_id)
            .join(_FTS, _FTS.c.rowid == TranscriptEntry.id)
            .where(_fts_match(q))
            .distinct()
        )
        return user_id_column.in_(matching)
    # a frequent word: each conversation (newest first, after the other filters) is
    # checked in the index by its owner column until a page is full
    owned = func.printf("owner : u%d AND %s", user_id_column, q)
    return exists(select(_FTS.c.rowid).where(literal_column("transcript_fts").op("MATCH")(owned)))


# How far back a conversation is read for the matching message shown in the list.
SNIPPET_DEPTH = 300


def lemma_set(value: str | None) -> set[str]:
    return set(lemmas(value).split())


async def latest_matches(session, query: str, user_ids: list[int]) -> dict[int, TranscriptEntry]:  # type: ignore[no-untyped-def]
    """For each conversation, its newest message that matches `query` (on SQLite, among
    its latest SNIPPET_DEPTH messages), in one query."""
    if not words(query) or not user_ids:
        return {}
    newest = (TranscriptEntry.created_at.desc(), TranscriptEntry.id.desc())
    if session.bind.dialect.name == "postgresql":
        statement = (
            select(TranscriptEntry)
            .where(TranscriptEntry.user_id.in_(user_ids), _pg_match(query))
            .order_by(TranscriptEntry.user_id, *newest)
            .ext(distinct_on(TranscriptEntry.user_id))
        )
        return {entry.user_id: entry for entry in await session.scalars(statement)}
    # SQLite: the same lemmas as the index, compared here over each conversation's own
    # latest rows (found by their index), rather than walking every match of a frequent
    # word
    rank = (
        func.row_number().over(partition_by=TranscriptEntry.user_id, order_by=newest).label("rank")
    )
    recent = (
        select(TranscriptEntry.id, rank).where(TranscriptEntry.user_id.in_(user_ids)).subquery()
    )
    statement = (
        select(TranscriptEntry)
        .join(recent, recent.c.id == TranscriptEntry.id)
        .where(recent.c.rank <= SNIPPET_DEPTH)
        .order_by(TranscriptEntry.user_id, *newest)
    )
    wanted = lemma_set(query)
    found: dict[int, TranscriptEntry] = {}
    for entry in await session.scalars(statement):
        if entry.user_id not in found and wanted <= lemma_set(entry.text):
            found[entry.user_id] = entry
    return found
