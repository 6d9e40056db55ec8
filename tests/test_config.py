"""Configuration: embedded defaults, environment overrides, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings
from tests.cli import navbot


def test_no_config_file_gives_embedded_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NAVBOT_CONFIG", raising=False)
    settings = load_settings()
    assert settings.bot.region == "stavropol"
    assert settings.database_url == "sqlite+aiosqlite:///data/navbot.sqlite3"
    assert not settings.telegram_enabled and not settings.vk_enabled


def test_tokens_come_from_environment_and_never_print(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NAVBOT_TELEGRAM__TOKEN", "123:secret-token")
    monkeypatch.setenv("NAVBOT_VK__TOKEN", "vk-secret")
    monkeypatch.setenv("NAVBOT_VK__GROUP_ID", "42")
    settings = load_settings()
    assert settings.telegram_enabled and settings.vk_enabled
    assert settings.vk.group_id == 42
    dumped = repr(settings) + str(settings.model_dump())
    assert "secret-token" not in dumped and "vk-secret" not in dumped


def test_environment_overrides_file(tmp_path, monkeypatch):
    path = tmp_path / "config.toml"
    path.write_text('[bot]\nregion = "tomsk"\nlog_level = "DEBUG"\n', encoding="utf-8")
    monkeypatch.setenv("NAVBOT_BOT__REGION", "stavropol")
    settings = load_settings(path)
    assert settings.bot.region == "stavropol"
    assert settings.bot.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('[web]\nport = "eighty"\n', "'web.port'"),
        ("[web]\nport = 70000\n", "'web.port'"),
        ('[bot]\nlog_level = "LOUD"\n', "'bot.log_level'"),
        ('[database]\nurl = "mysql://x"\n', "'database.url'"),
        ('[bot]\nregoin = "tomsk"\n', "unknown key 'bot.regoin'"),
        ("[bot\n", "not valid TOML"),
    ],
)
def test_wrong_value_names_the_key(tmp_path, content, expected):
    path = tmp_path / "config.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    assert expected in str(error.value)
    assert "\n" not in str(error.value)


def _assert_one_line_error(result, *fragments: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_cli_wrong_config_value_is_one_line_without_traceback(tmp_path: Path):
    config = tmp_path / "config.toml"
    config.write_text('[web]\nport = "eighty"\n', encoding="utf-8")
    result = navbot("--config", str(config), "console", cwd=tmp_path)
    _assert_one_line_error(result, "web.port", "integer")


def test_cli_missing_region_file_is_one_line_without_traceback(tmp_path: Path):
    config = tmp_path / "config.toml"
    config.write_text(f'[bot]\nregion = "atlantis"\ndata_dir = "{tmp_path}"\n', encoding="utf-8")
    result = navbot("--config", str(config), "console", cwd=tmp_path)
    _assert_one_line_error(result, "atlantis", "not found", "stavropol", "tomsk")


def test_cli_missing_config_file(tmp_path: Path):
    result = navbot("--config", str(tmp_path / "nope.toml"), "migrate", cwd=tmp_path)
    _assert_one_line_error(result, "nope.toml", "does not exist")


def test_cli_unreachable_database_is_one_line(tmp_path: Path):
    config = tmp_path / "config.toml"
    config.write_text(
        '[database]\nurl = "postgresql+asyncpg://nobody@127.0.0.1:1/none"\n', encoding="utf-8"
    )
    result = navbot("--config", str(config), "migrate", cwd=tmp_path)
    _assert_one_line_error(result, "database unavailable")


def test_help_lists_subcommands():
    result = navbot("--help")
    assert result.returncode == 0
    for command in ("run", "console", "migrate"):
        assert command in result.stdout


def test_example_config_is_valid_and_documents_every_key():
    from bot.config import Settings

    root = Path(__file__).resolve().parent.parent
    example = root / "config.example.toml"
    load_settings(example)
    text = example.read_text(encoding="utf-8")
    for section, model in Settings.model_fields.items():
        assert f"[{section}]" in text, section
        for key in model.annotation.model_fields:
            assert f"{key} =" in text, f"{section}.{key} is not documented"
