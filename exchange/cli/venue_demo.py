"""``paperx demo``: the venue itself, with the sample bots trading on it.

One command: it writes a server config (the bots' accounts with fresh API
secrets, a seeded and lively index feed), starts ``paperx serve`` as a child
process (with the embedded broker, or ``--broker``), connects each bot as
its own MQTT client, shows the run live for ``--duration`` seconds, stops
the server cleanly, and then reads the journal: a summary per account, a
PNG report, `replay verify`, and the isolated vs cross story of the
in-process demo. Everything goes under ``--out``: the config, the journal,
the server's log, the bots' log and the PNG.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from clients.sdk import ClientError, PaperxClient, client_for
from exchange.cli.demo import fresh_directory
from exchange.cli.demo_cast import Role, cast
from exchange.cli.live_view import LiveView
from exchange.cli.margin_demo import compare_margin_modes
from exchange.cli.progress import ProgressBar
from exchange.cli.server_process import ServerProcess, free_port
from exchange.gateway.wire import Codec
from replay.fmt import money, table
from replay.log import ExchangeLog
from replay.plots import plot_run
from replay.stats import RunStats
from replay.verify import verify
from replay.whatif import recorded_stats

__all__ = ["DemoOptions", "run_venue_demo"]

_MARKETS = Path(__file__).resolve().parents[1] / "markets.toml"
# A lively walk: 0.1% steps four times a second (about 1.5% a minute), so
# the 125x tickets meet their liquidation price within a short demo.
_FEED = {"interval_ms": 250, "step": '"0.001"'}
_START = {"BTC-PERP": "65000", "ETH-PERP": "3500"}


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """What ``paperx demo`` was asked for."""

    duration: float = 60.0
    bots: int = 4  # noise traders, besides the fixed cast
    seed: int = 42
    broker: str | None = None  # an external broker instead of the embedded one
    out: Path = Path("runs/demo")


def run_venue_demo(options: DemoOptions) -> int:
    """Run the demo; return 0 if its journal verifies, else 1."""
    out = fresh_directory(options.out)
    roles = cast(options.bots, options.seed)
    secret = {role.account: secrets.token_hex(16) for role in roles}
    config = _write_config(out, roles, secret, options.seed)
    port = None if options.broker else free_port()
    url = options.broker or f"mqtt://127.0.0.1:{port}"
    where = "external broker" if options.broker else "embedded broker"
    print(
        f"paperx demo: the exchange over MQTT ({where} {url}) for "
        f"{options.duration:g} s, {len(roles)} bots, seed {options.seed}"
    )
    print("  bots      " + ", ".join(f"{r.account} ({r.bot})" for r in roles))
    with (
        (out / "server.log").open("w", encoding="utf-8") as server_log,
        ServerProcess(config, options.broker, port, log_file=server_log) as server,
    ):
        ready = server.wait_for("server_ready")
        print(
            f"  server    ready (pid {server.process.pid}), journal {out / 'journal'}"
        )
        view = LiveView(options.duration)
        with _bot_log(out / "bots.log"):
            try:
                asyncio.run(_trade(roles, secret, url, view))
            except KeyboardInterrupt:
                view.event("interrupted: stopping the bots and the server")
        stopped = server.stop()
    del ready
    return _after(out, options, stopped["state_hash"])


def _after(out: Path, options: DemoOptions, state_hash: str) -> int:
    """Report, draw, verify and explain, once the server has stopped."""
    journal = out / "journal"
    stats = recorded_stats(ExchangeLog(journal))
    roles = [r.account for r in cast(options.bots, options.seed)]
    print()
    print(_summary(stats, roles))
    png = plot_run(stats, out / "report.png", f"paperx demo, seed {options.seed}")
    log = ExchangeLog(journal)
    bar = ProgressBar(stats.records, "verifying")
    verdict = verify(log, lambda done: bar.update(done) if not done % 1024 else None)
    bar.update(verdict.records)
    bar.close()
    same = verdict.ok and verdict.rerun_hash == state_hash
    print(
        f"  replay    {'OK' if same else 'MISMATCH'}: live == rebuild == rerun over "
        f"{verdict.records:,} records (state {state_hash[:16]}...)"
    )
    print("\n" + compare_margin_modes())
    print(
        f"\n  journal   {journal}\n  report    {png}\n  logs      "
        f"{out / 'server.log'}, {out / 'bots.log'}\n  config    {out / 'paperx.toml'}"
        f"\nNext: paperx replay verify {journal}   |   paperx bot --help"
    )
    return 0 if same else 1


async def _trade(
    roles: list[Role], secret: dict[str, str], url: str, view: LiveView
) -> None:
    """Connect the bots and the view, run them for the view's duration."""
    async with contextlib.AsyncExitStack() as stack:
        market = client_for(url, identifier=f"paperx-demo-view-{os.getpid()}")
        await stack.enter_async_context(market)
        for kind in ("trades", "mark"):
            await market.subscribe(f"paperx/v1/md/+/{kind}", qos=0)
        tasks = [asyncio.create_task(view.watch_market(market, Codec("json")))]
        for role in roles:
            client = PaperxClient(
                role.account, f"{role.account}-key", secret[role.account], broker=url
            )
            await stack.enter_async_context(client)
            tasks.append(asyncio.create_task(view.watch_liquidations(client)))
            tasks.append(asyncio.create_task(_guarded(role, client, view)))
        try:
            await view.run()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def _guarded(role: Role, client: PaperxClient, view: LiveView) -> None:
    """Run one bot; a client error stops that bot only, and is shown."""
    try:
        await role.run(client)
    except ClientError as error:
        view.event(f"{role.account} stopped: {type(error).__name__}: {error}")


@contextlib.contextmanager
def _bot_log(path: Path) -> Iterator[None]:
    """Send what the bots do (logger ``clients.bots``) to ``path``, not the screen."""
    logger = logging.getLogger("clients.bots")
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.level, logger.propagate = saved


def _write_config(
    out: Path, roles: list[Role], secret: dict[str, str], seed: int
) -> Path:
    """Write the server config for the demo (secrets included) and return it."""
    lines = ["[server]", 'journal = "journal"', "[feed]", f"seed = {seed}"]
    lines += [f"{key} = {value}" for key, value in _FEED.items()]
    lines += ["[feed.start]"] + [f'{s} = "{p}"' for s, p in _START.items()]
    for role in roles:
        lines += [
            f'[accounts."{role.account}"]',
            f'api_key = "{role.account}-key"',
            f'secret = "{secret[role.account]}"',
            f'deposit = "{role.deposit}"',
        ]
    path = out / "paperx.toml"
    text = "\n".join(lines) + "\n\n" + _MARKETS.read_text(encoding="utf-8")
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)  # it holds the accounts' API secrets
    return path


def _summary(stats: RunStats, order: list[str]) -> str:
    """Return the per-account table: mode, leverage, PnL, fees, liquidations.

    Fees are trading and liquidation fees; PnL is the final equity less the
    deposits; the drawdown is the largest fall of that PnL from its peak.
    """
    seconds = (stats.last_ts - stats.first_ts) / 1e9
    rows = [
        [
            name,
            a.mode_label,
            a.leverage_label,
            money(a.pnl, signed=True),
            money(a.fees + a.liquidation_fees),
            str(len(a.liquidations)),
            money(a.max_drawdown),
        ]
        for name in order
        if (a := stats.accounts.get(name)) is not None
    ]
    header = ["account", "mode", "leverage", "PnL USDT", "fees USDT", "liq."]
    return (
        f"paperx demo: {stats.records:,} records, {stats.fills:,} fills, "
        f"{stats.liquidations} liquidations in {seconds:.1f} s\n"
        + textwrap.indent(table([*header, "worst drawdown"], rows), "  ")
    )
