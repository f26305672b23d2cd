"""Desk users, passwords (argon2id), server-side sessions and CSRF tokens.

Reads and writes the ``desk_users`` / ``desk_sessions`` tables through the store. The session cookie carries
only a random token (its SHA-256 is stored); each session has its own CSRF token, required on every POST.
Passwords never travel in a URL or on a command line: ``create_user`` takes them from stdin or an env var.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from connector.errors import ConfigError
from connector.store.desk import ROLES

SESSION_LIFETIME = dt.timedelta(hours=10)  # one working day; a new login after that
MIN_PASSWORD_LENGTH = 12
_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# verified when the user is unknown, so a wrong name costs the same time as a wrong password
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

# what each role may do; a viewer only reads
PERMISSIONS = {
    "viewer": frozenset({"read"}),
    "reviewer": frozenset({"read", "reconcile", "retry"}),
    "admin": frozenset({"read", "reconcile", "retry", "admin"}),
}


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ConfigError(f"a desk password needs at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def create_user(store: Any, username: str, role: str, password: str) -> int:
    """Create (or reset) a desk user; the password is hashed here and never stored or logged."""
    username = username.strip()
    if not username or len(username) > 64 or not username.replace(".", "").replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"desk user name {username!r}: use letters, digits, '.', '-' or '_' (at most 64)")
    if role not in ROLES:
        raise ConfigError(f"desk role {role!r}: one of {', '.join(ROLES)}")
    digest = hash_password(password)
    with store.transaction():
        return store.desk_save_user(username, digest, role)


def authenticate(store: Any, username: str, password: str) -> dict[str, Any] | None:
    """The user when the password matches, else None (same work either way)."""
    user = store.desk_user(username.strip()) if username else None
    try:
        _hasher.verify(user["password_hash"] if user else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if user is None:
        return None
    if _hasher.check_needs_rehash(user["password_hash"]):
        with store.transaction():
            store.desk_set_password_hash(user["id"], _hasher.hash(password))
    return user


def open_session(store: Any, user: dict[str, Any]) -> str:
    """A new session for this user (audited as a login); returns the cookie token."""
    token = secrets.token_urlsafe(32)
    with store.transaction():
        store.desk_open_session(user["id"], token, secrets.token_urlsafe(32), SESSION_LIFETIME)
        store.audit("desk.login", f"desk_user:{user['username']}", {"role": user["role"]},
                    actor=desk_actor(user["username"]))
    return token


def desk_actor(username: str) -> str:
    """How a desk user appears in the audit log (and as ``decided_by``)."""
    return f"desk:{username}"


def may(role: str, permission: str) -> bool:
    return permission in PERMISSIONS.get(role, frozenset())


def csrf_ok(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and secrets.compare_digest(expected, given)
