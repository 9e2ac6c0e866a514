"""Stress settings and their seeded draws: distributions, injection, the config."""

from __future__ import annotations

import re
import statistics
from pathlib import Path

import msgspec
import pytest
from gateway_rig import Rig

from exchange.codes import RejectCode
from exchange.errors import ConfigError
from exchange.gateway.answers import Accepted, Rejected
from exchange.gateway.stress import (
    Delays,
    Fixed,
    Latency,
    LatencySettings,
    Lognormal,
    Normal,
    RejectInjector,
    RejectSettings,
    StressSettings,
    Uniform,
    seeded,
)
from exchange.messages import Deposit, InjectReject, PlaceOrder
from exchange.shell.server_config import load_server_config, with_stress_file

DOC = Path(__file__).parents[2] / "docs" / "stress.md"
DRAWS = 20_000
ORDER = {"symbol": "BTC-PERP", "side": "buy", "type": "limit", "qty": "0.01"}


def _draws(latency: Latency, seed: int = 7, n: int = DRAWS) -> list[float]:
    """Return ``n`` delays (ms) drawn from one seeded stream."""
    rng = seeded(seed, "test")
    return [latency.sample(rng) for _ in range(n)]


class TestDistributions:
    """Each latency distribution: seeded, and of the mean and spread configured."""

    @pytest.mark.parametrize(
        "latency",
        [
            Uniform(low_ms=10, high_ms=30),
            Normal(mean_ms=20, sd_ms=5),
            Lognormal(mean_ms=20, sd_ms=40),
        ],
    )
    def test_the_same_seed_draws_the_same_delays(self, latency: Latency) -> None:
        """Two streams of one seed agree draw for draw; another seed does not."""
        assert _draws(latency, n=100) == _draws(latency, n=100)
        assert _draws(latency, n=100) != _draws(latency, seed=8, n=100)

    def test_fixed_is_always_its_value(self) -> None:
        """A fixed delay never varies."""
        assert set(_draws(Fixed(ms=50), n=100)) == {50.0}

    def test_uniform_stays_in_range_with_the_middle_as_mean(self) -> None:
        """Uniform draws lie in [low, high]; their mean is the middle (within 1%)."""
        draws = _draws(Uniform(low_ms=10, high_ms=30))
        assert 10 <= min(draws) <= max(draws) <= 30
        assert statistics.fmean(draws) == pytest.approx(20, rel=0.01)

    def test_normal_has_its_mean_and_sd(self) -> None:
        """Far from 0, normal draws have the configured mean and sd (within 2%)."""
        draws = _draws(Normal(mean_ms=50, sd_ms=5))
        assert statistics.fmean(draws) == pytest.approx(50, rel=0.02)
        assert statistics.stdev(draws) == pytest.approx(5, rel=0.02)

    def test_normal_is_clipped_at_zero(self) -> None:
        """A normal delay is never negative: draws below 0 are 0."""
        draws = _draws(Normal(mean_ms=1, sd_ms=5))
        assert min(draws) == 0.0
        assert draws.count(0.0) > DRAWS // 4  # about 42% of N(1, 5) is below 0

    def test_lognormal_has_the_mean_and_sd_configured(self) -> None:
        """The parameters are the delay's own mean and sd (within 3% and 15%)."""
        draws = _draws(Lognormal(mean_ms=20, sd_ms=10), n=100_000)
        assert min(draws) > 0
        assert statistics.fmean(draws) == pytest.approx(20, rel=0.03)
        assert statistics.stdev(draws) == pytest.approx(10, rel=0.15)
        assert statistics.median(draws) < 20  # the long right tail

    def test_each_account_draws_apart_from_the_others(self) -> None:
        """An account's delays do not depend on how other accounts interleave."""
        settings = LatencySettings(private=Uniform(low_ms=0, high_ms=100))
        alone, mixed = Delays(settings, 1), Delays(settings, 1)
        solo = [alone.private("alice") for _ in range(20)]
        interleaved = []
        for _ in range(20):
            mixed.private("bob")
            interleaved.append(mixed.private("alice"))
        assert solo == interleaved

    def test_an_account_table_replaces_the_default_and_units_are_seconds(
        self,
    ) -> None:
        """Per-account latency wins; no setting at all is no delay (None)."""
        settings = LatencySettings(
            private=Fixed(ms=5), accounts={"alice": Fixed(ms=250)}
        )
        delays = Delays(settings, 1)
        assert (delays.private("alice"), delays.private("bob")) == (0.25, 0.005)
        assert delays.market("book", "BTC-PERP") is None
        assert Delays(LatencySettings(), 1).private("bob") is None


class TestRejectInjector:
    """Which commands are refused on purpose: seeded, per account."""

    def test_probability_zero_never_and_one_always_refuses(self) -> None:
        """The edges are exact: 0 refuses nothing, 1 refuses everything."""
        never = RejectInjector(RejectSettings(probability=0.0), 1)
        always = RejectInjector(RejectSettings(probability=1.0), 1)
        assert not any(never.draw("alice") for _ in range(1000))
        assert all(always.draw("alice") for _ in range(1000))

    def test_draws_are_seeded_and_near_the_probability(self) -> None:
        """One seed gives the same refusals; their share is the probability."""
        settings = RejectSettings(probability=0.2)
        runs = [RejectInjector(settings, seed) for seed in (5, 5, 6)]
        draws = [[run.draw("alice") for _ in range(DRAWS)] for run in runs]
        assert draws[0] == draws[1] != draws[2]
        assert sum(draws[0]) / DRAWS == pytest.approx(0.2, abs=0.01)

    def test_an_account_probability_replaces_the_default(self) -> None:
        """An account at 1 is always refused while everyone else is never."""
        injector = RejectInjector(RejectSettings(accounts={"alice": 1.0}), 1)
        assert all(injector.draw("alice") for _ in range(100))
        assert not any(injector.draw("bob") for _ in range(100))


def _rig(settings: RejectSettings) -> Rig:
    """Return a session rig whose alice has funds, injecting rejects by ``settings``."""
    rig = Rig()
    rig.apply(Deposit(account="alice", amount=100_000 * 10**8))
    rig.session.injector = RejectInjector(settings, 1)
    return rig


class TestRejectInjection:
    """Through the session: the core journals and refuses; the wire shows a reject."""

    def test_an_injected_reject_answers_like_any_reject_and_changes_nothing(
        self,
    ) -> None:
        """Probability 1: a coded Rejected with the request's id, op, cid and seq."""
        rig = _rig(RejectSettings(probability=1.0))
        before = rig.core.state_hash(include_seq=False)
        request = rig.request("new", price="100", cid="c1", **ORDER)
        answers = rig.send("alice", rig.payload("alice", request))
        (answer,) = [m.message for m in answers]
        assert isinstance(answer, Rejected)
        assert (answer.id, answer.op, answer.cid) == (request["id"], "new", "c1")
        assert (answer.code, answer.name) == (9004, "INJECTED_REJECT")
        assert answer.seq == rig.core.last_seq
        assert rig.core.state_hash(include_seq=False) == before

    def test_the_record_carries_the_refused_command(self) -> None:
        """The journaled command is the client's own, wrapped in InjectReject."""
        rig = _rig(RejectSettings(probability=1.0))
        decoded = rig.session.decode(
            "alice",
            rig.payload("alice", rig.request("new", price="100", cid="c1", **ORDER)),
            rig.now_ns,
        )
        (command,) = decoded.commands
        assert isinstance(command, InjectReject)
        assert isinstance(command.command, PlaceOrder)
        assert (command.account, command.command.client_order_id) == ("alice", "c1")
        assert rig.session.origin(command) == f"r{rig.counter}"

    def test_a_retry_is_answered_as_a_duplicate_and_a_new_cid_may_pass(self) -> None:
        """The same request id repeats the reject; the freed cid runs again."""
        rig = _rig(RejectSettings(accounts={"alice": 1}))
        request = rig.request("new", price="100", cid="c1", **ORDER)
        rig.send("alice", rig.payload("alice", request))
        (again,) = [m.message for m in rig.send("alice", rig.payload("alice", request))]
        assert isinstance(again, Rejected)
        assert again.duplicate
        rig.session.injector = None  # the venue calmed down
        fresh = rig.call("alice", "new", price="100", cid="c1", **ORDER)
        assert isinstance(fresh[0].message, Accepted)

    def test_probability_zero_is_the_plain_session(self) -> None:
        """With probability 0 every command runs as without an injector."""
        rig = _rig(RejectSettings(probability=0.0))
        answers = rig.call("alice", "new", price="100", cid="c1", **ORDER)
        assert isinstance(answers[0].message, Accepted)


_MARKET = '[markets.BTC-PERP]\ntick_size = "0.1"\nlot_size = "0.001"\n'
_ALICE = '[accounts.alice]\napi_key = "k"\nsecret = "s"\n'
# docs/stress.md's example, which must load as it stands
(_STRESS,) = re.findall(r"```toml\n(.*?)```", DOC.read_text("utf-8"), re.DOTALL)


class TestConfig:
    """The ``[stress]`` table of the server config and ``--stress FILE``."""

    def _config(self, tmp_path: Path, extra: str = "") -> Path:
        path = tmp_path / "paperx.toml"
        path.write_text(_MARKET + _ALICE + extra)
        return path

    def test_everything_is_off_by_default(self, tmp_path: Path) -> None:
        """A config without [stress] has every mode off."""
        stress = load_server_config(self._config(tmp_path)).stress
        assert stress == StressSettings()
        assert not stress.enabled

    def test_the_documented_example_is_read_whole(self, tmp_path: Path) -> None:
        """Every mode of the documented example is read, and it round-trips JSON."""
        stress = load_server_config(self._config(tmp_path, _STRESS)).stress
        assert stress.enabled
        assert stress.latency.accounts["alice"] == Uniform(low_ms=10, high_ms=200)
        assert stress.reject.accounts == {"alice": 0.5}
        assert stress.disconnect["alice-bot"].at_s == [10, 30.5]
        decoded = msgspec.json.decode(stress.as_json(), type=StressSettings)
        assert decoded == stress

    @pytest.mark.parametrize(
        ("extra", "match"),
        [
            ("[stress.reject]\nprobability = 1.5\n", r"<= 1.0 - at `\$.stress"),
            ("[stress.latency]\nprivate = { dist = 'gamma', ms = 1 }\n", "gamma"),
            ("[stress.latency]\nprivate = { dist = 'fixed', ms = -1 }\n", ">= 0"),
            (
                (
                    "[stress.latency.accounts]\n"
                    "alice = { dist = 'uniform', low_ms = 5, high_ms = 1 }\n"
                ),
                "high_ms 1.0 is below low_ms 5.0",
            ),
            ("[stress.flood]\nrate = 10\nper = 'minute'\n", "per"),
            ("[stress.reject.accounts]\nmallory = 0.5\n", "unknown accounts"),
            ("[stress.flood]\nrate = 10\nsymbols = ['DOGE-PERP']\n", "DOGE-PERP"),
            ("[stress.disconnect.x]\nat_s = [-1]\n", ">= 0"),
        ],
    )
    def test_a_bad_setting_is_a_config_error(
        self, tmp_path: Path, extra: str, match: str
    ) -> None:
        """Out of range, unknown keys and unknown names name what is wrong."""
        with pytest.raises(ConfigError, match=match):
            load_server_config(self._config(tmp_path, extra))

    def test_a_stress_file_replaces_the_config_table(self, tmp_path: Path) -> None:
        """``--stress FILE``: its [stress] table is the one in effect."""
        config = load_server_config(self._config(tmp_path, _STRESS))
        other = tmp_path / "calm.toml"
        other.write_text("[stress.reject]\nprobability = 0.25\n")
        stress = with_stress_file(config, other).stress
        assert (stress.reject.probability, stress.latency.enabled) == (0.25, False)
        other.write_text("[server]\nqueue = 1\n")
        with pytest.raises(ConfigError, match="server"):
            with_stress_file(config, other)
        with pytest.raises(ConfigError, match="cannot read"):
            with_stress_file(config, tmp_path / "missing.toml")

    def test_injected_rejects_raise_a_retryable_family(self) -> None:
        """INJECTED_REJECT is ExchangeNotAvailable, as OVERLOADED: try again."""
        from exchange.errors import REJECT_CLASSES, ExchangeNotAvailable  # noqa: PLC0415

        assert REJECT_CLASSES[RejectCode.INJECTED_REJECT] is ExchangeNotAvailable
