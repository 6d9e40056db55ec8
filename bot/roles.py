"""`navbot run --role ...`: which parts of the bot one process runs.

- web: the web server (staff console, the Telegram and MAX webhooks, /healthz,
  /metrics); with Telegram in polling mode, the Telegram poller as well.
- vk: the one VK Bots Long Poll reader.
- max: the MAX long-poll reader (MAX in polling mode; in webhook mode MAX comes to web).
- scheduler: the reminders' ticker (one leader across processes: an advisory lock).
- delivery: the outbox worker sending every messenger's messages under the shared pace.

`all` (the default) is every role in one process, the only layout SQLite allows.
A process receiving updates (web, vk, max) handles what it stores; several of them on
PostgreSQL take turns per parent (handlers/engine.py, DialogueEngine.handle_next).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import Settings
from bot.errors import CliError

ROLES = ("web", "vk", "max", "scheduler", "delivery")


@dataclass(frozen=True)
class Roles:
    names: frozenset[str]

    @property
    def all(self) -> bool:
        return self.names == frozenset(ROLES)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    @property
    def receives(self) -> bool:
        """Stores and handles messengers' updates (runs the inbox)."""
        return bool(self.names & {"web", "vk", "max"})

    def __str__(self) -> str:
        return "all" if self.all else ",".join(r for r in ROLES if r in self.names)


ALL = Roles(frozenset(ROLES))


def parse_roles(value: str | None) -> Roles:
    """`web,delivery` -> Roles; a wrong list is one line (CliError)."""
    if value is None or not value.strip():
        return ALL
    names = [part.strip().lower() for part in value.split(",") if part.strip()]
    unknown = [name for name in names if name not in (*ROLES, "all")]
    if unknown:
        raise CliError(
            f"unknown role {unknown[0]!r} in --role {value}: choose from "
            f"{', '.join(ROLES)} (several separated by commas) or all"
        )
    if "all" in names:
        if len(set(names)) > 1:
            raise CliError(f"--role {value}: 'all' already has every role; give it alone")
        return ALL
    return Roles(frozenset(names))


def check_roles(roles: Roles, settings: Settings) -> None:
    """Refuse, in one line, a layout that cannot work with these settings."""
    if roles.all:
        return
    if not settings.database_url.startswith("postgresql"):
        raise CliError(
            f"--role {roles}: on SQLite only one process may serve the bot; run it with "
            "--role all (the default), or use PostgreSQL for several processes"
        )
    if "vk" in roles and not settings.vk_enabled:
        raise CliError(
            f"--role {roles}: the vk role reads VK, which is not configured "
            "(NAVBOT_VK__TOKEN and NAVBOT_VK__GROUP_ID)"
        )
    if "max" in roles:
        if not settings.max_enabled:
            raise CliError(
                f"--role {roles}: the max role reads MAX, which is not configured "
                "(NAVBOT_MAX__TOKEN)"
            )
        if settings.max.mode == "webhook":
            raise CliError(
                f"--role {roles}: MAX is in webhook mode, so its updates come to the web "
                "role; the max role is for MAX in polling mode"
            )
