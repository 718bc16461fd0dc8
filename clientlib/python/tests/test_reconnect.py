"""How long acquire() keeps trying to reach a broker that went away.

Client(reconnect_timeout=SECONDS) sets it; without it,
$MODELPOOL_RECONNECT_TIMEOUT_MS as it is when the Client is created.
"""

import time

import pytest

import modelpool
from conftest import Broker

MiB = 1 << 20


@pytest.fixture
def stoppable_broker(tmp_path):
    (tmp_path / "m.bin").write_bytes(b"\1" * MiB)
    b = Broker(tmp_path, memory="16MiB")
    yield b
    b.stop()


def give_up_seconds(client, broker):
    """Stops the broker; how long the next acquire takes to raise Unavailable."""
    broker.stop()
    start = time.monotonic()
    with pytest.raises(modelpool.Unavailable):
        client.acquire("m.bin")
    return time.monotonic() - start


def test_keyword_overrides_the_environment(stoppable_broker, monkeypatch):
    monkeypatch.setenv("MODELPOOL_RECONNECT_TIMEOUT_MS", "60000")
    with modelpool.Client(socket=stoppable_broker.socket, reconnect_timeout=0.2) as c:
        c.acquire("m.bin").release()
        took = give_up_seconds(c, stoppable_broker)
    assert 0.15 <= took < 10


def test_environment_is_read_when_the_client_is_created(stoppable_broker, monkeypatch):
    monkeypatch.setenv("MODELPOOL_RECONNECT_TIMEOUT_MS", "0")
    with modelpool.Client(socket=stoppable_broker.socket) as c:
        monkeypatch.setenv("MODELPOOL_RECONNECT_TIMEOUT_MS", "60000")  # too late for c
        assert give_up_seconds(c, stoppable_broker) < 10


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf")])
def test_bad_reconnect_timeout_is_a_value_error(stoppable_broker, bad):
    with pytest.raises(ValueError, match="reconnect_timeout"):
        modelpool.Client(socket=stoppable_broker.socket, reconnect_timeout=bad)
