"""aiogram's Telegram types are built when first used, not at import (about 80 MiB of
the process), and work the same once used: an update parses, a method with a keyboard
serialises. Other pydantic models (the settings) are untouched."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import bot.channels.telegram
from aiogram.methods import SendMessage
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from bot.config import Settings

assert Settings.__pydantic_complete__
assert not Message.__pydantic_complete__ and not SendMessage.__pydantic_complete__
update = Update.model_validate({
    "update_id": 1,
    "message": {"message_id": 5, "date": 1, "chat": {"id": 7, "type": "private"},
                "from": {"id": 7, "is_bot": False, "first_name": "Анна"}, "text": "меню"},
})
assert update.message.text == "меню" and update.message.from_user.first_name == "Анна"
button = InlineKeyboardButton(text="Да", callback_data="y")
markup = InlineKeyboardMarkup(inline_keyboard=[[button]])
sent = SendMessage(chat_id=7, text="Выберите", reply_markup=markup).model_dump(exclude_none=True)
assert sent["reply_markup"] == {"inline_keyboard": [[{"text": "Да", "callback_data": "y"}]]}
assert Message.model_validate(update.message.model_dump()).chat.id == 7
print("ok")
"""


def test_telegram_types_are_built_on_first_use_and_then_work():
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
