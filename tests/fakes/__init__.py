"""Local stand-ins for the Telegram Bot API and the VK API (aiohttp on 127.0.0.1)
that enforce what the real ones enforce."""
