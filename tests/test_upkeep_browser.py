"""The knowledge-base upkeep page in a real browser (headless Debian Chromium through
Selenium): parents ask the real bot questions it cannot answer well, an operator signs
in, opens the page, sees them grouped and marks a group. Screenshots go to
artifacts/screenshots/upkeep.png (the page) and upkeep-marked.png (after marking)."""

from __future__ import annotations

import asyncio

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser import Browser
from tests.chat import ChatClient
from tests.staff import OPERATOR_PASSWORD, Served, create_accounts
from tests.test_upkeep import ask_everything


@pytest.fixture
async def console(app):
    await create_accounts(app)
    served = Served(app)
    await served.start()
    yield served
    await served.stop()


def walkthrough(base: str) -> dict[str, object]:
    browser = Browser()
    driver = browser.driver
    wait = WebDriverWait(driver, 30, ignored_exceptions=[StaleElementReferenceException])
    seen: dict[str, object] = {}
    try:
        driver.get(base + "/upkeep")
        wait.until(ready.presence_of_element_located((By.NAME, "login")))
        driver.find_element(By.NAME, "login").send_keys("oper")
        driver.find_element(By.NAME, "password").send_keys(OPERATOR_PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "button.primary").click()
        wait.until(ready.title_contains("Вопросы без ответа"))
        menu = driver.find_element(By.CSS_SELECTOR, "header.top nav a.current")
        seen["menu"] = menu.text
        rows = driver.find_elements(By.CSS_SELECTOR, "#upkeep-groups tbody tr")
        seen["counts"] = [row.find_element(By.CSS_SELECTOR, ".count").text for row in rows]
        seen["page"] = driver.find_element(By.TAG_NAME, "main").text
        browser.screenshot("upkeep")
        rows[0].find_element(By.CSS_SELECTOR, "button[value='added']").click()
        notice = wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "p.notice")))
        seen["notice"] = notice.text
        rows = driver.find_elements(By.CSS_SELECTOR, "#upkeep-groups tbody tr")
        seen["after"] = [row.find_element(By.CSS_SELECTOR, ".count").text for row in rows]
        browser.screenshot("upkeep-marked")
    finally:
        browser.close()
    return seen


async def test_an_operator_opens_the_upkeep_page_and_marks_a_group(app, console):
    await ask_everything(app)
    # One more question for the mortgage group, asked by a parent who then leaves it.
    await ChatClient(app.engine, user_id="5999").send("ипотеку можно оплатить сертификатом?")
    seen = await asyncio.to_thread(walkthrough, console.base)
    assert seen["menu"] == "Вопросы без ответа"
    assert seen["counts"] == ["5", "2", "1", "1"]
    page = str(seen["page"])
    assert "ипотек" in page.lower() and "позвал специалиста: 2" in page
    assert "555-44-33" not in page and "Кузнецова" not in page
    assert "Группа отмечена «добавлено в базу знаний»: 5 вопросов" in str(seen["notice"])
    assert seen["after"] == ["2", "1", "1"]
