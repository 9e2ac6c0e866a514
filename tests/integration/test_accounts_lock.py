"""``paperx accounts add``'s credentials lock each account in, on both brokers.

The accounts are made by `add_account` (as ``paperx accounts add``), and the
brokers run with what it wrote: a test-started Mosquitto with its password
file and ACL, and the embedded broker with the password hashes in the
config. Bob holds his own broker login and even Alice's API secret (the
worst case: a leaked secret); the broker alone still keeps him from placing,
cancelling or reading anything of Alice's.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest
from serve_rig import Bot, serving, write_config

from exchange.gateway.answers import Accepted, OpenOrdersInfo
from exchange.gateway.auth import signed_payload
from exchange.gateway.wire import topic
from exchange.shell.accounts import NewAccount, add_account

pytestmark = pytest.mark.broker


@pytest.fixture
def accounts(tmp_path: Path) -> tuple[NewAccount, NewAccount]:
    """Return Alice and Bob, made into a fresh config with the broker's files."""
    write_config(tmp_path, [])
    tag = uuid.uuid4().hex[:8]
    return tuple(  # type: ignore[return-value]
        add_account(
            tmp_path / "paperx.toml",
            f"{name}-{tag}",
            deposit="100000",
            password_file=tmp_path / "passwd",
            acl_file=tmp_path / "acl",
        )
        for name in ("alice", "bob")
    )


@pytest.fixture(params=["own-mosquitto", "embedded", "embedded-mosquitto"])
def locked(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    accounts: tuple[NewAccount, NewAccount],
) -> Iterator[str]:
    """Run the server behind a locked broker of the parameter's kind; yield its URL."""
    assert accounts
    settings = (
        "allow_anonymous false\nset_tcp_nodelay true\n"
        f"password_file {tmp_path / 'passwd'}\nacl_file {tmp_path / 'acl'}\n"
    )
    with serving(tmp_path / "paperx.toml", request.param, settings) as url:
        yield url


def _bot(url: str, account: NewAccount) -> Bot:
    """Return a plain MQTT bot logged in with the account's own credentials."""
    return Bot(url, account.name, password=account.mqtt_password, secret=account.secret)


async def test_the_broker_keeps_an_account_from_acting_or_reading_for_another(
    locked: str, accounts: tuple[NewAccount, NewAccount]
) -> None:
    """Bob, even with Alice's API secret, neither acts on nor hears of her orders."""
    alice, bob = accounts
    async with _bot(locked, alice) as a, _bot(locked, bob) as b:
        order = {"symbol": "BTC-PERP", "side": "buy", "type": "limit", "qty": "0.01"}
        mine = await a.answer(await a.send("new", **order, price="60000"))
        assert isinstance(mine, Accepted)
        await b.client.subscribe(topic("ack", alice.name), qos=1)
        await b.client.subscribe(topic("acct", alice.name), qos=1)
        for op, fields in (
            ("new", {**order, "price": "61000"}),
            ("cancel", {"order_id": mine.order_id}),
            ("open_orders", {}),
        ):
            forged = a.request(op, **fields)
            await b.publish(signed_payload(a.codec, a.secret, forged), alice.name)
        # answered after anything Bob sent before it: the forgeries are gone
        await b.answer(await b.send("open_orders"))
        hers = await a.answer(await a.send("open_orders"))
        assert isinstance(hers, OpenOrdersInfo)
        assert [o.order_id for o in hers.orders] == [mine.order_id]
        # published after Alice's answers: Bob would have heard those first
        await b.answer(await b.send("open_orders"))
    assert all(name.endswith(f"/{bob.name}") for name, _ in b.received)
    assert all(name.endswith(f"/{alice.name}") for name, _ in a.received)
    assert a.received  # Alice does hear of her own


async def test_the_broker_refuses_a_login_without_the_account_password(
    locked: str, accounts: tuple[NewAccount, NewAccount]
) -> None:
    """A client with a wrong broker password cannot connect at all."""
    alice, _ = accounts
    intruder = Bot(locked, alice.name, password="wrong", secret=alice.secret)  # noqa: S106
    with pytest.raises(aiomqtt.MqttError):
        async with intruder:
            pass
