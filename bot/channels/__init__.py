"""One adapter per messenger. Each turns platform updates into `Incoming` and sends `Reply`."""

from bot.channels.lazy_types import install

install()  # before aiogram is imported: its Telegram types are built on first use
