"""Request signing: per-account API secrets, HMAC-SHA256 and the timestamp window.

What is signed. A bot sends ``{"req": REQUEST, "sig": SIG}``; ``SIG`` is the
lowercase hex HMAC-SHA256, keyed with the UTF-8 bytes of the account's API
secret, of the exact bytes of ``REQUEST`` as they appear in the payload: from
its opening ``{`` to its closing ``}`` in JSON, or the encoded map in msgpack.
Nothing is re-serialised or canonicalised, so the form is whatever the bot
wrote, and no two requests share a signature unless they are byte-equal. In
Python::

    body = json.dumps(request, separators=(",", ":")).encode()
    sig = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    payload = b'{"req":' + body + b',"sig":"' + sig.encode() + b'"}'

Freshness, as Binance's ``recvWindow``: a request is accepted only if
``now - recv_window_ms <= ts_ms <= now + 1000`` (ms). Within that window a
redelivery is answered from memory (the session's idempotency), never run
twice; outside it, it is refused as STALE_TIMESTAMP.

HMAC checking needs the secret itself, so secrets are kept in memory as given
(never logged, never journaled); the broker's passwords are the ones stored
hashed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping

import msgspec

from exchange.codes import Refusal, RejectCode
from exchange.gateway.wire import Codec, Signed

__all__ = [
    "FUTURE_TOLERANCE_MS",
    "ApiCredentials",
    "KeyStore",
    "check_timestamp",
    "sign",
    "signed_payload",
    "verify",
]

FUTURE_TOLERANCE_MS = 1_000  # a bot's clock may run this far ahead (Binance's)


class ApiCredentials(msgspec.Struct, frozen=True, kw_only=True):
    """An account's API key (public: names the account) and secret (signs).

    ``repr`` hides the secret so that it never reaches a log by accident.
    """

    api_key: str
    secret: str

    def __repr__(self) -> str:
        """Show the key, never the secret."""
        return f"ApiCredentials(api_key={self.api_key!r}, secret=<hidden>)"

    @classmethod
    def generate(cls) -> ApiCredentials:
        """Return fresh random credentials (256-bit secret, as hex)."""
        return cls(api_key=secrets.token_hex(16), secret=secrets.token_hex(32))


class KeyStore:
    """The accounts that may trade, with their credentials."""

    __slots__ = ("_accounts_by_key", "_secrets")

    def __init__(self, credentials: Mapping[str, ApiCredentials]) -> None:
        """Index ``credentials`` (account -> credentials) both ways.

        Raises:
            ValueError: two accounts share an API key, or a secret is empty.
        """
        self._secrets = {a: c.secret.encode() for a, c in credentials.items()}
        self._accounts_by_key = {c.api_key: a for a, c in credentials.items()}
        if len(self._accounts_by_key) != len(self._secrets):
            msg = "two accounts share an API key"
            raise ValueError(msg)
        if not all(self._secrets.values()):
            msg = "every account needs a non-empty API secret"
            raise ValueError(msg)

    def secret(self, account: str) -> bytes | None:
        """Return the account's secret (UTF-8 bytes), or None if it has none."""
        return self._secrets.get(account)

    def account_for_key(self, api_key: str) -> str | None:
        """Return the account an API key belongs to (for a REST adapter)."""
        return self._accounts_by_key.get(api_key)


def sign(secret: bytes, body: bytes) -> str:
    """Return the lowercase hex HMAC-SHA256 of ``body`` under ``secret``."""
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def signed_payload(codec: Codec, secret: str, request: object) -> bytes:
    """Return the payload a bot publishes: ``request`` encoded, then signed.

    ``request`` is a wire struct or plain data (a dict) of one.
    """
    body = codec.encode(request)
    return codec.encode(Signed(req=msgspec.Raw(body), sig=sign(secret.encode(), body)))


def verify(secret: bytes, body: bytes, signature: str) -> bool:
    """Return True if ``signature`` signs ``body`` (constant-time comparison)."""
    return hmac.compare_digest(
        sign(secret, body).encode(), signature.encode("utf-8", "replace")
    )


def check_timestamp(ts_ms: int, recv_window_ms: int, now_ms: int) -> Refusal | None:
    """Return why a request stamped ``ts_ms`` is not fresh at ``now_ms``, or None."""
    if now_ms - recv_window_ms <= ts_ms <= now_ms + FUTURE_TOLERANCE_MS:
        return None
    return Refusal(
        RejectCode.STALE_TIMESTAMP,
        f"ts_ms {ts_ms} is outside the receive window of {recv_window_ms} ms "
        f"at exchange time {now_ms}",
    )
