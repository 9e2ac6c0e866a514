"""``paperx bench all``: one command writes every section of the page; no timings.

The quick run is the real one at tiny sizes: each section runs in its own
process, the Mosquitto scenarios on a Mosquitto of the run's own (skipped,
and said so on the page, where Mosquitto is not installed).
"""

from __future__ import annotations

import json
import re
import shutil
from typing import TYPE_CHECKING

import pytest

from bench.e2e import capacity, held
from exchange.cli.main import main

if TYPE_CHECKING:
    from pathlib import Path

_HEADINGS = (
    "## Summary",
    "## Core: matching, full pipeline, journaled, margin",
    "## Replay: rebuild and recovery",
    "## End to end over MQTT",
    "## Loadtest capacity",
    "## Memory per resting order",
    "## Reproduce",
)
_NUMBER = r"\d[\d,.]*"


def _sections(page: str) -> dict[str, str]:
    """Return the page's sections by heading (the text up to the next heading)."""
    parts = re.split(r"^(## .*)$", page, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def _row(section: str, start: str) -> list[str]:
    """Return the cells of the first table row in ``section`` that starts so."""
    line = next(x for x in section.splitlines() if x.startswith(f"| {start}"))
    return [cell.strip() for cell in line.strip("|").split("|")]


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, Path]:
    """Run ``paperx bench all --quick`` once; return its status, page and work dir."""
    tmp = tmp_path_factory.mktemp("bench-all")
    work = tmp / "work"
    argv = ["bench", "all", "--quick", "--out", str(tmp / "B.md"), "--work", str(work)]
    code = main(argv)
    return code, (tmp / "B.md").read_text(encoding="utf-8"), work


def test_quick_run_writes_every_section_with_figures(
    quick: tuple[int, str, Path],
) -> None:
    """Every section is on the page with measured figures, and says how it was run."""
    code, page, work = quick
    sections = _sections(page)
    assert code == 0
    assert list(sections) == list(_HEADINGS)
    assert "`paperx bench all --quick`" in page
    assert "Load average" in page
    assert "This is a `--quick` run" in page
    core = sections[_HEADINGS[1]]
    for variant in ("(r)", "(a)", "(b)", "(c)", "(d)"):
        assert re.fullmatch(_NUMBER, _row(core, variant)[2])
    assert _row(core, "(c)")[3].endswith("x (b)")
    replay = sections[_HEADINGS[2]]
    assert re.match(_NUMBER + " events/s", _row(replay, "rebuild")[1])
    assert re.match(_NUMBER + " s", _row(replay, "recovery, from")[1])
    memory = sections[_HEADINGS[5]]
    assert re.fullmatch(_NUMBER, _row(memory, "tracemalloc | 2,000")[2])
    assert re.fullmatch(_NUMBER, _row(memory, "rss | 2,000")[2])
    assert "**Capacity:" in sections[_HEADINGS[4]]
    figures = json.loads((work / "all.json").read_text(encoding="utf-8"))
    assert {s["status"] for s in figures["sections"].values()} == {"ok"}


def test_each_broker_runs_each_quick_scenario_or_says_why_not(
    quick: tuple[int, str, Path],
) -> None:
    """Both brokers run the quick scenario; without Mosquitto its row says skipped."""
    _, page, _ = quick
    e2e = _sections(page)[_HEADINGS[3]]
    for broker in ("mosquitto", "embedded"):
        cells = _row(e2e, f"{broker} | ack latency, one order per message")
        if broker == "mosquitto" and shutil.which("mosquitto") is None:
            assert cells[2].startswith("skipped: mosquitto is not installed")
            continue
        assert re.fullmatch(_NUMBER, cells[2])  # offered
        assert re.fullmatch(_NUMBER + " ms", cells[5])  # ack p99
        assert cells[7] == "all, once; journal ok"
        assert cells[9] == "not comparable (offered below 2,000/s)"


def test_sections_not_run_are_said_so(tmp_path: Path) -> None:
    """``--only memory``: the other sections are on the page as not run."""
    out = tmp_path / "B.md"
    argv = ["bench", "all", "--quick", "--only", "memory", "--out", str(out)]
    assert main([*argv, "--work", str(tmp_path / "work")]) == 0
    sections = _sections(out.read_text(encoding="utf-8"))
    assert list(sections) == list(_HEADINGS)
    for heading in _HEADINGS[1:5]:
        assert "Not measured: not run (`--only`)." in sections[heading]
    assert re.fullmatch(_NUMBER, _row(sections[_HEADINGS[5]], "rss | 2,000")[2])


def test_an_unknown_section_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """``--only`` names sections; anything else is a usage error."""
    with pytest.raises(SystemExit) as exited:
        main(["bench", "all", "--only", "core,speed"])
    assert exited.value.code == 2
    assert "unknown section(s) ['speed']" in capsys.readouterr().err


def _phase(offered: int, answered: int, p99: float) -> dict[str, object]:
    """Return a phase's figures as `bench.e2e.run_scenario` reports them."""
    return {
        "offered_per_s": offered,
        "achieved_per_s": answered,
        "ack": {"p99": p99},
    }


def test_capacity_is_the_last_step_held_before_the_first_that_was_not() -> None:
    """Held: p99 <= 10 ms and >= 95% answered while offered; later steps ignored."""
    steps = [
        _phase(100, 100, 3.0),
        _phase(200, 191, 9.9),  # 95.5% answered: held
        _phase(400, 400, 10.5),  # too slow
        _phase(800, 800, 2.0),  # after the first failure: not counted
    ]
    assert [held(p) for p in steps] == [True, True, False, True]
    assert capacity(steps) == 200
    assert capacity([_phase(100, 94, 1.0)]) == 0  # 94% answered in time
