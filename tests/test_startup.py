"""`navbot run` refuses to start, with one line naming the setting, when a messenger is
configured wrongly; `run`, `console` and `migrate` refuse a region that lacks a file it
needs. Run as real processes against the fake Telegram and VK APIs."""

from __future__ import annotations

import asyncio
import shutil
import socket

import pytest

from tests.cli import navbot, write_config
from texts import REGIONS_DIR

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


def _error_line(result) -> str:
    """The one line the process printed, after checking it printed only that."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("navbot: error: ")
    return lines[0]


async def _run(tmp_path, database, env: dict[str, str], *args: str):
    config = write_config(tmp_path, database)
    quiet = {"NAVBOT_BOT__LOG_LEVEL": "WARNING", **env}
    command = args or ("run",)
    return await asyncio.to_thread(
        navbot, "--config", str(config), *command, cwd=tmp_path, env=quiet
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_a_malformed_telegram_token_is_refused_before_any_call(
    tmp_path, database, fake_telegram
):
    env = {
        "NAVBOT_TELEGRAM__TOKEN": "bot 98765 XYZ-secret",
        "NAVBOT_TELEGRAM__API_BASE": fake_telegram.base,
    }
    line = _error_line(await _run(tmp_path, database, env))
    assert "telegram.token" in line and "not a Telegram bot token" in line
    assert "XYZ-secret" not in line  # a secret is never echoed
    assert fake_telegram.calls == []


async def test_a_token_telegram_rejects_is_refused_at_start(tmp_path, database, fake_telegram):
    env = {
        "NAVBOT_TELEGRAM__TOKEN": "999999:WRONG-token-of-another-bot",
        "NAVBOT_TELEGRAM__API_BASE": fake_telegram.base,
    }
    line = _error_line(await _run(tmp_path, database, env))
    assert "telegram.token (NAVBOT_TELEGRAM__TOKEN) was rejected by Telegram" in line
    assert "401" in line
    assert [method for method, _ in fake_telegram.calls] == ["getMe"]


async def test_an_unreachable_telegram_api_is_refused_at_start(tmp_path, database):
    base = f"http://127.0.0.1:{_closed_port()}"
    env = {"NAVBOT_TELEGRAM__TOKEN": "123456:TEST-token", "NAVBOT_TELEGRAM__API_BASE": base}
    line = _error_line(await _run(tmp_path, database, env))
    assert f"telegram.api_base ({base}) cannot be reached" in line


async def test_a_vk_token_without_a_group_id_is_refused(tmp_path, database, fake_vk):
    env = {"NAVBOT_VK__TOKEN": fake_vk.token, "NAVBOT_VK__API_BASE": f"{fake_vk.base}/method"}
    line = _error_line(await _run(tmp_path, database, env))
    assert "vk.group_id (NAVBOT_VK__GROUP_ID) is not set" in line
    assert fake_vk.calls == []


async def test_a_vk_token_vk_rejects_is_refused_at_start(tmp_path, database, fake_vk):
    env = {
        "NAVBOT_VK__TOKEN": "vk1.a.REVOKED",
        "NAVBOT_VK__GROUP_ID": str(fake_vk.group_id),
        "NAVBOT_VK__API_BASE": f"{fake_vk.base}/method",
    }
    line = _error_line(await _run(tmp_path, database, env))
    assert "vk.token (NAVBOT_VK__TOKEN) was rejected by VK (error 5" in line
    assert "REVOKED" not in line
    assert [method for method, _ in fake_vk.calls] == ["groups.getById"]


async def test_a_vk_group_id_of_another_community_is_refused(tmp_path, database, fake_vk):
    env = {
        "NAVBOT_VK__TOKEN": fake_vk.token,
        "NAVBOT_VK__GROUP_ID": "123",
        "NAVBOT_VK__API_BASE": f"{fake_vk.base}/method",
    }
    line = _error_line(await _run(tmp_path, database, env))
    assert "vk.group_id (NAVBOT_VK__GROUP_ID) is 123, but the token belongs to community" in line
    assert line.endswith(f"community {fake_vk.group_id}")


async def test_an_unreachable_vk_api_is_refused_at_start(tmp_path, database):
    base = f"http://127.0.0.1:{_closed_port()}/method"
    env = {
        "NAVBOT_VK__TOKEN": "vk1.a.TEST",
        "NAVBOT_VK__GROUP_ID": "777",
        "NAVBOT_VK__API_BASE": base,
    }
    line = _error_line(await _run(tmp_path, database, env))
    assert f"vk.api_base ({base}) cannot be reached" in line


# -- regions --------------------------------------------------------------------------------
def _region_dir(tmp_path, *, consent: bool):
    """A centre's own regions directory holding a new region, «altai»."""
    directory = tmp_path / "regions"
    directory.mkdir()
    shutil.copy(REGIONS_DIR / "tomsk.toml", directory / "altai.toml")
    if consent:
        text = (REGIONS_DIR.parent / "consent" / "tomsk.toml").read_text(encoding="utf-8")
        (directory / "altai.consent.toml").write_text(
            text.replace("tomsk-2026-11-23", "altai-2026-12-01"), encoding="utf-8"
        )
    return directory


@pytest.mark.parametrize("command", ["run", "console", "migrate"])
async def test_a_region_without_its_consent_text_does_not_start(tmp_path, database, command):
    directory = _region_dir(tmp_path, consent=False)
    env = {"NAVBOT_BOT__REGION": "altai", "NAVBOT_BOT__REGIONS_DIR": str(directory)}
    line = _error_line(await _run(tmp_path, database, env, command))
    assert f"expected file {directory / 'altai.consent.toml'}" in line
    assert not (tmp_path / "data" / "navbot.sqlite3").exists()  # refused before migrating


async def test_a_region_with_its_consent_beside_the_profile_asks_for_that_consent(
    tmp_path, database
):
    directory = _region_dir(tmp_path, consent=True)
    env = {"NAVBOT_BOT__REGION": "altai", "NAVBOT_BOT__REGIONS_DIR": str(directory)}
    config = write_config(tmp_path, database)
    result = await asyncio.to_thread(
        navbot,
        "--config",
        str(config),
        "console",
        stdin="/start\n7\n1\n",  # «Мои дети и данные», «Добавить ребёнка»
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "Согласие на обработку персональных данных" in result.stdout


async def test_a_region_profile_without_municipalities_names_the_file(tmp_path, database):
    directory = tmp_path / "regions"
    directory.mkdir()
    profile = (REGIONS_DIR / "tomsk.toml").read_text(encoding="utf-8")
    (directory / "altai.toml").write_text(
        profile.split("[[municipalities]]", 1)[0], encoding="utf-8"
    )
    env = {"NAVBOT_BOT__REGION": "altai", "NAVBOT_BOT__REGIONS_DIR": str(directory)}
    line = _error_line(await _run(tmp_path, database, env, "migrate"))
    assert f"{directory / 'altai.toml'}: no [[municipalities]] listed" in line
