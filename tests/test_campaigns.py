"""Campaigns as staff run them: filters, a preview, confirmation, daytime only, paced,
and resumed after an interruption without anyone getting the message twice."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from bot import campaigns
from bot.campaigns import Audience, CampaignError
from storage.models import CampaignDelivery, User
from tests.cli import navbot
from tests.reminders import FixedClock, make_parents, outgoing, per_user
from texts import REGIONS_DIR

NOON = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)  # 12:00 in Stavropol

CAMPAIGN = """
id = "december"
text = \"\"\"Уважаемые родители! До конца декабря подтвердите данные ребёнка.
Навигатор: {region.navigator_url}\"\"\"

[buttons]
"Подтверждение данных ребёнка" = "confirm"
"""


def campaign_file(tmp_path, body: str = CAMPAIGN):
    path = tmp_path / "december.toml"
    path.write_text(body, encoding="utf-8")
    return path


class Interrupted(Exception):
    pass


async def test_2000_parents_interrupted_halfway_and_resumed_get_it_once(app, tmp_path):
    telegram = await make_parents(app, 1000, channel="telegram")
    vk = await make_parents(app, 1000, channel="vk", first_id=5000)
    message = campaigns.load_campaign_file(campaign_file(tmp_path), app.region, app.router)
    async with app.db.session() as session:
        campaign = await campaigns.create(session, message, Audience(), NOON)
    assert campaign.audience == 2000
    clock = FixedClock(NOON)
    steps: list[Counter[str]] = []

    async def sleep_then_interrupt(seconds: float) -> None:
        clock.advance(seconds=seconds)
        if sum(sum(step.values()) for step in steps) >= 1000:
            raise Interrupted  # Ctrl+C while waiting for the next second's share

    with pytest.raises(Interrupted):
        await campaigns.send(
            app, campaign.id, clock=clock, sleep=sleep_then_interrupt, on_progress=steps.append
        )
    first_run = await per_user(app, "campaign")
    assert 1000 <= sum(first_run.values()) < 2000

    async def sleep(seconds: float) -> None:
        clock.advance(seconds=seconds)

    await campaigns.send(app, campaign.id, clock=clock, sleep=sleep, on_progress=steps.append)
    counts = await per_user(app, "campaign")
    assert set(counts) == set(telegram + vk)
    assert set(counts.values()) == {1}
    # Paced: one second's worth of each platform's limit at a time (20/s without limits).
    assert max(sum(step.values()) for step in steps) <= 2 * 20
    async with app.db.session() as session:
        assert (await campaigns.progress(session, campaign.id)) == Counter(sent=2000)
    (row, *_) = await outgoing(app, "campaign")
    assert "https://р26.навигатор.дети/" in row.text
    assert row.buttons == {"rows": [[["Подтверждение данных ребёнка", "confirm"]]]}


async def test_only_in_the_daytime_and_unreachable_parents_skipped(app, tmp_path):
    users = await make_parents(app, 5)
    async with app.db.session() as session:
        await session.execute(update(User).where(User.id == users[0]).values(reachable=False))
    message = campaigns.load_campaign_file(campaign_file(tmp_path), app.region, app.router)
    async with app.db.session() as session:
        campaign = await campaigns.create(session, message, Audience(), NOON)
    clock = FixedClock(datetime(2026, 12, 3, 19, 0, tzinfo=UTC))  # 22:00 in Stavropol
    waits: list[datetime] = []
    sent_at: list[datetime] = []

    async def sleep(seconds: float) -> None:
        clock.advance(seconds=seconds)

    done = await campaigns.send(
        app,
        campaign.id,
        clock=clock,
        sleep=sleep,
        on_wait=waits.append,
        on_progress=lambda step: sent_at.append(clock.now),
    )
    assert waits == [datetime(2026, 12, 4, 7, 0, tzinfo=UTC)]  # 10:00 the next morning
    assert sent_at[0] == datetime(2026, 12, 4, 7, 0, tzinfo=UTC)
    assert done == Counter(sent=4, unreachable=1)
    assert users[0] not in await per_user(app, "campaign")


async def test_audience_filters(app):
    from storage.models import Child, EnrollmentRequest, Program

    a = await make_parents(app, 3, municipality_id="stavropol", source="school12")
    await make_parents(app, 2, channel="vk", first_id=100, municipality_id="stavropol")
    c = await make_parents(app, 4, first_id=200, municipality_id="pyatigorsk")
    async with app.db.session() as session:
        await session.execute(update(User).where(User.id == a[0]).values(data_confirmed_at=NOON))
        program = await session.scalar(select(Program).limit(1))
        child = Child(user_id=c[0], full_name="Иванов Иван", birth_date=datetime(2015, 1, 1))
        session.add(child)
        await session.flush()
        session.add(
            EnrollmentRequest(
                user_id=c[0], child_id=child.id, program_id=program.id, phone="+7", submit_key="k"
            )
        )

    async def size(**filters) -> int:
        async with app.db.session() as session:
            counts = await campaigns.audience_counts(session, Audience(**filters))
        return sum(counts["all"].values())

    assert await size() == 9
    assert await size(municipalities=["stavropol"]) == 5
    assert await size(municipalities=["stavropol"], channels=["vk"]) == 2
    assert await size(sources=["school12"]) == 3
    assert await size(sources=["school12"], not_confirmed=True) == 2
    assert await size(has_request=True) == 1
    assert await size(channels=["max"]) == 0


def test_a_broken_campaign_file_is_one_clear_line(tmp_path):
    from handlers import build_router
    from texts import load_region

    region, router = load_region("stavropol"), build_router()
    for body, expected in (
        ('text = "', "not valid TOML"),
        ('title = "x"', r"unknown key\(s\) title"),
        ('text = ""', "non-empty text"),
        ('text = "Привет, {name}"', "not a region field"),
        ('text = "x"\n[buttons]\n"Куда-то" = "nowhere"', "which no dialogue handles"),
    ):
        with pytest.raises(CampaignError, match=expected):
            campaigns.load_campaign_file(campaign_file(tmp_path, body), region, router)


@pytest.fixture
def cli_config(tmp_path, database):
    """A config whose region sends at any hour, so the command never waits for morning."""
    regions = tmp_path / "regions"
    regions.mkdir()
    profile = (REGIONS_DIR / "stavropol.toml").read_text(encoding="utf-8")
    (regions / "stavropol.toml").write_text(
        profile.replace('daytime = "10:00-20:00"', 'daytime = "00:00-24:00"'), encoding="utf-8"
    )
    lines = [
        "[bot]",
        f'data_dir = "{tmp_path / "data"}"',
        f'regions_dir = "{regions}"',
        "[database]",
        *(f'{key} = "{value}"' for key, value in database.items()),
    ]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def test_campaign_command_previews_asks_sends_and_resumes(cli_config, tmp_path):
    from bot.app import build_app
    from bot.config import load_settings

    app = build_app(load_settings(cli_config))
    await app.start()
    try:
        ours = await make_parents(app, 3, municipality_id="nevinnomyssk")
        await make_parents(app, 2, first_id=50, municipality_id="stavropol")
        path = campaign_file(tmp_path)
        args = ("-c", str(cli_config), "campaign", str(path), "--municipality", "Невинномысск")
        declined = navbot(*args, stdin="n\n")
        assert declined.returncode == 1, declined.stderr
        assert "audience: 3 parents (telegram 3)" in declined.stdout
        assert "Уважаемые родители! До конца декабря" in declined.stdout
        assert "[ Подтверждение данных ребёнка ]" in declined.stdout
        assert "nothing sent" in declined.stdout
        assert await outgoing(app, "campaign") == []

        sent = navbot(*args, "--yes")
        assert sent.returncode == 0, sent.stderr
        assert "done: 3 queued for delivery" in sent.stdout
        assert set(await per_user(app, "campaign")) == set(ours)
        assert len(await outgoing(app, "campaign")) == 3
        status = navbot("-c", str(cli_config), "reminders")
        assert "december: done, audience 3, sent 3" in status.stdout

        unknown = navbot("-c", str(cli_config), "campaign", str(path), "--municipality", "Марс")
        assert unknown.returncode == 2 and "unknown municipality 'Марс'" in unknown.stderr
    finally:
        await app.close()


async def test_interrupted_command_resumes_where_it_stopped(cli_config, tmp_path):
    from bot.app import build_app
    from bot.config import load_settings

    app = build_app(load_settings(cli_config))
    await app.start()
    try:
        users = await make_parents(app, 4)
        path = campaign_file(tmp_path)
        message = campaigns.load_campaign_file(path, app.region, app.router)
        async with app.db.session() as session:
            campaign = await campaigns.create(session, message, Audience(), NOON)
            # As a run stopped after the first two: theirs are in the outbox already.
            rows = list(
                await session.scalars(
                    select(CampaignDelivery).order_by(CampaignDelivery.id).limit(2)
                )
            )
            for row in rows:
                row.state, row.sent_at = "sent", NOON
        resumed = navbot("-c", str(cli_config), "campaign", str(path), "--yes")
        assert resumed.returncode == 0, resumed.stderr
        assert "audience 4, sent 2, unreachable 0, left 2" in resumed.stdout
        assert "done: 4 queued for delivery" in resumed.stdout
        assert set(await per_user(app, "campaign")) == set(users[2:])
        assert campaign.audience == 4
    finally:
        await app.close()
