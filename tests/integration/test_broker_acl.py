"""The broker lock: a test-started Mosquitto with deploy/'s ACL and passwords.

Never the shared broker: this one runs on a free port with the generated
password file, so the exchange logs in as ``paperx`` and each bot as its
account, and the ACL alone keeps a bot to its own topics.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from serve_rig import PASSWORD, Bot, Server, write_config

from exchange.gateway.answers import Accepted, OpenOrdersInfo
from exchange.gateway.auth import signed_payload
from exchange.gateway.wire import topic

pytestmark = pytest.mark.broker


async def test_the_broker_keeps_each_account_to_its_own_topics(
    tmp_path: Path, locked_broker: str
) -> None:
    """Bob can neither read Alice's topics nor publish on her command topic."""
    write_config(tmp_path, ["alice", "bob"], broker_login=PASSWORD)
    server = Server(tmp_path / "paperx.toml", locked_broker, 0)
    try:
        server.wait_for("server_ready")
        async with (
            Bot(locked_broker, "alice", password=PASSWORD) as a,
            Bot(locked_broker, "bob", password=PASSWORD) as b,
        ):
            # granted (MQTT 3.1.1 has no refusal), but the ACL filters delivery
            await b.client.subscribe(topic("ack", "alice"), qos=1)
            # signed with Alice's own secret: only the broker can stop it
            forged = a.request("new", symbol="BTC-PERP", side="buy", type="limit")
            forged |= {"qty": "0.01", "price": "60000"}
            await b.publish(signed_payload(a.codec, a.secret, forged), account="alice")
            # Bob's request is answered after anything he sent before it
            await b.answer(await b.send("open_orders"))
            hers = await a.answer(await a.send("open_orders"))
            assert isinstance(hers, OpenOrdersInfo)
            assert hers.orders == []
            order = {k: forged[k] for k in ("symbol", "side", "type", "qty", "price")}
            own = await a.answer(await a.send("new", **order))
            assert isinstance(own, Accepted)
            # published after Alice's answers: Bob would have had those first
            await b.answer(await b.send("open_orders"))
        assert all(name.endswith("/alice") for name, _ in a.received)
        assert all(name.endswith("/bob") for name, _ in b.received)
    finally:
        server.kill()
