"""Client and Model: every call, dtypes, zero-copy and read-only views."""

import gc

import numpy as np
import pytest

import modelpool
from conftest import ALL_DTYPES, ALL_NAMES, BF16_BITS, _arange
from procinfo import in_segment

ALL = "org/all.safetensors"
GGUF = "org/small.gguf"


def address(arr):
    return arr.__array_interface__["data"][0]


def test_client_properties(client, broker):
    assert client.pool == broker.pool
    assert client.segment_path == broker.segment_path
    assert client.page_size > 0
    assert not client.closed


def test_default_socket_from_environment(broker, monkeypatch):
    monkeypatch.setenv("MODELPOOL_SOCKET", broker.socket)
    with modelpool.Client() as c:
        assert c.pool == broker.pool


def test_closed_client_raises_unavailable(broker):
    c = modelpool.Client(socket=broker.socket)
    m = c.acquire(ALL)
    c.close()
    assert c.closed
    with pytest.raises(modelpool.Unavailable):
        c.acquire(ALL)
    assert m.tensor("t.f32").sum() == ALL_DTYPES["t.f32"].sum()  # the Model outlives its Client
    m.release()


def test_model_attributes(client, models_dir):
    with client.acquire(ALL) as m:
        assert m.name == ALL
        assert m.format == "safetensors"
        assert m.size == (models_dir / ALL).stat().st_size
        assert m.generation >= 1
        assert len(m.checksum) == 16 and int(m.checksum, 16) >= 0
        assert m.handle > 0
        assert isinstance(m.cached, bool)
        assert "open" in repr(m)


def test_bytes_is_a_read_only_memoryview_into_the_segment(client, models_dir):
    with client.acquire(ALL, populate=True) as m:
        mv = m.bytes()
        assert isinstance(mv, memoryview)
        assert mv.readonly
        assert mv == (models_dir / ALL).read_bytes()
        with pytest.raises(TypeError):
            mv[0] = 1
        arr = np.frombuffer(mv, dtype=np.uint8)
        assert in_segment(address(arr), arr.nbytes, client.segment_path)
        del arr
        mv.release()


def test_tensor_names_in_file_order(client):
    with client.acquire(ALL) as m:
        assert m.tensor_names() == ALL_NAMES


@pytest.mark.parametrize("name", list(ALL_DTYPES))
def test_tensor_values_dtype_and_shape(client, name):
    want = ALL_DTYPES[name]
    with client.acquire(ALL) as m:
        arr = m.tensor(name)
        assert arr.dtype == want.dtype
        assert arr.shape == want.shape
        np.testing.assert_array_equal(arr, want)


def test_bf16_is_uint16_bits(client):
    with client.acquire(ALL) as m:
        arr = m.tensor("t.bf16")
        assert arr.dtype == np.uint16 and arr.shape == (2, 3)
        np.testing.assert_array_equal(arr.ravel(), BF16_BITS)
        as_f32 = (arr.astype(np.uint32) << 16).view(np.float32)
        assert as_f32[0, 0] == 1.0 and as_f32[0, 1] == -2.0


def test_arrays_are_read_only_and_point_into_the_segment(client):
    with client.acquire(ALL) as m:
        for name, arr in m.tensors().items():
            assert not arr.flags.writeable, name
            assert not arr.flags.owndata, name
            if arr.nbytes:
                assert in_segment(address(arr), arr.nbytes, client.segment_path), name
        arr = m.tensor("t.f32")
        with pytest.raises(ValueError):
            arr[0, 0] = 1
        with pytest.raises(ValueError):
            arr.setflags(write=True)
        with pytest.raises(ValueError):
            arr[1:].setflags(write=True)
        info = m.tensor_info("t.f32")
        assert address(arr) == address(np.frombuffer(m.bytes(), np.uint8)) + info["offset"]


def test_tensor_info(client):
    with client.acquire(ALL) as m:
        info = m.tensor_info("t.bf16")
        assert info["name"] == "t.bf16"
        assert info["dtype"] == "BF16"
        assert info["shape"] == (2, 3) and info["file_shape"] == (2, 3)
        assert info["numpy_dtype"] == np.uint16
        assert info["nbytes"] == 12
        assert info["file"] == ALL  # a model of one file is its own one file
        raw = np.frombuffer(m.bytes(), np.uint8)[info["offset"]:info["offset"] + 12]
        assert raw.tobytes() == BF16_BITS.tobytes()


def test_a_model_of_one_file_lists_itself(client, models_dir):
    with client.acquire(ALL) as m:
        assert m.files() == [{"name": ALL, "size": m.size, "format": "safetensors",
                              "weights": True}]
        assert bytes(m.file(ALL)) == (models_dir / ALL).read_bytes()
        assert address(np.frombuffer(m.file(ALL), np.uint8)) == \
            address(np.frombuffer(m.bytes(), np.uint8))
        assert m.commit == ""
        with pytest.raises(modelpool.NotFound):
            m.file("config.json")


def test_metadata(client):
    with client.acquire(ALL) as m:
        assert m.metadata == {"format": "pt", "author": "tests"}
        assert '"author"' in m.metadata_json()
    with client.acquire(GGUF) as m:
        assert m.metadata["general.name"] == "small"


def test_gguf_shapes_are_reversed_and_quantised_tensors_are_bytes(client):
    with client.acquire(GGUF) as m:
        assert m.format == "gguf"
        assert m.tensor_names() == ["tok.f32", "tok.f16", "tok.i32", "tok.bf16", "blk.q8"]
        np.testing.assert_array_equal(m.tensor("tok.f32"), _arange(np.float32, (2, 3)))
        np.testing.assert_array_equal(m.tensor("tok.f16"), _arange(np.float16, (4,)))
        np.testing.assert_array_equal(m.tensor("tok.i32"), _arange(np.int32, (2, 2, 2)))
        np.testing.assert_array_equal(m.tensor("tok.bf16"), BF16_BITS)
        q = m.tensor("blk.q8")  # 4 rows of 64 values: 2 Q8_0 blocks of 34 bytes per row
        assert q.dtype == np.uint8 and q.shape == (4, 68)
        info = m.tensor_info("blk.q8")
        assert info["dtype"] == "Q8_0" and info["file_shape"] == (64, 4) and info["nbytes"] == 272
        assert not q.flags.writeable
        assert in_segment(address(q), q.nbytes, client.segment_path)


def test_raw_model_has_bytes_and_no_tensors(client):
    with client.acquire("raw.bin") as m:
        assert m.format == "raw"
        assert m.tensor_names() == []
        assert m.metadata == {}
        assert bytes(m.bytes()[:4]) == b"\x00\x01\x02\x03"
        with pytest.raises(modelpool.NotFound):
            m.tensor("x")


# ---- release semantics -----------------------------------------------------

def test_with_block_releases_at_exit(client, broker):
    with client.acquire(ALL) as m:
        assert broker.refs(ALL) == 1
        assert m.exports == 0
    assert m.closed and not m.held
    assert m.handle == 0
    assert broker.refs(ALL) == 0
    assert "released" in repr(m)
    with pytest.raises(modelpool.StaleHandle) as e:
        m.tensor("t.f32")
    assert e.value.code == "stale_handle"
    for call in (m.bytes, m.tensor_names, m.tensors, m.metadata_json):
        with pytest.raises(modelpool.StaleHandle):
            call()


def test_views_keep_the_model_until_collected(client, broker):
    with client.acquire(ALL) as m:
        arr = m.tensor("t.f32")
        view = arr[1:, ::2]                        # keeps arr (and its base) alive
        mv = m.bytes()
        assert m.exports == 2                      # the bases of arr and mv
    assert m.closed and m.held                     # closed, but the views hold the mapping
    assert broker.refs(ALL) == 1
    np.testing.assert_array_equal(view, ALL_DTYPES["t.f32"][1:, ::2])
    del arr
    assert m.held                                  # `view` still references arr
    del view
    assert m.exports == 1 and broker.refs(ALL) == 1
    mv.release()                                   # the memoryview's export...
    del mv                                         # ...and the memoryview
    assert not m.held and m.exports == 0
    assert broker.refs(ALL) == 0                   # released synchronously by the last view


def test_release_is_idempotent_and_explicit(client, broker):
    m = client.acquire(ALL)
    assert broker.refs(ALL) == 1
    m.release()
    m.release()
    assert broker.refs(ALL) == 0


def test_garbage_collection_releases(client, broker):
    m = client.acquire(ALL)
    arrays = m.tensors()
    assert broker.refs(ALL) == 1
    del m
    gc.collect()
    assert broker.refs(ALL) == 1                   # the arrays hold it
    arrays.clear()
    assert broker.refs(ALL) == 0


def test_each_acquire_is_one_reference(client, broker):
    a, b = client.acquire(ALL), client.acquire(ALL)
    assert broker.refs(ALL) == 2
    assert b.cached
    a.release()
    assert broker.refs(ALL) == 1
    b.release()
    assert broker.refs(ALL) == 0
