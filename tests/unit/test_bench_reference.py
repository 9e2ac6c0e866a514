"""The bench's plain reference engine (r) and its comparison with the targets."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from shared_workload import import_workload

from bench._reference import compare_with_targets, run_reference
from bench.core import main
from replay.streams import write_stream

if TYPE_CHECKING:
    from pathlib import Path


def test_reference_engine_reproduces_the_shadow_books_fills() -> None:
    """On 20k standard commands it makes exactly the generator's fills, in order."""
    workload = import_workload()
    stream, shadow = workload.generate(20_000, with_shadow=True)
    seconds, fills = run_reference(stream)
    assert seconds > 0
    assert (fills.count, fills.qty, fills.value) == (
        shadow.fills,
        shadow.fill_qty,
        shadow.fill_hash,
    )


def test_ratios_are_against_their_own_bases_and_targets() -> None:
    """(a), (b), (d) divide by the reference; (c) by (b); each says met or not."""
    out = {
        "reference_ops_per_s": 1000,
        "matching_ops_per_s": 1200,
        "core_ops_per_s": 250,
        "journaled_ops_per_s": 200,
        "margin_ops_per_s": 120,
    }
    lines = compare_with_targets(out)
    assert out["ratios"] == {
        "matching": {"ratio": 1.2, "target": 1.0, "met": True},
        "core": {"ratio": 0.25, "target": 0.3, "met": False},
        "journaled": {"ratio": 0.8, "target": 0.6, "met": True},
        "margin": {"ratio": 0.12, "target": 0.1, "met": True},
    }
    assert len(lines) == 4
    assert "NOT met" in lines[1]


def test_no_reference_no_ratios() -> None:
    """Without the reference (our own flow) only the journal's ratio remains."""
    out = {"core_ops_per_s": 400, "journaled_ops_per_s": 300}
    assert len(compare_with_targets(out)) == 1
    assert set(out["ratios"]) == {"journaled"}  # type: ignore[arg-type]


@pytest.mark.parametrize("missing", [None, 0])
def test_a_variant_not_run_is_left_out(missing: int | None) -> None:
    """A variant that did not run (absent, or None when skipped) gives no ratio."""
    out = {"reference_ops_per_s": 1000, "journaled_ops_per_s": missing}
    assert compare_with_targets(out) == []
    assert "ratios" not in out


def test_floor_line_shares_of_the_core_budget() -> None:
    """With (a) and encoding measured, the floor line gives their budget shares."""
    out = {
        "reference_ops_per_s": 1000,
        "matching_ops_per_s": 1000,
        "core_ops_per_s": 200,
        "encode_ops_per_s": 2000,
    }
    lines = compare_with_targets(out)
    # budget at the 0.3x target: 300 commands/s; (a) at 1000/s takes 30% of it,
    # encoding at 2000/s 15%
    assert "30% + 15%" in lines[-1]


def test_repeated_rounds_keep_each_variants_best_rate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--repeat 2`` runs the variants twice and reports ratios of the best rates."""
    stream = import_workload().generate(3_000)
    path = tmp_path / "orders_3000.msgpack"
    write_stream(path, stream)
    argv = ["--commands", str(path), "--only", "reference,core", "--repeat", "2"]
    code = main([*argv, "--quiet", "--json"])
    lines = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(lines[-1])
    assert code == 0
    assert "round 2 of 2" in lines
    rounds = [line for line in lines if line.startswith("(b) core")]
    assert len(rounds) == 2
    best = max(int(line.split()[4].replace(",", "")) for line in rounds)
    assert figures["core_ops_per_s"] == best
    assert figures["ratios"]["core"]["ratio"] == round(
        figures["core_ops_per_s"] / figures["reference_ops_per_s"], 3
    )


@pytest.mark.parametrize("repeat", ["0", "-2"])
def test_a_repeat_below_one_is_refused_with_a_message(
    repeat: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--repeat 0`` exits 2 and says which setting must be positive."""
    assert main(["--n", "100", "--repeat", repeat, "--quiet"]) == 2
    assert "--repeat" in capsys.readouterr().err
