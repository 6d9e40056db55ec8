"""Helpers for the catalogue and request tests: sample programs, dates, a parent's flow."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from storage.models import Program
from tests.chat import ChatClient


def today() -> date:
    return datetime.now(ZoneInfo("Europe/Moscow")).date()


def born_years_ago(years: int, days: int = 30) -> date:
    """A birth date giving exactly `years` full years today (`days` past the birthday)."""
    now = today()
    return date(now.year - years, now.month, min(now.day, 28)) - timedelta(days=days)


async def program(app, navigator_id: str) -> Program:
    async with app.db.session() as session:
        return await session.scalar(select(Program).where(Program.navigator_id == navigator_id))


async def start_request(chat: ChatClient, program_id: int) -> None:
    await chat.send("Записаться", payload=f"req:new:{program_id}")


async def add_child(
    chat: ChatClient, name: str = "Иванова Мария Сергеевна", years: int = 12
) -> None:
    """Answer the child's questions (the bot is asking for the name)."""
    await chat.send(name)
    await chat.send(born_years_ago(years).strftime("%d.%m.%Y"))
    await chat.press("Пропустить")


async def full_request(
    chat: ChatClient, program_id: int, phone: str = "+7 912 345-67-89", **child
) -> None:
    """From «Записаться» to the confirmation screen, consenting and adding a child."""
    await start_request(chat, program_id)
    if "Согласие на обработку" in chat.text:
        await chat.press("Согласен(на)")
    if "Кого записываем" in chat.text:
        await chat.press(child.get("name", "Иванова Мария Сергеевна"))
    else:
        await add_child(chat, **child)
    await chat.send(phone)
    await chat.press("Без комментария")
    assert "Проверьте заявку" in chat.text, chat.text
