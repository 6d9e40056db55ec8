"""The console in a real browser (headless Debian Chromium through Selenium): a member of
staff signs in, finds a parent's conversation by a word in another form than the parent
typed, sees the phone masked, unmasks it (the audit log shows it), changes the request's
status, and the parent gets the notice in the fake Telegram. Screenshots of the main
pages go to artifacts/screenshots/."""

from __future__ import annotations

import asyncio

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser import Browser
from tests.enrollment import born_years_ago, program
from tests.messengers import TelegramParent, wait_until
from tests.staff import ADMIN_PASSWORD, Served, create_accounts

PARENT = 7001
PHONE = "+7 928 614-27-53"


async def tap(parent: TelegramParent, data: str) -> None:
    """The parent presses an inline button with this callback data."""
    before = len(parent._sent())
    update = await parent.fake.callback(parent.user_id, data)
    await parent._settle(update["update_id"], before)


async def telegram_parent_with_request(running, fake_telegram) -> TelegramParent:
    parent = TelegramParent(running, fake_telegram, PARENT)
    await parent.send("/start")
    await parent.send(f"Добрый день! Записываемся вместе с бабушкой, мой телефон {PHONE}")
    target = await program(running.app, "900000")
    await tap(parent, f"req:new:{target.id}")
    if "Согласие на обработку" in parent.text:
        await parent.press("Согласен(на)")
    await parent.send("Петрова Анна Игоревна")
    await parent.send(born_years_ago(11).strftime("%d.%m.%Y"))
    await parent.press("Пропустить")
    await parent.send(PHONE)
    await parent.press("Без комментария")
    await parent.press("Отправить заявку")
    assert "№1" in parent.text, parent.text
    return parent


def staff_walkthrough(base: str, database: str) -> dict[str, str]:
    """Everything the member of staff does in the browser; returns page texts to check."""
    browser = Browser()
    driver = browser.driver
    wait = WebDriverWait(driver, 20)
    seen: dict[str, str] = {}
    try:
        driver.get(base + "/requests")
        wait.until(ready.presence_of_element_located((By.NAME, "login")))
        assert "/signin" in driver.current_url
        browser.screenshot(f"signin-{database}")
        driver.find_element(By.NAME, "login").send_keys("admin")
        driver.find_element(By.NAME, "password").send_keys(ADMIN_PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "button.primary").click()
        wait.until(ready.title_contains("Заявки"))  # back where the browser was sent from
        browser.screenshot(f"requests-{database}")

        driver.find_element(By.LINK_TEXT, "Разговоры").click()
        wait.until(ready.title_contains("Разговоры"))
        browser.screenshot(f"conversations-{database}")
        search = driver.find_element(By.NAME, "q")
        search.send_keys("бабушка")  # the parent wrote «бабушкой»
        search.submit()
        wait.until(ready.url_contains("q="))
        wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "table.conversations")))
        rows = driver.find_elements(By.CSS_SELECTOR, "table.conversations tbody tr")
        seen["search"] = driver.find_element(By.TAG_NAME, "main").text
        assert len(rows) == 1, seen["search"]
        browser.screenshot(f"search-{database}")

        rows[0].find_element(By.CSS_SELECTOR, "td a").click()
        wait.until(ready.title_contains("Разговор №"))
        seen["masked"] = driver.find_element(By.TAG_NAME, "main").text
        seen["masked_source"] = driver.page_source
        browser.screenshot(f"conversation-{database}")

        driver.find_element(By.XPATH, "//button[text()='Показать персональные данные']").click()
        wait.until(ready.presence_of_element_located((By.XPATH, "//button[text()='Скрыть снова']")))
        seen["unmasked"] = driver.find_element(By.TAG_NAME, "main").text
        browser.screenshot(f"conversation-unmasked-{database}")

        driver.find_element(By.LINK_TEXT, "Журнал").click()
        wait.until(ready.title_contains("Журнал"))
        seen["audit"] = driver.find_element(By.TAG_NAME, "main").text
        browser.screenshot(f"audit-{database}")

        driver.find_element(By.LINK_TEXT, "Заявки").click()
        wait.until(ready.title_contains("Заявки"))
        driver.find_element(By.LINK_TEXT, "1").click()
        wait.until(ready.title_contains("Заявка №1"))
        driver.find_element(By.CSS_SELECTOR, "input[name=status][value=accepted]").click()
        driver.find_element(By.XPATH, "//button[text()='Сохранить статус']").click()
        wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "p.notice")))
        seen["status"] = driver.find_element(By.TAG_NAME, "main").text
        browser.screenshot(f"request-{database}")
    except Exception:
        browser.screenshot(f"failure-{database}")
        raise
    finally:
        browser.close()
    return seen


async def test_staff_find_unmask_and_accept_in_a_browser(running, fake_telegram, database):
    await create_accounts(running.app)
    await telegram_parent_with_request(running, fake_telegram)
    served = Served(running.app)
    base = await served.start()
    kind = "postgresql" if "schema_name" in database else "sqlite"
    try:
        seen = await asyncio.to_thread(staff_walkthrough, base, kind)
    finally:
        await served.stop()

    assert "бабушкой" in seen["search"]
    assert "+7 ••• •••-••-53" in seen["masked"]
    assert "614-27-53" not in seen["masked_source"]
    assert "Петрова Анна" not in seen["masked_source"]
    assert PHONE in seen["unmasked"] and "Петрова Анна Игоревна" in seen["unmasked"]
    assert "Показаны персональные данные" in seen["audit"] and "admin" in seen["audit"]
    assert "«Новая» → «Принята»" in seen["status"]

    def notice_arrived() -> bool:
        return any("принята организацией" in m.text for m in fake_telegram.to(PARENT))

    await wait_until(notice_arrived, limit=30)
    notice = [m for m in fake_telegram.to(PARENT) if "принята организацией" in m.text][-1]
    assert "Заявка №1" in notice.text and "Петрова Анна Игоревна" in notice.text
