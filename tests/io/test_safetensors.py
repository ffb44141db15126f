"""save/load in the safetensors format: exact round trips, the safetensors package reads our
files (and we read its), atomic writes, refusal of damaged files."""

from __future__ import annotations

import json
import os
import struct

import numpy as np
import pytest

import tinygrad_mlp as tm
from tinygrad_mlp import nn, serialization
from tinygrad_mlp.serialization import load, save

STATE = {
    "fc1.weight": np.arange(12, dtype=np.float32).reshape(3, 4) / 7,
    "fc1.bias": np.array([1e-30, -0.0, np.inf], dtype=np.float64),
    "steps": np.array([1, -2, 2**62], dtype=np.int64),
    "mask": np.array([[True, False], [False, True]]),
    "scalar": np.array(3.5, dtype=np.float32),
    "empty": np.zeros((0, 3), dtype=np.float16),
    "nan": np.array([np.nan, 1.0], dtype=np.float32),
    "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
    "big_endian": np.arange(4, dtype=">i4"),
    "uint8": np.array([0, 255], dtype=np.uint8),
    "int8": np.array([-128, 127], dtype=np.int8),
    "u16": np.array([65535], dtype=np.uint16),
    "i16": np.array([-3], dtype=np.int16),
    "u32": np.array([7], dtype=np.uint32),
    "i32": np.array([-7], dtype=np.int32),
    "u64": np.array([2**64 - 1], dtype=np.uint64),
}


def assert_same(got: dict, want: dict) -> None:
    assert type(got) is dict
    assert list(got) == list(want)
    for key, value in want.items():
        value = np.asarray(value)
        assert isinstance(got[key], np.ndarray), key
        assert got[key].dtype == value.dtype.newbyteorder("="), key
        assert got[key].shape == value.shape, key
        np.testing.assert_array_equal(got[key], value)


def test_round_trip_is_exact(tmp_path):
    path = tmp_path / "model.safetensors"
    save(STATE, path)
    assert_same(load(path), STATE)
    assert os.listdir(tmp_path) == ["model.safetensors"]


def test_layout_is_the_documented_one(tmp_path):
    path = tmp_path / "m.safetensors"
    save(
        {"b": np.ones(3, np.float32), "a": np.arange(2, dtype=np.int64)}, path, metadata={"k": "v"}
    )
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    assert (8 + n) % 8 == 0  # the data starts aligned
    header = json.loads(raw[8 : 8 + n])
    assert header["__metadata__"] == {"k": "v"}
    assert header["b"] == {"dtype": "F32", "shape": [3], "data_offsets": [16, 28]}
    assert header["a"] == {"dtype": "I64", "shape": [2], "data_offsets": [0, 16]}
    data = raw[8 + n :]
    assert len(data) == 28
    assert np.frombuffer(data[:16], "<i8").tolist() == [0, 1]
    assert np.frombuffer(data[16:], "<f4").tolist() == [1, 1, 1]


def test_model_state_dict_round_trip(tmp_path):
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    path = tmp_path / "model.safetensors"
    save(model.state_dict(), path)
    other = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    other.load_state_dict(load(path))
    x = tm.Tensor(np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32))
    np.testing.assert_array_equal(model(x).numpy(), other(x).numpy())


def test_tensors_save_their_values(tmp_path):
    t = tm.Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    save({"w": t, "d": t.detach()}, tmp_path / "t.safetensors")
    got = load(tmp_path / "t.safetensors")
    assert got["w"].dtype == np.float32
    np.testing.assert_array_equal(got["w"], [[1, 2], [3, 4]])
    np.testing.assert_array_equal(got["d"], got["w"])


def test_format_keyword_overrides_the_suffix(tmp_path):
    path = tmp_path / "weights.bin"
    save({"w": np.ones(2)}, path, format="safetensors")
    assert path.read_bytes()[8:9] == b"{"
    assert_same(load(path, format="safetensors"), {"w": np.ones(2)})
    with pytest.raises(ValueError, match="weights.bin"):
        load(path)  # read as .npz by default: no zip header
    other = tmp_path / "x.safetensors"
    save({"w": np.ones(2)}, other, format="npz")
    assert other.read_bytes()[:4] == b"PK\x03\x04"
    assert_same(load(other, format="npz"), {"w": np.ones(2)})
    with pytest.raises(ValueError, match="format must be one of"):
        save({"w": np.ones(2)}, path, format="pickle")
    with pytest.raises(ValueError, match="format must be one of"):
        load(path, format="pickle")


def test_suffix_is_case_insensitive(tmp_path):
    save({"w": np.ones(2)}, tmp_path / "M.SafeTensors")
    assert_same(load(tmp_path / "M.SafeTensors"), {"w": np.ones(2)})


def test_empty_dict_and_unusual_keys(tmp_path):
    save({}, tmp_path / "e.safetensors")
    assert load(tmp_path / "e.safetensors") == {}
    state = {"日本": np.zeros(1), "": np.arange(2), 'a"b\\c': np.ones(3), "x\ny": np.ones(1)}
    save(state, tmp_path / "k.safetensors")
    assert_same(load(tmp_path / "k.safetensors"), state)


def test_loaded_arrays_are_writable(tmp_path):
    save({"w": np.ones(3, np.float32)}, tmp_path / "w.safetensors")
    got = load(tmp_path / "w.safetensors")["w"]
    got += 1
    np.testing.assert_array_equal(got, [2, 2, 2])


def test_metadata_needs_safetensors(tmp_path):
    with pytest.raises(ValueError, match="metadata"):
        save({"w": np.ones(1)}, tmp_path / "m.npz", metadata={"a": "b"})
    with pytest.raises(TypeError, match="metadata"):
        save({"w": np.ones(1)}, tmp_path / "m.safetensors", metadata={"a": 1})


# ---------------------------------------------------------------- the safetensors package


def test_safetensors_package_reads_our_file(tmp_path):
    st_numpy = pytest.importorskip("safetensors.numpy")
    from safetensors import safe_open

    path = tmp_path / "model.safetensors"
    save(STATE, path, metadata={"framework": "tinygrad_mlp"})
    got = st_numpy.load_file(str(path))
    assert sorted(got) == sorted(STATE)
    for key, value in STATE.items():
        assert got[key].dtype == value.dtype.newbyteorder("=")
        np.testing.assert_array_equal(got[key], value)
    with safe_open(str(path), framework="numpy") as f:
        assert f.metadata() == {"framework": "tinygrad_mlp"}


def test_safetensors_torch_reads_our_file(tmp_path):
    pytest.importorskip("safetensors")
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2))
    path = tmp_path / "model.safetensors"
    save(model.state_dict(), path)
    torch_model = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    torch_model.load_state_dict(load_file(str(path)))
    x = np.random.default_rng(1).normal(size=(4, 3)).astype(np.float32)
    want = torch_model(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(model(tm.Tensor(x)).numpy(), want, rtol=1e-6, atol=1e-6)


def test_we_read_the_safetensors_package_file(tmp_path):
    st_numpy = pytest.importorskip("safetensors.numpy")
    state = {k: v for k, v in STATE.items() if k not in ("fortran", "big_endian")}
    path = tmp_path / "theirs.safetensors"
    st_numpy.save_file(state, str(path), metadata={"a": "b"})
    assert_same(load(path), {k: state[k] for k in load(path)})
    assert sorted(load(path)) == sorted(state)


# ---------------------------------------------------------------- refusals on save


@pytest.mark.parametrize(
    ("obj", "error", "message"),
    [
        ({"w": {"nested": np.ones(1)}}, TypeError, r"obj\['w'\].*dict is not a tensor"),
        ({"w": [np.ones(1)]}, TypeError, r"obj\['w'\].*list"),
        ({"w": 1.5}, TypeError, r"obj\['w'\].*float"),
        ({"w": np.ones(2, dtype=complex)}, TypeError, r"obj\['w'\].*complex128"),
        ({"w": np.array([None], dtype=object)}, TypeError, r"obj\['w'\].*object"),
        ({1: np.ones(1)}, TypeError, "keys must be str"),
        ({"__metadata__": np.ones(1)}, ValueError, "reserved"),
        ([np.ones(1)], TypeError, "flat dict"),
    ],
)
def test_refused_objects_leave_the_old_file(tmp_path, obj, error, message):
    path = tmp_path / "model.safetensors"
    save({"w": np.arange(5.0)}, path)
    before = path.read_bytes()
    with pytest.raises(error, match=message):
        save(obj, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.safetensors"]


@pytest.mark.parametrize("stage", ["fsync", "replace"])
def test_failure_while_writing_removes_temp_file(tmp_path, monkeypatch, stage):
    path = tmp_path / "model.safetensors"
    save({"w": np.arange(5.0)}, path)
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(serialization.os, stage, fail)
    with pytest.raises(OSError, match="model.safetensors"):
        save({"w": np.zeros(100)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.safetensors"]


def test_overwrite_keeps_file_mode(tmp_path):
    path = tmp_path / "m.safetensors"
    save({"w": np.ones(1)}, path)
    path.chmod(0o640)
    save({"w": np.zeros(1)}, path)
    assert (path.stat().st_mode & 0o777) == 0o640


# ---------------------------------------------------------------- refusals on load


def write_raw(path, header, data: bytes, length: int | None = None) -> None:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    n = len(text) if length is None else length
    path.write_bytes(struct.pack("<Q", n) + text + data)


F32x2 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.safetensors"):
        load(tmp_path / "nothere.safetensors")
    folder = tmp_path / "d.safetensors"
    folder.mkdir()
    with pytest.raises(ValueError, match="directory"):
        load(folder)


@pytest.mark.parametrize("keep", [0, 3, 8, 12, 0.5, 0.9, -1])
def test_truncated_file(tmp_path, keep):
    path = tmp_path / "model.safetensors"
    save({"w": np.arange(100.0), "b": np.ones(10)}, path)
    data = path.read_bytes()
    cut = keep if isinstance(keep, int) and keep >= 0 else int(len(data) * keep) % len(data)
    path.write_bytes(data[:cut])
    with pytest.raises(ValueError, match=r"cannot load .*model\.safetensors"):
        load(path)


@pytest.mark.parametrize(
    ("header", "data", "length", "message"),
    [
        ({"w": F32x2}, bytes(8), 10**12, "bad header length"),
        ({"w": F32x2}, bytes(8), 2**64 - 1, "bad header length"),
        (b"{not json", bytes(8), None, "not valid JSON"),
        (b"\xff\xfe{}", b"", None, "not valid JSON"),
        (b"[1, 2]", b"", None, "not a JSON object"),
        ({"w": {**F32x2, "data_offsets": [0, 16]}}, bytes(8), None, "outside"),
        ({"w": {**F32x2, "data_offsets": [-4, 8]}}, bytes(8), None, "outside"),
        ({"w": {**F32x2, "data_offsets": [8, 0]}}, bytes(8), None, "outside"),
        ({"w": {**F32x2, "data_offsets": [0, 4]}}, bytes(8), None, "needs 8 bytes"),
        ({"w": {**F32x2, "data_offsets": [0]}}, bytes(8), None, "bad data_offsets"),
        ({"w": {**F32x2, "data_offsets": [0.0, 8]}}, bytes(8), None, "bad data_offsets"),
        ({"w": {**F32x2, "shape": [-2]}}, bytes(8), None, "bad shape"),
        ({"w": {**F32x2, "shape": "2"}}, bytes(8), None, "bad shape"),
        ({"w": {**F32x2, "dtype": "Q7"}}, bytes(8), None, "unknown or unsupported dtype 'Q7'"),
        ({"w": {**F32x2, "dtype": "BF16", "shape": [4]}}, bytes(8), None, "'BF16'"),
        ({"w": {**F32x2, "extra": 1}}, bytes(8), None, "exactly dtype, shape"),
        ({"w": [1, 2]}, bytes(8), None, "exactly dtype, shape"),
        ({"w": F32x2, "v": F32x2}, bytes(8), None, "overlaps"),
        (
            {"w": F32x2, "v": {**F32x2, "data_offsets": [12, 20]}},
            bytes(20),
            None,
            "leaves a gap",
        ),
        ({"w": {**F32x2, "data_offsets": [4, 12]}}, bytes(12), None, "leaves a gap"),
        ({"w": F32x2}, bytes(12), None, "4 bytes after the last"),
        ({"__metadata__": {"a": 1}, "w": F32x2}, bytes(8), None, "__metadata__"),
        ({"__metadata__": [1], "w": F32x2}, bytes(8), None, "__metadata__"),
    ],
)
def test_damaged_header_is_refused(tmp_path, header, data, length, message):
    path = tmp_path / "bad.safetensors"
    write_raw(path, header, data, length)
    with pytest.raises(ValueError, match=r"cannot load .*bad\.safetensors") as info:
        load(path)
    assert message in str(info.value)


def test_deeply_nested_header_is_refused(tmp_path):
    path = tmp_path / "deep.safetensors"
    write_raw(path, b"[" * 100000 + b"]" * 100000, b"")
    with pytest.raises(ValueError, match="deep.safetensors"):
        load(path)


def test_hand_written_file_with_padding_loads(tmp_path):
    path = tmp_path / "ok.safetensors"
    write_raw(path, json.dumps({"w": F32x2}).encode() + b"   ", np.ones(2, "<f4").tobytes())
    assert_same(load(path), {"w": np.ones(2, np.float32)})


@pytest.mark.cuda
def test_cupy_arrays_are_saved_from_the_host(tmp_path):
    from tinygrad_mlp import backend

    if not backend.cupy_available():
        pytest.skip("needs CuPy and a GPU")
    cp = backend.get_array_module("cuda")
    save({"w": cp.arange(4, dtype=cp.float32)}, tmp_path / "g.safetensors")
    got = load(tmp_path / "g.safetensors")["w"]
    assert isinstance(got, np.ndarray) and got.dtype == np.float32
    np.testing.assert_array_equal(got, np.arange(4, dtype=np.float32))
