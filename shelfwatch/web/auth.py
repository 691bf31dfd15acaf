"""Users, roles and what each role may see. Passwords are argon2 hashes (argon2-cffi); the rules are
pure functions so they are tested without a browser.

Roles: planner (all stores, no member data), store_manager (own store only, member counts but no
member data), cx (member data and contact lists), admin (everything).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError, VerifyMismatchError
from sqlalchemy import Engine, delete, func, insert, select, update

from core.db import as_utc, upsert
from sql import schema

ROLES = ("planner", "store_manager", "cx", "admin")
_hasher = PasswordHasher()


class UserError(ValueError):
    """A user that cannot be created as asked (unknown role, missing or unknown store)."""


@dataclass(frozen=True)
class User:
    username: str
    role: str
    store_id: str | None = None

    def can_view_store(self, store_id: str) -> bool:
        return self.role != "store_manager" or self.store_id == store_id

    @property
    def sees_member_data(self) -> bool:
        """Member ids, scores and contact channels: CX and admins only."""
        return self.role in ("cx", "admin")

    @property
    def acts_on_alerts(self) -> bool:
        return self.role in ("store_manager", "admin")

    @property
    def home(self) -> str:
        return {
            "planner": "/forecast",
            "store_manager": f"/stores/{self.store_id}/alerts",
            "cx": "/cx",
            "admin": "/health",
        }[self.role]


USERNAME = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}"
)  # what fits users.username, and reads plainly in logs and pages
MIN_PASSWORD = 8


def check_username(username: str) -> None:
    if not USERNAME.fullmatch(username):
        raise UserError("a username is 1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit")


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password needs at least {MIN_PASSWORD} characters")


def check_role(conn, role: str, store_id: str | None) -> None:
    """A known role; a store for a store manager only, and a store that exists."""
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    if (role == "store_manager") != bool(store_id):
        raise UserError("a store manager needs --store, and only a store manager has one")
    if (
        store_id
        and conn.execute(select(schema.stores.c.store_id).where(schema.stores.c.store_id == store_id)).first() is None
    ):
        raise UserError(f"unknown store {store_id}")


def add_user(engine: Engine, username: str, password: str, role: str, store_id: str | None = None) -> User:
    """Create or update a user (the password is stored as an argon2 hash only). Setting a password
    ends the user's sessions everywhere and enables a disabled user again."""
    check_username(username)
    check_password(password)
    with engine.begin() as conn:
        check_role(conn, role, store_id)
        upsert(
            conn,
            schema.users,
            [
                {
                    "username": username,
                    "password_hash": _hasher.hash(password),
                    "role": role,
                    "store_id": store_id,
                    "created_at": datetime.now(UTC),
                    "disabled_at": None,
                }
            ],
        )
        conn.execute(delete(schema.web_sessions).where(schema.web_sessions.c.username == username))
    return User(username, role, store_id)


def disable_user(engine: Engine, username: str) -> bool:
    """The user can't sign in any more and every session of theirs ends now; False if unknown."""
    with engine.begin() as conn:
        found = conn.execute(
            update(schema.users).where(schema.users.c.username == username).values(disabled_at=datetime.now(UTC))
        ).rowcount
        conn.execute(delete(schema.web_sessions).where(schema.web_sessions.c.username == username))
    return bool(found)


def create_user(engine: Engine, username: str, password: str, role: str, store_id: str | None = None) -> User:
    """A new user (the admin page's "add"): `add_user`'s rules, and the name must not be taken, so
    adding never changes someone else's password or role."""
    check_username(username)
    with engine.connect() as conn:
        if conn.execute(select(schema.users.c.username).where(schema.users.c.username == username)).first() is not None:
            raise UserError(f"user {username} exists already: change their role or reset their password instead")
    return add_user(engine, username, password, role, store_id)


def _known(conn, username: str):
    row = conn.execute(select(schema.users).where(schema.users.c.username == username)).first()
    if row is None:
        raise UserError(f"unknown user {username}")
    return row


def reset_password(engine: Engine, username: str, password: str) -> None:
    """A new password (argon2 hash); every session of the user ends now. A disabled user stays
    disabled (`enable_user` is separate)."""
    check_password(password)
    with engine.begin() as conn:
        _known(conn, username)
        conn.execute(
            update(schema.users).where(schema.users.c.username == username).values(password_hash=_hasher.hash(password))
        )
        conn.execute(delete(schema.web_sessions).where(schema.web_sessions.c.username == username))


def set_role(engine: Engine, username: str, role: str, store_id: str | None = None) -> User:
    """Change a user's role and store (`add_user`'s rules). Open sessions stay, and have the new role
    from their next request: the role is read from users on every request (`session_user`)."""
    with engine.begin() as conn:
        _known(conn, username)
        check_role(conn, role, store_id)
        conn.execute(
            update(schema.users).where(schema.users.c.username == username).values(role=role, store_id=store_id)
        )
    return User(username, role, store_id)


def enable_user(engine: Engine, username: str) -> None:
    """A disabled user may sign in again (with their existing password)."""
    with engine.begin() as conn:
        _known(conn, username)
        conn.execute(update(schema.users).where(schema.users.c.username == username).values(disabled_at=None))


def list_users(engine: Engine) -> list[dict]:
    """Every user, by name: role, store, when created and disabled, and their last successful
    sign-in (from login_attempts; None if never, or not since the audit trail began). No hashes."""
    u, a = schema.users, schema.login_attempts
    last = (
        select(a.c.username, func.max(a.c.attempted_at).label("last_sign_in"))
        .where(a.c.succeeded)
        .group_by(a.c.username)
        .subquery()
    )
    with engine.connect() as conn:
        rows = conn.execute(
            select(u.c.username, u.c.role, u.c.store_id, u.c.created_at, u.c.disabled_at, last.c.last_sign_in)
            .outerjoin(last, last.c.username == u.c.username)
            .order_by(u.c.username)
        ).all()
    return [r._asdict() for r in rows]


def authenticate(engine: Engine, username: str, password: str) -> User | None:
    """The user if the password is theirs and they are not disabled. An unknown user costs the same
    hashing work as a wrong password, so timing does not tell which usernames exist."""
    u = schema.users
    with engine.connect() as conn:
        row = conn.execute(select(u).where(u.c.username == username)).first()
    if row is None or row.disabled_at is not None:
        _hasher.hash(password)  # same work either way: timing does not tell which usernames exist
        return None
    try:
        _hasher.verify(row.password_hash, password)
    except (VerifyMismatchError, VerificationError):
        return None
    return User(row.username, row.role, row.store_id)


SESSION_HOURS = 12


def start_session(engine: Engine, username: str, hours: float = SESSION_HOURS) -> str:
    """A new server-side session for a signed-in user; its id is what the signed cookie carries."""
    now = datetime.now(UTC)
    session_id = secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(
            delete(schema.web_sessions).where(schema.web_sessions.c.expires_at < now)
        )  # expired ones go as new ones come
        conn.execute(
            insert(schema.web_sessions).values(
                session_id=session_id, username=username, created_at=now, expires_at=now + timedelta(hours=hours)
            )
        )
    return session_id


def end_session(engine: Engine, session_id: str | None) -> None:
    if session_id:
        with engine.begin() as conn:
            conn.execute(delete(schema.web_sessions).where(schema.web_sessions.c.session_id == session_id))


def session_user(engine: Engine, session_id: str | None) -> User | None:
    """The user of a live session (known, not expired, user not disabled), else None."""
    if not session_id:
        return None
    u, ws = schema.users, schema.web_sessions
    with engine.connect() as conn:
        row = conn.execute(
            select(u.c.username, u.c.role, u.c.store_id)
            .join(ws, ws.c.username == u.c.username)
            .where(ws.c.session_id == session_id, ws.c.expires_at > datetime.now(UTC), u.c.disabled_at.is_(None))
        ).first()
    return None if row is None else User(row.username, row.role, row.store_id)


# Login throttle: after FREE_FAILURES failed attempts for a username, or from a client address,
# within THROTTLE_WINDOW (a success for the username starts its count again), each further attempt
# waits 2^(n - FREE_FAILURES) s after the last failure, at most MAX_WAIT.
FREE_FAILURES = 5
THROTTLE_WINDOW = timedelta(minutes=15)
MAX_WAIT = timedelta(minutes=15)


def login_wait(engine: Engine, username: str, client: str, now: datetime | None = None) -> float:
    """Seconds before `username` may try again from `client` (0: now). The same for a user that
    does not exist, so the answer tells nothing about which usernames do."""
    now = now or datetime.now(UTC)
    a = schema.login_attempts
    since = now - THROTTLE_WINDOW
    with engine.connect() as conn:
        last_ok = conn.execute(
            select(func.max(a.c.attempted_at)).where(a.c.username == username, a.c.succeeded)
        ).scalar()
        user_since = max(since, as_utc(last_ok)) if last_ok is not None else since
        counts = []
        for who, start in ((a.c.username == username, user_since), (a.c.client == client, since)):
            counts.append(
                conn.execute(
                    select(func.count(), func.max(a.c.attempted_at)).where(
                        who, a.c.attempted_at > start, a.c.succeeded.is_(False)
                    )
                ).one()
            )
    failures, last = max(counts, key=lambda c: c[0])
    if failures < FREE_FAILURES or last is None:
        return 0.0
    wait = min(timedelta(seconds=2 ** (failures - FREE_FAILURES)), MAX_WAIT)
    return max(0.0, (as_utc(last) + wait - now).total_seconds())


def record_attempt(engine: Engine, username: str, client: str, succeeded: bool, throttled: bool = False) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(schema.login_attempts).values(
                username=username[:64],
                client=client[:64],
                attempted_at=datetime.now(UTC),
                succeeded=succeeded,
                throttled=throttled,
            )
        )
