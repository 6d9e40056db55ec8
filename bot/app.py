"""Composition root: settings -> region, texts, storage, dialogue engine, channels."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from bot.catalogue_io import load_sample_if_empty
from bot.config import Settings
from bot.delivery import Delivery
from bot.inbox import Inbox
from bot.request_status import RequestStatusService
from handlers import Router, build_router
from handlers.confirmation import check_region
from handlers.core import Context, Reply
from handlers.engine import DialogueEngine
from handlers.faq.service import faq_for
from handlers.hooks import FloodLimit, with_person
from handlers.linking import outbox_guard, pd_channels_for
from handlers.menu import main_menu
from handlers.reminders import policy as reminder_policy
from storage.db import Database
from storage.models import utcnow
from storage.outbox import GUARD_INFO
from texts import REGIONS_DIR, Region, Texts, load_region
from texts.consent import load_consent
from texts.hours import working_hours

log = logging.getLogger(__name__)


@dataclass
class App:
    settings: Settings
    region: Region
    texts: Texts
    db: Database
    router: Router
    engine: DialogueEngine
    delivery: Delivery
    services: SimpleNamespace
    inbox: Inbox
    ticker: Any = None

    async def start(self) -> None:
        """Bring the schema up to date; every process calls this before serving."""
        await self.db.migrate()
        if self.settings.catalogue.load_sample:
            await load_sample_if_empty(self.db, self.region, self.texts)

    async def serve(
        self, *, ticker: bool = False, delivery: bool = True, inbox: bool = True
    ) -> None:
        """Start this process's background work: the delivery worker (pending messages
        first), the inbox (updates stored and not yet handled first) and, with `ticker`,
        the reminders' ticker (`navbot run`, once every channel passed its checks; a
        process of some roles only starts theirs)."""
        if delivery:
            await self.delivery.start()
        if inbox:
            await self.inbox.start()
        if ticker and self.settings.reminders.ticker and self.ticker is None:
            from bot.scheduler import Ticker

            self.ticker = Ticker(self)
            self.ticker.start()

    async def close(self) -> None:
        if self.ticker is not None:
            await self.ticker.stop()
            self.ticker = None
        await self.inbox.stop()
        await self.delivery.stop()
        await self.delivery.close()
        await self.db.close()


def build_app(settings: Settings) -> App:
    # Everything the region needs is read here, so a missing or broken file stops every
    # command at start with one line naming it: the profile (with its municipalities),
    # the consent text, the FAQ base with the profile's answers.
    region = load_region(settings.bot.region, settings.bot.regions_dir or REGIONS_DIR)
    check_region(region)
    reminder_policy(region)  # a malformed [reminders] table stops the start here
    working_hours(region)  # so does a malformed [working_hours] table
    consent = load_consent(region.id, settings.bot.regions_dir)
    texts = Texts(region)
    db = Database(
        settings.database_url, echo=settings.database.echo, schema=settings.database.schema_name
    )
    # No personal data into a messenger outside [bot] personal_data_channels: every
    # message to a parent passes this guard in the outbox.
    db.info[GUARD_INFO] = outbox_guard(settings, region, texts)
    router = build_router()
    delivery = Delivery(
        db,
        reply_max_age=timedelta(hours=settings.delivery.reply_max_age_hours),
        pacing=settings.pacing,
        retry_max=settings.delivery.retry_max_seconds,
        give_up=timedelta(minutes=settings.delivery.give_up_minutes),
        request_timeout=settings.delivery.request_timeout_seconds,
    )
    # `clock` is the one source of "now" for reminders and campaigns (fixed in tests).
    services = SimpleNamespace(
        settings=settings,
        delivery=delivery,
        router=router,
        consent=consent,
        clock=utcnow,
        telemetry=delivery.telemetry,
    )
    # The FAQ knowledge base is read and indexed once, at start: a broken entry stops here.
    services.faq = faq_for(region)
    services.request_status = RequestStatusService(
        db, delivery, texts, frozenset(pd_channels_for(settings, region))
    )

    def menu(ctx: Context) -> Reply:
        return main_menu(ctx, router)

    engine = DialogueEngine(db, router, texts, menu, services)
    # A conversation a person has taken gets no word from the bot, a flood notice neither.
    engine.hooks = [
        with_person,
        FloodLimit(settings.bot.flood_messages, settings.bot.flood_seconds),
    ]
    inbox = Inbox(db, engine, delivery)
    return App(settings, region, texts, db, router, engine, delivery, services, inbox)
