"""What the server wires for its stress settings: nothing at all when they are off."""

from __future__ import annotations

import pytest
import structlog
from gateway_rig import Rig
from structlog.testing import capture_logs

from exchange.gateway.delay import DelayedOutbox
from exchange.gateway.outbox import Outbox
from exchange.gateway.stress import (
    DisconnectPlan,
    Fixed,
    FloodSettings,
    LatencySettings,
    RejectSettings,
    StressSettings,
)
from exchange.messages import Command, DeclareStress
from exchange.shell import stress_modes
from exchange.shell.stress_modes import StressModes


@pytest.fixture(autouse=True)
def _capturable_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """Log through structlog's own logger, which `capture_logs` intercepts."""
    monkeypatch.setattr(
        stress_modes, "_log", structlog.get_logger(stress_modes.__name__)
    )


SYMBOLS = ["BTC-PERP", "ETH-PERP"]


async def _declared(modes: StressModes) -> list[Command]:
    """Return what `StressModes.declare` submits."""
    submitted: list[Command] = []

    async def submit(command: Command) -> None:
        submitted.append(command)

    await modes.declare(submit)
    return submitted


class TestStressModes:
    """Each mode brings its part; no mode, no part."""

    async def test_with_every_mode_off_the_server_is_unchanged(self) -> None:
        """A plain outbox, no injector, no task, nothing journaled or logged."""
        modes = StressModes(StressSettings(), SYMBOLS)
        assert type(modes.outbox(10, 10)) is Outbox
        assert modes.injector is None
        rig = Rig()
        assert modes.tasks(rig.session, Outbox(), "mqtt://x:1", (None, None)) == []
        with capture_logs() as logs:
            assert await _declared(modes) == []
        assert logs == []

    async def test_each_mode_brings_its_part(self) -> None:
        """Latency delays the outbox; rejects an injector; flood and drops tasks."""
        settings = StressSettings(
            seed=9,
            latency=LatencySettings(private=Fixed(ms=1)),
            reject=RejectSettings(probability=0.5),
            flood=FloodSettings(rate=10),
            disconnect={"bot-1": DisconnectPlan(at_s=[1])},
        )
        modes = StressModes(settings, SYMBOLS)
        assert isinstance(modes.outbox(10, 10), DelayedOutbox)
        assert modes.injector is not None
        rig = Rig()
        tasks = modes.tasks(rig.session, Outbox(), "mqtt://x:1", (None, None))
        assert [name for name, _ in tasks] == [
            "paperx.stress.flood",
            "paperx.stress.disconnects",
        ]
        for _, work in tasks:
            work.close()  # never started

    async def test_the_settings_in_effect_are_journaled_and_logged(self) -> None:
        """One DeclareStress with the settings' JSON, and a stress_settings line."""
        settings = StressSettings(reject=RejectSettings(probability=0.25))
        with capture_logs() as logs:
            (command,) = await _declared(StressModes(settings, SYMBOLS))
        assert command == DeclareStress(settings=settings.as_json())
        (line,) = logs
        assert line["event"] == "stress_settings"
        assert line["reject"]["probability"] == 0.25
