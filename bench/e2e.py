"""Benchmark end to end: bots over MQTT, through the server and back.

``paperx bench e2e``.

Not a test. For each broker (a Mosquitto of its own on a free loopback port
with ``set_tcp_nodelay true``, or the one ``--mosquitto-url`` names, and the
embedded broker: the installed Mosquitto, amqtt where none is), it runs
`paperx loadtest` scenarios, each on a fresh server (fsync batch):

* ``latency``: ``--latency-rate`` (2,000) orders/s offered, one order per
  message: ack p50/p99/p99.9 (the issue's target: p99 <= 5 ms at 2,000/s);
* ``single``: ``--single-rate`` offered, one order per message (target:
  >= 8,000 orders/s sustained);
* ``batched``: ``--batch`` orders per message at ``--batched-rate`` orders/s
  offered (target >= 20,000);
* ``capacity``: a step schedule (``--steps``, ``--step-seconds`` each); the
  capacity is the highest step held before the first that was not.

A rate is *held* when the ack p99 of its requests is <= 10 ms and the
answers that arrived while it was offered came to >= 95% of it. Those
answers per second (loadtest's ``achieved_per_s``) are the sustained rate:
answers that came after the phase, during the drain, do not count.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._machine import machine_info
from clients.loadtest.runner import LoadtestOptions, run_loadtest

__all__ = [
    "HELD_P99_MS",
    "SCENARIOS",
    "E2ESettings",
    "capacity",
    "held",
    "main",
    "run_scenario",
    "scenario_options",
]

SCENARIOS = ("latency", "single", "batched", "capacity")
HELD_P99_MS = 10.0  # a rate is held while the ack p99 stays at or under this
_HELD_SHARE = 0.95  # ... and this share of it is answered while it is offered

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
    ("MQTT client", ("paho/", "aiomqtt/", "gateway/mqtt_client.py")),
    ("sequencer", ("shell/sequencer.py",)),
    ("asyncio event loop", ("asyncio/",)),
)


@dataclass(frozen=True, slots=True)
class E2ESettings:
    """The scenarios' load: rates, sizes and lengths (the command line's options)."""

    duration_s: float = 10.0
    bots: int = 16
    processes: int = 2
    latency_rate: float = 2000.0
    single_rate: float = 8000.0
    batched_rate: float = 20000.0
    batch: int = 20
    steps: str = "250,500,1000,2000,4000,8000"
    step_s: float = 3.0
    drain_s: float = 10.0


def scenario_options(
    name: str, settings: E2ESettings, broker: str, out: Path
) -> LoadtestOptions:
    """Return the load test of scenario ``name`` on ``broker``.

    ``broker``: "mosquitto" (a Mosquitto of the run's own), "embedded", or
    the URL of a broker to use as it is.
    """
    steps = settings.steps.split(",")
    schedule, batch, duration = {
        "latency": (f"constant:{settings.latency_rate:g}", 1, settings.duration_s),
        "single": (f"constant:{settings.single_rate:g}", 1, settings.duration_s),
        "batched": (
            f"constant:{settings.batched_rate / settings.batch:g}",
            settings.batch,
            settings.duration_s,
        ),
        "capacity": (f"step:{settings.steps}", 1, settings.step_s * len(steps)),
    }[name]
    external = broker not in {"mosquitto", "embedded"}
    label = "external" if external else broker
    return LoadtestOptions(
        schedule=schedule,
        duration_s=duration,
        bots=settings.bots,
        processes=settings.processes,
        batch=batch,
        broker=broker if external else None,
        mosquitto=broker == "mosquitto",
        out=out / f"{label}-{name}",
        drain_s=settings.drain_s,
        progress=False,
        verify=False,
    )


def _parser() -> argparse.ArgumentParser:
    """Return the benchmark's options."""
    parser = argparse.ArgumentParser(
        prog="paperx bench e2e",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    defaults = E2ESettings()
    parser.add_argument(
        "--brokers",
        default="mosquitto,embedded",
        help="comma list of mosquitto (one of the run's own) and embedded "
        "(default: both)",
    )
    parser.add_argument(
        "--mosquitto-url",
        metavar="URL",
        help="run the Mosquitto scenarios on this broker instead of one of "
        "their own (other servers on it see the load, and answer it)",
    )
    for flag, default, text in (
        ("--duration", defaults.duration_s, "seconds of load per scenario"),
        ("--latency-rate", defaults.latency_rate, "orders/s of the latency run"),
        ("--single-rate", defaults.single_rate, "orders/s, one order a message"),
        ("--batched-rate", defaults.batched_rate, "orders/s in batch messages"),
        ("--step-seconds", defaults.step_s, "seconds per capacity step"),
        ("--drain", defaults.drain_s, "seconds to wait for the last answers"),
    ):
        parser.add_argument(
            flag, type=float, default=default, help=f"{text} ({default:g})"
        )
    for flag, default, text in (
        ("--bots", defaults.bots, "simulated bots, one account each"),
        ("--processes", defaults.processes, "load processes the bots share"),
        ("--batch", defaults.batch, "orders per message of the batched run"),
    ):
        parser.add_argument(flag, type=int, default=default, help=f"{text} ({default})")
    parser.add_argument(
        "--steps",
        default=defaults.steps,
        help=f"offered rates of the capacity run, orders/s ({defaults.steps})",
    )
    parser.add_argument(
        "--only", default="", help=f"comma list of {','.join(SCENARIOS)}"
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the server")
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--out", type=Path, help="keep the runs' files here")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios and print their figures; 0 on success."""
    args = _parser().parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="paperx-e2e-"))
    wanted = set(filter(None, args.only.split(","))) or set(SCENARIOS)
    settings = E2ESettings(
        duration_s=args.duration,
        bots=args.bots,
        processes=args.processes,
        latency_rate=args.latency_rate,
        single_rate=args.single_rate,
        batched_rate=args.batched_rate,
        batch=args.batch,
        steps=args.steps,
        step_s=args.step_seconds,
        drain_s=args.drain,
    )
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
        for name in SCENARIOS:
            if name not in wanted:
                continue
            where = args.mosquitto_url if broker == "mosquitto" else None
            options = scenario_options(name, settings, where or broker, out)
            run = run_scenario(options, profile=args.profile and name == "single")
            run.update(broker=broker, scenario=name, load=os.getloadavg())
            report["runs"].append(run)
            _print_run(run)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


def run_scenario(options: LoadtestOptions, *, profile: bool = False) -> dict[str, Any]:
    """Run one load test; return its figures (and the profile, if asked).

    Raises:
        clients.loadtest.venue.VenueError: the broker or server did not start.
    """
    sampler: _Sampler | None = None
    log = io.StringIO()
    if profile:
        sampler = _Sampler(options.out / "profile.txt", options.duration_s)
        log = sampler.watch(log)
    results = run_loadtest(options, log=log)
    run: dict[str, Any] = {
        "schedule": options.schedule,
        "batch": options.batch,
        "phases": [
            {
                "phase": p["phase"],
                "offered_per_s": round(p["offered_per_s"]),  # orders, not messages
                "achieved_per_s": round(p["achieved_per_s"]),
                "ack": p["ack"],
                "md": p["md"],
            }
            for p in results["phases"]
        ],
        "totals": results["totals"],
        "rejects": results["rejects"],
        "journal_ok": results["journal"]["ok"],
    }
    run["capacity_per_s"] = capacity(run["phases"])
    if sampler is not None:
        run["profile"] = sampler.summary()
    return run


def held(phase: dict[str, Any]) -> bool:
    """Return whether a phase held its offered rate (see the module docstring)."""
    p99: float = phase["ack"]["p99"]
    answered: float = phase["achieved_per_s"]
    return p99 <= HELD_P99_MS and answered >= _HELD_SHARE * phase["offered_per_s"]


def capacity(phases: list[dict[str, Any]]) -> int:
    """Return the highest offered rate held before the first that was not (0: none)."""
    best = 0
    for phase in phases:
        if not held(phase):
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
            f"  sustained {phase['achieved_per_s']:>7,}/s"
            f"  ack p50 {ack['p50']:8.3f}  p99 {ack['p99']:8.3f}"
            f"  p99.9 {ack['p99.9']:8.3f}  max {ack['max']:8.3f} ms"
            f"  md p50 {phase['md']['p50']:.3f} ms"
        )
    totals = run["totals"]
    print(
        f"  answered once: {totals['answered_once']}  journal ok: {run['journal_ok']}"
        f"  late sends {totals['late']:,}  rejects {run['rejects']}"
    )
    if run["capacity_per_s"]:
        print(f"  capacity (p99 <= {HELD_P99_MS:g} ms): {run['capacity_per_s']:,}/s")
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
