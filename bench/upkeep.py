"""The knowledge-base upkeep page with many stored questions.

Stores QUESTIONS questions of as many parents (40 topics the base does not answer, each
asked with random typos, greetings, names and phones; their terms computed as the bot
computes them), one parent in three writing on and one in six asking for a person, then
serves the console on 127.0.0.1 and times GET /upkeep through HTTP with a signed-in
session: the first view (which keeps every question's next step on its row) and the
median of later views; also the process CPU time per view, which depends less on how
loaded the machine is.

    .venv/bin/python -m bench.upkeep [--questions 20000] [--database URL]

PostgreSQL runs in a throw-away schema, dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from bench.catalogue import pg_execute
from bot.app import build_app
from bot.config import Settings
from handlers.faq.grouping import terms_key
from handlers.faq.service import load_faq
from storage.models import FaqUnanswered, Handoff, TranscriptEntry, User
from tests.staff import ADMIN_PASSWORD, Served, StaffClient, create_accounts

TOPICS = [
    "можно ли оплатить сертификатом ипотеку",
    "сколько стоит бассейн для ребенка",
    "когда откроется запись на робототехнику",
    "где купить форму для танцев",
    "как варить борщ",
    "можно ли сертификатом оплатить летний лагерь",
    "почему тренер не отвечает на звонки",
    "есть ли кружок по шахматам в нашем поселке",
    "можно ли перенести занятия на субботу",
    "нужна ли справка от врача для секции борьбы",
    "как поменять группу в художественной школе",
    "возвращают ли деньги если ребенок заболел",
    "можно ли взрослому ходить на курсы английского",
    "почему не приходит смс с кодом",
    "как распечатать расписание занятий",
    "где находится дом культуры",
    "сколько детей в группе по футболу",
    "можно ли заниматься с инвалидностью в бассейне",
    "кто ведет кружок вокала",
    "будут ли занятия на каникулах",
    "как получить налоговый вычет за кружок",
    "можно ли оплатить сертификатом репетитора",
    "почему закрыли секцию дзюдо",
    "где взять форму для соревнований",
    "как записать ребенка в музыкальную школу без экзаменов",
    "можно ли ходить в два бассейна сразу",
    "сколько длится одно занятие по рисованию",
    "нужно ли покупать краски самим",
    "когда выдадут грамоты за конкурс",
    "как стать педагогом дополнительного образования",
    "можно ли оплатить детский сад сертификатом",
    "почему в приложении не видно оценок",
    "есть ли подвоз детей на занятия",
    "можно ли сертификатом оплатить поездку на экскурсию",
    "как попасть на олимпиаду по математике",
    "кормят ли детей на продленке",
    "во сколько заканчивается секция плавания",
    "можно ли прийти на пробное занятие",
    "почему требуют медицинский полис",
    "сколько стоит аренда зала для праздника",
]
GREETINGS = ["", "", "Здравствуйте! ", "Добрый день, ", "подскажите пожалуйста "]
NAMES = ["Иванова Мария Сергеевна", "Петров Алексей", "Кузнецова Светлана Игоревна"]


def typo(text: str, rng: random.Random) -> str:
    words = text.split()
    i = rng.randrange(len(words))
    word = words[i]
    if len(word) > 4:
        j = rng.randrange(1, len(word) - 1)
        word = word[:j] + word[j + 1 :] if rng.random() < 0.5 else word[:j] + word[j] + word[j:]
    words[i] = word
    return " ".join(words)


def question(rng: random.Random) -> str:
    text = rng.choice(TOPICS)
    for _ in range(rng.choice((0, 0, 1, 2))):
        text = typo(text, rng)
    text = rng.choice(GREETINGS) + text + rng.choice(("?", "", "??"))
    if rng.random() < 0.1:
        digits = [rng.randrange(10, 99), rng.randrange(100, 999), rng.randrange(10, 99)]
        phone = "8 9{} {}-{}-{}".format(*digits, rng.randrange(10, 99))
        text = f"{rng.choice(NAMES)}, телефон {phone}. {text}"
    return text


async def fill(app, count: int) -> float:
    started = time.perf_counter()
    rng = random.Random(13)
    analyzer = load_faq().index.analyzer
    now = datetime.now(UTC)
    users, messages, questions, handoffs = [], [], [], []
    message_id = 0
    for number in range(1, count + 1):
        asked = now - timedelta(minutes=rng.randrange(60, 25 * 24 * 60))
        users.append(
            {
                "id": number,
                "channel": "telegram",
                "platform_user_id": str(20_000_000 + number),
                "chat_id": str(20_000_000 + number),
                "created_at": asked,
                "last_seen": asked,
            }
        )
        text = question(rng)
        message_id += 1
        messages.append(
            {
                "id": message_id,
                "user_id": number,
                "direction": "in",
                "text": text,
                "created_at": asked,
            }
        )
        questions.append(
            {
                "user_id": number,
                "question": text,
                "outcome": rng.choice(("unknown", "unknown", "suggest", "answer")),
                "best_entry_id": None,
                "score": 0.1,
                "terms": terms_key(analyzer, text),
                "message_id": message_id,
                "created_at": asked,
            }
        )
        fate = rng.random()
        if fate < 1 / 3:
            message_id += 1
            messages.append(
                {
                    "id": message_id,
                    "user_id": number,
                    "direction": "in",
                    "text": "спасибо",
                    "created_at": asked + timedelta(minutes=2),
                }
            )
        elif fate < 0.5:
            handoffs.append(
                {
                    "user_id": number,
                    "reason": "faq_unknown",
                    "state": "closed",
                    "created_at": asked + timedelta(minutes=1),
                    "waiting_since": asked + timedelta(minutes=1),
                    "returned": 0,
                }
            )
    async with app.db.session() as session:
        for model, rows in (
            (User, users),
            (TranscriptEntry, messages),
            (FaqUnanswered, questions),
            (Handoff, handoffs),
        ):
            for start in range(0, len(rows), 2000):
                await session.execute(insert(model), rows[start : start + 2000])
    return time.perf_counter() - started


async def view(client: StaffClient) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    status, body = await client.get("/upkeep")
    assert status == 200 and "upkeep-groups" in body, status
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


async def main(count: int, database: str | None) -> None:
    schema = None
    with tempfile.TemporaryDirectory() as tmp:
        if database:
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            await pg_execute(database, f'CREATE SCHEMA "{schema}"')
            db = {"url": database, "schema_name": schema}
        else:
            db = {"url": f"sqlite+aiosqlite:///{Path(tmp) / 'bench.sqlite3'}"}
        settings = Settings(bot={"data_dir": Path(tmp), "region": "stavropol"}, database=db)
        app = build_app(settings)
        await app.start()
        try:
            await create_accounts(app)
            filled = await fill(app, count)
            served = Served(app)
            await served.start()
            client = StaffClient(served.base)
            await client.signin("admin", ADMIN_PASSWORD)
            kind = "postgresql" if database else "sqlite"
            first = await view(client)
            later = [await view(client) for _ in range(5)]
            print(f"upkeep {kind}: {count} questions stored in {filled:.1f} s")
            print(f"upkeep {kind}: first view {first[0]:.0f} ms (cpu {first[1]:.0f} ms)")
            wall = statistics.median(w for w, _ in later)
            cpu = statistics.median(c for _, c in later)
            print(f"upkeep {kind}: later views median {wall:.0f} ms (cpu {cpu:.0f} ms)")
            await client.close()
            await served.stop()
        finally:
            await app.close()
            if schema:
                await pg_execute(database, f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=20_000)
    parser.add_argument("--database", default=None, help="a PostgreSQL URL (default: SQLite)")
    args = parser.parse_args()
    asyncio.run(main(args.questions, args.database))
