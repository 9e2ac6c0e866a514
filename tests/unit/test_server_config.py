"""Tests of the server's TOML configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from exchange.errors import ConfigError
from exchange.shell.server_config import load_server_config

E8 = 10**8
_MARKET = '[markets.BTC-PERP]\ntick_size = "0.1"\nlot_size = "0.001"\n'
_ALICE = '[accounts.alice]\napi_key = "k"\nsecret = "hush-hush"\ndeposit = "1000.5"\n'


class TestServerConfig:
    """One file: markets, accounts, journal, broker, feed."""

    def test_a_minimal_file_gets_the_documented_defaults(self, tmp_path: Path) -> None:
        """Markets and one account suffice; paths are relative to the file."""
        path = tmp_path / "paperx.toml"
        path.write_text(_MARKET + _ALICE)
        config = load_server_config(path)
        assert [m.symbol for m in config.markets] == ["BTC-PERP"]
        assert config.journal == tmp_path / "runs/serve"
        assert (config.fsync, config.format, config.broker.url) == ("batch", "json", "")
        assert (config.snapshot_every, config.snapshot_keep) == (100_000, 3)
        assert config.deposits_e8() == {"alice": 1000 * E8 + E8 // 2}
        assert config.credentials()["alice"].secret == "hush-hush"  # noqa: S105
        assert "hush" not in repr(config.accounts["alice"])

    def test_a_nats_journal_url_is_kept_as_a_url(self, tmp_path: Path) -> None:
        """A ``nats://`` journal is not made relative to the file like a path."""
        path = tmp_path / "paperx.toml"
        url = "nats://127.0.0.1:4222/PAPERX"
        path.write_text(f'[server]\njournal = "{url}"\n' + _MARKET + _ALICE)
        assert load_server_config(path).journal == url

    @pytest.mark.parametrize(
        ("extra", "match"),
        [
            ("[server]\nfsync = 'sometimes'\n", "fsync"),
            ("[server]\nrate_limit = -1\n", "rate_limit"),
            ("[broker]\nhost = 'x'\n", "host"),
            ("[feed.start]\nDOGE-PERP = '1'\n", "DOGE-PERP"),
            ("[server]\nsnapshot_keep = 0\n", "snapshot_keep"),
            ("[server]\nsnapshot_every = -1\n", "snapshot_every"),
        ],
    )
    def test_a_bad_value_or_unknown_key_is_refused(
        self, tmp_path: Path, extra: str, match: str
    ) -> None:
        """A wrong value, an unknown key or an unknown market raises ConfigError."""
        path = tmp_path / "paperx.toml"
        path.write_text(_MARKET + _ALICE + extra)
        with pytest.raises(ConfigError, match=match):
            load_server_config(path)

    def test_a_file_without_accounts_is_refused(self, tmp_path: Path) -> None:
        """No account to trade is a config error, not an empty exchange."""
        path = tmp_path / "paperx.toml"
        path.write_text(_MARKET)
        with pytest.raises(ConfigError, match="accounts"):
            load_server_config(path)
