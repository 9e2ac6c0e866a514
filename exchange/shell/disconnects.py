"""Forced disconnects: drop a named MQTT client at set times or at random.

A stress mode (`exchange.gateway.stress.DisconnectPlan`, one per MQTT client
id). It works on any MQTT 3.1.1 broker, with no broker plugin: connecting
under a client id that is already connected makes the broker close the
older connection (MQTT 3.1.1 §3.1.4, "client take-over"). The exchange
connects with its own login under the victim's client id, with
``clean_session`` off so that the broker keeps the victim's session (its
subscriptions and the QoS 1 messages queued for it), and leaves at once.
Whatever the broker delivers to that short connection is never
acknowledged (`_hold` ends it first), so the broker keeps it for the
victim's next connection.

Brokers differ beyond the protocol. Mosquitto drops a session's queued
messages that the login taking it over may not read (so the exchange's ACL
lets it read the private topics, `exchange.gateway.acl`). amqtt (the
embedded broker) keeps nothing for anonymous sessions, so without logins
what is published while a client is away is lost, and it forgets a QoS 1
message in flight on any connection that drops, the take-over's too: a
message queued for a client that is away when it is taken over again is
lost. A client's retried requests are still answered (the gateway's request
memory); order updates and fills of those moments are not sent again.

Times count from the start of the task (just after ``server_ready``); each
client id's random times are seeded apart (`exchange.gateway.stress.seeded`).
Each drop is logged as ``client_disconnected``; a take-over the broker
refuses is logged as ``disconnect_failed`` and the schedule goes on.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Iterator

from exchange.gateway.mqtt import parse_broker_url
from exchange.gateway.mqtt_client import MqttClient, MqttError
from exchange.gateway.stress import DisconnectPlan, seeded
from exchange.logs import get_logger

__all__ = ["disconnect_times", "run_disconnects", "take_over"]

_log = get_logger(__name__)


class _Held(Exception):
    """Raised on a message delivered to the take-over: it stays unacknowledged."""


def _hold(topic: str, payload: bytes) -> None:
    """End the take-over's connection before it acknowledges anything.

    Raises:
        _Held: always (the client then drops the link, PUBACK unsent).
    """
    del payload
    raise _Held(topic)


def disconnect_times(plan: DisconnectPlan, rng: random.Random) -> Iterator[float]:
    """Yield a plan's disconnect times (seconds after the start), in order.

    The ``at_s`` times, merged with random ones whose gaps are exponential
    of mean ``mean_interval_s`` (none if 0), drawn from ``rng``.
    """
    fixed = iter(sorted(plan.at_s))
    mean = plan.mean_interval_s
    upcoming = next(fixed, math.inf)
    drawn = rng.expovariate(1 / mean) if mean else math.inf
    while upcoming < math.inf or drawn < math.inf:
        if upcoming <= drawn:
            yield upcoming
            upcoming = next(fixed, math.inf)
        else:
            yield drawn
            drawn += rng.expovariate(1 / mean)


async def take_over(
    url: str,
    client_id: str,
    username: str | None = None,
    password: str | None = None,
) -> None:
    """Make the broker at ``url`` drop the connection of ``client_id``, once.

    Raises:
        MqttError: the broker could not be reached or refused the login.
    """
    host, port = parse_broker_url(url)
    client = await MqttClient.connect(
        host,
        port,
        client_id,
        _hold,
        keepalive=0,
        clean_session=False,
        username=username,
        password=password,
    )
    await client.close()


async def run_disconnects(
    url: str,
    plans: dict[str, DisconnectPlan],
    seed: int,
    username: str | None = None,
    password: str | None = None,
) -> None:
    """Drop each planned client id at its times (module docstring); then return."""
    async with asyncio.TaskGroup() as group:
        for client_id, plan in plans.items():
            times = disconnect_times(plan, seeded(seed, "disconnect", client_id))
            group.create_task(
                _drop(url, client_id, times, username, password),
                name=f"paperx.disconnect.{client_id}",
            )


async def _drop(
    url: str,
    client_id: str,
    times: Iterator[float],
    username: str | None,
    password: str | None,
) -> None:
    """Take ``client_id`` over at each of ``times``."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    for at_s in times:
        await asyncio.sleep(max(0.0, started + at_s - loop.time()))
        try:
            await take_over(url, client_id, username, password)
        except MqttError as exc:
            _log.warning(
                "disconnect_failed", client_id=client_id, at_s=at_s, error=str(exc)
            )
            continue
        _log.info("client_disconnected", client_id=client_id, at_s=round(at_s, 3))
