"""The statistics page in a real browser (headless Debian Chromium through Selenium):
an operator signs in, sees the charts, changes the period, opens a chart's table, makes
a link for a new source (a wrong label first), and a screenshot of the page goes to
artifacts/screenshots/stats.png."""

from __future__ import annotations

import asyncio
from typing import Any

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import text

from bench.stats_history import fill
from tests.browser import Browser
from tests.staff import OPERATOR_PASSWORD, Served, create_accounts
from tests.test_stats import conversations


def walkthrough(base: str) -> dict[str, Any]:
    browser = Browser()
    driver = browser.driver
    wait = WebDriverWait(driver, 30, ignored_exceptions=[StaleElementReferenceException])
    seen: dict[str, Any] = {}
    try:
        driver.get(base + "/stats")
        wait.until(ready.presence_of_element_located((By.NAME, "login")))
        driver.find_element(By.NAME, "login").send_keys("oper")
        driver.find_element(By.NAME, "password").send_keys(OPERATOR_PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "button.primary").click()
        wait.until(ready.title_contains("Статистика"))
        seen["charts"] = len(driver.find_elements(By.CSS_SELECTOR, "svg.chart"))
        seen["menu"] = driver.find_element(By.CSS_SELECTOR, "header nav").text

        driver.find_element(By.LINK_TEXT, "90 дней").click()
        wait.until(ready.url_contains("days=90"))
        seen["current"] = driver.find_element(By.CSS_SELECTOR, ".preset.current").text
        seen["head"] = driver.find_element(By.CSS_SELECTOR, ".pagehead").text

        details = driver.find_element(By.CSS_SELECTOR, "#chart-funnel details")
        table = details.find_element(By.TAG_NAME, "table")
        seen["table_hidden"] = not table.is_displayed()
        details.find_element(By.TAG_NAME, "summary").click()
        wait.until(lambda d: table.is_displayed())
        seen["table"] = table.text

        field = driver.find_element(By.NAME, "source")
        driver.execute_script("arguments[0].removeAttribute('pattern')", field)
        field.send_keys("школа 5")
        driver.find_element(By.CSS_SELECTOR, "#link-maker button").click()
        wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "#link-maker .error")))
        seen["error"] = driver.find_element(By.CSS_SELECTOR, "#link-maker .error").text
        field = driver.find_element(By.NAME, "source")
        field.clear()
        field.send_keys("school5_poster")
        driver.find_element(By.CSS_SELECTOR, "#link-maker button").click()
        wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, ".link-url")))
        seen["links"] = [
            e.get_attribute("value") for e in driver.find_elements(By.CSS_SELECTOR, ".link-url")
        ]
        seen["still_90"] = driver.find_element(By.CSS_SELECTOR, ".preset.current").text
        driver.find_element(By.CSS_SELECTOR, "#chart-messages details summary").click()
        driver.execute_script("window.scrollTo(0, 0)")
        browser.screenshot("stats")
    finally:
        browser.close()
    return seen


async def test_an_operator_reads_the_statistics_in_a_browser(app):
    app.settings.telegram.bot_username = "navigator26_bot"
    app.settings.vk.group_screen_name = "navigator26"
    await create_accounts(app)
    await conversations(app)
    async with app.db.session() as session:
        last = await session.scalar(text("SELECT max(id) FROM users"))
    await fill(app, 1500, 12000, first_id=int(last) + 1000)
    served = Served(app)
    base = await served.start()
    try:
        seen = await asyncio.to_thread(walkthrough, base)
    finally:
        await served.stop()
    assert seen["charts"] == 8
    assert "Статистика" in seen["menu"]
    assert seen["current"] == "90 дней"
    assert seen["table_hidden"]
    assert "Начали" in seen["table"] and "Дошли до конца" in seen["table"]
    assert "латинских букв" in seen["error"]
    assert "https://t.me/navigator26_bot?start=school5_poster" in seen["links"]
    assert "https://vk.me/navigator26?ref=school5_poster" in seen["links"]
    assert seen["still_90"] == "90 дней"
