"""A load test's results: merged across processes, printed, written, plotted.

`merge_results` adds up the processes' histograms and counts into one
plain-data result: per phase (offered and achieved rate, latency
percentiles per metric), per second (offered, sent and answered counts, ack
latency percentiles), and the totals (answers, rejects by code, duplicates,
unanswered). `summary_table` prints it for people, `write_outputs` saves
the JSON and the PNG (latency percentiles over time above offered vs
achieved rate; matplotlib's Agg backend, no display needed).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from clients.loadtest.histogram import Latency
from clients.loadtest.probe import METRICS
from clients.loadtest.schedule import Schedule

__all__ = ["merge_results", "summary_table", "write_outputs"]

_ACK_METRICS = ("order", "cancel", "amend")


def merge_results(
    parts: list[dict[str, Any]], schedule: Schedule, batch: int
) -> dict[str, Any]:
    """Return the processes' results added up (see the module docstring)."""
    names = schedule.phases()
    seconds = schedule.phase_seconds()
    phases = []
    for i, name in enumerate(names):
        histograms = {
            m: Latency.merged(Latency.decode(p["by_phase"][m][i]) for p in parts)
            for m in METRICS
        }
        acks = Latency.merged(histograms[m] for m in _ACK_METRICS)
        offered = sum(p["offered"][i] for p in parts)
        answered = sum(p["answered_in_phase"][i] for p in parts)
        phases.append(
            {
                "phase": name,
                "seconds": seconds[name],
                "offered": offered,
                "offered_per_s": offered / seconds[name],
                "answered": answered,  # of its requests, the drain's answers too
                "achieved_per_s": 0.0,  # answers that arrived in it: set below
                "messages_per_s": offered / batch / seconds[name],
                "ack": acks.summary_ms(),
                **{m: histograms[m].summary_ms() for m in METRICS if m != "other"},
            }
        )
    rejects: Counter[str] = Counter()
    for part in parts:
        rejects.update(part["rejects"])
    totals = {
        key: sum(p[key] for p in parts)
        for key in (
            "sent",
            "late",
            "accepted",
            "duplicates",
            "unsolicited",
            "unanswered",
            "md_messages",
            "publish_failed",
        )
    }
    totals["rejected"] = sum(rejects.values())
    totals["answered"] = totals["accepted"] + totals["rejected"]
    totals["answered_once"] = (
        totals["answered"] == totals["sent"]
        and not totals["duplicates"]
        and not totals["unanswered"]
    )
    timeline = _timeline(parts, schedule.duration_s)
    for phase, rate in zip(phases, _arrived_during(timeline, schedule), strict=True):
        phase["achieved_per_s"] = rate
    return {
        "phases": phases,
        "totals": totals,
        "rejects": dict(rejects.most_common()),
        "timeline": timeline,
        "evidence": [e for p in parts for e in p["evidence"]],
    }


def _arrived_during(timeline: dict[str, Any], schedule: Schedule) -> list[float]:
    """Return, per phase, the answers per second that arrived while it lasted.

    That is the rate the venue achieved: answers that came later (a backlog
    drained after the phase) do not count for it. The timeline counts answers
    by the second they arrived in; a second that straddles two phases is
    shared in proportion.
    """
    arrived: dict[str, float] = dict.fromkeys(schedule.phases(), 0.0)
    for second, count in zip(timeline["second"], timeline["answered"], strict=True):
        for segment in schedule.segments:
            overlap = min(second + 1, segment.end_s) - max(second, segment.start_s)
            if overlap > 0:
                arrived[segment.phase] += count * overlap
    seconds = schedule.phase_seconds()
    return [arrived[name] / seconds[name] for name in schedule.phases()]


def _timeline(parts: list[dict[str, Any]], duration_s: float) -> dict[str, Any]:
    """Return per-second counts and ack latency percentiles (ms) of the run."""
    last = int(duration_s) + 1
    for part in parts:
        for counts in part["timeline"].values():
            last = max([last, *(int(s) + 1 for s in counts)])
    series: dict[str, Any] = {"second": list(range(last))}
    for key in ("offered", "sent", "answered"):
        per_second = [0] * last
        for part in parts:
            for second, count in part["timeline"][key].items():
                if 0 <= int(second) < last:
                    per_second[int(second)] += count
        series[key] = per_second
    for label in ("p50", "p90", "p99", "max"):
        series[f"ack_{label}_ms"] = []
    for second in range(last):
        ack = Latency.merged(
            Latency.decode(p["by_second"][m][str(second)])
            for p in parts
            for m in _ACK_METRICS
            if str(second) in p["by_second"][m]
        )
        row = ack.summary_ms()
        for label in ("p50", "p90", "p99", "max"):
            series[f"ack_{label}_ms"].append(row[label] if ack.count else None)
    return series


def summary_table(results: dict[str, Any]) -> str:
    """Return the results as a table for a terminal."""
    header = (
        f"{'phase':<22} {'offered/s':>10} {'achieved/s':>10} {'metric':<7}"
        f" {'count':>8} {'p50':>8} {'p90':>8} {'p99':>8} {'p99.9':>8} {'max':>8}  (ms)"
    )
    lines = [header]
    for phase in results["phases"]:
        first = True
        for metric in ("ack", "order", "cancel", "amend", "fill", "md"):
            row = phase[metric]
            if not row["count"]:
                continue
            head = (
                f"{phase['phase']:<22} {phase['offered_per_s']:>10,.0f}"
                f" {phase['achieved_per_s']:>10,.0f}"
                if first
                else " " * 44
            )
            first = False
            lines.append(
                f"{head} {metric:<7} {row['count']:>8,.0f} {row['p50']:>8.3f}"
                f" {row['p90']:>8.3f} {row['p99']:>8.3f} {row['p99.9']:>8.3f}"
                f" {row['max']:>8.3f}"
            )
    totals = results["totals"]
    lines.append(
        f"requests: sent {totals['sent']:,}, answered {totals['answered']:,}"
        f" (accepted {totals['accepted']:,}, rejected {totals['rejected']:,}),"
        f" unanswered {totals['unanswered']:,}, duplicates {totals['duplicates']:,},"
        f" sent late (> 1 ms) {totals['late']:,}"
    )
    if results["rejects"]:
        lines.append(
            "rejects: "
            + ", ".join(
                f"{name} {count:,}" for name, count in results["rejects"].items()
            )
        )
    journal = results.get("journal")
    if journal:
        lines.append(
            f"journal: {journal['records']:,} records; accepted answers in it"
            f" {journal['accepted_in_journal']:,}/{journal['accepted_answers']:,};"
            + (
                f" state hash {'==' if journal['hash_matches'] else '!='} rebuild"
                f" ({journal['state_hash']})"
                if "hash_matches" in journal
                else " hashes not verified"
            )
        )
    verdict = results["totals"]["answered_once"] and (not journal or journal["ok"])
    lines.append(
        "verdict: "
        + ("OK: every request answered once, nothing lost" if verdict else "LOSS")
    )
    return "\n".join(lines)


def write_outputs(
    results: dict[str, Any], out: Path, name: str = "loadtest"
) -> tuple[Path, Path]:
    """Write ``NAME.json`` and ``NAME.png`` into ``out``; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"{name}.json"
    json_path.write_text(
        json.dumps(results, indent=1, default=str) + "\n", encoding="utf-8"
    )
    png_path = out / f"{name}.png"
    _plot(results, png_path)
    return json_path, png_path


def _plot(results: dict[str, Any], path: Path) -> None:
    """Plot ack latency percentiles over time above offered vs achieved rate."""
    import matplotlib as mpl  # noqa: PLC0415 -- only when plotting

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    series = results["timeline"]
    seconds = series["second"]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for label, style in (("p50", "-"), ("p90", "-"), ("p99", "-"), ("max", ":")):
        values = series[f"ack_{label}_ms"]
        points = [(s, v) for s, v in zip(seconds, values, strict=True) if v is not None]
        if points:
            xs, ys = zip(*points, strict=True)
            top.plot(xs, ys, style, label=label)
    top.set_yscale("log")
    top.set_ylabel("ack latency, ms (from intended send)")
    top.legend(loc="upper left")
    top.grid(visible=True, which="both", alpha=0.3)
    settings = results.get("settings", {})
    top.set_title(
        f"paperx loadtest: {settings.get('schedule', '')}, {settings.get('bots', '?')}"
        f" bots, broker {settings.get('broker', '?')}, batch {settings.get('batch', 1)}"
    )
    bottom.step(seconds, series["offered"], where="post", label="offered/s")
    bottom.step(
        seconds, series["answered"], where="post", label="achieved (answered)/s"
    )
    bottom.set_ylabel("requests per second")
    bottom.set_xlabel("seconds into the run")
    bottom.legend(loc="upper left")
    bottom.grid(visible=True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
