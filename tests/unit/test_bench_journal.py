"""bench.journal: each backend and policy run reports what it appended and read back."""

from __future__ import annotations

import json

import pytest
from services import NATS_URL, require_nats

from bench.journal import main


def _rows(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> list[dict[str, object]]:
    """Run the benchmark with ``--json`` and return its rows."""
    assert main([*argv, "--json"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_file_runs_report_every_record_appended_and_read(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without NATS, one row per policy: all records appended and read back."""
    rows = _rows(capsys, ["--n", "400", "--always-n", "20", "--nats", "none"])
    assert [(r["backend"], r["policy"], r["records"]) for r in rows] == [
        ("file", "batch", 400),
        ("file", "off", 400),
        ("file", "always", 20),
    ]
    assert all(r["read_ok"] for r in rows)


@pytest.mark.nats
def test_nats_runs_sit_beside_file_runs_on_the_same_records(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With NATS, each policy runs on both backends with the same records."""
    require_nats()
    argv = ["--n", "400", "--always-n", "20", "--nats", NATS_URL]
    rows = _rows(capsys, [*argv, "--policies", "batch,always"])
    assert [(r["backend"], r["policy"], r["records"]) for r in rows] == [
        ("file", "batch", 400),
        ("nats", "batch", 400),
        ("file", "always", 20),
        ("nats", "always", 20),
    ]
    assert all(r["read_ok"] for r in rows)
    assert rows[0]["payload_mb"] == rows[1]["payload_mb"]
