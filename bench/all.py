"""``paperx bench all``: every benchmark in one run, written as one page.

Sections, in this order: ``core`` (the reference engine, matching, the core,
journaled, margin: `bench.core`), ``replay`` (rebuild and recovery:
`bench.recovery`), ``e2e`` (bots over MQTT through ``paperx serve`` on a
Mosquitto and on the embedded broker: `bench.e2e`), ``capacity`` (a step
run: the highest offered rate whose ack p99 stays <= 10 ms) and ``memory``
(bytes per resting order: `bench.memory`).

Each section runs in a child process of its own (``python -m bench.all
--child NAME``), so one section's memory, frozen objects or crash cannot
touch the next; its output goes to ``WORK/logs/NAME.log`` and its figures
to ``WORK/NAME.json``. A section that cannot run (no Mosquitto, no standard
stream generator) runs what it can and the page says what was skipped and
why; a section that fails is reported as failed with the end of its log.
The page (``--out``, BENCHMARKS.md) is then written by `bench._page` and a
summary table printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench._machine import fsync_ms, git_commit, machine_info

__all__ = ["FULL", "QUICK", "SECTIONS", "Plan", "main"]

_REPOSITORY = Path(__file__).resolve().parents[1]


@dataclass(frozen=True, slots=True)
class E2EPlan:
    """The load of the end-to-end sections (see `bench.e2e.E2ESettings`)."""

    duration_s: float
    bots: int
    processes: int
    latency_rate: float
    single_rate: float
    batched_rate: float
    batch: int
    steps: str
    step_s: float
    drain_s: float
    scenarios: tuple[str, ...]  # run on each broker; capacity is its own section


@dataclass(frozen=True, slots=True)
class Plan:
    """The sizes of one run of every section."""

    quick: bool
    core_n: int
    core_repeat: int
    margin_accounts: int
    replay_records: int
    replay_tail: int
    e2e: E2EPlan
    memory_sizes: tuple[int, ...]
    memory_traced: tuple[int, ...]
    memory_levels: int = 1000
    memory_accounts: int = 100


# About six minutes on a 2-core machine: core ~65 s, replay ~35 s, e2e ~150 s
# (a saturated server takes a while to stop), capacity ~50 s, memory ~45 s.
# Each e2e scenario and step runs long enough to pass its start-up second.
FULL = Plan(
    quick=False,
    core_n=200_000,
    core_repeat=2,
    margin_accounts=2_000,
    replay_records=200_000,
    replay_tail=10_000,
    e2e=E2EPlan(
        duration_s=6.0,
        bots=16,
        processes=2,
        latency_rate=2000.0,
        single_rate=8000.0,
        batched_rate=20000.0,
        batch=20,
        steps="100,250,500,1000,2000,4000,8000",
        step_s=4.0,
        drain_s=5.0,
        scenarios=("latency", "single", "batched"),
    ),
    memory_sizes=(100_000, 1_000_000),
    memory_traced=(100_000,),
)
# Seconds: every section and its page, not figures to read.
QUICK = Plan(
    quick=True,
    core_n=5_000,
    core_repeat=1,
    margin_accounts=100,
    replay_records=3_000,
    replay_tail=500,
    e2e=E2EPlan(
        duration_s=0.5,
        bots=2,
        processes=1,
        latency_rate=50.0,
        single_rate=100.0,
        batched_rate=200.0,
        batch=10,
        steps="50,100",
        step_s=0.5,
        drain_s=2.0,
        scenarios=("latency",),  # the batched one differs only in its options
    ),
    memory_sizes=(2_000,),
    memory_traced=(2_000,),
    memory_levels=20,
)

SECTIONS: dict[str, str] = {
    "core": "core: (r) reference, (a) matching, (b) core, (c) journaled, (d) margin",
    "replay": "replay: rebuild rate, recovery with and without a snapshot",
    "e2e": "end to end over MQTT: Mosquitto and the embedded broker",
    "capacity": "loadtest capacity: a step run, highest rate with ack p99 <= 10 ms",
    "memory": "memory per resting order: tracemalloc and RSS",
}


# ------------------------------------------------------------------ sections
# Each runs in the child process and returns its figures (plain data).


def _core(plan: Plan, work: Path, _: argparse.Namespace) -> dict[str, Any]:
    """Run `bench.core` on the standard stream (our own flow if it is missing)."""
    from bench._args import parse_args  # noqa: PLC0415 -- the child's imports only
    from bench.core import measure  # noqa: PLC0415

    argv = ["--quiet", "--repeat", str(plan.core_repeat)]
    argv += ["--accounts", str(plan.margin_accounts), "--n", str(plan.core_n)]
    stream, why = _standard_stream(plan.core_n, work / "streams")
    if stream is not None:
        argv += ["--commands", str(stream)]
    code, out = measure(parse_args(argv))
    if not out:
        msg = f"paperx bench core {' '.join(argv)} refused its options"
        raise RuntimeError(msg)
    out["argv"] = argv
    out["fills_ok"] = code == 0
    if why:
        out["reference_missing"] = why
    return out


def _standard_stream(n: int, directory: Path) -> tuple[Path | None, str]:
    """Return the standard stream of ``n`` commands (generated once), or why not.

    ``workload.py`` lives in the workspace's ``shared/bench``, beside the
    repository or beside one of its parents, or where ``PAPERX_SHARED_BENCH``
    says (as the tests find it).
    """
    path = directory / f"orders_{n}.msgpack"
    if path.exists() and path.with_suffix(".meta.json").exists():
        return path, ""
    given = os.environ.get("PAPERX_SHARED_BENCH")
    places = [Path(given)] if given else []
    places += [parent / "shared" / "bench" for parent in _REPOSITORY.parents]
    generator = next(
        (p / "workload.py" for p in places if (p / "workload.py").is_file()), None
    )
    if generator is None:
        return None, (
            "the standard stream's generator (shared/bench/workload.py) is not "
            "beside the repository; set PAPERX_SHARED_BENCH"
        )
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(  # noqa: S603 -- the workspace's own generator
        [sys.executable, str(generator), str(n), "42", str(directory)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return path, ""


def _replay(plan: Plan, work: Path, _: argparse.Namespace) -> dict[str, Any]:
    """Run `bench.recovery` on a journal of its own in the work directory."""
    from bench.recovery import measure  # noqa: PLC0415 -- the child's imports only

    directory = work / "replay"
    shutil.rmtree(directory, ignore_errors=True)
    try:
        return measure(plan.replay_records, plan.replay_tail, 7, directory / "journal")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _brokers(args: argparse.Namespace) -> list[tuple[str, str]]:
    """Return (label, broker for `scenario_options`) of the brokers to run on."""
    mosquitto = args.mosquitto_url or "mosquitto"
    return [("mosquitto", mosquitto), ("embedded", "embedded")]


def _e2e(plan: Plan, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run each end-to-end scenario on each broker, each on a fresh server."""
    from exchange.cli.server_process import VenueError  # noqa: PLC0415

    runs: list[dict[str, Any]] = []
    for label, broker in _brokers(args):
        for name in plan.e2e.scenarios:
            try:
                run = _scenario(plan, work, broker, name)
            except VenueError as exc:
                runs.append({"broker": label, "scenario": name, "skipped": str(exc)})
                continue
            run.update(broker=label, scenario=name)
            runs.append(run)
    return {
        "settings": asdict(plan.e2e),
        "mosquitto": _mosquitto_label(args),
        "runs": runs,
    }


def _capacity(plan: Plan, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run the step schedule on the Mosquitto (the embedded broker if there is none)."""
    from exchange.cli.server_process import VenueError  # noqa: PLC0415

    (label, broker), (fallback, embedded) = _brokers(args)
    try:
        run = _scenario(plan, work, broker, "capacity")
    except VenueError as exc:
        run = _scenario(plan, work, embedded, "capacity")
        run["instead_of_mosquitto"] = str(exc)
        label = fallback
    run["broker"] = label
    run["mosquitto"] = _mosquitto_label(args)
    run["settings"] = asdict(plan.e2e)
    return run


def _scenario(plan: Plan, work: Path, broker: str, name: str) -> dict[str, Any]:
    """Run one `bench.e2e` scenario in a fresh directory; return its figures."""
    from bench.e2e import E2ESettings, run_scenario, scenario_options  # noqa: PLC0415

    e2e = plan.e2e
    settings = E2ESettings(
        duration_s=e2e.duration_s,
        bots=e2e.bots,
        processes=e2e.processes,
        latency_rate=e2e.latency_rate,
        single_rate=e2e.single_rate,
        batched_rate=e2e.batched_rate,
        batch=e2e.batch,
        steps=e2e.steps,
        step_s=e2e.step_s,
        drain_s=e2e.drain_s,
    )
    options = scenario_options(name, settings, broker, work / "e2e")
    shutil.rmtree(options.out, ignore_errors=True)  # a fresh journal each time
    print(f"--- {broker} {name}: {options.schedule}, batch {options.batch}", flush=True)
    run = run_scenario(options)
    run["load_after"] = os.getloadavg()
    return run


def _mosquitto_label(args: argparse.Namespace) -> str:
    """Return which Mosquitto the scenarios ran on, in words."""
    if args.mosquitto_url:
        return f"the broker at {args.mosquitto_url}"
    return "a Mosquitto of the run's own (free loopback port, set_tcp_nodelay)"


def _memory(plan: Plan, _work: Path, _args: argparse.Namespace) -> dict[str, Any]:
    """Run `bench.memory`: tracemalloc and RSS, each in a fresh process."""
    from bench.memory import BookShape, run_all  # noqa: PLC0415

    shape = BookShape(plan.memory_levels, plan.memory_accounts, client_ids=False)
    result = run_all(plan.memory_sizes, plan.memory_traced, shape)
    print(json.dumps(result, indent=1))
    return result


_RUNNERS = {
    "core": _core,
    "replay": _replay,
    "e2e": _e2e,
    "capacity": _capacity,
    "memory": _memory,
}


# ------------------------------------------------------------------ driver


def _parser() -> argparse.ArgumentParser:
    """Return the command line of ``paperx bench all``."""
    p = argparse.ArgumentParser(
        prog="paperx bench all",
        description="Run every benchmark and write one page of figures "
        "(BENCHMARKS.md): " + "; ".join(SECTIONS.values()) + ".",
        epilog="examples:\n  paperx bench all                 # a few minutes\n"
        "  paperx bench all --quick --out /tmp/b.md   # seconds: checks, not figures\n"
        "  paperx bench all --only e2e,capacity   # the rest: 'not run'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="a tiny run (seconds)")
    p.add_argument(
        "--out", type=Path, default=Path("BENCHMARKS.md"), help="the page to write"
    )
    p.add_argument(
        "--work",
        type=Path,
        help="logs, figures and run files (default runs/bench, or runs/bench-quick)",
    )
    p.add_argument(
        "--only",
        default=",".join(SECTIONS),
        type=_sections,
        help=f"comma list of sections (default all: {','.join(SECTIONS)})",
    )
    p.add_argument(
        "--mosquitto-url",
        metavar="URL",
        help="run the Mosquitto scenarios on this broker (e.g. mqtt://127.0.0.1:1883) "
        "instead of a Mosquitto of their own; other servers on it see the load",
    )
    p.add_argument("--child", choices=tuple(SECTIONS), help=argparse.SUPPRESS)
    return p


def _sections(text: str) -> tuple[str, ...]:
    """Parse ``--only``."""
    chosen = tuple(s.strip() for s in text.split(",") if s.strip())
    bad = [s for s in chosen if s not in SECTIONS]
    if bad or not chosen:
        msg = f"unknown section(s) {bad}; choose from {', '.join(SECTIONS)}"
        raise argparse.ArgumentTypeError(msg)
    return chosen


def main(argv: list[str] | None = None) -> int:
    """Run ``paperx bench all``; 0 if every section ran or was skipped, else 1."""
    args = _parser().parse_args(argv)
    plan = QUICK if args.quick else FULL
    work = args.work or Path("runs/bench-quick" if args.quick else "runs/bench")
    if args.child:
        return _child(args.child, plan, work, args)
    from bench._page import render_page, summary_rows  # noqa: PLC0415

    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    meta = _meta(work, plan)
    print(
        f"paperx bench all{' --quick' if plan.quick else ''}: {meta['cpu']}, "
        f"{meta['cores']} cores, load average {meta['load_start'][0]:.2f}; "
        f"logs in {work / 'logs'}",
        flush=True,
    )
    results: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(args.only, 1):
        print(f"[{i}/{len(args.only)}] {SECTIONS[name]} ...", flush=True)
        results[name] = _run_child(name, work, args)
        print(f"      {_status_line(results[name])}", flush=True)
    meta["load_end"] = os.getloadavg()
    meta["seconds"] = time.perf_counter() - started
    page = render_page(meta, results)
    args.out.write_text(page, encoding="utf-8")
    (work / "all.json").write_text(
        json.dumps({"meta": meta, "sections": results}, indent=1) + "\n",
        encoding="utf-8",
    )
    rows = summary_rows(results)
    width = max(len(r[0]) for r in rows)
    print(f"\n{'figure':<{width}}  measured | target | status")
    for what, measured, target, status in rows:
        print(f"{what:<{width}}  {measured} | {target} | {status}")
    print(f"\nwrote {args.out} in {meta['seconds']:.0f} s")
    return 1 if any(r["status"] == "failed" for r in results.values()) else 0


def _meta(work: Path, plan: Plan) -> dict[str, Any]:
    """Return what the page says about the run: machine, load, versions, command."""
    machine = machine_info()
    p50, p99 = fsync_ms(work)
    versions = {}
    for name in ("msgspec", "sortedcontainers", "aiomqtt", "amqtt"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return {
        **machine,
        "load_start": os.getloadavg(),
        "versions": versions,
        "mosquitto": _mosquitto_version(),
        "fsync_ms": (round(p50, 2), round(p99, 2)),
        "commit": git_commit(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "paperx bench all" + (" --quick" if plan.quick else ""),
        "quick": plan.quick,
        "work": str(work),
    }


def _mosquitto_version() -> str:
    """Return the installed Mosquitto's version line, or "" if there is none."""
    binary = shutil.which("mosquitto")
    if binary is None:
        return ""
    try:
        done = subprocess.run(  # noqa: S603 -- prints its usage and version
            [binary, "-h"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    first = (done.stdout or done.stderr).splitlines()
    return first[0].strip() if first else ""


def _run_child(name: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run one section in a child process; return its status and figures."""
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log, result = logs / f"{name}.log", work / f"{name}.json"
    result.unlink(missing_ok=True)
    command = [sys.executable, "-m", "bench.all", "--child", name, "--work", str(work)]
    if args.quick:
        command.append("--quick")
    if args.mosquitto_url:
        command += ["--mosquitto-url", args.mosquitto_url]
    path = os.pathsep.join(
        filter(None, [str(_REPOSITORY), os.environ.get("PYTHONPATH")])
    )
    started = time.perf_counter()
    with log.open("w", encoding="utf-8") as out:
        done = subprocess.run(  # noqa: S603 -- this module, in a fresh interpreter
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": path},
            check=False,
        )
    seconds = time.perf_counter() - started
    if done.returncode == 0 and result.exists():
        section: dict[str, Any] = json.loads(result.read_text(encoding="utf-8"))
    else:
        tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        reason = tail[-1] if tail else f"exit status {done.returncode}"
        section = {"status": "failed", "reason": reason}
    section["seconds"] = round(seconds, 1)
    section["log"] = str(log)
    return section


def _child(name: str, plan: Plan, work: Path, args: argparse.Namespace) -> int:
    """Run one section here; write its figures to WORK/NAME.json."""
    section = {"status": "ok", "figures": _RUNNERS[name](plan, work, args)}
    (work / f"{name}.json").write_text(json.dumps(section) + "\n", encoding="utf-8")
    return 0


def _status_line(section: dict[str, Any]) -> str:
    """Return one line on how a section went."""
    if section["status"] == "ok":
        return f"done in {section['seconds']:.0f} s"
    return f"{section['status']}: {section['reason']} (log: {section['log']})"


if __name__ == "__main__":
    sys.exit(main())
