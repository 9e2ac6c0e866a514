"""Tests of account provisioning and the broker's ACL rules."""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

import pytest

from exchange.cli import main
from exchange.errors import ConfigError
from exchange.gateway.acl import (
    acl_file_text,
    allowed,
    check_account_name,
    mosquitto_hash,
    mosquitto_verify,
)
from exchange.shell.accounts import add_account, read_password_file
from exchange.shell.server_config import load_server_config

_MARKETS = '[markets.BTC-PERP]\ntick_size = "0.1"\nlot_size = "0.001"\n'


def _config(directory: Path, extra: str = "") -> Path:
    """Write a config with one market and no accounts; return its path."""
    path = directory / "paperx.toml"
    path.write_text(_MARKETS + extra, encoding="utf-8")
    return path


def _add(config: Path, name: str) -> object:
    """Add ``name`` with the broker's files beside ``config``."""
    return add_account(
        config,
        name,
        deposit="250",
        password_file=config.parent / "passwd",
        acl_file=config.parent / "acl",
    )


class TestAddAccount:
    """``paperx accounts add``: credentials into the config and the broker's files."""

    def test_a_new_account_is_in_the_config_the_password_file_and_the_acl(
        self, tmp_path: Path
    ) -> None:
        """The server loads the account's key and secret; its password hash verifies."""
        config = _config(tmp_path)
        made = add_account(
            config,
            "bob",
            deposit="250",
            password_file=tmp_path / "passwd",
            acl_file=tmp_path / "acl",
        )
        loaded = load_server_config(config)
        account = loaded.accounts["bob"]
        assert (account.api_key, account.secret) == (made.api_key, made.secret)
        assert loaded.deposits_e8() == {"bob": 250 * 10**8}
        users = read_password_file(tmp_path / "passwd")
        assert set(users) == {"bob", "paperx"}
        assert mosquitto_verify(made.mqtt_password, users["bob"])
        assert loaded.broker_users() == {"bob": users["bob"]}
        assert mosquitto_verify(loaded.broker.password, users["paperx"])
        assert (tmp_path / "acl").read_text(encoding="utf-8") == acl_file_text()

    def test_a_second_account_keeps_the_first_and_the_exchange_login(
        self, tmp_path: Path
    ) -> None:
        """Adding another account changes neither the first's hash nor the login."""
        config = _config(tmp_path, '[broker]\nurl = "mqtt://h:1"\n')
        _add(config, "alice")
        before = read_password_file(tmp_path / "passwd")
        login = load_server_config(config).broker
        made = add_account(
            config,
            "bob",
            password_file=tmp_path / "passwd",
            acl_file=tmp_path / "acl",
        )
        after = read_password_file(tmp_path / "passwd")
        assert not made.exchange_login_created
        assert {k: after[k] for k in before} == before
        loaded = load_server_config(config)
        assert loaded.broker == login
        assert loaded.broker.url == "mqtt://h:1"
        assert set(loaded.accounts) == {"alice", "bob"}

    @pytest.mark.parametrize("name", ["alice", "paperx", "a/b", "+", "#", "%u", ""])
    def test_a_taken_or_unsafe_name_changes_nothing(
        self, tmp_path: Path, name: str
    ) -> None:
        """A duplicate, the exchange's login or a topic wildcard is refused."""
        config = _config(tmp_path)
        _add(config, "alice")
        files = {p: p.read_bytes() for p in tmp_path.iterdir()}
        with pytest.raises(ConfigError):
            _add(config, name)
        assert {p: p.read_bytes() for p in tmp_path.iterdir()} == files

    def test_the_command_prints_the_secrets_once_and_logs_none(
        self,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """The secret and password go to stdout only, never to a log record."""
        config = _config(tmp_path)
        caplog.set_level(logging.DEBUG)
        assert main(["accounts", "add", "carol", "--config", str(config)]) == 0
        out = capsys.readouterr().out
        account = load_server_config(config).accounts["carol"]
        assert account.secret in out
        assert account.secret not in caplog.text
        assert account.mqtt_password_hash not in out
        assert account.secret not in repr(account)
        assert main(["accounts", "add", "carol", "--config", str(config)]) == 2


class TestAcl:
    """The topic rules both brokers apply."""

    @pytest.mark.parametrize(
        ("user", "access", "name", "expected"),
        [
            ("bob", "write", "paperx/v1/cmd/bob", True),
            ("bob", "write", "paperx/v1/cmd/alice", False),
            ("bob", "write", "paperx/v1/cmd/+", False),
            ("bob", "read", "paperx/v1/ack/bob", True),
            ("bob", "read", "paperx/v1/acct/bob", True),
            ("bob", "read", "paperx/v1/ack/alice", False),
            ("bob", "read", "paperx/v1/ack/+", False),
            ("bob", "read", "paperx/v1/#", False),
            ("bob", "read", "paperx/v1/md/BTC-PERP/book", True),
            ("bob", "read", "paperx/v1/md/#", True),
            ("bob", "write", "paperx/v1/md/BTC-PERP/book", False),
            ("bob", "read", "paperx/v1/cmd/bob", False),
            ("paperx", "read", "paperx/v1/cmd/+", True),
            ("paperx", "write", "paperx/v1/ack/bob", True),
            ("paperx", "write", "paperx/v1/cmd/bob", False),
            ("paperx", "read", "paperx/v1/ack/bob", True),  # forced disconnects
            ("paperx", "read", "paperx/v1/#", False),
            (None, "read", "paperx/v1/md/#", False),
            ("a+", "read", "paperx/v1/ack/a+", False),
        ],
    )
    def test_accounts_get_their_own_topics_and_the_public_tree_only(
        self, user: str | None, access: str, name: str, expected: bool
    ) -> None:
        """Each (user, access, topic or filter) is granted exactly as DESIGN says."""
        assert allowed(user, access, name) is expected  # type: ignore[arg-type]

    def test_our_hash_is_mosquittos_format_both_ways(self, tmp_path: Path) -> None:
        """A hash mosquitto_passwd wrote verifies here, and ours has its shape."""
        ours = mosquitto_hash("pw")
        assert mosquitto_verify("pw", ours)
        assert not mosquitto_verify("px", ours)
        assert ours.startswith("$7$101$")
        tool = shutil.which("mosquitto_passwd")
        if tool is None:
            pytest.skip("mosquitto_passwd is not installed")
        store = tmp_path / "passwd"
        subprocess.run([tool, "-c", "-b", str(store), "u", "pw"], check=True)  # noqa: S603
        assert mosquitto_verify("pw", read_password_file(store)["u"])

    def test_names_that_would_widen_the_acl_are_refused(self) -> None:
        """An account name with a topic separator or wildcard is not usable."""
        check_account_name("bot-1.a_b")
        for bad in ("a/b", "a+", "#", "%u", " a", "a" * 65):
            with pytest.raises(ValueError, match="account name"):
                check_account_name(bad)
