"""``paperx accounts add``: a new account's credentials, written where they are checked.

One call makes an account's three secrets and stores each where it is
checked, and nowhere else:

* the API key and secret go into the server config's ``[accounts.NAME]``
  table (the exchange checks every signature with the secret itself, so it
  keeps it), with the first deposit;
* the MQTT password goes into Mosquitto's password file **hashed** (its own
  ``$7$`` PBKDF2-SHA512 format, `exchange.gateway.acl.mosquitto_hash`), and
  the same hash into the account's table as ``mqtt_password_hash``, where
  the embedded broker reads it;
* the ACL file is (re)written from `exchange.gateway.acl`'s rules.

The first account also makes the exchange's own broker login (``[broker]``
username and password: the server logs in with it) unless the config has
one. The plain secrets are returned to the caller once, to hand to the bot;
nothing here logs them.

The password file is written here rather than by ``mosquitto_passwd -b``,
which would put the password on a command line (visible to every user in
the process table); Mosquitto 2.0 reads what `mosquitto_hash` writes (a test
logs in with it).
"""

from __future__ import annotations

import os
import secrets
import tomllib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from exchange.errors import ConfigError
from exchange.gateway.acl import (
    EXCHANGE_USER,
    acl_file_text,
    check_account_name,
    mosquitto_hash,
)
from exchange.gateway.auth import ApiCredentials

__all__ = ["NewAccount", "add_account", "read_password_file"]


@dataclass(frozen=True, slots=True)
class NewAccount:
    """What a new account's bot needs: shown once, never logged."""

    name: str
    api_key: str
    secret: str
    mqtt_password: str
    exchange_login_created: bool

    def __repr__(self) -> str:
        """Show the account and key, never the secrets."""
        return f"NewAccount(name={self.name!r}, api_key={self.api_key!r})"


def add_account(
    config: Path,
    name: str,
    *,
    deposit: str = "0",
    password_file: Path,
    acl_file: Path,
) -> NewAccount:
    """Create account ``name``: credentials into ``config``, the broker's files.

    Raises:
        ConfigError: the config is missing or not TOML, the name is not
            usable or already taken, or the deposit is not a number.
    """
    try:
        check_account_name(name)
        amount = Decimal(deposit)
    except (ValueError, InvalidOperation) as exc:
        raise ConfigError(str(exc) or f"deposit {deposit!r}: not a number") from exc
    try:
        text = config.read_text(encoding="utf-8")
        document = tomllib.loads(text)
    except OSError as exc:
        msg = f"{config}: cannot read the server config: {exc.strerror}"
        raise ConfigError(msg) from exc
    except tomllib.TOMLDecodeError as exc:
        msg = f"{config}: {exc}"
        raise ConfigError(msg) from exc
    broker = document.get("broker", {})
    exchange_user = broker.get("username") or EXCHANGE_USER
    if name in document.get("accounts", {}) or name == exchange_user:
        msg = f"{config}: account {name!r} exists already"
        raise ConfigError(msg)
    credentials = ApiCredentials.generate()
    mqtt_password = secrets.token_urlsafe(24)
    hashed = {name: mosquitto_hash(mqtt_password)}
    login_created = not broker.get("password")
    if login_created:
        exchange_password = secrets.token_urlsafe(24)
        hashed[exchange_user] = mosquitto_hash(exchange_password)
        text = _with_exchange_login(text, exchange_user, exchange_password)
    text = (
        text.rstrip("\n")
        + "\n\n"
        + _account_table(name, credentials, amount, hashed[name])
    )
    users = read_password_file(password_file) | hashed
    _replace(password_file, "".join(f"{u}:{h}\n" for u, h in users.items()))
    _replace(acl_file, acl_file_text(exchange_user))
    _replace(config, text)  # last: a failure above leaves the config as it was
    return NewAccount(
        name, credentials.api_key, credentials.secret, mqtt_password, login_created
    )


def read_password_file(path: Path) -> dict[str, str]:
    """Return a Mosquitto password file's ``user -> hash`` ({} if it is absent)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return {}
    entries = (line.partition(":") for line in lines if ":" in line)
    return {user: hashed for user, _, hashed in entries}


def _account_table(
    name: str, credentials: ApiCredentials, deposit: Decimal, mqtt_hash: str
) -> str:
    """Return the TOML table of one account."""
    return (
        f'[accounts."{name}"]\n'
        f'api_key = "{credentials.api_key}"\n'
        f'secret = "{credentials.secret}"\n'
        f'deposit = "{deposit}"\n'
        f'mqtt_password_hash = "{mqtt_hash}"\n'
    )


def _with_exchange_login(text: str, user: str, password: str) -> str:
    """Return the config with the exchange's broker login in its ``[broker]``."""
    login = f'username = "{user}"\npassword = "{password}"\n'
    lines = text.splitlines(keepends=True)
    for start, line in enumerate(lines):
        if line.strip() == "[broker]":
            end = next(
                (i for i in range(start + 1, len(lines)) if lines[i].startswith("[")),
                len(lines),
            )
            kept = [
                line
                for line in lines[start + 1 : end]
                if line.split("=")[0].strip() not in {"username", "password"}
            ]
            return "".join([*lines[: start + 1], login, *kept, *lines[end:]])
    return text.rstrip("\n") + "\n\n[broker]\n" + login


def _replace(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all, keeping its permissions.

    A new file is 0644, as mosquitto_passwd leaves it: the broker may run as
    another user (the container's), and a hash of a random 32-character
    password gives nothing away.
    """
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    temporary.replace(path)
