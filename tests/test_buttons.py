"""Forged, damaged, oversized and stale button payloads: the parent is told the button is
out of date and shown the menu; nothing raises, nobody sees another parent's data.
Typed text is cleaned of what the database cannot store."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from storage.models import EnrollmentRequest, TranscriptEntry
from tests.chat import ChatClient
from tests.cli import navbot, write_config
from tests.enrollment import full_request, program
from tests.messengers import Running, TelegramParent, VkParent

STALE = "Эта кнопка устарела"
MENU = "Мои заявки"

FORGED = [
    "req:cancel:99999999999999999999",  # beyond BIGINT (OverflowError on SQLite before)
    "req:cancel:9223372036854775808",  # BIGINT's maximum + 1
    "req:cancel:9223372036854775807",  # in range, no such request
    "req:cancel:0",
    "req:cancel:-1",
    "req:cancel:²",  # '²'.isdigit() is true, int('²') fails
    "req:cancelok:²",
    "req:cancel:",
    "req:cancel:1:2",
    "req:new:²",
    "req:new:٣",  # an Arabic-Indic digit
    "req:child:99",
    "req:send:not-a-token",
    "req:nosuchaction",
    "cat:show:²",
    "cat:show:100000000000",
    "cat:age:99",
    "cat:dir:cooking",
    "cat:m:atlantis",
    "reg:go:99",
    "reg:go:0",
    "reg:p:haunted:2",
    "cert:status:bogus",
    "cert:age:7",
    "muni:set:atlantis",
    "muni:page:-3",
    "confirm:at:ATLANTIS",
    "consent:maybe",
    "child:add:²",
    "gdpr:now",
    "faq:show:Нет_такого",
    "menu:extra",
    "nosuch",
    "nosuch:thing:1",
    "~forgedkey123",
    "req:cancel:" + "1" * 300,
    "cat:" + "x" * 1000,
]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_every_forged_payload_gets_the_out_of_date_answer_and_the_menu(chat: ChatClient):
    await chat.send("/start")
    for payload in FORGED:
        await chat.send("", payload=payload)
        assert STALE in chat.text, payload
        assert MENU in chat.labels, payload
    # and the conversation goes on as before
    await chat.press("Мои заявки")
    assert "У вас пока нет заявок" in chat.text


async def test_forged_payloads_on_both_databases(chat: ChatClient):
    await chat.send("/start")
    for payload in ("req:cancel:99999999999999999999", "req:cancel:9223372036854775807"):
        await chat.send("", payload=payload)
        assert STALE in chat.text, payload
    await chat.send("", payload="req:new:²")
    assert STALE in chat.text


async def test_another_parents_request_and_child_stay_out_of_reach(app):
    owner = ChatClient(app.engine, user_id="2001")
    stranger = ChatClient(app.engine, user_id="2002")
    target = await program(app, "900000")
    await full_request(owner, target.id, name="Смирнова Ольга Петровна")
    await owner.press("Отправить заявку")
    async with app.db.session() as session:
        request = await session.scalar(select(EnrollmentRequest))
    child_id = request.child_id

    await stranger.send("/start")
    for payload in (
        f"req:cancel:{request.id}",
        f"req:cancelok:{request.id}",
        f"req:child:{child_id}",
    ):
        await stranger.send("", payload=payload)
        assert STALE in stranger.text, payload
        assert "Смирнова" not in stranger.text and "Ольга" not in stranger.text
    async with app.db.session() as session:
        assert (await session.get(EnrollmentRequest, request.id)).status == "new"

    # the owner's own button still works
    await owner.send("", payload=f"req:cancel:{request.id}")
    assert f"Отменить заявку №{request.id}?" in owner.text


async def test_a_nul_byte_and_a_lone_surrogate_are_dropped_before_storing(chat: ChatClient, app):
    await chat.send("/start")
    await chat.send("как получить\x00 сертификат\ud800")
    assert "Сертификат" in chat.text or "сертификат" in chat.text
    async with app.db.session() as session:
        typed = await session.scalar(
            select(TranscriptEntry.text)
            .where(TranscriptEntry.direction == "in")
            .order_by(TranscriptEntry.id.desc())
            .limit(1)
        )
    assert typed == "как получить сертификат"


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_terminal_channel_answers_a_nul_byte_on_postgresql_and_keeps_running(tmp_path, database):
    config = write_config(tmp_path, database)
    script = "/start\nне приходит\x00 письмо\n²\n/help\n"
    result = navbot("--config", str(config), "console", stdin=script, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "database unavailable" not in result.stderr
    assert "«Спам»" in result.stdout  # the question with the NUL byte was answered
    assert "/menu" in result.stdout  # and /help after it too


async def test_forged_callback_data_in_telegram_and_vk(running: Running, fake_telegram, fake_vk):
    telegram = TelegramParent(running, fake_telegram, 4101)
    vk = VkParent(running, fake_vk, 4102)
    await telegram.send("/start")
    await vk.send("/start")
    for data in ("req:cancel:99999999999999999999", "cat:show:²", "~notakey", "nosuch:1"):
        before = len(telegram._sent())
        update = await fake_telegram.callback(4101, data)
        await telegram._settle(update["update_id"], before)
        assert STALE in telegram.text, data
        assert MENU in telegram.labels, data

        before = len(vk._sent())
        event = await fake_vk.press(4102, json.dumps({"p": data}))
        await vk._settle(event["event_id"], before)
        assert STALE in vk.text, data
        assert MENU in vk.labels, data
    await telegram.press("Мои заявки")
    assert "У вас пока нет заявок" in telegram.text


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_no_button_the_bot_shows_is_called_out_of_date(chat: ChatClient, app):
    """Press every distinct button the bot shows, breadth first from /start and from a
    request on the way: each parses with its grammar and reaches its handler. (Erasing
    the data is left out: afterwards the child's buttons are rightly out of date.)"""
    target = await program(app, "900000")
    await full_request(chat, target.id)
    queue = [b.payload for b in chat.buttons]
    await chat.send("/start")
    queue += [b.payload for b in chat.buttons]
    seen: set[str] = {"gdpr:yes"}
    presses = 0
    while queue and presses < 200:
        payload = queue.pop(0)
        if payload in seen:
            continue
        seen.add(payload)
        presses += 1
        await chat.send("", payload=payload)
        assert STALE not in chat.text, payload
        queue += [b.payload for b in chat.buttons if b.payload not in seen]
    prefixes = {payload.split(":", 1)[0] for payload in seen}
    # «help» is a command here, consent was given before the crawl, and «u» (what typed
    # words mean) is reached by typing, not pressing: tests/test_typing*.py press its buttons
    assert set(app.router.grammars) <= prefixes | {"help", "consent", "u"}, prefixes
    assert presses > 100, presses
