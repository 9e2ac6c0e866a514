"""A core driven through the gateway's session layer, as a transport adapter would."""

from __future__ import annotations

from typing import Any

from margin_helpers import FREE

from exchange.core import ExchangeCore
from exchange.gateway.answers import Answer, Rejected
from exchange.gateway.auth import ApiCredentials, KeyStore, signed_payload
from exchange.gateway.session import Session
from exchange.gateway.wire import Codec, Outbound
from exchange.markets import Market
from exchange.messages import Command, Record

NOW_NS = 1_700_000_000_000_000_000
NOW_MS = NOW_NS // 1_000_000
SECRETS = {"alice": "alice-secret", "bob": "bob-secret", "carol": "carol-secret"}


class Rig:
    """An `ExchangeCore` behind a `Session`: decode -> core.handle -> outcome."""

    def __init__(
        self,
        markets: tuple[Market, ...] = FREE,
        *,
        margin: bool = True,
        fmt: str = "json",
    ) -> None:
        """Create the core and a session for alice, bob and carol."""
        self.core = ExchangeCore(markets, margin=margin)
        keys = KeyStore(
            {
                a: ApiCredentials(api_key=f"{a}-key", secret=s)
                for a, s in SECRETS.items()
            }
        )
        self.codec = Codec(fmt)  # type: ignore[arg-type]
        self.session = Session(self.core, keys, codec=self.codec)
        self.now_ns = NOW_NS
        self.counter = 0

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Return a request dict with a fresh id and the current time."""
        self.counter += 1
        body = {"op": op, "id": f"r{self.counter}", "ts_ms": self.now_ns // 1_000_000}
        body.update(fields)
        return body

    def payload(
        self, account: str, request: object, secret: str | None = None
    ) -> bytes:
        """Return a request signed with the account's secret (or ``secret``)."""
        return signed_payload(self.codec, secret or SECRETS[account], request)

    def send(self, account: str, payload: bytes) -> list[Outbound]:
        """Decode a payload from ``account`` and run its commands; return all out."""
        decoded = self.session.decode(account, payload, self.now_ns)
        messages = list(decoded.answers)
        for command in decoded.commands:
            messages += self.apply(command)
        return messages

    def call(self, account: str, op: str, **fields: Any) -> list[Outbound]:
        """Sign and send one request of ``account``."""
        return self.send(account, self.payload(account, self.request(op, **fields)))

    def apply(self, command: Command) -> list[Outbound]:
        """Sequence a command (and the liquidations it causes); return the messages."""
        messages = self._record(command)
        for system_command in self.core.system_commands():
            messages += self._record(system_command)
        return messages

    def _record(self, command: Command) -> list[Outbound]:
        """Sequence and apply one record; return the messages it caused."""
        record = Record(self.core.last_seq + 1, self.now_ns, command)
        return self.session.outcome(record, self.core.handle(record))


def to(messages: list[Outbound], kind: str, key: str) -> list[Answer]:
    """Return the messages published on one topic, in order."""
    return [m.message for m in messages if (m.kind, m.key) == (kind, key)]


def rejects(messages: list[Outbound]) -> list[tuple[str, str]]:
    """Return (request id, code name) of every reject among ``messages``."""
    return [
        (m.message.id, m.message.name)
        for m in messages
        if isinstance(m.message, Rejected)
    ]
