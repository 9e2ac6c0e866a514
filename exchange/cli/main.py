"""The ``paperx`` command line: demo, benchmarks and replay tools."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from exchange.cli.loadtest_command import add_loadtest, run_loadtest_command
from exchange.cli.replay_commands import COMMANDS as REPLAY_COMMANDS
from exchange.cli.replay_commands import add_parsers as add_replay_parsers
from exchange.cli.replay_commands import add_report_parser
from exchange.cli.replay_commands import run as run_replay
from exchange.logs import configure_logging

__all__ = ["main"]

# ``paperx bench TARGET`` runs ``bench.TARGET.main(options)``.
_BENCHMARKS = ("all", "core", "journal", "recovery", "e2e", "memory")

_EPILOG = """\
examples:
  paperx demo                          the exchange over MQTT with sample bots, 60 s
  paperx demo --duration 20 --bots 8   shorter, with a bigger crowd
  paperx demo --in-process --n 1000000 --fsync off   the in-process throughput run
  paperx bot trend --account alice --secret S --mode cross --leverage 20
  paperx serve --config paperx.toml    the exchange over MQTT (embedded broker)
  paperx serve --config paperx.toml --broker mqtt://127.0.0.1:1883
  paperx replay verify runs/demo/journal   prove live == rebuild == rerun
  paperx demo --in-process --journal nats://127.0.0.1:4222/DEMO   to JetStream
  paperx replay verify nats://127.0.0.1:4222/DEMO
  paperx replay repair runs/demo/journal   move a damaged part aside, keep the rest
  paperx accounts add bob --config paperx.toml   bob's API key, secret, broker login
  paperx replay rebuild runs/demo/journal --at 5000   books, accounts after 5000
  paperx replay whatif runs/demo/journal   every margin mode flipped, side by side
  paperx report runs/demo/journal      per account: PnL, liquidations, rejects by code
  paperx bench core --commands orders_1000000.msgpack --json
  paperx bench all                     every benchmark, written as BENCHMARKS.md
"""


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="paperx",
        description="paperx: a deterministic, replayable paper-trading exchange "
        "for perpetual futures.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--log-level",
        default=None,
        help="structured log level (debug, info, warning; default warning, "
        "info for serve)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_demo(sub)
    _add_serve(sub)
    _add_accounts(sub)
    add_loadtest(sub)
    _add_bot(sub)

    bench = sub.add_parser("bench", help="benchmarks (see BENCHMARKS.md)")
    bench.add_argument(
        "target",
        choices=_BENCHMARKS,
        help="all: every benchmark below (but journal), written as BENCHMARKS.md; "
        "core: matching, full core, and journaled core; "
        "journal: file vs NATS JetStream journal throughput; "
        "recovery: rebuild speed and recovery time with and without a snapshot; "
        "e2e: bots over MQTT (own Mosquitto, embedded broker) through the server; "
        "memory: bytes per resting order",
    )
    bench.add_argument(
        "rest",
        nargs=argparse.REMAINDER,
        help="options of the benchmark (see paperx bench TARGET --help)",
    )

    replay = sub.add_parser("replay", help="read, rebuild and rerun recorded journals")
    replay_sub = replay.add_subparsers(
        dest="replay_command", required=True, metavar="ACTION"
    )
    verify = replay_sub.add_parser(
        "verify", help="prove live hash == rebuild hash == rerun hash for a journal"
    )
    verify.add_argument(
        "journal", help="journal directory, or nats://host:port/STREAM (JetStream)"
    )
    repair = replay_sub.add_parser(
        "repair",
        help="cut a damaged journal at its first damage, moving the rest aside "
        "into files of their own (nothing is deleted)",
    )
    repair.add_argument("journal", type=Path, help="journal directory")
    add_replay_parsers(replay_sub)
    add_report_parser(sub)  # paperx report: how a run went, per account
    return parser


def _add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``paperx demo`` and its options (the venue, or --in-process)."""
    demo = sub.add_parser(
        "demo",
        help="the exchange over MQTT with the sample bots trading on it",
        description="Start the exchange (embedded broker, journal) and the sample "
        "bots, each its own MQTT client; show the run live; then a summary per "
        "account, a PNG report, a verified replay of the journal, and isolated vs "
        "cross side by side. With --in-process: a generated order stream through "
        "an in-process exchange instead (a throughput run).",
    )
    demo.add_argument(
        "--duration",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long the bots trade (default 60)",
    )
    demo.add_argument(
        "--bots",
        type=int,
        default=4,
        metavar="N",
        help="noise traders besides the fixed cast (two market makers, two trend "
        "followers, a lottery-ticket trader, a hedger); default 4",
    )
    demo.add_argument("--seed", type=int, default=42, help="seed of every choice")
    demo.add_argument(
        "--broker",
        metavar="URL",
        help="mqtt://host:port of an external broker instead of the embedded one",
    )
    demo.add_argument(
        "--out",
        type=Path,
        default=Path("runs/demo"),
        metavar="DIR",
        help="where the config, journal, logs and report.png go (default "
        "runs/demo; a non-empty one gets a timestamped subdirectory)",
    )
    group = demo.add_argument_group(
        "the in-process throughput run (each of its options implies --in-process)"
    )
    group.add_argument(
        "--in-process",
        action="store_true",
        help="run a generated order stream through an in-process exchange instead",
    )
    group.add_argument(
        "--n", type=int, help="number of commands to generate (default 200000)"
    )
    group.add_argument(
        "--journal",
        help="journal directory (default runs/demo; a non-empty one "
        "gets a timestamped subdirectory), or nats://host:port/STREAM",
    )
    group.add_argument(
        "--fsync",
        choices=("always", "batch", "off"),
        help="journal durability policy (default batch = group commit)",
    )


def _add_bot(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``paperx bot NAME``: one sample bot against a running server."""
    from clients.bots import BOTS  # noqa: PLC0415 -- names only, no SDK import

    bot = sub.add_parser(
        "bot",
        help="run one sample bot against a server (paperx bot NAME --help)",
        description="Run one of the sample bots (clients/bots/) against a running "
        "paperx serve. Each bot has its own options: paperx bot NAME --help.",
    )
    bot.add_argument("name", choices=sorted(BOTS), help="which bot")
    bot.add_argument(
        "rest", nargs=argparse.REMAINDER, help="the bot's options (see its --help)"
    )


def _add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``paperx serve`` and its options."""
    serve = sub.add_parser(
        "serve",
        help="run the exchange as an MQTT service (see exchange/shell/server.py)",
        description="Run the exchange for bots over MQTT: journal, recovery from "
        "it, index feed and clock, market data. SIGINT/SIGTERM stop it cleanly; "
        "a second signal exits at once.",
    )
    serve.add_argument(
        "--config",
        type=Path,
        required=True,
        help="the server's TOML file: markets, accounts (API keys, secrets, "
        "deposits), journal and fsync, broker, feed, clock, market data, stress "
        "(see exchange/shell/server_config.py)",
    )
    serve.add_argument(
        "--broker",
        metavar="URL",
        help="mqtt://host:port of an external broker (Mosquitto, EMQX); default: "
        "the config's [broker] url, else an embedded broker on 127.0.0.1",
    )
    serve.add_argument(
        "--embedded-port",
        type=int,
        help="port of the embedded broker (default: the config's, 1883)",
    )
    serve.add_argument(
        "--embedded-broker",
        choices=("auto", "mosquitto", "amqtt"),
        help="which embedded broker: auto (default) runs the installed Mosquitto, "
        "else amqtt (pure Python, slower: a few hundred orders/s)",
    )
    serve.add_argument(
        "--index-feed",
        type=Path,
        metavar="FILE",
        help="CSV of recorded index prices (offset_ms,symbol,price) instead of "
        "the seeded random walk",
    )
    serve.add_argument(
        "--replay",
        type=Path,
        metavar="JOURNAL",
        help="re-send a recorded journal's order flow at its recorded times while "
        "live bots trade (recorded accounts trade as rec:NAME; see "
        "exchange/shell/replay_feed.py)",
    )
    serve.add_argument(
        "--replay-market",
        metavar="[SYMBOL=]FILE",
        help="replay public market data: a Binance kline or aggTrades CSV, or "
        "timestamp,price; index prices and (aggTrades) a taker flow of rec:flow",
    )
    serve.add_argument(
        "--speed",
        type=_speed,
        default=1.0,
        metavar="X",
        help="replay speed: 2 = twice as fast as recorded, max (or 0) = as fast "
        "as possible (default 1)",
    )
    serve.add_argument(
        "--replay-wait-for",
        metavar="ACCOUNT[,ACCOUNT...]",
        default="",
        help="start the replay once each of these accounts has an open order",
    )
    serve.add_argument(
        "--stress",
        type=Path,
        metavar="FILE",
        help="a TOML file whose [stress] table replaces the config's: make the "
        "venue hostile on purpose to test a client. Injected latency on acks and "
        "market data (fixed, uniform, normal or lognormal ms; per account), "
        "commands refused at a probability (INJECTED_REJECT, journaled), book "
        "delta floods, forced disconnects of a named MQTT client id at times or "
        "at random; all seeded, journaled as config and off by default (see "
        "docs/stress.md). Open-order limits are the markets' max_open_orders",
    )
    serve.add_argument(
        "--journal",
        help="journal directory, or nats://host:port/STREAM for JetStream "
        "(overrides the config's)",
    )
    serve.add_argument(
        "--fsync",
        choices=("always", "batch", "off"),
        help="journal durability policy (overrides the config's; default batch)",
    )


def _add_accounts(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``paperx accounts add`` and its options."""
    accounts = sub.add_parser("accounts", help="manage the accounts that may trade")
    actions = accounts.add_subparsers(
        dest="accounts_command", required=True, metavar="ACTION"
    )
    add = actions.add_parser(
        "add",
        help="create an account: API key and secret, broker login, ACL",
        description="Create an account: its API key and secret and first "
        "deposit go into the server config; its MQTT password goes hashed into "
        "Mosquitto's password file (and the config, for the embedded broker); "
        "the ACL file is rewritten. The secrets are printed once, here only.",
    )
    add.add_argument("name", help="the account: its MQTT username and topic key")
    add.add_argument(
        "--config", type=Path, required=True, help="the server's TOML file"
    )
    add.add_argument(
        "--deposit", default="10000", help="USDT deposited at first (default 10000)"
    )
    add.add_argument(
        "--passwd",
        type=Path,
        help="Mosquitto's password file (default: passwd beside the config)",
    )
    add.add_argument(
        "--acl", type=Path, help="Mosquitto's ACL file (default: acl beside the config)"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the process exit code.

    A reader that stops early (``paperx bench core | head``) ends the run
    quietly, as Unix tools do, instead of with a traceback.
    """
    try:
        return _run(argv)
    except BrokenPipeError:
        # Python would flush stdout again at exit and fail once more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _run(argv: list[str] | None) -> int:
    """Parse the arguments and run the command they name."""
    args = build_parser().parse_args(argv)
    level = args.log_level or ("info" if args.command == "serve" else "warning")
    configure_logging(level)
    commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "serve": _serve,
        "accounts": _accounts_add,
        "demo": _demo,
        "bench": lambda a: _bench(a.target, a.rest),
        "replay": _replay,
        "report": run_replay,
        "loadtest": run_loadtest_command,
        "bot": lambda a: _bot(a.name, a.rest),
    }
    return commands[args.command](args)


def _replay(args: argparse.Namespace) -> int:
    """Run one ``paperx replay`` subcommand."""
    if args.replay_command in REPLAY_COMMANDS:
        return run_replay(args)
    if args.replay_command == "repair":
        return _replay_repair(args.journal)
    return _replay_verify(args.journal)


def _demo(args: argparse.Namespace) -> int:
    """Run the venue demo, or the in-process one."""
    in_process = (args.n, args.journal, args.fsync)
    if args.in_process or any(v is not None for v in in_process):
        from exchange.cli.demo import run_demo  # noqa: PLC0415 -- keep --help fast

        return run_demo(
            200_000 if args.n is None else args.n,
            args.seed,
            args.journal or "runs/demo",
            args.fsync or "batch",
        )
    from exchange.cli.venue_demo import DemoOptions, run_venue_demo  # noqa: PLC0415

    options = DemoOptions(args.duration, args.bots, args.seed, args.broker, args.out)
    return run_venue_demo(options)


def _bot(name: str, argv: list[str]) -> int:
    """Run the sample bot ``name`` with its own command line ``argv``."""
    import importlib  # noqa: PLC0415

    from clients.bots import BOTS  # noqa: PLC0415

    module = importlib.import_module(BOTS[name])
    module.cli(argv, prog=f"paperx bot {name}")
    return 0


def _bench(target: str, rest: list[str]) -> int:
    """Run one benchmark (imported only when asked for: keep --help fast)."""
    import importlib  # noqa: PLC0415

    module = importlib.import_module(f"bench.{target}")
    code: int = module.main(rest)
    return code


def _speed(text: str) -> float:
    """Return a ``--speed`` value, or tell argparse why it is not one."""
    from exchange.shell.replay_feed import parse_speed  # noqa: PLC0415

    try:
        return parse_speed(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _serve(args: argparse.Namespace) -> int:
    """Load the server config, apply the command line's overrides, serve."""
    import msgspec  # noqa: PLC0415

    from exchange.errors import ConfigError, JournalError  # noqa: PLC0415
    from exchange.journal import is_nats_url  # noqa: PLC0415
    from exchange.shell.server import ServeOptions, serve  # noqa: PLC0415
    from exchange.shell.server_config import (  # noqa: PLC0415
        load_server_config,
        with_stress_file,
    )

    try:
        config = load_server_config(args.config)
        if args.stress is not None:
            config = with_stress_file(config, args.stress)
        if args.journal is not None:
            journal = args.journal
            config = msgspec.structs.replace(
                config, journal=journal if is_nats_url(journal) else Path(journal)
            )
        if args.fsync is not None:
            config = msgspec.structs.replace(config, fsync=args.fsync)
        options = ServeOptions(
            args.broker,
            args.index_feed,
            args.embedded_port,
            args.embedded_broker,
            replay=args.replay,
            replay_market=args.replay_market,
            speed=args.speed,
            replay_wait_for=tuple(a for a in args.replay_wait_for.split(",") if a),
        )
        return serve(config, options)
    except (ConfigError, JournalError) as exc:
        print(f"paperx: {exc}", file=sys.stderr)
        return 2


def _replay_repair(journal: Path) -> int:
    """Repair one journal and say what was kept and what was moved aside."""
    from exchange.errors import JournalError  # noqa: PLC0415
    from replay.repair import repair  # noqa: PLC0415

    if not journal.is_dir():
        print(f"paperx: {journal} is not a journal directory", file=sys.stderr)
        return 2
    try:
        report = repair(journal)
    except JournalError as exc:
        print(f"paperx: {exc}", file=sys.stderr)
        return 2
    damage = report.damage
    if damage is None:
        print(
            f"intact        {report.kept_records:,} records, last seq "
            f"{report.last_seq}; nothing moved"
        )
        return 0
    print(
        f"damage        {damage.reason} at {damage.path} byte {damage.offset} "
        f"({damage.detail})"
    )
    print(
        f"kept          {report.kept_records:,} records, seq {report.first_seq}"
        f"..{report.last_seq}"
    )
    print(f"moved aside   {damage.records_after:,} intact records after the damage")
    for moved in report.moved:
        print(f"  {moved.path}  ({moved.bytes:,} bytes)")
    for stale in report.stale_snapshots:
        print(f"stale         {stale}  (a snapshot past the kept records)")
    return 0


def _accounts_add(args: argparse.Namespace) -> int:
    """Create an account and print its credentials, once."""
    from exchange.errors import ConfigError  # noqa: PLC0415
    from exchange.shell.accounts import add_account  # noqa: PLC0415

    base = args.config.parent
    try:
        made = add_account(
            args.config,
            args.name,
            deposit=args.deposit,
            password_file=args.passwd or base / "passwd",
            acl_file=args.acl or base / "acl",
        )
    except ConfigError as exc:
        print(f"paperx: {exc}", file=sys.stderr)
        return 2
    print(f"account        {made.name}")
    print(f"api key        {made.api_key}")
    print(f"api secret     {made.secret}")
    print(f"mqtt username  {made.name}")
    print(f"mqtt password  {made.mqtt_password}")
    if made.exchange_login_created:
        print("exchange login created in [broker] (the server's own MQTT user)")
    print(
        "The secret and the password are shown only now: give them to the bot "
        "(PaperxClient(account, api_key, secret, mqtt_password=...)). Restart "
        "paperx serve, and reload Mosquitto (SIGHUP) to read the new password."
    )
    return 0


def _replay_verify(journal: str) -> int:
    """Verify one journal and print the three hashes."""
    from exchange.cli.progress import ProgressBar  # noqa: PLC0415
    from exchange.errors import JournalError  # noqa: PLC0415
    from exchange.journal import is_nats_url  # noqa: PLC0415
    from replay.log import ExchangeLog  # noqa: PLC0415
    from replay.verify import verify  # noqa: PLC0415

    if not is_nats_url(journal) and not Path(journal).is_dir():
        print(f"paperx: {journal} is not a journal directory", file=sys.stderr)
        return 2
    try:
        log = ExchangeLog(journal)
    except JournalError as exc:  # e.g. a schema this version does not read
        print(f"paperx: {exc}", file=sys.stderr)
        return 2
    bar = ProgressBar(0, "verifying")
    report = verify(log, lambda done: bar.update(done) if not done % 1024 else None)
    bar.total = max(report.records, 1)
    bar.update(report.records)
    bar.close()
    print(f"records       {report.records:,}  (checkpoints {report.checkpoints})")
    print(
        f"live hash     {report.live_hash or '(no checkpoint in this journal)'}"
        f"  at seq {report.live_seq}"
    )
    print(f"rebuild hash  {report.rebuild_hash}")
    print(f"rerun hash    {report.rerun_hash}")
    if report.damage:
        print(f"damage        {report.damage}")
    if report.snapshot_seq is not None:
        verdict = "matches the rebuild" if report.snapshot_ok else "MISMATCH"
        print(
            f"snapshot      seq {report.snapshot_seq}: {report.snapshot_hash}"
            f"  {verdict} (at its seq, and rebuilt from it to the end)"
        )
    for skipped in report.snapshots_skipped:
        print(f"skipped       {skipped}")
    if report.rebuild_error:
        print(f"rebuild       diverged: {report.rebuild_error}")
    if report.rerun_difference:
        print(f"rerun         first difference at {report.rerun_difference}")
    print(
        "verdict       " + ("OK: live == rebuild == rerun" if report.ok else "MISMATCH")
    )
    return 0 if report.ok else 1
