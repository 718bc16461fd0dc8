"""Threads: one Client shared by many threads; the GIL is released while a
call waits for the broker."""

import threading
import time

import modelpool
from conftest import ALL_DTYPES

ALL = "org/all.safetensors"


def test_many_threads_share_one_client(client, broker):
    errors, barrier = [], threading.Barrier(8)
    want = ALL_DTYPES["t.f32"].sum()

    def work():
        try:
            barrier.wait()
            for _ in range(40):
                with client.acquire(ALL) as m:
                    assert m.tensor("t.f32").sum() == want
                    assert len(m.tensor_names()) == len(ALL_DTYPES) + 1
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert broker.refs(ALL) == 0


def test_views_released_from_other_threads(client, broker):
    m = client.acquire(ALL)
    arrays = [m.tensor("t.f32") for _ in range(16)]
    m.release()
    assert broker.refs(ALL) == 1
    threads = [threading.Thread(target=lambda a=a: a.sum()) for a in arrays]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    del threads
    arrays.clear()  # the last one dropped releases, GIL released around the round trip
    assert broker.refs(ALL) == 0


def until(predicate, timeout_s=30):
    """Polls `predicate` (each poll is a broker round trip) until it holds."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"


def test_gil_is_released_while_acquire_waits(small_broker):
    # Thread T waits (in acquire) for room that only the main thread can make.
    # Were the GIL held during the wait, the main thread could not run to
    # release "a.bin", and T's acquire would end in PoolFull after 60 s.
    # Two Clients: one Client's requests are serialized, so a release on the
    # Client that is waiting in acquire would queue behind that acquire.
    with modelpool.Client(socket=small_broker.socket) as holder, \
            modelpool.Client(socket=small_broker.socket) as waiter:
        a = holder.acquire("a.bin")
        result = {}

        def acquire_b():
            try:
                with waiter.acquire("b.bin", wait=60) as b:
                    result["size"] = b.size
            except modelpool.Error as e:
                result["error"] = e

        t = threading.Thread(target=acquire_b)
        t.start()
        until(lambda: small_broker.admin("stats")["waiting_for_room"] == 1)
        a.release()
        t.join()
        assert result == {"size": 10 << 20}
