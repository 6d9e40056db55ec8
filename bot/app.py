"""Composition root: settings -> region, texts, storage, dialogue engine, channels."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import SimpleNamespace

from bot.catalogue_io import load_sample_if_empty
from bot.config import Settings
from bot.delivery import Delivery
from bot.request_status import RequestStatusService
from handlers import Router, build_router
from handlers.confirmation import check_region
from handlers.core import Context, Reply
from handlers.engine import DialogueEngine
from handlers.faq.service import faq_for
from handlers.menu import main_menu
from handlers.reminders import policy as reminder_policy
from storage.db import Database
from storage.models import utcnow
from texts import REGIONS_DIR, Region, Texts, load_region

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

    async def start(self) -> None:
        """Bring the schema up to date; every process calls this before serving."""
        await self.db.migrate()
        if self.settings.catalogue.load_sample:
            await load_sample_if_empty(self.db, self.region, self.texts)

    async def close(self) -> None:
        await self.db.close()


def build_app(settings: Settings) -> App:
    region = load_region(settings.bot.region, settings.bot.regions_dir or REGIONS_DIR)
    check_region(region)
    reminder_policy(region)  # a malformed [reminders] table stops the start here
    texts = Texts(region)
    db = Database(
        settings.database_url, echo=settings.database.echo, schema=settings.database.schema_name
    )
    router = build_router()
    delivery = Delivery(db)
    # `clock` is the one source of "now" for reminders and campaigns (fixed in tests).
    services = SimpleNamespace(settings=settings, delivery=delivery, router=router, clock=utcnow)
    # The FAQ knowledge base is read and indexed once, at start: a broken entry stops here.
    services.faq = faq_for(region)
    services.request_status = RequestStatusService(db, delivery, texts)

    def menu(ctx: Context) -> Reply:
        return main_menu(ctx, router)

    engine = DialogueEngine(db, router, texts, menu, services)
    return App(settings, region, texts, db, router, engine, delivery, services)
