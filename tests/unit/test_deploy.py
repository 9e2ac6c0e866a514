"""Tests of the deployment files: the Mosquitto config and its topic ACL."""

from __future__ import annotations

from pathlib import Path

from exchange.gateway.acl import acl_file_text
from exchange.gateway.wire import topic

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"


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
        }

    def test_the_acl_file_is_what_accounts_add_writes(self) -> None:
        """deploy/'s ACL is the one generated from the rules both brokers apply."""
        assert (DEPLOY / "acl").read_text(encoding="utf-8") == acl_file_text()
