"""The corpus of real parents' questions, the robustness suite built from it, and what a
parent sees for the kinds of message they really write: complaints and demands handed
to a person, long messages with the question inside, follow-ups, several questions."""

from __future__ import annotations

from collections import Counter

import pytest

from bot.faq_tools import REAL_CORPUS, corpus_items
from handlers.faq.evaluate import read_corpus
from handlers.faq.robust import robust_suite
from handlers.faq.service import load_faq
from tests.chat import ChatClient
from tests.cli import navbot

CORPUS = read_corpus(REAL_CORPUS)


def test_the_corpus_names_a_source_for_every_question_and_holds_out_whole_sources():
    assert len(CORPUS) >= 35
    assert all(item.source for item in CORPUS)
    splits = Counter(item.split for item in CORPUS)
    assert splits["dev"] >= 15 and splits["heldout"] >= 12
    groups = {}
    for item in CORPUS:
        assert groups.setdefault(item.group, item.split) == item.split
    kb = load_faq().kb
    assert all(kb.get(entry) is not None for item in CORPUS for entry in item.entries)


@pytest.mark.parametrize(
    "item",
    [i for i in robust_suite(CORPUS) + CORPUS if i.label == "handoff"],
    ids=lambda i: i.variant or "as found",
)
def test_must_go_to_a_person_examples_from_the_corpus_are_handed_over(item):
    assert load_faq().decide(item.question).outcome == "handoff"


@pytest.mark.parametrize(
    "question",
    [
        "Требую разобраться, почему с сертификата сняли деньги за кружок, куда мы не ходим",
        "если не вернут деньги напишу в прокуратуру",
        "в реестре неправильные данные у ребенка, дата рождения не та",
        "в кабинете какой-то чужой ребенок",
        "с сертификата списывают за секцию а договор мы не заключали",
        "пожалуюсь в роспотребнадзор на этот клуб",
    ],
)
def test_demands_complaints_and_wrong_registry_data_are_handed_over(question):
    assert load_faq().decide(question).outcome == "handoff"


@pytest.mark.parametrize(
    "question",
    [
        "какие документы требуются для подтверждения",
        "помогите разобраться, как получить сертификат",
        "я ошиблась в дате рождения ребенка когда регистрировалась",
    ],
)
def test_ordinary_questions_with_strong_words_are_still_answered(question):
    assert load_faq().decide(question).outcome != "handoff"


def test_the_robustness_suite_is_reproducible_and_has_every_kind_of_rewrite():
    first, second = robust_suite(CORPUS), robust_suite(CORPUS)
    assert [i.question for i in first] == [i.question for i in second]
    kinds = Counter(i.variant for i in first)
    assert set(kinds) == {"context", "typos", "plain", "fragment", "merged", "slang"}
    dev_only = corpus_items("dev", "robust")
    assert all(i.split == "dev" for i in dev_only) and len(dev_only) > len(first)


def test_a_long_message_with_the_question_inside_is_answered():
    verdict = load_faq().decide(
        "Здравствуйте, девочки! я в навигаторе первый раз, всё сложно, в школе сказали "
        "что надо. Как активировать сертификат"
    )
    assert (verdict.outcome, verdict.entry.id) == ("answer", "cert_activate")


async def test_a_follow_up_is_read_with_the_question_before_it(chat: ChatClient):
    await chat.send("С какого возраста дают сертификат?")
    assert "от 5 до 18 лет" in chat.text
    await chat.send("а если ему 4?")
    assert "младше 5 лет" in chat.text
    await chat.send("а если уже 10 лет?")
    assert "от 5 до 18 лет" in chat.text


async def test_without_a_question_before_a_bare_follow_up_is_not_guessed(chat: ChatClient):
    await chat.send("а если ему 4?")
    assert "младше 5 лет" not in chat.text


def test_faq_eval_prints_the_figures_for_the_held_out_sources(tmp_path):
    result = navbot("faq-eval", "--split", "heldout", cwd=tmp_path, env={"NAVBOT_CONFIG": ""})
    assert result.returncode == 0, result.stderr
    for line in (
        "real suite, heldout sources",
        "covered, answered directly:",
        "direct answers carrying the required facts:",
        "first suggestion right:",
        "suggestion lists, of all questions:",
        "must go to a person, handed over: 100.0%",
    ):
        assert line in result.stdout
    robust = navbot(
        "faq-eval",
        "--suite",
        "robust",
        "--split",
        "heldout",
        "--quiet",
        cwd=tmp_path,
        env={"NAVBOT_CONFIG": ""},
    )
    assert robust.returncode == 0, robust.stderr
    assert "robust suite, heldout sources" in robust.stdout and "misses" not in robust.stdout
