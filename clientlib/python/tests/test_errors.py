"""Errors are modelpool.Error subclasses carrying the protocol's code."""

import pytest

import modelpool

CODES = {
    "bad_request": modelpool.BadRequest, "unknown_op": modelpool.UnknownOp,
    "invalid_name": modelpool.InvalidName, "not_found": modelpool.NotFound,
    "too_large": modelpool.TooLarge, "pool_full": modelpool.PoolFull,
    "load_failed": modelpool.LoadFailed, "forbidden": modelpool.Forbidden,
    "stale_handle": modelpool.StaleHandle, "shutting_down": modelpool.ShuttingDown,
    "unavailable": modelpool.Unavailable, "protocol_error": modelpool.ProtocolError,
    "internal": modelpool.Internal,
}


def test_one_class_per_code():
    for code, cls in CODES.items():
        assert issubclass(cls, modelpool.Error)
        assert cls.code == code
        assert modelpool.error_class(code) is cls
        e = cls("text")
        assert e.code == code and e.message == "text" and str(e) == f"{code}: text"
    assert modelpool.error_class("no_such_code") is modelpool.Error


def check(excinfo, cls):
    assert type(excinfo.value) is cls
    assert excinfo.value.code == cls.code
    assert excinfo.value.message


def test_not_found(client):
    with pytest.raises(modelpool.Error) as e:
        client.acquire("no/such/model.safetensors")
    check(e, modelpool.NotFound)
    assert "no/such/model.safetensors" in e.value.message


@pytest.mark.parametrize("name", ["", "../outside", "/abs/path", "a//b", "a/./b"])
def test_invalid_name(client, name):
    with pytest.raises(modelpool.InvalidName) as e:
        client.acquire(name)
    check(e, modelpool.InvalidName)


def test_load_failed(client):
    with pytest.raises(modelpool.LoadFailed) as e:
        client.acquire("broken.safetensors")
    check(e, modelpool.LoadFailed)


def test_unknown_tensor_is_not_found(client):
    with client.acquire("org/all.safetensors") as m:
        with pytest.raises(modelpool.NotFound) as e:
            m.tensor("no.such.tensor")
        check(e, modelpool.NotFound)
        with pytest.raises(modelpool.NotFound):
            m.tensor_info("no.such.tensor")


def test_unavailable(tmp_path):
    with pytest.raises(modelpool.Unavailable) as e:
        modelpool.Client(socket=str(tmp_path / "nobody.sock"))
    check(e, modelpool.Unavailable)


def test_stale_handle_after_release(client):
    m = client.acquire("raw.bin")
    m.release()
    with pytest.raises(modelpool.StaleHandle) as e:
        m.bytes()
    check(e, modelpool.StaleHandle)


def test_too_large_and_pool_full(small_broker):
    with modelpool.Client(socket=small_broker.socket) as c:
        with pytest.raises(modelpool.TooLarge) as e:
            c.acquire("huge.bin")
        check(e, modelpool.TooLarge)
        with c.acquire("a.bin"):
            with pytest.raises(modelpool.PoolFull) as e:
                c.acquire("b.bin", wait=0)
            check(e, modelpool.PoolFull)


def test_bad_wait_is_a_value_error(client):
    with pytest.raises(ValueError):
        client.acquire("raw.bin", wait=-1)
