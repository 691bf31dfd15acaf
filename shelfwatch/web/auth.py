"""Users, roles and what each role may see. Passwords are argon2 hashes (argon2-cffi); the rules are
pure functions so they are tested without a browser.

Roles: planner (all stores, no member data), store_manager (own store only, member counts but no
member data), cx (member data and contact lists), admin (everything).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError, VerifyMismatchError
from sqlalchemy import Engine, select

from shelfwatch.core.db import upsert
from shelfwatch.sql import schema

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
        return {"planner": "/forecast", "store_manager": f"/stores/{self.store_id}/alerts", "cx": "/cx", "admin": "/health"}[self.role]


def add_user(engine: Engine, username: str, password: str, role: str, store_id: str | None = None) -> User:
    """Create or update a user (the password is stored as an argon2 hash only)."""
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    if (role == "store_manager") != bool(store_id):
        raise UserError("a store manager needs --store, and only a store manager has one")
    if len(password) < 8:
        raise UserError("the password needs at least 8 characters")
    with engine.begin() as conn:
        if store_id and conn.execute(select(schema.stores.c.store_id).where(schema.stores.c.store_id == store_id)).first() is None:
            raise UserError(f"unknown store {store_id}")
        upsert(conn, schema.users, [{"username": username, "password_hash": _hasher.hash(password), "role": role, "store_id": store_id,
                                     "created_at": datetime.now(timezone.utc)}])
    return User(username, role, store_id)


def authenticate(engine: Engine, username: str, password: str) -> User | None:
    u = schema.users
    with engine.connect() as conn:
        row = conn.execute(select(u).where(u.c.username == username)).first()
    if row is None:
        _hasher.hash(password)  # same work either way: timing does not tell which usernames exist
        return None
    try:
        _hasher.verify(row.password_hash, password)
    except (VerifyMismatchError, VerificationError):
        return None
    return User(row.username, row.role, row.store_id)


def load_user(engine: Engine, username: str | None) -> User | None:
    if not username:
        return None
    u = schema.users
    with engine.connect() as conn:
        row = conn.execute(select(u.c.username, u.c.role, u.c.store_id).where(u.c.username == username)).first()
    return None if row is None else User(row.username, row.role, row.store_id)
