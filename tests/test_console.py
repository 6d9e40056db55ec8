"""The terminal channel as a real process: scripted through stdin, killed and restarted."""

from __future__ import annotations

from handlers import build_router
from tests.cli import LiveProcess, navbot, write_config


def test_piped_start_prints_greeting_and_numbered_menu(tmp_path):
    result = navbot("console", stdin="/start\n", cwd=tmp_path, env={"NAVBOT_CONFIG": ""})
    assert result.returncode == 0, result.stderr
    assert "Здравствуйте! Я помощник по Навигатору" in result.stdout
    assert "[1] " in result.stdout and "[2] " in result.stdout
    assert (tmp_path / "data" / "navbot.sqlite3").exists()


def test_buttons_are_chosen_by_number_or_by_label(tmp_path):
    # The menu grows as features are added: press «Контакты горячей линии» by its number.
    payloads = [item.payload for item in build_router().menu_items]
    contacts = payloads.index("contacts") + 1
    script = f"/start\n{contacts}\n/menu\nмой муниципалитет\n1\n"
    result = navbot("console", stdin=script, cwd=tmp_path, env={"NAVBOT_CONFIG": ""})
    assert "8 (8652) 34-99-07" in result.stdout
    assert "Страница 1 из 5" in result.stdout
    assert "Запомнил: город Ставрополь" in result.stdout


def test_killed_mid_dialogue_the_restarted_bot_continues_the_same_step(tmp_path, database):
    config = write_config(tmp_path, database)
    env = {"NAVBOT_CONFIG": str(config)}

    bot = LiveProcess("console", cwd=tmp_path, env=env)
    bot.send("/start")
    bot.expect("Мой муниципалитет")
    bot.send("Мой муниципалитет")
    bot.expect("Страница 1 из 5")
    bot.send("Ещё")
    bot.expect("Страница 2 из 5")
    bot.kill()

    bot = LiveProcess("console", cwd=tmp_path, env=env)
    bot.send("1")  # the first button of page 2, as shown before the kill
    bot.expect("Запомнил: Андроповский муниципальный округ")
    assert bot.close() == 0
