"""Request signing: the HMAC recipe, constant-time checks, the receive window."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from exchange.codes import RejectCode
from exchange.gateway.auth import (
    ApiCredentials,
    KeyStore,
    check_timestamp,
    sign,
    signed_payload,
    verify,
)
from exchange.gateway.wire import Codec

TEST_SECRET = "test-only-secret"  # noqa: S105 -- a test key, guards nothing


class TestSignature:
    """HMAC-SHA256 over the request's exact bytes."""

    def test_signature_is_the_documented_recipe(self):
        """The payload is the request's JSON and the hex HMAC of those bytes."""
        request = {"op": "balance", "id": "r1", "ts_ms": 5}
        payload = signed_payload(Codec(), "s3cret", request)
        body = json.dumps(request, separators=(",", ":")).encode()
        digest = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        assert payload == b'{"req":' + body + b',"sig":"' + digest.encode() + b'"}'

    def test_verify_accepts_the_signature_and_refuses_any_other(self):
        """Only the exact signature of the exact bytes verifies."""
        good = sign(b"k", b"body")
        assert verify(b"k", b"body", good)
        assert not verify(b"k", b"body ", good)
        assert not verify(b"other", b"body", good)
        assert not verify(b"k", b"body", good.upper())
        assert not verify(b"k", b"body", "\u00e9" * 64)


class TestTimestamp:
    """Binance's recvWindow rule."""

    @pytest.mark.parametrize(
        ("ts_ms", "fresh"),
        [
            (10_000, True),
            (5_000, True),
            (4_999, False),
            (11_000, True),
            (11_001, False),
        ],
    )
    def test_window_bounds(self, ts_ms, fresh):
        """A request is fresh from now - window to now + 1 s, inclusive."""
        refusal = check_timestamp(ts_ms, 5_000, now_ms=10_000)
        assert (refusal is None) == fresh
        if refusal is not None:
            assert refusal.code is RejectCode.STALE_TIMESTAMP


class TestKeyStore:
    """Accounts and their credentials."""

    def test_lookup_both_ways(self):
        """A secret is found by account and an account by API key."""
        keys = KeyStore({"alice": ApiCredentials(api_key="ka", secret=TEST_SECRET)})
        assert keys.secret("alice") == TEST_SECRET.encode()
        assert keys.account_for_key("ka") == "alice"
        assert keys.secret("bob") is None

    def test_shared_api_key_is_refused(self):
        """Two accounts may not share an API key."""
        same = ApiCredentials(api_key="k", secret=TEST_SECRET)
        with pytest.raises(ValueError, match="share"):
            KeyStore({"a": same, "b": same})

    def test_repr_hides_the_secret(self):
        """Credentials never print their secret."""
        credentials = ApiCredentials.generate()
        assert credentials.secret not in repr(credentials)
        assert len(credentials.secret) == 64
