"""Handoff to a person in a real browser (headless Debian Chromium through Selenium),
with parents in the project's fake Telegram and fake VK talking to the real bot:

the parent presses «Позвать специалиста»; an operator signs in, sees it in the queue,
takes it and replies (a canned reply picked, a link, the menu's buttons); the parent
receives the reply in their messenger; their next message is not answered by the bot
and appears for the operator without a reload; the operator closes; the bot answers
again. Two operators taking the same conversation at the same moment: one wins, the
other is told. Screenshots of the queue and of the conversation go to
artifacts/screenshots/."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import Select, WebDriverWait
from sqlalchemy import select

from storage import handoffs
from storage.models import User
from storage.staff import add_staff
from tests.browser import Browser
from tests.messengers import Parent, TelegramParent, VkParent, wait_until
from tests.staff import OPERATOR_PASSWORD, Served, create_accounts

REPLY = "Здравствуйте! Я проверила: сертификат активирован. Войдите в Навигатор по ссылке ниже."
LATER = "Спасибо! А где посмотреть номер сертификата?"


def kind_of(database: dict[str, str]) -> str:
    return "postgresql" if "schema_name" in database else "sqlite"


class Bridge:
    """Runs the parent's coroutines on the test's event loop from the browser's thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def run(self, coroutine: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)


def sign_in(browser: Browser, base: str, login: str) -> None:
    driver = browser.driver
    driver.get(base + "/queue")
    WebDriverWait(driver, 20).until(ready.presence_of_element_located((By.NAME, "login")))
    driver.find_element(By.NAME, "login").send_keys(login)
    driver.find_element(By.NAME, "password").send_keys(OPERATOR_PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "button.primary").click()
    WebDriverWait(driver, 20).until(ready.title_contains("Очередь"))


def transcript_text(driver) -> str:
    return driver.find_element(By.ID, "transcript").text


def operator_walkthrough(
    base: str, name: str, bridge: Bridge, parent: Parent, received: Callable[[str], bool]
) -> dict[str, Any]:
    browser = Browser()
    driver = browser.driver
    # a page being replaced (after a form is sent) leaves stale elements behind: look again
    wait = WebDriverWait(driver, 30, ignored_exceptions=[StaleElementReferenceException])
    seen: dict[str, Any] = {}
    try:
        sign_in(browser, base, "oper")
        rows = driver.find_elements(By.CSS_SELECTOR, "table.waiting tbody tr")
        seen["order"] = [row.text for row in rows]
        row = rows[0]  # the newest waiting: our parent
        seen["queue"] = driver.find_element(By.TAG_NAME, "main").text
        browser.screenshot(f"handoff-queue-{name}")

        row.find_element(By.XPATH, ".//button[text()='Взять']").click()
        wait.until(ready.title_contains("Разговор №"))
        wait.until(ready.presence_of_element_located((By.ID, "reply-text")))
        Select(driver.find_element(By.ID, "canned")).select_by_visible_text("Нужно уточнить")
        box = driver.find_element(By.ID, "reply-text")
        seen["canned"] = box.get_attribute("value")
        box.clear()
        box.send_keys(REPLY)
        driver.find_element(By.NAME, "link_url").send_keys("https://р26.навигатор.дети/")
        driver.find_element(By.NAME, "link_label").send_keys("Открыть Навигатор")
        driver.find_element(By.NAME, "menu").click()
        driver.find_element(By.XPATH, "//button[text()='Отправить']").click()
        wait.until(lambda d: REPLY in transcript_text(d))
        seen["after_reply"] = transcript_text(driver)

        # The reply reaches the parent in their messenger through the outbox.
        bridge.run(wait_until(lambda: received(REPLY), limit=30))
        # The parent's next message: the bot stays silent, and it appears on this page by
        # itself (the page is not reloaded: the marker set here survives).
        driver.execute_script("window.navbotSamePage = true;")
        seen["bot_answer"] = bridge.run(parent.send(LATER))
        wait.until(lambda d: LATER in transcript_text(d))
        seen["same_page"] = driver.execute_script("return window.navbotSamePage === true;")
        # the reply's delivery is shown as it happens
        wait.until(lambda d: "ожидает отправки" not in transcript_text(d))
        seen["live"] = transcript_text(driver)
        driver.execute_script("window.scrollTo(0, 0);")
        browser.screenshot(f"handoff-conversation-{name}")

        driver.find_element(By.XPATH, "//button[text()='Завершить разговор']").click()
        wait.until(ready.title_contains("Очередь"))
        seen["closed"] = driver.find_element(By.TAG_NAME, "main").text
    except Exception:
        browser.screenshot(f"handoff-failure-{name}")
        raise
    finally:
        browser.close()
    return seen


async def crowd(running, fake_telegram) -> None:
    """Other parents in the queue: a complaint the FAQ hands over at once, a question it
    could not answer, and one a colleague already has."""
    complaint = TelegramParent(running, fake_telegram, 7201)
    await complaint.send("Хочу пожаловаться на тренера, он кричит на детей")
    unknown = TelegramParent(running, fake_telegram, 7202)
    await unknown.send(
        "Что делать, если в приложении Госуслуги висит заявление со статусом черновик уже неделю?"
    )
    await unknown.press("Позвать специалиста")
    taken = TelegramParent(running, fake_telegram, 7203)
    await taken.send("/operator")
    await taken.send("Ребёнку отказали в записи, хотя места есть")
    async with running.app.db.session() as session:
        user = await session.scalar(select(User).where(User.platform_user_id == "7203"))
        handoff = await handoffs.open_handoff_of(session, user.id)
        await handoffs.take(session, handoff.id, "marina")


async def run_the_handoff(running, parent: Parent, name: str, received, fake_telegram) -> None:
    await create_accounts(running.app)
    await crowd(running, fake_telegram)
    await parent.send("/start")
    await parent.press("Позвать специалиста")
    assert "передал разговор специалисту" in parent.text
    await parent.send("Не получается записаться: пишет, что сертификат не активирован")
    assert parent.last == []
    served = Served(running.app)
    base = await served.start()
    bridge = Bridge(asyncio.get_running_loop())
    try:
        seen = await asyncio.to_thread(operator_walkthrough, base, name, bridge, parent, received)
    finally:
        await served.stop()

    assert "Попросил специалиста" in seen["queue"]
    assert "сертификат не активирован" in seen["order"][0]
    assert "черновик" in seen["order"][1] and "Бот не знал ответа" in seen["order"][1]
    assert "пожаловаться" in seen["order"][2] and "Вопрос для специалиста" in seen["order"][2]
    assert "marina" in seen["queue"] and "отказали в записи" in seen["queue"]
    assert "доставлено" in seen["live"]
    assert "Ответ будет здесь, в этом чате" in seen["canned"]
    assert "Сотрудник oper" in seen["after_reply"]
    assert seen["bot_answer"] == []
    assert seen["same_page"] is True
    assert "Разговор завершён" in seen["closed"]

    await wait_until(lambda: received("Специалист завершил разговор"), limit=30)
    answered = await parent.send("как получить сертификат")
    assert answered and "сертификат" in parent.text.lower()


@pytest.mark.parametrize("channel", ["telegram", "vk"])
async def test_a_parent_talks_with_an_operator_in_their_messenger(
    running, fake_telegram, fake_vk, database, channel
):
    if channel == "telegram":
        parent: Parent = TelegramParent(running, fake_telegram, 7101)
        messages = lambda: fake_telegram.to(7101)  # noqa: E731
    else:
        parent = VkParent(running, fake_vk, 7102)
        messages = lambda: fake_vk.to(7102)  # noqa: E731

    def received(text: str) -> bool:
        return any(text in message.text for message in messages())

    await run_the_handoff(
        running, parent, f"{channel}-{kind_of(database)}", received, fake_telegram
    )
    sent = messages()
    start = next(i for i, m in enumerate(sent) if REPLY in m.text)
    end = next(i for i, m in enumerate(sent) if "Специалист завершил разговор" in m.text)
    # VK carries a long keyboard over several messages: the reply's buttons are all of
    # those up to the parent's next message
    rows = [row for message in sent[start:end] for row in message.buttons]
    if channel == "telegram":
        labels = [label for row in rows for label, _ in row]
    else:
        labels = [label for row in rows for _, label, _ in row]
    assert labels[0] == "Открыть Навигатор" and "Мои заявки" in labels


def take_at_once(base: str, name: str) -> list[dict[str, str]]:
    """Two operators, each in their own browser on the queue, press «Взять» together."""
    browsers = [Browser(), Browser()]
    results: list[dict[str, str]] = [{}, {}]
    try:
        for browser, login in zip(browsers, ("oper", "oper2"), strict=True):
            sign_in(browser, base, login)
        barrier = threading.Barrier(2)

        def press(index: int) -> None:
            driver = browsers[index].driver
            button = driver.find_element(By.XPATH, "//table[contains(@class,'waiting')]//button")
            barrier.wait()
            button.click()
            WebDriverWait(driver, 30).until(
                lambda d: "Разговор №" in d.title or d.find_elements(By.CSS_SELECTOR, "p.error")
            )
            results[index] = {
                "title": driver.title,
                "main": driver.find_element(By.TAG_NAME, "main").text,
            }

        threads = [threading.Thread(target=press, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        for index, browser in enumerate(browsers):
            browser.screenshot(f"handoff-take-{index + 1}-{name}")
    finally:
        for browser in browsers:
            browser.close()
    return results


async def test_two_operators_take_the_same_conversation_at_the_same_moment(
    running, fake_telegram, database
):
    await create_accounts(running.app)
    async with running.app.db.session() as session:
        await add_staff(session, "oper2", OPERATOR_PASSWORD, "operator")
    parent = TelegramParent(running, fake_telegram, 7103)
    await parent.send("/operator")
    served = Served(running.app)
    base = await served.start()
    try:
        results = await asyncio.to_thread(take_at_once, base, kind_of(database))
    finally:
        await served.stop()
    won = [r for r in results if "Разговор №" in r["title"]]
    lost = [r for r in results if "Разговор №" not in r["title"]]
    assert len(won) == 1 and len(lost) == 1, results
    assert "Ответ родителю" in won[0]["main"]
    assert "Этот разговор уже взял" in lost[0]["main"]
    assert "Выберите другой разговор из очереди" in lost[0]["main"]
