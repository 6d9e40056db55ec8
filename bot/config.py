"""Typed settings: config.toml (optional) + environment overrides.

Every key is documented in config.example.toml. Secrets (bot tokens, the staff
console secret) are `SecretStr`: they print as '**********' and never reach logs.
Environment variables use the prefix NAVBOT_ and a double underscore between
section and key, e.g. NAVBOT_TELEGRAM__TOKEN, NAVBOT_DATABASE__URL.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

DEFAULT_CONFIG_FILE = "config.toml"


class ConfigError(Exception):
    """A configuration problem, reported to the administrator as one line."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BotSection(_Section):
    region: str = Field("stavropol", pattern=r"^[a-z0-9_-]+$")
    data_dir: Path = Path("data")
    # Directory of region profiles <region>.toml; None: the profiles shipped in texts/regions.
    regions_dir: Path | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Per-parent flood limit: more than flood_messages in flood_seconds gets one notice,
    # and the excess is recorded but not answered.
    flood_messages: int = Field(20, ge=1)
    flood_seconds: float = Field(10.0, gt=0)
    # The messengers in which the bot may ask for personal data (consent, a child's data,
    # a phone, a request); None: every channel. A state-run centre may not take them
    # through a foreign messenger (149-FZ art. 10 part 8): e.g. ["vk", "max"]. The region
    # profile's top-level `personal_data_channels` overrides it.
    personal_data_channels: list[Literal["telegram", "vk", "max"]] | None = None
    # Minutes a one-time link into another messenger stays valid.
    link_code_minutes: int = Field(60, ge=1, le=7 * 24 * 60)


class DatabaseSection(_Section):
    url: str = ""
    # PostgreSQL only: the schema to keep the tables in (default: the server's search_path).
    schema_name: str = Field("", pattern=r"^[a-z_][a-z0-9_]*$|^$")
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if value and not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "expected 'sqlite+aiosqlite:///path/to/file.sqlite3' or "
                "'postgresql+asyncpg://user@host:port/dbname'"
            )
        return value


# A bot token as @BotFather gives it: the bot's numeric id, a colon, then letters, digits,
# '_' and '-' ("123456789:AAH..."). Checked before any call is made with it.
_TELEGRAM_TOKEN = re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{1,200}")


class TelegramSection(_Section):
    token: SecretStr | None = None
    api_base: str = "https://api.telegram.org"
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: str = ""
    webhook_secret: SecretStr | None = None
    # Seconds a getUpdates long-poll request waits for news (polling mode).
    polling_timeout: int = Field(25, ge=0, le=50)
    # The bot's @username without '@', for t.me/<bot>?start=<code> links into Telegram.
    bot_username: str = Field("", pattern=r"^[A-Za-z0-9_]{0,64}$")

    @field_validator("token")
    @classmethod
    def _token_format(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value():
            if not _TELEGRAM_TOKEN.fullmatch(value.get_secret_value()):
                raise ValueError(
                    "not a Telegram bot token: expected the bot's id, ':' and the key, "
                    "as @BotFather gives it (123456789:AAH...)"
                )
        return value


class VkSection(_Section):
    token: SecretStr | None = None
    group_id: int = Field(0, ge=0)
    api_base: str = "https://api.vk.com/method"
    api_version: str = Field("5.199", pattern=r"^\d+\.\d+$")
    # Seconds a Bots Long Poll request waits for events.
    longpoll_wait: int = Field(25, ge=1, le=90)
    # The community's short address for vk.me/<name>?ref=<code> links (empty: club<group_id>).
    group_screen_name: str = Field("", pattern=r"^[A-Za-z0-9_.]{0,64}$")


class MaxSection(_Section):
    # The bot's token from its settings on the MAX business platform (business.max.ru).
    token: SecretStr | None = None
    api_base: str = "https://platform-api2.max.ru"
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: str = ""
    webhook_secret: SecretStr | None = None
    # A PEM file of certificates to trust for the MAX API, in addition to the shipped
    # Russian Trusted Root CA (an updated chain); empty: the shipped root only.
    ca_file: Path | None = None
    # Seconds one GET /updates long-poll request waits for news (polling mode).
    polling_timeout: int = Field(25, ge=0, le=90)
    # The bot's name for max.ru/<bot>?start=<code> links into MAX.
    bot_username: str = Field("", pattern=r"^[A-Za-z0-9_.-]{0,64}$")

    @field_validator("token")
    @classmethod
    def _header_value(cls, value: SecretStr | None) -> SecretStr | None:
        # The token travels as the Authorization header: visible ASCII, nothing else.
        if value is not None and value.get_secret_value():
            if not re.fullmatch(r"[!#-~]{16,512}", value.get_secret_value()):
                raise ValueError(
                    "malformed: paste the bot's token (NAVBOT_MAX__TOKEN) exactly as shown in "
                    "its settings on business.max.ru, without spaces or quotes"
                )
        return value

    @field_validator("api_base")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("expected an https:// URL such as 'https://platform-api2.max.ru'")
        return value.rstrip("/")


class DeliverySection(_Section):
    # A dialogue reply still unsent after this many hours (the bot was down) is marked
    # expired instead of being sent out of context.
    reply_max_age_hours: float = Field(24.0, gt=0)
    # Seconds one call to a messenger's API may take (the long polls have their own);
    # a call that hangs longer is retried.
    request_timeout_seconds: float = Field(15.0, gt=0, le=300)
    # The longest wait between retries of a failed send or a failed poll (backoff
    # doubles from half a second up to this).
    retry_max_seconds: float = Field(30.0, gt=0, le=3600)
    # A message that still could not be sent this many minutes after its first try
    # (5xx, timeouts, flood control that does not end) is marked failed.
    give_up_minutes: float = Field(30.0, gt=0)


class WebSection(_Section):
    host: str = "127.0.0.1"
    # 0: any free port (printed at start), for tests and trial runs
    port: int = Field(8080, ge=0, le=65535)
    # The staff console's session cookie: "auto" marks it Secure when the page came over
    # https (directly, or X-Forwarded-Proto from a proxy on this machine).
    cookie_secure: Literal["auto", "always", "never"] = "auto"
    # A session ends after this many idle minutes, and in any case after `session_hours`.
    session_idle_minutes: int = Field(30, ge=1, le=24 * 60)
    session_hours: int = Field(12, ge=1, le=24 * 7)
    # Failed sign-ins allowed within `signin_window_minutes`, per login and per address.
    signin_limit_account: int = Field(5, ge=1)
    signin_limit_address: int = Field(20, ge=1)
    signin_window_minutes: int = Field(15, ge=1)
    # A conversation whose dialogue step has not moved for this many hours is "stuck".
    stuck_after_hours: int = Field(24, ge=1)


class ConsoleSection(_Section):
    user_id: str = "local"
    user_name: str = ""


class CatalogueSection(_Section):
    # Import the region's shipped sample catalogue when the programs table is empty.
    load_sample: bool = True


class PacingSection(_Section):
    # Where the platform rate limits are counted: "memory" (one process per token) or
    # "redis" (shared by every process that uses the same token).
    backend: Literal["memory", "redis"] = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Prefix of the Redis keys (they are named after a hash of the token, never the token).
    key_prefix: str = Field("navbot", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(
                "expected 'redis://host:6379/0', 'rediss://host:6380/0' or "
                "'unix:///path/to/redis.sock'"
            )
        return value


class RemindersSection(_Section):
    # Seconds between ticks of the ticker that moves due reminders to the outbox; a
    # second process takes over the ticker within this time after the leader dies.
    tick_seconds: int = Field(30, ge=1, le=60)
    # Reminders moved to the outbox in one transaction.
    batch: int = Field(50, ge=1, le=5000)
    # Reminders moved per channel in one tick; 0: enough to keep two ticks' worth of the
    # platform's rate (messages/s times tick_seconds) waiting in the outbox, no more.
    per_tick: int = Field(0, ge=0, le=1_000_000)
    # Run the ticker in `navbot run` (switch off in a process that only serves webhooks).
    ticker: bool = True


class LoggingSection(_Section):
    # "text": one readable line per record; "json": one JSON object per line (for a log
    # collector), with the update and reference ids as fields. Never personal data.
    format: Literal["text", "json"] = "text"


class RetentionSection(_Section):
    # Days the transcript (and the other dated rows with personal data: unhandled
    # updates, unanswered questions, handoffs, reminders, link codes) are kept; older
    # ones are purged once a day, leaving anonymous daily counts. 0: kept until erased.
    days: int = Field(365, ge=0, le=36500)


class OpsSection(_Section):
    # GET /healthz and /metrics are served by the built-in web server ([web] host, port).
    # A port here also serves them, alone, on host:port: for a process without the web
    # server, or to keep them off the port a proxy forwards. 0: the web server only.
    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535)
    # /healthz answers 503 when a pending message of this process's channels has waited
    # longer than this many seconds (delivery is stuck).
    outbox_stale_seconds: int = Field(600, ge=10)
    # /healthz answers 503 when a messenger this process polls has not answered for its
    # long-poll timeout plus this many seconds (a failed poll is retried within 60 s).
    channel_silence_seconds: int = Field(90, ge=1)


class HandoffSection(_Section):
    # A conversation an operator took and left unanswered (nothing written since taking
    # it, or the parent's last message unanswered) goes back to the queue after this.
    return_after_minutes: int = Field(15, ge=1, le=24 * 60)
    # A taken conversation where neither the parent nor the operator wrote for this long
    # is closed: the parent is told and the bot answers again.
    silence_close_minutes: int = Field(120, ge=1, le=30 * 24 * 60)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="NAVBOT_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    bot: BotSection = BotSection()
    database: DatabaseSection = DatabaseSection()
    telegram: TelegramSection = TelegramSection()
    vk: VkSection = VkSection()
    max: MaxSection = MaxSection()
    delivery: DeliverySection = DeliverySection()
    web: WebSection = WebSection()
    console: ConsoleSection = ConsoleSection()
    catalogue: CatalogueSection = CatalogueSection()
    pacing: PacingSection = PacingSection()
    reminders: RemindersSection = RemindersSection()
    logging: LoggingSection = LoggingSection()
    retention: RetentionSection = RetentionSection()
    ops: OpsSection = OpsSection()
    handoff: HandoffSection = HandoffSection()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment wins over the file (passed as init kwargs).
        return env_settings, init_settings

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite+aiosqlite:///{self.bot.data_dir / 'navbot.sqlite3'}"

    @property
    def telegram_enabled(self) -> bool:
        return bool(self.telegram.token and self.telegram.token.get_secret_value())

    @property
    def vk_enabled(self) -> bool:
        return bool(self.vk.token and self.vk.token.get_secret_value() and self.vk.group_id)

    @property
    def max_enabled(self) -> bool:
        return bool(self.max.token and self.max.token.get_secret_value())


def _describe(error: dict[str, Any]) -> str:
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"unknown key '{key}' (see config.example.toml for the valid keys)"
    given = error.get("input")
    secret = bool(error["loc"]) and str(error["loc"][-1]) in ("token", "webhook_secret")
    hidden = isinstance(given, dict) or given is None or secret  # a secret is never echoed
    shown = "" if hidden else f" (got {given!r})"
    message = error["msg"].removeprefix("Value error, ")
    return f"'{key}': {message}{shown}"


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read settings from `path` (or NAVBOT_CONFIG, or ./config.toml when present).

    A missing explicit file, a TOML syntax error or an invalid value raises
    ConfigError with a one-line message naming the key.
    """
    explicit = path or os.environ.get("NAVBOT_CONFIG")
    file = Path(explicit) if explicit else Path(DEFAULT_CONFIG_FILE)
    data: dict[str, Any] = {}
    if file.exists():
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {file}: not valid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"config file {file}: cannot be read: {exc.strerror}") from None
    elif explicit:
        raise ConfigError(f"config file {file} does not exist")
    try:
        return Settings(**data)
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors())
        raise ConfigError(f"config {file}: {problems}") from None
