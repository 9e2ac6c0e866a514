"""The embedded broker's lock: amqtt plugins for passwords and the topic ACL.

amqtt loads these by their dotted names (`EmbeddedBroker` configures them)
when accounts have MQTT passwords; they apply the rules Mosquitto gets from
``paperx accounts add`` (`exchange.gateway.acl`): a login needs a known user
and the password of its ``$7$`` hash, and every publish, subscription and
delivery is checked against the ACL. Imported only by amqtt, in the
broker's thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from amqtt.contexts import Action
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin

from exchange.gateway.acl import EXCHANGE_USER, Access, allowed, mosquitto_verify

__all__ = ["AclPlugin", "PasswordPlugin"]

_ACCESS: dict[Any, Access] = {
    Action.PUBLISH: "write",
    Action.SUBSCRIBE: "read",
    Action.RECEIVE: "read",
}


class PasswordPlugin(BaseAuthPlugin):  # type: ignore[misc]  # amqtt is untyped
    """Admits a client only with a known username and its password."""

    @dataclass
    class Config:
        """``users``: MQTT username -> its password's ``$7$`` hash."""

        users: dict[str, str] = field(default_factory=dict)

    async def authenticate(self, *, session: Any) -> bool:  # noqa: ANN401 -- amqtt's Session
        """Return True if the session's username and password match a user."""
        hashed = self.context.config.users.get(session.username or "")
        return hashed is not None and mosquitto_verify(session.password or "", hashed)


class AclPlugin(BaseTopicPlugin):  # type: ignore[misc]  # amqtt is untyped
    """Allows a publish, subscription or delivery only as the ACL grants it."""

    @dataclass
    class Config:
        """``exchange_user``: the exchange's own login."""

        exchange_user: str = EXCHANGE_USER

    async def topic_filtering(
        self,
        *,
        session: Any = None,  # noqa: ANN401 -- amqtt's Session
        topic: str | None = None,
        action: Any = None,  # noqa: ANN401 -- amqtt's Action
    ) -> bool:
        """Return True if the session's user may do ``action`` on ``topic``."""
        access = _ACCESS.get(action)
        if session is None or topic is None or access is None:
            return False
        user = session.username
        return allowed(user, access, topic, self.context.config.exchange_user)
