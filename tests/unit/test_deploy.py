"""Tests of the deployment files: compose, image, unit, Mosquitto config and ACL."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from exchange.gateway.acl import acl_file_text
from exchange.gateway.wire import topic
from exchange.shell.accounts import add_account
from exchange.shell.server_config import load_server_config

ROOT = Path(__file__).resolve().parents[2] / "deploy"
DEPLOY = ROOT / "mosquitto"


def _directives(name: str) -> list[list[str]]:
    """Return the file's non-comment lines, split into words."""
    lines = (DEPLOY / name).read_text(encoding="utf-8").splitlines()
    return [line.split() for line in lines if line.strip() and not line.startswith("#")]


class TestMosquittoDeploy:
    """deploy/mosquitto: Nagle off, passwords required, DESIGN's topics exactly."""

    def test_the_config_sets_tcp_nodelay_and_requires_passwords_and_the_acl(
        self,
    ) -> None:
        """The broker config turns Nagle off and needs a login and the ACL."""
        settings = {d[0]: d[1:] for d in _directives("mosquitto.conf")}
        assert settings["set_tcp_nodelay"] == ["true"]
        assert settings["allow_anonymous"] == ["false"]
        assert settings["acl_file"] == ["/mosquitto/config/acl"]

    def test_the_acl_grants_exactly_the_topics_of_the_design(self) -> None:
        """Accounts write their cmd topic and read their private topics and md."""
        rules = _directives("acl")
        account = "%u"
        patterns = {tuple(r[1:]) for r in rules if r[0] == "pattern"}
        assert patterns == {
            ("write", f"paperx/v1/cmd/{account}"),
            ("read", topic("ack", account)),
            ("read", topic("acct", account)),
            ("read", "paperx/v1/md/#"),
        }
        exchange_rules = {tuple(r[1:]) for r in rules if r[0] == "topic"}
        assert [r for r in rules if r[0] == "user"] == [["user", "paperx"]]
        assert exchange_rules == {
            ("read", "paperx/v1/cmd/+"),
            ("write", topic("ack", "+")),
            ("write", topic("acct", "+")),
            ("write", "paperx/v1/md/#"),
            # a forced disconnect takes a session over and keeps its queue
            ("read", topic("ack", "+")),
            ("read", topic("acct", "+")),
        }

    def test_the_acl_file_is_what_accounts_add_writes(self) -> None:
        """deploy/'s ACL is the one generated from the rules both brokers apply."""
        assert (DEPLOY / "acl").read_text(encoding="utf-8") == acl_file_text()


def _compose() -> dict[str, Any]:
    """Return deploy/docker-compose.yml, parsed."""
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    assert isinstance(document, dict)
    return document


class TestComposeAndUnits:
    """deploy/: the compose file, the image, the systemd unit and the config."""

    def test_compose_runs_mosquitto_locked_nats_with_jetstream_and_paperx(
        self,
    ) -> None:
        """Mosquitto gets deploy/mosquitto, NATS -js, paperx its config and journal."""
        services = _compose()["services"]
        assert set(services) == {"mosquitto", "nats", "paperx"}
        mosquitto = services["mosquitto"]
        assert "./mosquitto:/mosquitto/config:ro" in mosquitto["volumes"]
        assert "-js" in services["nats"]["command"]
        paperx = services["paperx"]
        build = paperx["build"]
        assert (ROOT / build["context"] / build["dockerfile"]).is_file()
        assert paperx["command"] == ["serve", "--config", "/etc/paperx/paperx.toml"]
        assert "./paperx:/etc/paperx:ro" in paperx["volumes"]
        assert any(v.endswith(":/var/lib/paperx") for v in paperx["volumes"])
        assert set(paperx["depends_on"]) == {"mosquitto", "nats"}
        assert paperx["stop_signal"] == "SIGTERM"

    def test_the_image_runs_paperx_serve_unprivileged(self) -> None:
        """The Dockerfile installs the package and runs ``paperx serve`` as a user."""
        lines = (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
        directives = {line.split()[0]: line for line in lines if line[:1].isupper()}
        assert directives["USER"] == "USER paperx"
        assert directives["ENTRYPOINT"] == 'ENTRYPOINT ["paperx"]'
        assert '"serve"' in directives["CMD"]

    def test_the_systemd_unit_serves_and_stops_with_sigterm(self) -> None:
        """The unit starts ``paperx serve --config`` and stops it gracefully."""
        text = (ROOT / "paperx.service").read_text(encoding="utf-8")
        settings = dict(
            line.split("=", 1) for line in text.splitlines() if "=" in line[:40]
        )
        assert settings["ExecStart"].endswith(
            "paperx serve --config /etc/paperx/paperx.toml"
        )
        assert settings["KillSignal"] == "SIGTERM"
        assert "/var/lib/paperx" in settings["ReadWritePaths"]

    def test_the_example_config_serves_once_an_account_is_added(
        self, tmp_path: Path
    ) -> None:
        """Copied and given an account, the example loads, on the compose broker."""
        config = tmp_path / "paperx.toml"
        shutil.copy(ROOT / "paperx" / "paperx.example.toml", config)
        add_account(
            config, "bot1", password_file=tmp_path / "pw", acl_file=tmp_path / "acl"
        )
        loaded = load_server_config(config)
        assert loaded.broker.url == "mqtt://mosquitto:1883"
        assert loaded.broker.username == "paperx"
        assert loaded.journal == Path("/var/lib/paperx/journal")
        assert {m.symbol for m in loaded.markets} == {"BTC-PERP", "ETH-PERP"}
