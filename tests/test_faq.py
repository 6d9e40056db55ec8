"""Free-text questions answered from the knowledge base: what a parent sees, and the
tools staff use to keep the base."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from handlers.core import _match_prefix
from handlers.faq.kb import load_kb
from handlers.faq.matcher import Analyzer, normalise
from handlers.faq.service import check_region, load_faq, render
from storage.models import FaqUnanswered
from tests.chat import ChatClient
from tests.cli import navbot
from tests.guided import region_app
from texts import REGIONS_DIR, TextsError, available_regions, load_region

DEV_SET = Path(__file__).with_name("faq_dev.jsonl")
HOLDOUT_SET = Path(__file__).with_name("faq_holdout.jsonl")
# Written as parents type in chats before its author read the entries or the other sets.
HOLDOUT2_SET = Path(__file__).with_name("faq_holdout2.jsonl")
# Written the same way by a third author, in the order: questions first, labels after.
HOLDOUT3_SET = Path(__file__).with_name("faq_holdout3.jsonl")


# -- the knowledge base as data -------------------------------------------------------------


def test_base_covers_the_topics_parents_ask_about():
    kb = load_kb()
    answers = [e for e in kb.entries if not e.handoff]
    assert len(answers) >= 60
    prefixes = {e.id.split("_")[0] for e in answers}
    assert {"cert", "reg", "confirm", "enroll", "prog", "pay", "pd", "hotline"} <= prefixes
    assert {e.id for e in kb.entries if e.handoff} == {
        "handoff_complaint",
        "handoff_demand",
        "handoff_money",
        "handoff_safety",
    }


@pytest.mark.parametrize("region_id", available_regions())
def test_every_answer_renders_in_every_region_without_invented_amounts(region_id):
    faq = load_faq()
    region = load_region(region_id)
    check_region(faq, region)
    money = re.compile(r"\d[\d\s]*(₽|руб)", re.IGNORECASE)
    for entry in faq.kb.entries:
        text = render(entry, region)
        assert "{" not in text and "}" not in text, entry.id
        assert not money.search(text), f"{entry.id} quotes an amount: {text}"


# Facts that hold only in Stavropol krai, or only on Navigators whose personal account is
# described in the domain notes (not Tomsk's, where staff issue the certificate in person).
STAVROPOL_ONLY = (
    "Ставропол",
    "8652",
    "rmc126",
    "р26",
    "«Управление сертификатом»",
    "«Получить сертификат»",
    "«Инструкции»",
    "Активировать",
    "«Активировать",
)


def test_tomsk_faq_answers_carry_no_stavropol_facts():
    faq, tomsk, stavropol = load_faq(), load_region("tomsk"), load_region("stavropol")
    check_region(faq, tomsk)
    leaks = sorted(
        f"{entry.id}: {fact}"
        for entry in faq.kb.entries
        for fact in STAVROPOL_ONLY
        if fact in render(entry, tomsk)
    )
    assert not leaks, leaks
    how = faq.kb.get("cert_how_get")
    assert "муниципальный орган управления образованием" in render(how, tomsk)
    assert "https://р70.навигатор.дети/" in render(how, tomsk)
    # The shared answer keeps the personal-account path the Stavropol profile relies on.
    assert "«Управление сертификатом» → «Инструкции»" in render(how, stavropol)


@pytest.mark.parametrize(
    ("block", "error"),
    [
        (
            '[faq.no_such_entry]\nanswer = "x"\n',
            "[faq] names entries not in the base: no_such_entry",
        ),
        ('[faq.cert_age]\ntitle = "x"\n', "[faq.cert_age] must hold only a non-empty 'answer'"),
        ('[faq.cert_age]\nanswer = "{region.nowhere}"\n', "does not fill"),
    ],
)
async def test_a_region_answers_only_entries_of_the_base_or_the_bot_does_not_start(
    settings, tmp_path, block, error
):
    source = (REGIONS_DIR / "tomsk.toml").read_text(encoding="utf-8")
    anchor = "[[municipalities]]\n"
    (tmp_path / "tomsk.toml").write_text(source.replace(anchor, block + anchor, 1), "utf-8")
    with pytest.raises(TextsError) as failure:
        async with region_app(settings, "tomsk", tmp_path):
            pass
    message = str(failure.value)
    assert error in message and "tomsk.toml" in message and "\n" not in message


async def test_a_tomsk_parent_asking_in_free_text_gets_the_tomsk_procedure(settings):
    async with region_app(settings, "tomsk") as app:
        chat = ChatClient(app.engine)
        await chat.send("/start")
        await chat.send("как получить сертификат ребенку")
        assert "муниципальный орган управления образованием" in chat.text
        assert "Управление сертификатом" not in chat.text
        await chat.send("потеряли номер сертификата")
        assert "распечатать заново по запросу" in chat.text


def _write_entry(directory: Path, body: str) -> None:
    directory.mkdir(exist_ok=True)
    (directory / "topic.toml").write_text(body, encoding="utf-8")


ENTRY = """[[entry]]
id = "{id}"
title = "Заголовок"
answer = "{answer}"
phrasings = ["первый вопрос", "второй вопрос"]
"""


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (ENTRY.format(id="a", answer="ok") * 2, "already used"),
        (ENTRY.format(id="a", answer="Сумма {amount}"), "unknown placeholder {amount}"),
        (ENTRY.format(id="Bad Id", answer="ok"), "needs an id"),
        (ENTRY.format(id="a", answer="ok").replace('"второй вопрос"', ""), "at least 2"),
        ('[[entry]]\nid = "a"\nphrasings = ["x", "y"]\n', "needs a non-empty 'title'"),
        ("[[entry]\n", "not valid TOML"),
    ],
)
def test_a_broken_entry_is_reported_with_its_file(tmp_path, body, problem):
    _write_entry(tmp_path / "faq", body)
    with pytest.raises(TextsError) as error:
        load_kb(tmp_path / "faq")
    assert "topic.toml" in str(error.value) and problem in str(error.value)


# -- matching -------------------------------------------------------------------------------


def test_normalising_handles_case_yo_latin_lookalikes_punctuation_and_emoji():
    lexicon = load_kb().lexicon
    lookalikes = str.maketrans(lexicon.lookalikes)
    # "cертификат" starts with a Latin c; "ЁЛКА" has ё
    assert normalise("cертификат!!! ЁЛКА 😡, 14 лет?", lookalikes) == [
        "сертификат",
        "елка",
        "14",
        "лет",
    ]


def test_slang_typos_and_word_forms_reach_the_same_terms():
    faq = load_faq()
    analyzer: Analyzer = faq.index.analyzer
    assert analyzer.terms("серт") == analyzer.terms("сертификатов") == ["сертификат"]
    assert analyzer.terms("сетрификат") == ["сертификат"]  # a typo, corrected to the base
    assert analyzer.terms("скока") == ["сколько"]
    assert "госуслуги" in analyzer.terms("через гос услугах")


@pytest.mark.parametrize(
    ("question", "entry_id"),
    [
        ("а сертификат с какого возраста дают?", "cert_age"),
        ("не приходит письмо", "reg_email"),
        ("скока стоит кружок по сертификату", "prog_cost"),
        ("СЕРТ НЕ АКТИВЕН 😡😡😡", "cert_not_active"),
        ("пфдо это что", "cert_pfdo"),
    ],
)
def test_typical_questions_are_answered_with_the_right_entry(question, entry_id):
    verdict = load_faq().decide(question)
    assert (verdict.outcome, verdict.entry.id) == ("answer", entry_id)


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        ("хочу пожаловаться на педагога", "handoff_complaint"),
        ("тренер ударил сына на тренировке", "handoff_safety"),
        ("с сертификата незаконно списали деньги", "handoff_money"),
    ],
)
def test_questions_for_a_person_are_handed_over_not_answered(question, topic):
    verdict = load_faq().decide(question)
    assert verdict.outcome == "handoff" and verdict.handoff and verdict.entry.id == topic


@pytest.mark.parametrize(
    "question",
    [
        "это законно что без сертификата не записывают?",
        "законно ли просить снилс",
        "есть ли кружки для детей с овз",
    ],
)
def test_questions_about_rules_are_not_taken_for_complaints(question):
    assert load_faq().decide(question).outcome != "handoff"


@pytest.mark.parametrize(
    ("question", "entry_id"),
    [
        ("sertifikat kak poluchit", "cert_how_get"),
        ("pfdo chto eto", "cert_pfdo"),
        ("ребят чё за серт такой", "cert_what"),
    ],
)
def test_latin_typing_and_what_is_questions_are_understood(question, entry_id):
    verdict = load_faq().decide(question)
    assert (verdict.outcome, verdict.entry.id) == ("answer", entry_id)


@pytest.mark.parametrize(
    ("question", "entry_id"),
    [
        ("а до 5 лет сертификат дают?", "cert_under5"),
        ("младше пяти лет можно получить сертификат", "cert_under5"),
        ("сыну 17 лет можно ещё сертификат", "cert_age"),
        ("дочке 4,5 года дадут сертификат?", "cert_under5"),
        ("ребенку 6,5 лет можно сертификат", "cert_age"),
    ],
)
def test_the_five_year_boundary_seen_from_below_is_the_under_five_question(question, entry_id):
    verdict = load_faq().decide(question)
    assert (verdict.outcome, verdict.entry.id) == ("answer", entry_id)


def test_of_several_questions_in_one_message_the_first_is_answered_and_the_next_offered():
    verdict = load_faq().decide(
        "как получить сертификат и на сколько кружков можно ходить по сертификату"
    )
    assert (verdict.outcome, verdict.entry.id) == ("answer", "cert_how_get")
    assert [e.id for e in verdict.also] == ["cert_how_many"]
    # "и" inside one question does not split it.
    verdict = load_faq().decide("сертификат с номиналом и без номинала в чем разница")
    assert (verdict.outcome, verdict.entry.id) == ("answer", "cert_kinds")


@pytest.mark.parametrize(
    "question",
    ["сколько стоит проезд в автобусе", "как получить загранпаспорт через госуслуги"],
)
def test_a_question_about_a_thing_no_entry_mentions_is_not_answered(question):
    """The words "сколько стоит" or "госуслуги" match an entry; the thing asked about
    does not, so the parent gets no answer about something else."""
    assert load_faq().decide(question).outcome != "answer"


def test_of_two_close_entries_the_one_asked_like_the_question_is_answered():
    verdict = load_faq().decide("какие документы нести на подтверждение")
    assert (verdict.outcome, verdict.entry.id) == ("answer", "confirm_docs")
    assert [e.id for e in verdict.also] == ["confirm_where"]


def test_off_topic_questions_are_not_answered():
    for question in ("как варить борщ", "какой курс доллара", "ааааа"):
        verdict = load_faq().decide(question)
        assert verdict.outcome == "unknown" and verdict.handoff, question


# -- the dev set: the acceptance figures, printed by `navbot faq-eval` ----------------------


def test_dev_set_is_large_and_not_copied_from_the_entries():
    rows = [json.loads(line) for line in DEV_SET.read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 150
    kb = load_kb()
    phrasings = {p.lower() for e in kb.entries for p in e.phrasings}
    copied = [r["q"] for r in rows if r["q"].lower().strip(" ?!") in phrasings]
    assert len(copied) <= len(rows) // 20, copied
    assert {r["entry_id"] for r in rows} - {None} <= {e.id for e in kb.entries}


def test_faq_eval_on_the_dev_set_meets_the_targets(tmp_path):
    result = navbot("faq-eval", str(DEV_SET), cwd=tmp_path, env={"NAVBOT_CONFIG": ""})
    assert result.returncode == 0, result.stderr
    figures = {
        name: float(value)
        for name, value in re.findall(
            r"^(accuracy|coverage|wrong answers): ([\d.]+)%", result.stdout, re.MULTILINE
        )
    }
    assert figures["accuracy"] >= 90, result.stdout
    assert figures["coverage"] >= 85, result.stdout
    assert figures["wrong answers"] <= 5, result.stdout


@pytest.mark.parametrize(
    ("path", "handoffs"),
    [(HOLDOUT_SET, 6), (HOLDOUT2_SET, 6), (HOLDOUT3_SET, 3)],
    ids=["holdout", "holdout2", "holdout3"],
)
def test_holdout_sets_are_written_like_parents_and_span_the_base(path, handoffs):
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 120
    kb = load_kb()
    phrasings = {p.lower().strip(" ?!") for e in kb.entries for p in e.phrasings}
    # The plainest questions were bound to coincide with an entry's phrasing; few do.
    same = [r["q"] for r in rows if r["q"].lower().strip(" ?!") in phrasings]
    assert len(same) <= len(rows) // 10, same
    labelled = {r["entry_id"] for r in rows} - {None}
    assert labelled <= {e.id for e in kb.entries} and len(labelled) >= 50
    assert sum(1 for r in rows if r["entry_id"] is None) >= 15  # off-topic and handoff
    assert sum(1 for r in rows if r.get("handoff")) >= handoffs


@pytest.mark.parametrize(
    ("path", "accuracy", "coverage", "wrong", "handoffs"),
    [
        (HOLDOUT_SET, 90, 87, 7.5, 6),
        (HOLDOUT2_SET, 94, 85, 4.5, 6),
        (HOLDOUT3_SET, 90, 82, 7, 3),
    ],
    ids=["holdout", "holdout2", "holdout3"],
)
def test_faq_eval_on_the_holdout_sets(tmp_path, path, accuracy, coverage, wrong, handoffs):
    """Questions written without looking at the entries. The product targets are 90% /
    85% / 5%; the floors here are what the base reaches on each set and keep it from
    sliding back. (Answering the first of several questions outright, rather than listing
    them, raised coverage and also the wrong-answer share on holdout and holdout3.)
    Every complaint, money dispute and safety worry goes to a person."""
    result = navbot("faq-eval", str(path), cwd=tmp_path, env={"NAVBOT_CONFIG": ""})
    assert result.returncode == 0, result.stderr
    figures = {
        name: float(value)
        for name, value in re.findall(
            r"^(accuracy|coverage|wrong answers): ([\d.]+)%", result.stdout, re.MULTILINE
        )
    }
    assert figures["accuracy"] >= accuracy, result.stdout
    assert figures["coverage"] >= coverage, result.stdout
    assert figures["wrong answers"] <= wrong, result.stdout
    made, due, mistaken = map(
        int,
        re.search(
            r"handoffs: (\d+) of (\d+) handed to a person; (\d+) other", result.stdout
        ).groups(),
    )
    assert made == due >= handoffs and mistaken <= 1, result.stdout


def test_every_link_of_an_entry_opens_an_existing_dialogue(app):
    faq = load_faq()
    labels = app.texts
    for entry in faq.kb.entries:
        if entry.link is None:
            continue
        prefix = entry.link.split(":", 1)[0]
        assert _match_prefix(app.router.buttons, entry.link), f"{entry.id}: no {entry.link!r}"
        assert labels.has(f"faq.link.{prefix}"), f"{entry.id}: no label for {prefix!r}"
    linked = {e.link for e in faq.kb.entries if e.link}
    assert {"reg", "cert", "confirm", "cat", "req", "child", "muni", "contacts"} <= linked


async def test_a_close_second_meaning_is_offered_as_a_button_under_the_answer(chat: ChatClient):
    await chat.send("/start")
    await chat.send("как активировать сертификат")
    assert "Активировать сертификат можно только после" in chat.text
    assert "Сертификат не активен" in chat.labels
    await chat.press("Сертификат не активен")
    assert "Чаще всего сертификат не активен" in chat.text


async def test_an_answer_about_requests_leads_to_my_requests(chat: ChatClient):
    await chat.send("/start")
    await chat.send("как отчислиться из кружка")
    assert "заявление об отчислении" in chat.text
    assert "Мои заявки" in chat.labels
    await chat.press("Мои заявки")
    assert "заявление об отчислении" not in chat.text


def test_faq_eval_lists_misses_and_rejects_unknown_entries(tmp_path):
    labelled = tmp_path / "set.jsonl"
    labelled.write_text(
        '{"q": "не приходит письмо", "entry_id": "cert_age"}\n'
        '{"q": "как варить борщ", "entry_id": null}\n',
        encoding="utf-8",
    )
    result = navbot("faq-eval", str(labelled), cwd=tmp_path, env={"NAVBOT_CONFIG": ""})
    assert "accuracy: 0.0%" in result.stdout
    assert "wrong answers: 50.0%" in result.stdout
    assert "'не приходит письмо': expected cert_age, got answer reg_email" in result.stdout

    labelled.write_text('{"q": "x", "entry_id": "no_such_entry"}\n', encoding="utf-8")
    result = navbot("faq-eval", str(labelled), cwd=tmp_path, env={"NAVBOT_CONFIG": ""})
    assert result.returncode == 2 and "no_such_entry" in result.stderr
    assert "Traceback" not in result.stderr


# -- the staff tools ------------------------------------------------------------------------


def test_ask_prints_the_answer_and_answers_stdin_as_json_lines(tmp_path):
    env = {"NAVBOT_CONFIG": ""}
    one = navbot("ask", "не приходит письмо на почту", cwd=tmp_path, env=env)
    assert one.returncode == 0, one.stderr
    assert "«Спам»" in one.stdout and "8 (8652) 34-99-07" in one.stdout

    many = navbot(
        "ask",
        stdin="с какого возраста сертификат\nтренер ударил сына\n\nкак варить борщ\n",
        cwd=tmp_path,
        env=env,
    )
    rows = [json.loads(line) for line in many.stdout.splitlines()]
    assert [r["question"] for r in rows] == [
        "с какого возраста сертификат",
        "тренер ударил сына",
        "как варить борщ",
    ]
    assert {"question", "answer", "entry_id", "score", "handoff"} <= set(rows[0])
    assert rows[0]["entry_id"] == "cert_age" and rows[0]["handoff"] is False
    assert "от 5 до 18" in rows[0]["answer"]
    assert rows[1]["handoff"] is True and "горячую линию" in rows[1]["answer"]
    assert rows[2]["entry_id"] is None and rows[2]["handoff"] is True


def test_faq_check_validates_the_base(tmp_path):
    result = navbot("faq-check", cwd=tmp_path, env={"NAVBOT_CONFIG": ""})
    assert result.returncode == 0, result.stderr
    assert "knowledge base OK" in result.stdout and "stavropol, tomsk" in result.stdout


# -- in the dialogue ------------------------------------------------------------------------


async def test_free_text_from_the_main_menu_gets_the_answer(chat: ChatClient):
    await chat.send("/start")
    await chat.send("а сертификат с какого возраста дают?")
    assert "от 5 до 18 лет" in chat.text
    assert "В меню" in chat.labels


async def test_free_text_after_contacts_and_after_help_reaches_the_faq(chat: ChatClient):
    await chat.send("/start")
    await chat.press("Контакты горячей линии")
    await chat.send("не приходит письмо после регистрации")
    assert "«Спам»" in chat.text
    await chat.send("/help")
    await chat.send("скока стоит кружок по сертификату")
    assert "оплачивается из номинала" in chat.text


async def test_ask_a_question_menu_item_invites_a_question(chat: ChatClient):
    await chat.send("/start")
    await chat.press("Задать вопрос")
    assert "Напишите вопрос своими словами" in chat.text
    await chat.send("можно ли обналичить сертификат")
    assert "нельзя получить наличными" in chat.text


async def test_a_step_waiting_for_typed_input_keeps_its_answer(chat: ChatClient):
    await chat.send("/start")
    await chat.press("Мой муниципалитет")
    await chat.send("Шпаковский")
    assert "Запомнил" in chat.text


async def test_two_questions_in_one_message_get_the_first_answer_and_a_button_for_the_second(
    chat: ChatClient,
):
    await chat.send("Как получить сертификат? И куда нести документы на подтверждение")
    assert chat.text.startswith("Четыре шага:")
    assert "Куда идти подтверждать данные" in chat.labels
    await chat.press("Куда идти подтверждать данные")
    assert "«Управление сертификатом» → «Инструкции»" in chat.text


async def test_an_unclear_question_offers_up_to_three_entries(chat: ChatClient):
    await chat.send("учет")
    assert chat.text.startswith("Возможно, вы имели в виду:")
    offered = [b for b in chat.buttons if b.payload.startswith("faq:show:")]
    assert 1 <= len(offered) <= 3
    await chat.press(offered[0].label)
    assert "сертификат учёта" in chat.text.lower()


async def test_unknown_question_is_admitted_logged_and_offers_the_hotline(chat: ChatClient, app):
    await chat.send("как варить борщ")
    assert "нет готового ответа" in chat.text and "8 (8652) 34-99-07" in chat.text
    await chat.press("Контакты горячей линии")
    assert "rmc126@mail.ru" in chat.text
    async with app.db.session() as session:
        rows = (await session.scalars(select(FaqUnanswered))).all()
    assert [(r.question, r.outcome) for r in rows] == [("как варить борщ", "unknown")]


async def test_a_complaint_is_handed_over_and_logged(chat: ChatClient, app):
    await chat.send("хочу пожаловаться на тренера, он кричит на детей")
    assert "живым человеком" in chat.text
    assert "Контакты горячей линии" in chat.labels
    async with app.db.session() as session:
        row = await session.scalar(select(FaqUnanswered))
    assert (row.outcome, row.best_entry_id) == ("handoff", "handoff_complaint")


async def test_link_buttons_lead_into_the_dialogue(chat: ChatClient):
    await chat.send("как зарегистрироваться в навигаторе")
    assert "«Регистрация»" in chat.text
    await chat.press("Пошаговая регистрация")
    assert "Шаг 1 из 8" in chat.text
    # Mid-step an answer leaves its links out (the step's buttons come first), so from the menu
    await chat.press("В меню")
    await chat.send("какой муниципалитет выбрать при регистрации")
    assert "Мой муниципалитет" in chat.labels
    await chat.press("Мой муниципалитет")
    assert "Страница 1 из" in chat.text


async def test_link_buttons_appear_only_for_dialogues_that_exist(
    chat: ChatClient, app, monkeypatch
):
    # A centre's build without the registration walkthrough: the answer stays, the link goes.
    monkeypatch.delitem(app.router.buttons, "reg")
    await chat.send("как зарегистрироваться в навигаторе")
    assert "«Регистрация»" in chat.text
    assert "Пошаговая регистрация" not in chat.labels


async def test_an_empty_message_is_still_not_understood(chat: ChatClient):
    await chat.send("   ")
    assert "не понял" in chat.text


def test_terminal_channel_answers_free_text(tmp_path):
    script = "/start\nне приходит письмо\n"
    result = navbot("console", stdin=script, cwd=tmp_path, env={"NAVBOT_CONFIG": ""})
    assert result.returncode == 0, result.stderr
    assert "«Спам»" in result.stdout


async def test_a_suggestion_removed_from_the_base_is_answered_honestly(chat: ChatClient):
    await chat.send("", payload="faq:show:no_longer_here")
    assert "уже недоступен" in chat.text
    await chat.send("", payload="faq:show:cert_age")
    assert "от 5 до 18 лет" in chat.text
