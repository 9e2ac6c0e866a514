"""Tests of the gateway's MQTT 3.1.1 client: encodings, and a scripted broker."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.gateway.mqtt_client import (
    ConnectRefused,
    LinkLost,
    MqttClient,
    connect_packet,
    decode_length,
    encode_length,
    publish_packet,
    subscribe_packet,
)

EXAMPLES = int(os.environ.get("PAPERX_PROPERTY_EXAMPLES", "200"))
CONNACK_OK = b"\x20\x02\x00\x00"

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class TestRemainingLength:
    """MQTT's variable-length integer, both ways."""

    @pytest.mark.parametrize(
        ("size", "encoded"),
        [
            (0, b"\x00"),
            (127, b"\x7f"),
            (128, b"\x80\x01"),
            (16_383, b"\xff\x7f"),
            (16_384, b"\x80\x80\x01"),
            (2_097_151, b"\xff\xff\x7f"),
            (2_097_152, b"\x80\x80\x80\x01"),
            (268_435_455, b"\xff\xff\xff\x7f"),
        ],
    )
    def test_encodes_the_specifications_boundary_values(
        self, size: int, encoded: bytes
    ) -> None:
        """Each boundary of the one- to four-byte forms encodes as MQTT lists it."""
        assert encode_length(size) == encoded
        assert decode_length(b"\x30" + encoded, 1) == (size, 1 + len(encoded))

    @settings(max_examples=EXAMPLES)
    @given(st.integers(0, 268_435_455), st.binary(max_size=4))
    def test_decoding_an_encoding_returns_the_size_and_the_end(
        self, size: int, after: bytes
    ) -> None:
        """Any size decodes back to itself, stopping where its encoding ends."""
        encoded = encode_length(size)
        assert decode_length(encoded + after, 0) == (size, len(encoded))

    def test_an_encoding_cut_short_decodes_to_nothing_yet(self) -> None:
        """A length whose last byte has not arrived returns None (read more)."""
        assert decode_length(b"\x80\x80", 0) is None

    def test_a_fifth_length_byte_is_a_protocol_error(self) -> None:
        """Five continuation bytes are not MQTT: the link is lost."""
        with pytest.raises(LinkLost):
            decode_length(b"\x80\x80\x80\x80\x01", 0)

    @pytest.mark.parametrize("size", [-1, 268_435_456])
    def test_sizes_outside_mqtts_range_are_refused(self, size: int) -> None:
        """Negative sizes and sizes over four bytes raise ValueError."""
        with pytest.raises(ValueError, match="remaining length"):
            encode_length(size)


class TestPackets:
    """The bytes of the packets the client sends."""

    def test_connect_carries_login_clean_session_and_keepalive(self) -> None:
        """CONNECT sets the username, password and clean-session flags and keepalive."""
        packet = connect_packet(
            "ex",
            keepalive=30,
            clean_session=True,
            username="u",
            password="pw",  # noqa: S106
        )
        body = b"\x00\x04MQTT\x04\xc2\x00\x1e\x00\x02ex\x00\x01u\x00\x02pw"
        assert packet == b"\x10" + bytes([len(body)]) + body

    def test_a_persistent_anonymous_connect_sets_no_flags(self) -> None:
        """Without a login and with clean_session off, the connect flags are zero."""
        packet = connect_packet(
            "ex", keepalive=0, clean_session=False, username=None, password=None
        )
        assert packet == b"\x10\x0e\x00\x04MQTT\x04\x00\x00\x00\x00\x02ex"

    def test_publish_at_qos_1_carries_its_packet_id(self) -> None:
        """A QoS 1 PUBLISH has flags 0b0010 and the packet id after the topic."""
        assert publish_packet("a/b", b"hi", 7) == b"\x32\x09\x00\x03a/b\x00\x07hi"

    def test_publish_at_qos_0_has_no_packet_id(self) -> None:
        """A QoS 0 PUBLISH is the topic and the payload."""
        assert publish_packet("a/b", b"hi", None) == b"\x30\x07\x00\x03a/bhi"

    def test_a_long_publish_uses_a_two_byte_length(self) -> None:
        """A payload past 127 bytes of remaining length takes two length bytes."""
        packet = publish_packet("t", bytes(200), None)
        assert packet[:3] == b"\x30" + encode_length(203)
        assert len(packet) == 3 + 203

    def test_subscribe_has_flags_0b0010_and_the_requested_qos(self) -> None:
        """SUBSCRIBE is 0x82, the packet id, the filter and the QoS."""
        assert subscribe_packet(3, "c/+", 1) == b"\x82\x08\x00\x03\x00\x03c/+\x01"


@contextlib.asynccontextmanager
async def scripted_broker(script: Script) -> AsyncIterator[int]:
    """Run ``script`` for each connection to a local port; yield the port."""
    scripts: list[asyncio.Task[None]] = []

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                await script(reader, writer)
        finally:
            writer.close()

    def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        scripts.append(asyncio.create_task(run(reader, writer)))

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in scripts:
            task.cancel()
        await asyncio.gather(*scripts, return_exceptions=True)


async def read_packet(reader: asyncio.StreamReader) -> bytes:
    """Return the next whole packet the client sent (short lengths only)."""
    header = await reader.readexactly(2)
    return header + await reader.readexactly(header[1])


async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    """Read CONNECT, answer CONNACK; return the CONNECT."""
    packet = await read_packet(reader)
    writer.write(CONNACK_OK)
    return packet


def ignore(_topic: str, _payload: bytes) -> None:
    """Drop a message."""


class TestAgainstAScriptedBroker:
    """The client's state machine, against a broker that sends exact bytes."""

    async def test_a_refused_login_raises_with_connacks_code(self) -> None:
        """CONNACK code 5 (not authorised) raises ConnectRefused with code 5."""

        async def refuse(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            await read_packet(reader)
            writer.write(b"\x20\x02\x00\x05")
            await writer.drain()
            await reader.read()

        async with scripted_broker(refuse) as port:
            with pytest.raises(ConnectRefused) as refused:
                await MqttClient.connect("127.0.0.1", port, "c", ignore)
        assert refused.value.code == 5

    async def test_nothing_listening_is_a_lost_link(self) -> None:
        """A refused TCP connection raises LinkLost, the reconnect loop's signal."""
        async with scripted_broker(accept) as port:
            pass
        with pytest.raises(LinkLost):
            await MqttClient.connect("127.0.0.1", port, "c", ignore)

    async def test_qos_1_messages_are_acknowledged_after_the_handler_ran(self) -> None:
        """Messages split across reads reach the handler in order, then get PUBACKs."""
        got: list[tuple[str, bytes]] = []
        pubacks: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        async def send_two(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            await accept(reader, writer)
            data = publish_packet("c/a", b"one", 9) + publish_packet(
                "c/b", b"two", None
            )
            writer.write(data[:5])
            await writer.drain()
            await asyncio.sleep(0.01)  # a second read for the rest
            writer.write(data[5:])
            pubacks.set_result(await reader.readexactly(4))
            await reader.read()

        def handle(topic: str, payload: bytes) -> None:
            assert not pubacks.done()
            got.append((topic, payload))

        async with scripted_broker(send_two) as port:
            client = await MqttClient.connect("127.0.0.1", port, "c", handle)
            assert await pubacks == b"\x40\x02\x00\x09"
            await client.close()
        assert got == [("c/a", b"one"), ("c/b", b"two")]

    async def test_a_drop_fails_unconfirmed_publishes_and_signals_link_lost(
        self,
    ) -> None:
        """When the broker goes, PUBACK futures and wait_lost raise LinkLost."""

        async def ack_first_then_hang_up(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            await accept(reader, writer)
            first = await read_packet(reader)
            await read_packet(reader)
            writer.write(b"\x40\x02" + first[-4:-2])  # the id before b"p1"
            await writer.drain()

        async with scripted_broker(ack_first_then_hang_up) as port:
            client = await MqttClient.connect("127.0.0.1", port, "c", ignore)
            first = client.publish("t", b"p1", 1)
            second = client.publish("t", b"p2", 1)
            assert first is not None
            assert second is not None
            with pytest.raises(LinkLost):
                await client.wait_lost()
        assert first.result() is None
        with pytest.raises(LinkLost):
            second.result()
        with pytest.raises(LinkLost):
            client.publish("t", b"p3", 1)
        await client.close()

    async def test_an_unknown_packet_type_ends_the_link(self) -> None:
        """A packet type the client does not speak (QoS 2 PUBREC) is a lost link."""

        async def send_pubrec(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            await accept(reader, writer)
            writer.write(b"\x50\x02\x00\x01")
            await reader.read()

        async with scripted_broker(send_pubrec) as port:
            client = await MqttClient.connect("127.0.0.1", port, "c", ignore)
            with pytest.raises(LinkLost, match="0x50"):
                await client.wait_lost()

    async def test_a_silent_broker_is_lost_after_a_keepalive_period(self) -> None:
        """PINGREQ goes out; with no answer in a whole period, the link is lost."""
        pings: list[bytes] = []

        async def never_answer(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            await accept(reader, writer)
            while packet := await reader.read(2):
                pings.append(packet)

        async with scripted_broker(never_answer) as port:
            client = await MqttClient.connect(
                "127.0.0.1", port, "c", ignore, keepalive=1
            )
            with pytest.raises(LinkLost, match="nothing from the broker"):
                await client.wait_lost()
        assert b"\xc0\x00" in pings

    async def test_a_handler_that_raises_ends_the_link_without_a_puback(self) -> None:
        """A failed handler's message gets no PUBACK; wait_lost raises its error."""
        sent_after: list[bytes] = []

        async def send_one(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            await accept(reader, writer)
            writer.write(publish_packet("c/a", b"x", 4))
            sent_after.append(await reader.read())

        def fail(_topic: str, _payload: bytes) -> None:
            msg = "handler bug"
            raise RuntimeError(msg)

        async with scripted_broker(send_one) as port:
            client = await MqttClient.connect("127.0.0.1", port, "c", fail)
            with pytest.raises(RuntimeError, match="handler bug"):
                await client.wait_lost()
            with pytest.raises(LinkLost):
                client.publish("t", b"late", 1)
            await client.close()
            await asyncio.sleep(0.05)
        assert b"\x40" not in b"".join(sent_after)
