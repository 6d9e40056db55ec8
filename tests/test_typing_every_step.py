"""Every screen with buttons, reached by pressing (and typing where a step waits for a
value), gets a yes/no word, a control word, an out-of-range digit and a question typed at
it: none of them meets the FAQ's "no ready answer", and after the question the screen's
buttons are shown again, one press away."""

from __future__ import annotations

import itertools
import re

from tests.enrollment import born_years_ago
from tests.typing_helpers import NO_READY_ANSWER, Terminal, sqlite_app

QUESTION = "а сертификат нужен для бесплатного кружка?"
SUGGESTIONS = "Возможно, вы имели в виду"
MENU = "Выберите, что вас интересует"
BORN = born_years_ago(10).strftime("%d.%m.%Y")
REQUEST = ["Найти кружок", "Слово для поиска", "радиоэлектроник", "Записаться на №1"]
CHILD = ["Согласен(на)", "Иванова Мария", BORN, "Пропустить"]
# Where a step waits for typed input, pressing alone does not get further: these paths do.
SEEDS: list[tuple[list[str], int]] = [
    (["/start"], 2),
    # steps 1, 4 (its own problems) and 7 (with the СНИЛС check); the others look alike
    *((["/start", "Регистрация в Навигаторе", *["Готово, дальше"] * k], 1) for k in (0, 3, 6)),
    (["/start", "Мои дети и данные", "Добавить ребёнка", "Согласен(на)", "Иванова Мария"], 1),
    (["/start", "Мои дети и данные", "Добавить ребёнка", "Согласен(на)", "Иванова Мария", BORN], 1),
    (["/start", *REQUEST, *CHILD], 1),
    (["/start", *REQUEST, *CHILD, "89123456789"], 1),
    (["/start", *REQUEST, *CHILD, "89123456789", "Без комментария"], 0),
    (["/start", *REQUEST, *CHILD, "89123456789", "Без комментария", "Отправить заявку"], 0),
    (["/start", *REQUEST, *CHILD, "89123456789", "Без комментария", "Отправить заявку", "1"], 1),
    (["/start", "Сертификат", "Что подходит моему ребёнку", "Пятигорск"], 1),
    (["/start", "Сертификат", "Что подходит моему ребёнку", "Пятигорск", "10"], 1),
    (["/start", "Найти кружок", "Показать"], 1),
    (["/start", "/delete_my_data"], 0),
]
MAX_SCREENS = 90
# Screens that are not a step of a dialogue: a question there is just a new question.
TOP_LEVEL_LABELS = {"В меню", "Контакты горячей линии"}


def identity(labels: list[str]) -> tuple[str, ...]:
    return tuple(re.sub(r"\d+", "#", label) for label in labels)


async def test_typing_at_every_screen_never_meets_no_ready_answer(tmp_path):
    users = itertools.count()
    async with sqlite_app(tmp_path) as app:

        async def reach(path: list[str]) -> Terminal:
            parent = Terminal(app, user_id=f"walker{next(users)}")
            await parent.type(*path)
            return parent

        menu_labels = set((await reach(["/start"])).labels)
        screens: dict[tuple[str, ...], list[str]] = {}
        queue = [(path, depth) for path, depth in SEEDS]
        while queue and len(screens) < MAX_SCREENS:
            path, depth = queue.pop(0)
            parent = await reach(path)
            labels = parent.labels
            if not labels or identity(labels) in screens:
                continue
            screens[identity(labels)] = path
            if depth > 0:
                queue.extend(
                    ([*path, str(i)], depth - 1)
                    for i, label in enumerate(labels, start=1)
                    if label not in TOP_LEVEL_LABELS
                )
        assert len(screens) >= 30

        problems = []
        for path in screens.values():
            parent = await reach(path)
            labels = parent.labels
            where = f"{path[1:]} {labels}"
            await parent.type(QUESTION)
            if "Это вопрос?" in parent.text:  # a step that takes any text asks first
                await parent.type("Ответить на вопрос")
            if NO_READY_ANSWER in parent.text:
                problems.append(f"question: no ready answer at {where}")
            top_level = set(labels) <= TOP_LEVEL_LABELS | menu_labels
            if not top_level and not set(labels) <= set(parent.labels):
                problems.append(f"question: the step's buttons are gone at {where}")
            await parent.type(str(len(labels) + 1))
            if NO_READY_ANSWER in parent.text or SUGGESTIONS in parent.text:
                problems.append(f"digit {len(labels) + 1}: FAQ at {where}")
            # a word that did not press anything leaves the screen as it was: go on there
            for word in ("да", "нет"):
                if parent.labels != labels:
                    parent = await reach(path)
                await parent.type(word)
                if NO_READY_ANSWER in parent.text or SUGGESTIONS in parent.text:
                    problems.append(f"«{word}»: FAQ at {where}")
            if parent.labels != labels:
                parent = await reach(path)
            await parent.type("меню")
            if MENU not in parent.text:
                problems.append(f"«меню»: no menu at {where}")
        assert not problems, "\n".join(problems)
