"""`navbot staff-user` and `navbot web` as real processes: accounts made from the command
line (no default password anywhere; the password from stdin for scripts), and the
console served alone."""

from __future__ import annotations

import asyncio
import re
import signal

from tests.cli import LiveProcess, navbot, write_config
from tests.staff import StaffClient


def test_staff_user_commands(tmp_path, database):
    config = write_config(tmp_path, database)
    env = {"NAVBOT_CONFIG": str(config)}
    listed = navbot("staff-user", "list", cwd=tmp_path, env=env)
    assert listed.returncode == 0 and "no accounts yet" in listed.stdout

    short = navbot("staff-user", "add", "anna", "--role", "admin", stdin="short\n", env=env)
    assert short.returncode == 2 and "at least 10 characters" in short.stderr
    added = navbot(
        "staff-user", "add", "Anna", "--role", "admin", stdin="first-password-1\n", env=env
    )
    assert added.returncode == 0, added.stderr
    assert "account anna (admin) created" in added.stdout
    assert "first-password-1" not in added.stdout + added.stderr
    again = navbot("staff-user", "add", "anna", stdin="first-password-1\n", env=env)
    assert again.returncode == 2 and "taken" in again.stderr

    changed = navbot("staff-user", "passwd", "anna", stdin="second-password-2\n", env=env)
    assert changed.returncode == 0 and "password changed" in changed.stdout
    disabled = navbot("staff-user", "disable", "anna", env=env)
    assert disabled.returncode == 0
    listed = navbot("staff-user", "list", env=env)
    assert re.search(r"^anna\tadmin\tdisabled", listed.stdout, re.M), listed.stdout
    missing = navbot("staff-user", "passwd", "nobody", stdin="x" * 12 + "\n", env=env)
    assert missing.returncode == 2 and "no account 'nobody'" in missing.stderr


async def test_navbot_web_serves_the_console_alone(tmp_path, database):
    config = write_config(tmp_path, database)
    env = {"NAVBOT_CONFIG": str(config)}
    made = await asyncio.to_thread(
        navbot, "staff-user", "add", "oper", stdin="operator-password\n", env=env
    )
    assert made.returncode == 0, made.stderr
    process = LiveProcess("web", env=env)
    try:
        line = await asyncio.to_thread(process.expect, "staff console on http://", 90)
        base = re.search(r"(http://127\.0\.0\.1:\d+)/", line).group(1)
        client = StaffClient(base)
        try:
            status, _ = await client.get("/conversations")
            assert status == 303
            status, _ = await client.signin("oper", "operator-password")
            assert status == 303
            status, body = await client.get("/conversations")
            assert status == 200 and "Разговоров не найдено" in body and "oper" in body
        finally:
            await client.close()
        process.proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.proc.wait, 30) == 0
    finally:
        if process.proc.poll() is None:
            process.kill()
        for pipe in (process.proc.stdin, process.proc.stdout):
            if pipe is not None:
                pipe.close()
