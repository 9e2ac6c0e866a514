"""Benchmark end to end: bots over MQTT, through the server and back.

``paperx bench e2e``.

Not a test. For each broker (a Mosquitto of its own on a free loopback port
with ``set_tcp_nodelay true``, and the embedded amqtt broker), it runs
`paperx loadtest` scenarios, each on a fresh server (fsync batch):

* ``2000/s``: 2,000 orders/s offered, one order per message: ack p50/p99/p99.9
  (the issue's target: p99 <= 5 ms);
* ``single``: ``--single-rate`` offered, one order per message: the sustained
  rate is what was answered per second (target >= 8,000);
* ``batched``: ``--batch`` orders per message at ``--batched-rate`` orders/s
  offered (target >= 20,000);
* ``capacity``: a step schedule (``--steps``); the capacity is the highest
  step whose ack p99 <= 10 ms while it achieved >= 95% of the offered rate.

Latency is from the intended send time (coordinated omission corrected).
With ``--profile`` py-spy samples the server during the ``single`` run and
the samples are split by where the time goes (session decode, HMAC, core,
journal, publish, MQTT client, event loop). The machine, its load average
and every figure are printed, and written as JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from bench._machine import machine_info
from clients.loadtest.runner import LoadtestOptions, run_loadtest

__all__ = ["main"]

_CATEGORIES = (  # innermost match wins: (name, substrings of a frame)
    ("HMAC / signing", ("hmac.py", "gateway/auth.py")),
    ("journal", ("exchange/journal/",)),
    (
        "core (engine, margin)",
        (
            "exchange/engine/",
            "exchange/margin/",
            "exchange/core.py",
            "exchange/state.py",
        ),
    ),
    (
        "session decode / answers",
        ("gateway/session.py", "gateway/intake.py", "msgspec"),
    ),
    (
        "outcome -> messages",
        ("gateway/publish.py", "shell/order_views.py", "shell/account_views.py"),
    ),
    ("MQTT client (aiomqtt/paho)", ("paho/", "aiomqtt/")),
    ("sequencer", ("shell/sequencer.py",)),
    ("asyncio event loop", ("asyncio/",)),
)


def _parser() -> argparse.ArgumentParser:
    """Return the benchmark's options."""
    parser = argparse.ArgumentParser(
        prog="paperx bench e2e", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--brokers", default="mosquitto,embedded")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--bots", type=int, default=16)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--single-rate", type=float, default=8000.0)
    parser.add_argument("--batched-rate", type=float, default=20000.0)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--steps", default="250,500,1000,2000,4000")
    parser.add_argument(
        "--only", default="", help="comma list of 2000/s,single,batched,capacity"
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the server")
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--out", type=Path, help="keep the runs' files here")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios and print their figures; 0 on success."""
    args = _parser().parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="paperx-e2e-"))
    wanted = set(filter(None, args.only.split(","))) or {
        "2000/s",
        "single",
        "batched",
        "capacity",
    }
    report: dict[str, Any] = {
        "machine": machine_info(),
        "load_before": os.getloadavg(),
        "method": {
            "duration_s": args.duration,
            "bots": args.bots,
            "processes": args.processes,
            "fsync": "batch",
            "mix": "limit 55%, market 10%, cancel 25%, amend 10%",
        },
        "runs": [],
    }
    print(f"machine {report['machine']}; load average {report['load_before']}")
    for broker in args.brokers.split(","):
        for name, schedule, batch in (
            ("2000/s", "constant:2000", 1),
            ("single", f"constant:{args.single_rate:g}", 1),
            ("batched", f"constant:{args.batched_rate / args.batch:g}", args.batch),
            ("capacity", f"step:{args.steps}", 1),
        ):
            if name not in wanted:
                continue
            options = LoadtestOptions(
                schedule=schedule,
                duration_s=args.duration,
                bots=args.bots,
                processes=args.processes,
                batch=batch,
                mosquitto=broker == "mosquitto",
                out=out / f"{broker}-{name.replace('/', '')}",
                progress=False,
                verify=False,
            )
            profile = args.profile and name == "single"
            run = _run(options, profile=profile)
            run.update(broker=broker, scenario=name, load=os.getloadavg())
            report["runs"].append(run)
            _print_run(run)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


def _run(options: LoadtestOptions, *, profile: bool) -> dict[str, Any]:
    """Run one load test; return its figures (and the profile, if asked)."""
    sampler: _Sampler | None = None
    log = io.StringIO()
    if profile:
        sampler = _Sampler(options.out / "profile.txt", options.duration_s)
        log = sampler.watch(log)
    results = run_loadtest(options, log=log)
    phases = results["phases"]
    batch = options.batch
    run: dict[str, Any] = {
        "schedule": options.schedule,
        "batch": batch,
        "phases": [
            {
                "phase": p["phase"],
                "offered_per_s": round(p["offered_per_s"]),  # orders, not messages
                "achieved_per_s": round(p["achieved_per_s"]),
                "ack": p["ack"],
                "md": p["md"],
            }
            for p in phases
        ],
        "totals": results["totals"],
        "rejects": results["rejects"],
        "journal_ok": results["journal"]["ok"],
    }
    run["capacity_per_s"] = _capacity(run["phases"])
    if sampler is not None:
        run["profile"] = sampler.summary()
    return run


def _capacity(phases: list[dict[str, Any]]) -> int:
    """Return the highest offered rate held before the first that failed.

    Held: ack p99 <= 10 ms and >= 95% of the offered rate answered.
    """
    best = 0
    for phase in phases:
        if (
            phase["ack"]["p99"] > 10
            or phase["achieved_per_s"] < 0.95 * phase["offered_per_s"]
        ):
            break
        best = phase["offered_per_s"]
    return best


def _print_run(run: dict[str, Any]) -> None:
    """Print one run's figures."""
    print(
        f"\n{run['broker']:<10} {run['scenario']:<9} {run['schedule']}"
        f" batch {run['batch']}  load {tuple(round(x, 2) for x in run['load'])}"
    )
    for phase in run["phases"]:
        ack = phase["ack"]
        print(
            f"  {phase['phase']:<22} offered {phase['offered_per_s']:>7,}/s"
            f"  achieved {phase['achieved_per_s']:>7,}/s  ack p50 {ack['p50']:8.3f}"
            f"  p99 {ack['p99']:8.3f}  p99.9 {ack['p99.9']:8.3f}"
            f"  max {ack['max']:8.3f} ms"
            f"  md p50 {phase['md']['p50']:.3f} ms"
        )
    totals = run["totals"]
    print(
        f"  answered once: {totals['answered_once']}  journal ok: {run['journal_ok']}"
        f"  late sends {totals['late']:,}  rejects {run['rejects']}"
    )
    if run["capacity_per_s"]:
        print(f"  capacity (p99 <= 10 ms): {run['capacity_per_s']:,}/s")
    for name, share in run.get("profile", {}).items():
        print(f"  profile  {name:<28} {share:6.1%}")


class _Sampler:
    """py-spy on the server while a run lasts; samples split by category."""

    def __init__(self, path: Path, duration_s: float) -> None:
        """Write raw samples to ``path``; sample for ``duration_s``."""
        self.path = path
        self.duration_s = duration_s
        self.thread: threading.Thread | None = None

    def watch(self, log: io.StringIO) -> io.StringIO:
        """Return a log that starts py-spy once the server says where it runs."""
        sampler = self

        class _Log(io.StringIO):
            def write(self, text: str) -> int:
                if text.startswith("server ready") and "(pid " in text:
                    pid = int(text.rsplit("(pid ", 1)[1].split(")", maxsplit=1)[0])
                    sampler.start(pid)
                return super().write(text)

        del log
        return _Log()

    def start(self, pid: int) -> None:
        """Record the server ``pid`` in a thread (py-spy needs root or ptrace)."""
        binary = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        command = [
            binary, "record", "--pid", str(pid), "--format", "raw", "--rate", "200",
            "--duration", str(int(self.duration_s) + 2), "--output", str(self.path),
            "--nonblocking",
        ]  # fmt: skip

        def record() -> None:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run(command, check=False, capture_output=True, timeout=120)  # noqa: S603

        self.thread = threading.Thread(target=record, daemon=True)
        self.thread.start()

    def summary(self) -> dict[str, float]:
        """Return each category's share of the server's busy samples."""
        if self.thread is not None:
            self.thread.join(120)
        counts: Counter[str] = Counter()
        if not self.path.exists():
            return {}
        for line in self.path.read_text(encoding="utf-8").splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            frames = stack.split(";")
            if "select" in frames[-1] or "epoll" in frames[-1]:
                counts["idle (waiting in select)"] += int(count)
                continue
            counts[_category(frames)] += int(count)
        total = sum(counts.values()) or 1
        return {name: n / total for name, n in counts.most_common()}


def _category(frames: list[str]) -> str:
    """Return the category of the innermost frame that has one."""
    for frame in reversed(frames):
        for name, needles in _CATEGORIES:
            if any(needle in frame for needle in needles):
                return name
    return "other"


if __name__ == "__main__":
    sys.exit(main())
