"""Document reminders as a parent lives them, on a fixed clock: when they come (cadence,
daytime in the region's time zone, after downtime), and what the parent's answers do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from bot.scheduler import channel_rate, queue_due_reminders
from storage import handoffs
from storage.models import Reminder, TranscriptEntry, User
from storage.requests import as_utc
from tests.chat import ChatClient
from tests.guided import profile_with_points, region_app
from tests.reminders import FixedClock, make_parents, outgoing, plan_due

# Tuesday 1 December 2026, 12:00 in Stavropol (Europe/Moscow, UTC+3).
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock(app) -> FixedClock:
    fixed = FixedClock(START)
    app.services.clock = fixed
    return fixed


async def parent(app, chat: ChatClient) -> User:
    async with app.db.session() as session:
        return await session.scalar(
            select(User).where(User.channel == chat.channel, User.platform_user_id == chat.user_id)
        )


async def delivered(app, user_id: int) -> None:
    """What the delivery worker does once a message reached the parent."""
    async with app.db.session() as session:
        await session.execute(
            update(TranscriptEntry)
            .where(TranscriptEntry.user_id == user_id, TranscriptEntry.status == "pending")
            .values(status="sent")
        )


async def switch_on(chat: ChatClient, municipality: str = "Невинномысск") -> None:
    await chat.send("/start")
    await chat.press("Подтверждение данных ребёнка")
    await chat.press("Напоминать мне о документах")
    assert "в каком муниципалитете вы живёте" in chat.text
    await chat.send(municipality)


async def run_ticker(app, clock: FixedClock, until: datetime, every: timedelta) -> None:
    """Tick as `navbot run` would, from the clock's time until `until`."""
    while clock.now < until:
        clock.set(min(until, clock.now + every))
        await queue_due_reminders(app, clock.now)


async def test_cadence_two_five_ten_days_each_naming_documents_and_points(app, chat, clock):
    await switch_on(chat)
    assert "напомню о документах: 03.12 в 12:00, 06.12 в 12:00, 11.12 в 12:00" in chat.text
    assert "с 10:00 до 20:00 по местному времени" in chat.text
    await run_ticker(app, clock, START + timedelta(days=12), timedelta(minutes=30))
    user = await parent(app, chat)
    sent = await outgoing(app, "reminder", user.id)
    assert len(sent) == 3
    async with app.db.session() as session:
        rows = list(await session.scalars(select(Reminder).order_by(Reminder.seq)))
    assert [(r.seq, r.state) for r in rows] == [(1, "sent"), (2, "sent"), (3, "sent")]
    assert [r.sent_at.astimezone(UTC) for r in rows] == [
        datetime(2026, 12, 3, 9, 0, tzinfo=UTC),
        datetime(2026, 12, 6, 9, 0, tzinfo=UTC),
        datetime(2026, 12, 11, 9, 0, tzinfo=UTC),
    ]
    text = sent[0].text
    for fact in ("СНИЛС ребёнка", "свидетельство о рождении", "паспорт родителя"):
        assert fact in text
    # No points are published for Nevinnomyssk: the reminder gives the regional fallback
    # and where to find them.
    assert "«город Невинномысск», в открытых источниках не опубликованы" in text
    assert "«Управление сертификатом» → «Инструкции»" in text
    labels = [label for row in sent[0].buttons["rows"] for label, _ in row]
    assert labels == ["Я подтвердил(а)", "Где подтвердить?", "Напомнить позже", "Не напоминать"]


async def test_points_of_the_parents_municipality_in_the_reminder(settings, tmp_path):
    async with region_app(settings, "tomsk", profile_with_points(tmp_path / "regions")) as app:
        clock = FixedClock(START)
        app.services.clock = clock
        chat = ChatClient(app.engine)
        await switch_on(chat, "Томск")
        clock.advance(days=2, hours=1)
        assert (await queue_due_reminders(app, clock.now)).sent == 1
        (row,) = await outgoing(app, "reminder")
        assert "Центр «Пример» (тестовый)" in row.text
        assert "Адрес: город Томск, ул. Примерная, д. 1" in row.text
        assert "пн–пт 9:00–18:00" in row.text and "8 (3822) 00-00-01" in row.text
        assert "оригинал свидетельства о рождении" in row.text
        # «Где подтвердить?» typed: the points, as in the dialogue.
        await chat.send("где подтвердить?")
        assert "Школа «Образец» (тестовая)" in chat.text


@pytest.mark.parametrize(
    ("region", "late_evening", "morning"),
    [
        # 23:00 and 10:00 in Stavropol (UTC+3) and in Tomsk (UTC+7).
        (
            "stavropol",
            datetime(2026, 12, 3, 20, 0, tzinfo=UTC),
            datetime(2026, 12, 4, 7, 0, tzinfo=UTC),
        ),
        (
            "tomsk",
            datetime(2026, 12, 3, 16, 0, tzinfo=UTC),
            datetime(2026, 12, 4, 3, 0, tzinfo=UTC),
        ),
    ],
)
async def test_due_at_23_local_goes_out_at_10_local(settings, region, late_evening, morning):
    async with region_app(settings, region) as app:
        from tests.reminders import make_parents

        (uid,) = await make_parents(app, 1)
        await plan_due(app, [uid], late_evening)
        for moment in (
            late_evening,
            late_evening + timedelta(hours=4),
            morning - timedelta(minutes=1),
        ):
            assert (await queue_due_reminders(app, moment)).sent == 0, moment
        assert await outgoing(app, "reminder") == []
        assert (await queue_due_reminders(app, morning)).sent == 1
        assert len(await outgoing(app, "reminder")) == 1


async def test_snooze_reminds_again_a_day_later(app, chat, clock):
    await switch_on(chat)
    clock.set(datetime(2026, 12, 3, 9, 0, tzinfo=UTC))
    assert (await queue_due_reminders(app, clock.now)).sent == 1
    clock.advance(hours=2)  # 14:00 local
    await chat.send("Напомнить позже")  # typed, not pressed
    assert "напомню завтра, 04.12 в 14:00" in chat.text
    user = await parent(app, chat)
    await run_ticker(app, clock, datetime(2026, 12, 4, 10, 59, tzinfo=UTC), timedelta(minutes=30))
    assert len(await outgoing(app, "reminder", user.id)) == 1
    clock.set(datetime(2026, 12, 4, 11, 0, tzinfo=UTC))
    assert (await queue_due_reminders(app, clock.now)).sent == 1
    # The series goes on: the 06.12 and 11.12 reminders are still planned.
    await chat.send("/reminders")
    assert "Запланировано 2 напоминания: 06.12 в 12:00, 11.12 в 12:00" in chat.text


async def test_opt_out_in_the_middle_of_a_series(app, chat, clock):
    await switch_on(chat)
    clock.set(datetime(2026, 12, 3, 9, 0, tzinfo=UTC))
    await queue_due_reminders(app, clock.now)
    await chat.send("Не напоминать")
    assert "Больше не буду напоминать о документах" in chat.text
    await run_ticker(app, clock, START + timedelta(days=12), timedelta(hours=1))
    user = await parent(app, chat)
    assert len(await outgoing(app, "reminder", user.id)) == 1
    await chat.send("/reminders")
    assert "Напоминания о документах выключены" in chat.text
    await chat.press("Включить напоминания")
    assert "напомню о документах: 15.12 в 12:00, 18.12 в 12:00, 23.12 в 12:00" in chat.text


async def test_confirmation_stops_the_rest_and_withdraws_one_not_yet_sent(app, chat, clock):
    await switch_on(chat)
    clock.set(datetime(2026, 12, 3, 9, 0, tzinfo=UTC))
    await queue_due_reminders(app, clock.now)
    user = await parent(app, chat)
    await delivered(app, user.id)
    # The second one is claimed and waits in the outbox when the parent says «done».
    clock.set(datetime(2026, 12, 6, 9, 0, tzinfo=UTC))
    await queue_due_reminders(app, clock.now)
    _first, second = await outgoing(app, "reminder", user.id)
    assert second.status == "pending"
    await chat.send("Я подтвердил(а)")
    assert "данные ребёнка подтверждены" in chat.text
    assert as_utc((await parent(app, chat)).data_confirmed_at) == clock.now
    (withdrawn,) = [r for r in await outgoing(app, "reminder", user.id) if r.id == second.id]
    assert withdrawn.status == "expired"
    await run_ticker(app, clock, START + timedelta(days=12), timedelta(hours=1))
    assert len(await outgoing(app, "reminder", user.id)) == 2
    async with app.db.session() as session:
        states = list(await session.scalars(select(Reminder.state).order_by(Reminder.seq)))
    assert states == ["sent", "confirmed", "confirmed"]
    await chat.send("/reminders")
    assert "напоминать о документах не нужно" in chat.text


async def test_parent_who_blocked_the_bot_is_skipped_until_they_write(app, chat, clock):
    await switch_on(chat)
    user = await parent(app, chat)
    async with app.db.session() as session:
        await session.execute(update(User).where(User.id == user.id).values(reachable=False))
    await run_ticker(app, clock, datetime(2026, 12, 4, 9, 0, tzinfo=UTC), timedelta(hours=1))
    assert await outgoing(app, "reminder", user.id) == []
    await chat.send("здравствуйте")  # writing again means the bot is unblocked
    await queue_due_reminders(app, clock.now)
    assert len(await outgoing(app, "reminder", user.id)) == 1


async def test_no_reminder_while_a_person_has_the_conversation(app, chat, clock):
    await switch_on(chat)
    user = await parent(app, chat)
    await chat.press("В меню")
    await chat.press("Позвать специалиста")
    await run_ticker(app, clock, datetime(2026, 12, 4, 9, 0, tzinfo=UTC), timedelta(hours=1))
    assert await outgoing(app, "reminder", user.id) == []
    async with app.db.session() as session:
        handoff = await handoffs.open_handoff_of(session, user.id)
        assert await handoffs.close(session, handoff.id, "operator", now=clock.now)
    await queue_due_reminders(app, clock.now)
    assert len(await outgoing(app, "reminder", user.id)) == 1


async def test_three_days_of_downtime_send_one_reminder_not_three(app, chat, clock):
    await switch_on(chat)
    user = await parent(app, chat)
    # Down from the evening of 2 December until the afternoon of 6 December: the
    # reminders of 3 and 6 December are both overdue, and every tick was missed.
    clock.set(datetime(2026, 12, 6, 11, 0, tzinfo=UTC))
    results = [await queue_due_reminders(app, clock.now) for _ in range(3)]
    assert [r.sent for r in results] == [1, 0, 0]
    assert results[0].superseded == 1
    assert len(await outgoing(app, "reminder", user.id)) == 1
    await run_ticker(app, clock, START + timedelta(days=12), timedelta(hours=1))
    assert len(await outgoing(app, "reminder", user.id)) == 2


async def test_offered_after_adding_a_child_and_after_the_walkthrough(app, chat, clock):
    from tests.enrollment import add_child
    from tests.guided import open_step

    await chat.send("/start")
    await chat.press("Мои дети и данные")
    await chat.press("Добавить ребёнка")
    await chat.press("Согласен(на)")
    await add_child(chat)
    assert "Сохранил: Иванова Мария Сергеевна" in chat.text
    assert "Напоминать мне о документах" in chat.labels
    await open_step(chat, 8)
    await chat.press("Готово, дальше")
    assert "регистрация пройдена" in chat.text
    await chat.press("Напоминать мне о документах")
    assert "в каком муниципалитете" in chat.text
    await chat.press("Напоминать без адресов")
    assert "напомню о документах: 03.12 в 12:00, 06.12 в 12:00, 11.12 в 12:00" in chat.text
    # Switched on: the dialogues no longer offer it, /reminders can switch it off.
    await chat.send("/start")
    await chat.press("Подтверждение данных ребёнка")
    assert "Напоминать мне о документах" not in chat.labels
    await chat.send("/reminders")
    assert "Запланировано 3 напоминания" in chat.text
    await chat.press("Выключить напоминания")
    assert "Больше не буду напоминать" in chat.text
    clock.advance(days=3)
    assert (await queue_due_reminders(app, clock.now)).sent == 0


async def test_confirmed_parent_is_not_offered_and_gets_nothing(app, chat, clock):
    await switch_on(chat)
    await chat.send("/start")
    await chat.press("Подтверждение данных ребёнка")
    await chat.press("Я подтвердил(а) данные")
    assert "Напоминать о документах больше не буду" in chat.text
    await run_ticker(app, clock, START + timedelta(days=12), timedelta(hours=2))
    assert await outgoing(app, "reminder") == []
    await chat.send("/start")
    await chat.press("Подтверждение данных ребёнка")
    await chat.press("Отменить: нажал(а) по ошибке")
    assert "Напоминать мне о документах" in chat.labels


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("cadence_days = [5, 2]", "rising list of days"),
        ('cadence_days = "2"', "rising list of days"),
        ('daytime = "20:00-10:00"', "start before it ends"),
        ('daytime = "10-20"', "HH:MM"),
        ("often = true", "unknown key"),
    ],
)
def test_a_malformed_reminders_table_stops_the_start_with_one_line(tmp_path, table, expected):
    from bot.app import build_app
    from bot.config import Settings
    from texts import REGIONS_DIR, TextsError

    profile = (REGIONS_DIR / "stavropol.toml").read_text(encoding="utf-8")
    start = profile.index("[reminders]\n")
    end = profile.index("\n\n", start)
    (tmp_path / "stavropol.toml").write_text(
        profile[:start] + "[reminders]\n" + table + profile[end:], encoding="utf-8"
    )
    settings = Settings(bot={"data_dir": tmp_path / "data", "regions_dir": tmp_path})
    with pytest.raises(TextsError, match=expected):
        build_app(settings)


async def test_the_outbox_holds_two_ticks_of_reminders_and_ticks_that_come_late_count(app):
    """Each tick keeps two ticks' worth of the platform's rate waiting, so the delivery
    never runs dry between ticks; when ticks come further apart than their interval (a
    busy process), the tick is as long as they are apart."""
    app.settings.reminders.tick_seconds = 1
    rate = channel_rate(app, "telegram")
    users = await make_parents(app, 500, municipality_id="stavropol")
    await plan_due(app, users, START - timedelta(hours=1))
    assert (await queue_due_reminders(app, START)).sent == int(2 * rate)
    assert (await queue_due_reminders(app, START)).sent == 0  # two ticks' worth waits
    for uid in users:
        await delivered(app, uid)
    assert (await queue_due_reminders(app, START, period=2.5)).sent == int(2 * rate * 2.5)
    assert len(await outgoing(app, "reminder")) == int(2 * rate) + int(5 * rate)
