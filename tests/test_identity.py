"""Identity, audiences, audit retention and request limits as units (the HTTP side: e2e/test_identity.py)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from conftest import make_settings
from itsdangerous import TimestampSigner
from pydantic import SecretStr

from assistant.answering.answer import Answer
from assistant.audience import audience_metadata, parse_groups, reader_groups, visible
from assistant.identity import (
    ANONYMOUS,
    AnswerReceipts,
    Identity,
    IdentityError,
    LinkSigner,
    from_proxy,
    login_users,
    resolve,
    verify_token,
)
from assistant.records.audit import AuditLog
from assistant.web.limits import BusyError, Gate, RateLimiter

SECRET = "unit-test-secret-unit-test-secret-0123"
HR_DOC = "personal/hr-intern-verguetung-ki-rollen.md"


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path, tmp_path / "corpus", jwt_secret=SECRET)


def token(**claims) -> str:
    base = {"sub": "u1", "groups": ["hr"], "exp": int(time.time()) + 60}
    return jwt.encode({**base, **claims}, SECRET, algorithm="HS256")


def test_valid_token_gives_user_and_groups(settings):
    who = verify_token(token(), settings)
    assert who.user == "u1" and who.groups == {"all", "hr"} and who.via == "token"


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"sub": "u1", "groups": ["hr"], "exp": int(time.time()) - 300}, "expired"),
        ({"sub": "u1", "groups": "hr", "exp": int(time.time()) + 3600}, "list of names"),
        ({"groups": ["hr"], "exp": int(time.time()) + 3600}, "sub"),
        ({"sub": "u1", "groups": ["hr"]}, "exp"),
    ],
    ids=["expired", "groups-not-a-list", "no-sub", "no-exp"],
)
def test_bad_claims_are_refused(settings, claims, message):
    with pytest.raises(IdentityError, match=message):
        verify_token(jwt.encode(claims, SECRET, algorithm="HS256"), settings)


def test_forged_and_none_algorithm_tokens_are_refused(settings):
    forged = jwt.encode(
        {"sub": "x", "exp": int(time.time()) + 60},
        "another-secret-0123456789-abcdef",
        algorithm="HS256",
    )
    with pytest.raises(IdentityError, match="signature"):
        verify_token(forged, settings)
    unsigned = jwt.encode({"sub": "x", "exp": int(time.time()) + 60}, None, algorithm="none")
    with pytest.raises(IdentityError):
        verify_token(unsigned, settings)


def test_tokens_need_a_configured_key(tmp_path):
    with pytest.raises(IdentityError, match="not configured"):
        verify_token(token(), make_settings(tmp_path, tmp_path))


def test_proxy_headers_need_a_trusted_address(tmp_path):
    settings = make_settings(tmp_path, tmp_path, trusted_proxies="10.0.0.0/8, 192.168.1.5")
    headers = {"X-Forwarded-User": "anna", "X-Forwarded-Groups": "HR, management"}
    assert from_proxy(headers, "10.2.3.4", settings).groups == {"all", "hr", "management"}
    assert from_proxy(headers, "192.168.1.5", settings).user == "anna"
    assert from_proxy(headers, "192.168.1.6", settings) is None
    assert from_proxy(headers, None, settings) is None
    assert resolve(headers, "8.8.8.8", settings) == ANONYMOUS


def test_login_users_come_from_the_list_setting(tmp_path):
    settings = make_settings(tmp_path, tmp_path, login_users="anna:geheim:hr|management, ben:pw")
    users = login_users(settings)
    assert users["anna"] == ("geheim", reader_groups(["hr", "management"]))
    assert users["ben"] == ("pw", reader_groups())
    assert login_users(make_settings(tmp_path, tmp_path)) == {}


def test_signed_links_expire_and_bind_to_the_document(settings, monkeypatch):
    signer = LinkSigner(settings)
    sig = signer.sign(HR_DOC).removeprefix("sig=")
    assert signer.check(HR_DOC, sig)
    assert not signer.check("richtlinien/other.md", sig)
    assert not signer.check(HR_DOC, None) and not signer.check(HR_DOC, "")
    stamp, mac = sig.split(".")
    assert not signer.check(HR_DOC, f"{stamp}.{mac[:10]}{'A' if mac[10] != 'A' else 'B'}{mac[11:]}")
    other_key = settings.model_copy(update={"session_secret": SecretStr("another-key" * 4)})
    assert not LinkSigner(other_key).check(HR_DOC, sig)
    # The format before itsdangerous (`exp=<epoch>&sig=<hex>`) opens nothing any more.
    assert not signer.check(HR_DOC, "0" * 32)
    # A day and a minute later the link has expired.
    later = int(time.time()) + 86_400 + 60
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: later)
    assert not signer.check(HR_DOC, sig)


def test_unreadable_audience_is_visible_to_nobody():
    assert parse_groups("hr, Management") == {"hr", "management"}
    assert audience_metadata("hr") == {"aud_hr": True}
    for unreadable in ("", "???", 42, None, {"hr": 1}):
        flags = audience_metadata(unreadable)
        assert flags == {}
        assert not visible(flags, reader_groups(["hr", "management"]))


def test_retrieval_filters_by_audience(real_corpus_store):
    from assistant.answering.pipeline import build_assistant

    assistant = build_assistant(real_corpus_store.settings, real_corpus_store.kb)
    question = "Gehaltsband Jahresgrundgehalt Chief AI Officer"
    public = assistant.retriever.retrieve(question, k=20)
    assert HR_DOC not in {p.source for p in public}
    hr = assistant.retriever.retrieve(question, k=20, groups=reader_groups(["hr"]))
    assert hr[0].source == HR_DOC
    assert not assistant.retriever.readable(HR_DOC, reader_groups())
    assert assistant.retriever.readable(HR_DOC, reader_groups(["hr"]))
    answer = assistant.ask(
        "Wie hoch ist das Gehalt eines Chief AI Officer?", groups=reader_groups(["hr"])
    )
    assert HR_DOC in {c.source for c in answer.citations}


def test_audit_log_keeps_ids_and_purges_old_rows(tmp_path):
    log = AuditLog(f"sqlite:///{tmp_path / 'a.sqlite'}", retention_days=30)
    answer = Answer("Frage?", True, "Antwort [1].", [], "de")
    log.record(Identity("u9", reader_groups(["hr"]), "token"), answer, "widget")
    log.record(ANONYMOUS, answer, "api")
    rows = log.rows()
    assert [(r["user_id"], r["channel"]) for r in rows] == [("u9", "widget"), ("anonymous", "api")]
    assert log.purge(now=datetime.now(UTC) + timedelta(days=29)) == 0
    assert log.purge(now=datetime.now(UTC) + timedelta(days=31)) == 2
    assert log.rows() == []


def test_rate_limiter_counts_per_key():
    limiter = RateLimiter(per_minute=2)
    assert limiter.retry_after("a") == 0 and limiter.retry_after("a") == 0
    assert 0 < limiter.retry_after("a") <= 60
    assert limiter.retry_after("b") == 0


def test_gate_bounds_questions_in_flight():
    gate = Gate(concurrent=1, waiting=1, wait_s=5)
    inside, release = threading.Event(), threading.Event()

    def hold():
        with gate:
            inside.set()
            release.wait(5)

    first = threading.Thread(target=hold)
    first.start()
    inside.wait(5)
    waiting = threading.Thread(target=lambda: gate.__enter__() and gate.__exit__())
    waiting.start()
    time.sleep(0.2)
    with pytest.raises(BusyError, match="busy"):
        gate.__enter__()
    release.set()
    first.join(5)
    waiting.join(5)


def test_an_answer_receipt_fits_only_the_answer_it_was_issued_for():
    receipts = AnswerReceipts(b"k" * 32)
    answer = {"question": "q", "answer": "a [1]", "citations": [{"n": 1}], "answered": True}
    receipt = receipts.issue({**answer, "mode": "extractive"})
    assert receipts.check({**answer, "mode": "extractive"}, receipt) == receipt.split(".")[0]
    assert receipts.check({**answer, "mode": "extractive", "rating": 1}, receipt)  # extra fields
    assert receipts.issue(answer) != receipts.issue(answer)  # a nonce per answer given
    for changed in ({"answer": "b"}, {"citations": [{"n": 2}]}, {"question": "q\ud800"}):
        assert receipts.check({**answer, "mode": "extractive", **changed}, receipt) is None
    assert AnswerReceipts(b"x" * 32).check({**answer, "mode": "extractive"}, receipt) is None
    for bad in ("", "nonce", "nonce.", receipt + "x", "." + receipt):
        assert receipts.check({**answer, "mode": "extractive"}, bad) is None
    mine = receipts.issue({**answer, "mode": "extractive"}, "ana")
    assert receipts.check({**answer, "mode": "extractive"}, mine, "ana")
    for other in ("", "bob", "ana "):  # the answer was given to ana
        assert receipts.check({**answer, "mode": "extractive"}, mine, other) is None
    late = AnswerReceipts(b"k" * 32, ttl_s=-1)
    assert late.check({**answer, "mode": "extractive"}, receipt) is None
