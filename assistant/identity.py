"""Who is asking: a verified widget token, the SSO proxy's headers, a login, or nobody.

- Widget: the intranet signs a short-lived JWT (`sub`, `groups`, `exp`) and passes it to the
  widget URL; `verify_token` checks signature, expiry (and `aud`/`iss` if configured).
- Full chat page behind SSO: the proxy names the user and groups in headers, which count only when
  the request comes from a configured proxy address (anyone else could set them).
- Small setups: `ASSISTANT_LOGIN_USERS` turns on a login page with fixed users and groups.
- Nobody: only documents for `all`.

Only the user id ever leaves this module for the audit log; tokens are not stored.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import secrets
import time
from dataclasses import dataclass, field

import jwt
from itsdangerous import BadSignature, TimestampSigner

from assistant.audience import reader_groups
from assistant.config import Settings


class IdentityError(Exception):
    """A token that was presented but cannot be accepted (expired, forged, malformed).

    `code` names the kind for messages in the user's language: expired | signature | invalid |
    unconfigured."""

    def __init__(self, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Identity:
    user: str | None
    groups: frozenset[str] = field(default_factory=lambda: reader_groups())
    via: str = "anonymous"  # anonymous | token | proxy | login
    expires: float | None = None  # token expiry (epoch seconds)

    @property
    def expired(self) -> bool:
        return self.expires is not None and time.time() >= self.expires


ANONYMOUS = Identity(None)


def verify_token(token: str, settings: Settings) -> Identity:
    """The identity in a widget token; IdentityError naming the problem otherwise."""
    secret = settings.jwt_secret.get_secret_value()
    if settings.jwt_public_key:
        key, algorithms = settings.jwt_public_key, ["RS256", "ES256"]
    elif secret:
        key, algorithms = secret, ["HS256"]
    else:
        raise IdentityError("sign-in tokens are not configured on this server", "unconfigured")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=algorithms,
            audience=settings.jwt_audience or None,
            issuer=settings.jwt_issuer or None,
            options={
                "require": ["exp", "sub"],
                "verify_aud": bool(settings.jwt_audience),
            },
            leeway=30,
        )
    except jwt.ExpiredSignatureError as exc:
        raise IdentityError(
            "the sign-in token has expired; reload the intranet page", "expired"
        ) from exc
    except jwt.InvalidSignatureError as exc:
        raise IdentityError("the sign-in token's signature is invalid", "signature") from exc
    except jwt.InvalidTokenError as exc:
        raise IdentityError(f"the sign-in token is invalid: {exc}") from exc
    groups = claims.get("groups", [])
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise IdentityError("the sign-in token's `groups` claim must be a list of names")
    return Identity(str(claims["sub"]), reader_groups(groups), "token", float(claims["exp"]))


def trusted_proxy(address: str | None, settings: Settings) -> bool:
    """Whether `address` (the socket peer, never a header) is one of ASSISTANT_TRUSTED_PROXIES."""
    if not address or not settings.trusted_proxies:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for entry in settings.trusted_proxies:
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def client_address(headers, peer: str | None, settings: Settings) -> str | None:
    """Who is at the other end, for per-address limits: the socket peer; behind a trusted proxy,
    the nearest address in X-Forwarded-For that is not itself a trusted proxy. A header from any
    other peer is ignored (anyone can write one)."""
    if not trusted_proxy(peer, settings):
        return peer
    forwarded = [a.strip() for a in (headers.get("x-forwarded-for") or "").split(",")]
    for address in reversed([a for a in forwarded if a]):
        if not trusted_proxy(address, settings):
            return address[:64]
    return peer


def from_proxy(headers, client: str | None, settings: Settings) -> Identity | None:
    """The SSO proxy's user, if the request comes from a trusted proxy and names one. `client`
    must be the socket peer (uvicorn runs with proxy headers off; see app.py)."""
    if not trusted_proxy(client, settings):
        return None
    user = (headers.get(settings.sso_user_header) or "").strip()
    if not user:
        return None
    groups = (headers.get(settings.sso_groups_header) or "").split(",")
    return Identity(user[:200], reader_groups(groups), "proxy")


def login_users(settings: Settings) -> dict[str, tuple[str, frozenset[str]]]:
    """user -> (password, groups) from ASSISTANT_LOGIN_USERS."""
    users = {}
    for entry in settings.login_users:
        parts = entry.get_secret_value().split(":")
        if len(parts) >= 2 and parts[0]:
            groups = parts[2].split("|") if len(parts) > 2 else []
            users[parts[0]] = (parts[1], reader_groups(groups))
    return users


def from_login(username: str | None, settings: Settings) -> Identity | None:
    users = login_users(settings)
    if username and username in users:
        return Identity(username, users[username][1], "login")
    return None


def resolve(headers, client: str | None, settings: Settings, token: str | None = None) -> Identity:
    """The asker: a presented token must be valid (IdentityError otherwise), then the proxy,
    else anonymous. Bearer tokens come from the Authorization header or `token`."""
    auth = headers.get("authorization") or ""
    bearer = auth[7:].strip() if auth.lower().startswith("bearer ") else None
    credential = token or bearer
    if credential:
        return verify_token(credential, settings)
    return from_proxy(headers, client, settings) or ANONYMOUS


class LinkSigner:
    """Signed, expiring links to restricted documents: a citation's link works for the person
    it was shown to (for a day), without their token in the URL.

    `key` (from ASSISTANT_SESSION_SECRET, else random per process) also keys the admin session
    cookies; each use signs with a salt of its own, so one kind of signature is never another.
    """

    SALT = "document-link"

    def __init__(self, settings: Settings, ttl_s: int = 86_400) -> None:
        secret = settings.session_secret.get_secret_value()
        self.key = secret.encode() if secret else secrets.token_bytes(32)
        self.ttl_s = ttl_s
        self._signer = TimestampSigner(self.key, salt=self.SALT, digest_method=hashlib.sha256)

    def sign(self, source: str) -> str:
        """The query string (`sig=<timestamp>.<signature>`) that opens `source`; the source
        itself is signed but not repeated (the link's path names it)."""
        stamped = self._signer.sign(source).decode()
        return "sig=" + ".".join(stamped.rsplit(".", 2)[1:])

    def check(self, source: str, sig: str | None) -> bool:
        """Whether `sig` was made for `source` by this key and is younger than the link's ttl."""
        if not sig:
            return False
        try:
            self._signer.unsign(f"{source}.{sig}", max_age=self.ttl_s)
        except BadSignature:  # forged, for another document, or expired (SignatureExpired)
            return False
        return True


class AnswerReceipts:
    """A receipt with every answer given (API and chat), so a rating rates an answer this
    assistant gave to the one who rates it, once: `<nonce>.<timestamp>.<signature>` over the
    nonce, the asker's user id ("" when anonymous) and a digest of the answer (question, text,
    citations, answered, mode). Without it anyone could post ratings of answers never given and
    move the rollout's thumbs-up share, or plant citations the admin would promote into the
    regression set. Keyed like LinkSigner (a salt of its own)."""

    SALT = "answer-receipt"
    FIELDS = ("question", "answer", "citations", "answered", "mode")

    def __init__(self, key: bytes, ttl_s: int = 7 * 86_400) -> None:
        self.ttl_s = ttl_s
        self._signer = TimestampSigner(key, salt=self.SALT, digest_method=hashlib.sha256)

    @classmethod
    def _value(cls, nonce: str, answer: dict, asker: str) -> str:
        who = hashlib.sha256(asker.encode("utf-8", "replace")).hexdigest()[:16]
        return f"{nonce}:{who}:{cls.digest(answer)}"

    @classmethod
    def digest(cls, answer: dict) -> str:
        # ASCII JSON: a lone surrogate a client sends is escaped, never an encoding error.
        canonical = json.dumps({f: answer.get(f) for f in cls.FIELDS}, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def issue(self, answer: dict, asker: str = "") -> str:
        nonce = secrets.token_hex(8)
        stamped = self._signer.sign(self._value(nonce, answer, asker)).decode()
        return ".".join([nonce, *stamped.rsplit(".", 2)[1:]])

    def check(self, answer: dict, receipt: str, asker: str = "") -> str | None:
        """The receipt's nonce if it was issued for this very answer to this asker within the
        ttl, else None."""
        nonce, _, stamp = receipt.partition(".")
        if not nonce or not stamp:
            return None
        try:
            self._signer.unsign(f"{self._value(nonce, answer, asker)}.{stamp}", max_age=self.ttl_s)
        except BadSignature:  # forged, for another answer (edited text or citations), or old
            return None
        return nonce
