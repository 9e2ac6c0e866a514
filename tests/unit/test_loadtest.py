"""The load harness's parts: histograms, schedules, pacing, CO correction, CLI help."""

from __future__ import annotations

import itertools
import random

import pytest

from clients.loadtest.histogram import Latency
from clients.loadtest.mix import parse_mix
from clients.loadtest.probe import Pacer, Probe
from clients.loadtest.report import merge_results
from clients.loadtest.schedule import parse_schedule
from exchange.cli.main import main

MS = 1_000_000


def nearest_rank(values: list[int], percentile: float) -> int:
    """Return the nearest-rank percentile of ``values``."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * percentile // 100))
    return ordered[int(rank) - 1]


class TestLatency:
    """HdrHistogram in µs: percentiles within 0.1%, merging, encoding."""

    def test_percentiles_match_nearest_rank_within_a_tenth_of_a_percent(self) -> None:
        """Each percentile is the exact nearest-rank value to within 0.1%."""
        rng = random.Random(7)  # noqa: S311 -- test data, not secrets
        values = [int(rng.lognormvariate(7, 1.5)) + 1 for _ in range(20_000)]
        latency = Latency()
        for value in values:
            latency.record_ns(value * 1000)
        for percentile in (50.0, 90.0, 99.0, 99.9):
            exact = nearest_rank(values, percentile)
            assert latency.percentile_us(percentile) == pytest.approx(exact, rel=1e-3)
        assert latency.max_us() == pytest.approx(max(values), rel=1e-3)
        assert latency.count == len(values)

    def test_merged_encodings_equal_one_histogram_of_all_values(self) -> None:
        """Two halves encoded, decoded and merged give the whole's percentiles."""
        whole, left, right = Latency(), Latency(), Latency()
        for value in range(1, 10_001):
            whole.record_ns(value * 1000)
            (left if value % 2 else right).record_ns(value * 1000)
        merged = Latency.merged(Latency.decode(h.encode()) for h in (left, right))
        assert merged.summary_ms() == whole.summary_ms()

    def test_a_value_beyond_the_range_is_clipped_and_counted(self) -> None:
        """A latency over two minutes is kept as the highest value and counted."""
        latency = Latency()
        latency.record_ns(10**12)
        assert latency.clipped == 1
        assert latency.max_us() == pytest.approx(120_000_000, rel=1e-3)
        assert Latency.decode(latency.encode()).clipped == 1


class TestSchedule:
    """Offered load: exact counts and phases for each form."""

    def test_constant_rate_spaces_requests_evenly(self) -> None:
        """constant:1000 over 2 s offers 2000 requests 1 ms apart."""
        offsets = parse_schedule("constant:1000", 2).intended_offsets()
        assert len(offsets) == 2000
        assert offsets[0][0] == MS
        assert {b[0] - a[0] for a, b in itertools.pairwise(offsets)} == {MS}

    def test_ramp_offers_the_integral_of_its_rate_in_each_phase(self) -> None:
        """ramp:0:1000 over 10 s offers 5000, each fifth its trapezoid's share."""
        schedule = parse_schedule("ramp:0:1000:5", 10)
        offsets = schedule.intended_offsets()
        per_phase = [sum(1 for _, p in offsets if p == i) for i in range(5)]
        assert len(offsets) == 5000
        assert per_phase == [200, 600, 1000, 1400, 1800]

    def test_step_and_burst_name_their_phases(self) -> None:
        """A step schedule has one phase per rate; a burst alternates base and burst."""
        step = parse_schedule("step:100,300", 4)
        assert step.phases() == ["step 1 100/s", "step 2 300/s"]
        assert len(step.intended_offsets()) == 800
        burst = parse_schedule("burst:100:1000:2:0.5", 4)
        assert burst.phases() == ["base 100/s", "burst 1000/s"]
        assert burst.phase_seconds() == {"base 100/s": 3.0, "burst 1000/s": 1.0}
        assert len(burst.intended_offsets()) == 300 + 1000

    @pytest.mark.parametrize("spec", ["steady:5", "ramp:1", "x"])
    def test_a_bad_spec_is_refused_with_the_forms(self, spec: str) -> None:
        """An unknown or malformed spec raises ValueError naming the forms."""
        with pytest.raises(ValueError, match="constant:RATE"):
            parse_schedule(spec, 10)

    def test_a_burst_wider_than_its_period_is_refused(self) -> None:
        """A burst whose WIDTH is not shorter than EVERY raises ValueError."""
        with pytest.raises(ValueError, match="WIDTH < EVERY"):
            parse_schedule("burst:1:2:1:3", 10)

    def test_a_mix_names_only_known_kinds(self) -> None:
        """parse_mix reads weights and refuses an unknown kind."""
        assert parse_mix("limit=3,cancel=1") == {"limit": 3.0, "cancel": 1.0}
        with pytest.raises(ValueError, match="unknown kind"):
            parse_mix("limit=1,swap=2")


class TestCoordinatedOmission:
    """Latency is measured from the intended send time, stalls included."""

    def test_a_stalled_sender_reports_the_wait_of_every_request_due_meanwhile(
        self,
    ) -> None:
        """A 100 ms stall at 1000/s shows the 99 waits of 99..1 ms, not 99 zeros."""
        start = 10**18
        schedule = parse_schedule("constant:1000", 1)
        times = [
            (start + offset, phase) for offset, phase in schedule.intended_offsets()
        ]
        pacer, probe = Pacer(times), Probe(start, 1)
        now, sent_late = start, 0
        # a service that answers at once, but whose sender stalls for
        # 100 ms after the request due at 400 ms (a GC pause, a full socket)
        while pacer:
            for intended, phase in pacer.due(now):
                request_id = str(intended)
                probe.sent_request(request_id, intended, phase, "order", now)
                sent_late += now > intended
                probe.answered(request_id, now, None)
                if intended == start + 400 * MS:
                    now += 100 * MS
            wait = pacer.wait_ns(now)
            now += max(0, wait)
        latency = probe.by_phase["order"][0]
        assert latency.count == 1000
        # the requests due at 401..499 ms left at 500 ms: they waited 99..1 ms
        assert sent_late == 99
        assert latency.max_us() == pytest.approx(99_000, rel=1e-3)
        # 901 answers at once (1 µs), then 1, 2, ..., 99 ms: rank 950 is 49 ms
        assert latency.percentile_us(95) == pytest.approx(49_000, rel=1e-3)
        assert latency.percentile_us(90) == 1
        assert probe.offered == [1000]

    def test_every_request_is_answered_once_or_counted(self) -> None:
        """A second answer is a duplicate, a stranger unsolicited, a lost one open."""
        probe = Probe(0, 1)
        for n in range(3):
            probe.sent_request(str(n), n, 0, "order", n)
        probe.answered("0", 5, None, ("a", "new", 1))
        probe.answered("0", 6, None, ("a", "new", 1))
        probe.answered("1", 7, "UNKNOWN_ORDER")
        probe.answered("9", 8, None)
        result = probe.result()
        assert (result["accepted"], result["rejects"]) == (1, {"UNKNOWN_ORDER": 1})
        assert (result["duplicates"], result["unsolicited"]) == (1, 1)
        assert result["unanswered"] == 1
        assert result["evidence"] == [("a", "new", 1)]


def test_the_achieved_rate_counts_only_answers_that_arrived_in_the_phase() -> None:
    """A phase answered only after it ended achieved nothing, however late it was."""
    schedule = parse_schedule("step:10,20", 2)
    probe = Probe(0, 2, schedule.phase_index_at)
    for n, (offset, phase) in enumerate(schedule.intended_offsets()):
        probe.sent_request(str(n), offset, phase, "order", offset)
        # the first second's requests are all answered at 1.5 s, the second's
        # at once
        probe.answered(str(n), max(offset, 1_500 * MS), None, ("a", "new", n))
    part = probe.result() | {"publish_failed": 0}  # as a worker adds it
    slow, fast = merge_results([part], schedule, 1)["phases"]
    assert (slow["offered_per_s"], slow["answered"], slow["achieved_per_s"]) == (
        10,
        10,
        0,
    )
    # the first step's 10, and its own 20 but the one due at 2.0 s, its end
    assert fast["achieved_per_s"] == 29


def test_loadtest_help_teaches_schedules_checks_and_outputs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The loadtest --help explains the schedules, the checks and the outputs."""
    with pytest.raises(SystemExit) as exit_info:
        main(["loadtest", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for phrase in (
        "coordinated omission",
        "ramp:FROM:TO",
        "burst:BASE:PEAK:EVERY:WIDTH",
        "--mosquitto",
        "--batch",
        "--mix",
        "loadtest.png",
        "state hash",
        "answered exactly once",
    ):
        assert phrase in text, phrase


def test_loadtest_refuses_a_bad_schedule_before_starting_anything(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A malformed --schedule exits 2 with the forms, before any server starts."""
    assert main(["loadtest", "--schedule", "steady:5"]) == 2
    assert "constant:RATE" in capsys.readouterr().err
