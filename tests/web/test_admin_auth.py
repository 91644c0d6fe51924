"""Admin session cookies as units (the HTTP side: e2e/test_admin.py, e2e/test_attacks.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from assistant.audience import reader_groups
from assistant.identity import Identity
from assistant.web.admin_auth import SESSION_S, AdminSessions

KEY = b"admin-session-unit-test-key-0123456789"
ADMIN = Identity("hr-admin", reader_groups(["admin", "hr"]), "login")


def test_a_session_cookie_reads_back_as_its_admin():
    sessions = AdminSessions(KEY)
    assert sessions.read(sessions.issue(ADMIN)) == ADMIN
    assert AdminSessions(KEY).read(sessions.issue(ADMIN)) == ADMIN  # another replica, same key


def test_forged_tampered_and_empty_cookies_are_refused():
    sessions = AdminSessions(KEY)
    cookie = sessions.issue(ADMIN)
    payload, stamp, mac = cookie.rsplit(".", 2)
    flipped = "A" if mac[10] != "A" else "B"
    mallory = json.dumps({"u": "mallory", "g": ["admin"], "v": "login"}).encode()
    for bad in (
        f"{payload}.{stamp}.{mac[:10]}{flipped}{mac[11:]}",
        # Another user's name under the admin's signature.
        f"{base64.urlsafe_b64encode(mallory).decode().rstrip('=')}.{stamp}.{mac}",
        AdminSessions(b"another-key-another-key-0123456789").issue(ADMIN),
        "",
        None,
        "not-a-cookie",
    ):
        assert sessions.read(bad) is None, bad


def test_a_cookie_expires_after_the_session_time(monkeypatch):
    sessions = AdminSessions(KEY)
    cookie = sessions.issue(ADMIN)
    later = int(time.time()) + SESSION_S + 60
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: later)
    assert sessions.read(cookie) is None


def test_a_value_signed_for_another_purpose_is_no_session():
    """Links and cookies share the session key; the salt keeps a document link's signature (or
    anything else signed with the key) from passing as an admin session."""
    other = URLSafeTimedSerializer(
        KEY, salt="document-link", signer_kwargs={"digest_method": hashlib.sha256}
    )
    assert AdminSessions(KEY).read(other.dumps({"u": "mallory", "g": ["admin"]})) is None


def test_a_cookie_of_the_format_before_itsdangerous_is_refused():
    """Cookies issued before the switch are invalid: their admins sign in again."""
    body = json.dumps({"u": "hr-admin", "g": ["admin"], "v": "login", "e": time.time() + 3600})
    encoded = base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")
    mac = hmac.new(KEY, encoded.encode(), hashlib.sha256).hexdigest()[:40]
    assert AdminSessions(KEY).read(f"{encoded}.{mac}") is None
