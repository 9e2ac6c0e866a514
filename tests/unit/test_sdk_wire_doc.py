"""docs/wire.md's worked example runs: recipe, signature, payload and answers."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
from pathlib import Path

from margin_helpers import FREE

from clients.sdk import LoopbackExchange
from exchange.codes import RejectCode
from exchange.gateway.auth import ApiCredentials

DOC = (Path(__file__).parents[2] / "docs" / "wire.md").read_text()
NOW_NS = 1_700_000_000_000_000_000


def block(info: str) -> str:
    """Return the body of the fenced block whose info string is ``info``."""
    (body,) = re.findall(rf"```{info}\n(.*?)```", DOC, flags=re.DOTALL)
    return body.strip()


def answers_to(payload: bytes) -> list[bytes]:
    """Return what alice receives on her ack topic after publishing ``payload``."""
    venue = LoopbackExchange(FREE, clock=lambda: NOW_NS)
    secret = "alice-secret"  # noqa: S105 -- the document's example secret
    venue.add_account("alice", "100000", ApiCredentials(api_key="k", secret=secret))
    link = venue.transport("alice")

    async def session() -> list[bytes]:
        await link.connect()
        await link.subscribe("paperx/v1/ack/alice", 1)
        await link.publish("paperx/v1/cmd/alice", payload, 1)
        received = []
        messages = link.messages()
        while len(received) < 2:
            received.append((await anext(messages)).payload)
        return received

    return asyncio.run(session())


def test_the_signing_recipe_builds_the_documented_payload():
    """The doc's Python recipe signs the request into the payload shown."""
    namespace: dict = {}
    exec(block("python"), namespace)  # noqa: S102 -- the document's own code
    request = block("json request")
    payload = namespace["signed"](json.loads(request), "alice-secret")
    assert payload == block("json payload").encode()
    assert request.encode() in payload


def test_the_documented_signature_is_the_hmac_of_the_request_bytes():
    """The signature shown is the hex HMAC-SHA256 of the request under the secret."""
    body = block("json request").encode()
    expected = hmac.new(b"alice-secret", body, hashlib.sha256).hexdigest()
    assert block("text signature") == expected


def test_the_exchange_answers_the_payload_as_documented():
    """Publishing the payload yields exactly the documented ack and order update."""
    ack, order = answers_to(block("json payload").encode())
    assert ack == block("json ack").encode()
    assert order == block("json order").encode()


def test_every_reject_code_is_documented_with_its_name():
    """The reject table lists every RejectCode's number and name."""
    for code in RejectCode:
        assert f"| {int(code)} | `{code.name}` |" in DOC
