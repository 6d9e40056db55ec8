"""Staff accounts, their sessions and sign-in limits: the storage side of the console.

Passwords are Argon2id hashes (argon2-cffi). A session's cookie holds a random token;
the table keeps only its SHA-256, so a copy of the database opens no session.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import STAFF_ROLES, AuditEntry, SignInAttempt, StaffSession, StaffUser, utcnow
from storage.requests import as_utc

LOGIN = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
MIN_PASSWORD = 10
_hasher = PasswordHasher()
# Verified against when the login is unknown, so both cases take the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class StaffError(Exception):
    """An account change the rules do not allow; the message says why (English, for CLI)."""


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise StaffError(f"the password must have at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


def check_login(login: str) -> str:
    login = login.strip().lower()
    if not LOGIN.fullmatch(login):
        raise StaffError(
            "a login is 2-64 characters: Latin letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return login


def staff_audit(
    session: AsyncSession,
    action: str,
    staff_login: str | None,
    *,
    request_id: int | None = None,
    user_id: int | None = None,
    **detail,
) -> None:
    session.add(
        AuditEntry(
            action=action,
            actor="staff" if staff_login else "system",
            staff_login=staff_login,
            request_id=request_id,
            user_id=user_id,
            detail=detail,
        )
    )


async def find_staff(session: AsyncSession, login: str) -> StaffUser | None:
    return await session.scalar(select(StaffUser).where(StaffUser.login == login.strip().lower()))


async def add_staff(
    session: AsyncSession, login: str, password: str, role: str, *, by: str | None = None
) -> StaffUser:
    login = check_login(login)
    if role not in STAFF_ROLES:
        raise StaffError(f"the role is one of {', '.join(STAFF_ROLES)}, not {role!r}")
    if await find_staff(session, login) is not None:
        raise StaffError(f"the login {login!r} is taken")
    user = StaffUser(login=login, password_hash=hash_password(password), role=role, active=True)
    session.add(user)
    await session.flush()
    staff_audit(session, "staff_add", by, login=login, role=role)
    return user


async def set_password(
    session: AsyncSession, user: StaffUser, password: str, *, by: str | None = None
) -> None:
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    # Every browser signed in with the old password is signed out.
    await session.execute(delete(StaffSession).where(StaffSession.staff_id == user.id))
    staff_audit(session, "staff_password", by, login=user.login)


async def set_active(
    session: AsyncSession, user: StaffUser, active: bool, *, by: str | None = None
) -> None:
    user.active = active
    if not active:
        await session.execute(delete(StaffSession).where(StaffSession.staff_id == user.id))
    staff_audit(session, "staff_enable" if active else "staff_disable", by, login=user.login)


async def set_role(session: AsyncSession, user: StaffUser, role: str, *, by: str | None) -> None:
    if role not in STAFF_ROLES:
        raise StaffError(f"the role is one of {', '.join(STAFF_ROLES)}, not {role!r}")
    before, user.role = user.role, role
    staff_audit(session, "staff_role", by, login=user.login, before=before, after=role)


async def list_staff(session: AsyncSession) -> list[StaffUser]:
    return list(await session.scalars(select(StaffUser).order_by(StaffUser.login)))


def verify_password(user: StaffUser | None, password: str) -> bool:
    """True when `user` is active and `password` is theirs (constant work otherwise)."""
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False
    return user is not None and user.active


def token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Limits:
    per_account: int
    per_address: int
    window: timedelta


async def recent_failures(
    session: AsyncSession, login: str, address: str, window: timedelta
) -> tuple[int, int, datetime | None]:
    """(failures for the login, failures from the address, the oldest counted one)."""
    since = utcnow() - window
    by_login = await session.scalar(
        select(func.count())
        .select_from(SignInAttempt)
        .where(SignInAttempt.login == login, SignInAttempt.created_at >= since)
    )
    by_address = await session.scalar(
        select(func.count())
        .select_from(SignInAttempt)
        .where(SignInAttempt.address == address, SignInAttempt.created_at >= since)
    )
    oldest = await session.scalar(
        select(func.min(SignInAttempt.created_at)).where(
            (SignInAttempt.login == login) | (SignInAttempt.address == address),
            SignInAttempt.created_at >= since,
        )
    )
    return by_login or 0, by_address or 0, as_utc(oldest) if oldest else None


async def record_failure(session: AsyncSession, login: str, address: str) -> None:
    session.add(SignInAttempt(login=login[:64], address=address[:64]))
    # Old attempts are of no use once outside every window.
    await session.execute(
        delete(SignInAttempt).where(SignInAttempt.created_at < utcnow() - timedelta(days=1))
    )


async def open_session(session: AsyncSession, user: StaffUser) -> tuple[str, StaffSession]:
    token = secrets.token_urlsafe(32)
    row = StaffSession(
        id=token_id(token), staff_id=user.id, csrf_token=secrets.token_urlsafe(32), unmasked=[]
    )
    session.add(row)
    return token, row


async def session_for(
    session: AsyncSession, token: str, idle: timedelta, lifetime: timedelta
) -> tuple[StaffSession, StaffUser] | None:
    """The live session of `token` and its account; an expired one is deleted."""
    if not token:
        return None
    found = (
        await session.execute(
            select(StaffSession, StaffUser)
            .join(StaffUser, StaffUser.id == StaffSession.staff_id)
            .where(StaffSession.id == token_id(token))
        )
    ).first()
    if found is None:
        return None
    row, user = found
    now = utcnow()
    if (
        user is None
        or not user.active
        or as_utc(row.last_seen) + idle < now
        or as_utc(row.created_at) + lifetime < now
    ):
        await session.delete(row)
        return None
    if now - as_utc(row.last_seen) > timedelta(seconds=30):
        row.last_seen = now
    return row, user


async def close_session(session: AsyncSession, token: str) -> None:
    await session.execute(delete(StaffSession).where(StaffSession.id == token_id(token)))
