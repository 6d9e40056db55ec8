"""Scripted parents through the terminal channel, one per guided dialogue, end to end."""

from __future__ import annotations

from tests.cli import LiveProcess, navbot, write_config


def run_script(tmp_path, lines: list[str], region: str = "stavropol") -> str:
    config = write_config(
        tmp_path, {"url": f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}"}, region
    )
    result = navbot("console", stdin="\n".join(lines) + "\n", env={"NAVBOT_CONFIG": str(config)})
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def test_a_parent_registers_step_by_step_with_one_problem_on_the_way(tmp_path):
    out = run_script(
        tmp_path,
        [
            "/start",
            "Регистрация в Навигаторе",
            *["Готово, дальше"] * 3,  # steps 1-3
            "Не получается",  # step 4: the e-mail does not come
            "Не приходит письмо",
            "Вернуться к шагу 4",
            *["Готово, дальше"] * 5,  # steps 4-8
        ],
    )
    assert "https://р26.навигатор.дети/" in out
    for n in range(1, 9):
        assert f"Шаг {n} из 8" in out
    assert "«Спам»" in out
    assert "регистрация пройдена" in out
    assert out.index("Шаг 8 из 8") < out.index("регистрация пройдена")


def test_a_parent_learns_about_the_certificate_and_checks_what_applies(tmp_path):
    out = run_script(
        tmp_path,
        [
            "/start",
            "2",  # the certificate, by its number in the menu
            "Что это и кому положен",
            "Другие вопросы о сертификате",
            "Что значат статусы",
            "Данные не подтверждены",
            "Другие вопросы о сертификате",
            "Что подходит моему ребёнку",
            "Минводы",
            "6",
            "Нет ещё",
        ],
    )
    assert "от 5 до 18 лет" in out and "один раз" in out
    assert "паспорт родителя" in out
    assert "Минераловодский городской округ: здесь выдают сертификаты с номиналом" in out
    assert "Возраст (6 лет): подходит" in out


def test_a_parent_confirms_the_data_and_it_is_remembered_by_the_next_process(tmp_path):
    out = run_script(
        tmp_path,
        [
            "/start",
            "Подтверждение данных ребёнка",
            "Куда идти",
            "Георгиевск",
            "Я подтвердил(а) данные",
        ],
    )
    assert "СНИЛС ребёнка" in out and "«Управление сертификатом» → «Инструкции»" in out
    assert "8 (8652) 34-99-07" in out
    assert "Напоминать о документах больше не буду" in out
    again = run_script(tmp_path, ["/menu", "Подтверждение данных ребёнка"])
    assert "Вы отметили, что данные ребёнка подтверждены" in again


def test_tomsk_profile_through_the_terminal(tmp_path):
    out = run_script(
        tmp_path,
        ["/start", "Регистрация в Навигаторе", "Не получается", "Другая проблема"],
        region="tomsk",
    )
    assert "Томской области" in out and "https://р70.навигатор.дети/" in out
    assert "8 (3822) 90-86-10" in out and "8 (3822) 90-20-67" in out
    assert "8652" not in out


def test_leaving_at_step_four_and_coming_back_in_a_new_process(tmp_path, database):
    config = write_config(tmp_path, database)
    env = {"NAVBOT_CONFIG": str(config)}
    bot = LiveProcess("console", cwd=tmp_path, env=env)
    bot.send("/start")
    bot.expect("Регистрация в Навигаторе")
    bot.send("Регистрация в Навигаторе")
    for n in (2, 3, 4):
        bot.send("Готово, дальше")
        bot.expect(f"Шаг {n} из 8")
    bot.kill()

    bot = LiveProcess("console", cwd=tmp_path, env=env)
    bot.send("/start")
    bot.expect("Вы остановились на шаге 4 из 8")
    bot.send("1")  # «Продолжить с шага 4», the first button
    bot.expect("Шаг 4 из 8. Подтвердите электронную почту")
    assert bot.close() == 0
