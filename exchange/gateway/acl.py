"""The broker's lock: who may publish and read which topics, and their passwords.

One table of rules (DESIGN.md, "The wire") serves both brokers: it renders
Mosquitto's ACL file (`acl_file_text`) and the embedded broker checks it
directly (`allowed`, through `exchange.shell.broker_plugins`). An account
publishes only its own command topic and reads only its own private topics
and the public market data; the exchange's own login reads every command
topic and writes every answer and the market data.

Broker passwords are stored hashed, in Mosquitto's own format (2.0's
``$7$``: PBKDF2-HMAC-SHA512, 101 iterations, a 12-byte salt, base64), so one
hash serves Mosquitto's password file and the embedded broker alike.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from typing import Literal

__all__ = [
    "ACCOUNT_RULES",
    "EXCHANGE_RULES",
    "EXCHANGE_USER",
    "Access",
    "acl_file_text",
    "allowed",
    "check_account_name",
    "mosquitto_hash",
    "mosquitto_verify",
]

Access = Literal["read", "write"]

EXCHANGE_USER = "paperx"
"""The exchange's own MQTT login, unless the server config names another."""

ACCOUNT_RULES: tuple[tuple[Access, str], ...] = (
    ("write", "paperx/v1/cmd/%u"),
    ("read", "paperx/v1/ack/%u"),
    ("read", "paperx/v1/acct/%u"),
    ("read", "paperx/v1/md/#"),
)
"""Every account's rights; ``%u`` is its MQTT username (= the account)."""

EXCHANGE_RULES: tuple[tuple[Access, str], ...] = (
    ("read", "paperx/v1/cmd/+"),
    ("write", "paperx/v1/ack/+"),
    ("write", "paperx/v1/acct/+"),
    ("write", "paperx/v1/md/#"),
    ("read", "paperx/v1/ack/+"),
    ("read", "paperx/v1/acct/+"),
)
"""The exchange's rights.

It reads the private topics it writes only for the forced disconnects of
the stress modes (`exchange.shell.disconnects`): taking a client's session
over, its login must be allowed to read what is queued for that client, or
Mosquitto drops those messages from the session.
"""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_ITERATIONS = 101  # mosquitto_passwd 2.0's
_SALT_BYTES = 12


def check_account_name(name: str) -> None:
    """Refuse a name that cannot be both an MQTT username and a topic level.

    Raises:
        ValueError: not 1-64 of letters, digits, ``_ . -`` (starting with a
            letter or digit); wildcards, ``/`` and ``%`` would widen the ACL.
    """
    if not _NAME.fullmatch(name):
        msg = (
            f"account name {name!r}: use 1-64 letters, digits, '_', '.', '-' "
            "(starting with a letter or digit)"
        )
        raise ValueError(msg)


def acl_file_text(exchange_user: str = EXCHANGE_USER) -> str:
    """Return Mosquitto's ACL file for the rules above (``pattern`` rules)."""
    lines = [
        '# paperx topic ACL (DESIGN.md, "The wire"). %u: the MQTT username.',
        "# Written by `paperx accounts add` (exchange.gateway.acl); edit the rules",
        "# there, not here.",
        "",
        "# The exchange itself: reads every account's commands, writes every reply",
        "# and the public market data; reads the replies too (a forced disconnect",
        "# takes a client's session over and must keep what is queued for it).",
        f"user {exchange_user}",
        *(f"topic {access} {name}" for access, name in EXCHANGE_RULES),
        "",
        "# Every account: publishes only its own command topic, reads only its own",
        "# private topics and the public market data.",
        *(f"pattern {access} {name}" for access, name in ACCOUNT_RULES),
    ]
    return "\n".join(lines) + "\n"


def allowed(
    user: str | None,
    access: Access,
    name: str,
    exchange_user: str = EXCHANGE_USER,
) -> bool:
    """Return True if ``user`` may ``access`` the topic or subscription ``name``.

    A subscription filter is allowed only if every topic it can match is (a
    rule's ``+`` and ``#`` cover the filter's), as Mosquitto checks them. No
    user (anonymous): nothing.
    """
    if not user:
        return False
    if user == exchange_user:
        rules = EXCHANGE_RULES
    else:
        try:
            check_account_name(user)
        except ValueError:
            return False
        rules = ACCOUNT_RULES
    return any(
        kind == access and _covers(rule.replace("%u", user), name)
        for kind, rule in rules
    )


def _covers(rule: str, name: str) -> bool:
    """Return True if the rule's filter matches every topic ``name`` matches."""
    wanted = name.split("/")
    levels = rule.split("/")
    for index, level in enumerate(levels):
        if level == "#":
            return True
        if index >= len(wanted):
            return False
        if level == "+":
            if wanted[index] == "#":
                return False
            continue
        if level != wanted[index]:
            return False
    return len(wanted) == len(levels)


def mosquitto_hash(password: str, salt: bytes | None = None) -> str:
    """Return ``password`` hashed as mosquitto_passwd 2.0 writes it (``$7$``)."""
    salt = salt if salt is not None else secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _ITERATIONS)
    encoded_salt = base64.b64encode(salt).decode()
    return f"$7${_ITERATIONS}${encoded_salt}${base64.b64encode(digest).decode()}"


def mosquitto_verify(password: str, hashed: str) -> bool:
    """Return True if ``password`` matches a ``$7$`` hash (constant time)."""
    parts = hashed.split("$")
    if len(parts) != 5 or parts[:2] != ["", "7"] or not parts[2].isdigit():
        return False
    try:
        salt = base64.b64decode(parts[3], validate=True)
        expected = base64.b64decode(parts[4], validate=True)
    except ValueError:
        return False
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(parts[2]))
    return hmac.compare_digest(digest, expected)
