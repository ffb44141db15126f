"""save/load: exact round trips, optimizer state, refusal of damaged or pickle-carrying files.

save/load in the safetensors format: exact round trips, the safetensors package reads our
files (and we read its), atomic writes, refusal of damaged files."""

from __future__ import annotations

import io
import json
import os
import pathlib
import struct
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_mlp as tm
from tinygrad_mlp import nn, optim, serialization
from tinygrad_mlp.serialization import load, save


class _Plain:
    def __init__(self, data):
        self.data = data
        self.grad = None
        self.requires_grad = True


def make_tensor(values, dtype=np.float32):
    array = np.array(values, dtype=dtype)
    tensor_cls = getattr(tm, "Tensor", None)
    return _Plain(array) if tensor_cls is None else tensor_cls(array, requires_grad=True)


def assert_same_arrays(got: dict, want: dict) -> None:
    assert list(got) == list(want)
    for key in want:
        assert isinstance(got[key], np.ndarray)
        assert got[key].dtype == want[key].dtype, key
        assert got[key].shape == want[key].shape, key
        np.testing.assert_array_equal(got[key], want[key])


def test_state_dict_round_trip_is_exact(tmp_path):
    state = {
        "fc1.weight": np.arange(12, dtype=np.float32).reshape(3, 4) / 7,
        "fc1.bias": np.array([1e-30, -0.0, np.inf], dtype=np.float64),
        "steps": np.array([1, -2, 2**62], dtype=np.int64),
        "mask": np.array([[True, False], [False, True]]),
        "scalar": np.array(3.5, dtype=np.float32),
        "count": np.array(7),
        "empty": np.zeros((0, 3), dtype=np.float16),
        "nan": np.array([np.nan, 1.0], dtype=np.float32),
        "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        "uint8": np.array([0, 255], dtype=np.uint8),
    }
    save(state, tmp_path / "model.npz")
    got = load(tmp_path / "model.npz")
    assert type(got) is dict
    assert_same_arrays(got, state)


def test_order_of_keys_is_kept(tmp_path):
    state = {name: np.array([i]) for i, name in enumerate(["z", "a", "m", "b", "0"])}
    save(state, tmp_path / "x.npz")
    assert list(load(tmp_path / "x.npz")) == ["z", "a", "m", "b", "0"]


@settings(max_examples=40, deadline=None)
@given(
    arrays=st.dictionaries(
        st.text(min_size=1, max_size=8),
        hnp.arrays(
            dtype=st.sampled_from([np.float32, np.float64, np.int64, np.int8, np.bool_]),
            shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
        ),
        max_size=5,
    )
)
def test_any_dict_of_arrays_round_trips(tmp_path_factory, arrays):
    path = tmp_path_factory.mktemp("h") / "state.npz"
    save(arrays, path)
    got = load(path)
    assert list(got) == list(arrays)
    for key, want in arrays.items():
        assert got[key].dtype == want.dtype and got[key].shape == want.shape
        np.testing.assert_array_equal(got[key], want)


def test_tensors_save_their_data(tmp_path):
    t = make_tensor([[1.0, 2.0], [3.0, 4.0]])
    save({"w": t}, tmp_path / "t.npz")
    got = load(tmp_path / "t.npz")["w"]
    assert isinstance(got, np.ndarray) and got.dtype == np.float32
    np.testing.assert_array_equal(got, t.data)


def test_nested_structures_round_trip(tmp_path):
    obj = {
        "state": {0: {"step": 3, "exp_avg": np.ones(2)}, 5: {}},
        "param_groups": [
            {"lr": 0.1, "betas": (0.9, 0.999), "amsgrad": False, "name": "héllo", "x": None}
        ],
        "floats": [float("inf"), -0.0, 1e-320, 0.1],
        "big": 2**80,
        "np_scalar": np.float32(1.25),
        "np_int": np.int16(-3),
    }
    save(obj, tmp_path / "o.npz")
    got = load(tmp_path / "o.npz")
    assert list(got) == list(obj)
    assert list(got["state"]) == [0, 5]
    assert got["state"][0]["step"] == 3 and type(got["state"][0]["step"]) is int
    np.testing.assert_array_equal(got["state"][0]["exp_avg"], np.ones(2))
    assert got["state"][5] == {}
    assert got["param_groups"] == obj["param_groups"]
    assert type(got["param_groups"][0]["betas"]) is tuple
    assert type(got["param_groups"][0]["amsgrad"]) is bool
    assert got["floats"] == obj["floats"] and str(got["floats"][1]) == "-0.0"
    assert got["big"] == 2**80
    assert got["np_scalar"] == np.float32(1.25) and got["np_scalar"].dtype == np.float32
    assert got["np_int"].dtype == np.int16


def test_optimizer_state_dict_round_trips(tmp_path):
    params = [make_tensor(np.ones((2, 3))), make_tensor(np.ones(3))]
    opt = optim.Adam(params, lr=0.01, amsgrad=True)
    for p in params:
        p.grad = tm.Tensor(np.full(p.shape, 0.5, dtype=np.float32))
    opt.step()
    sd = opt.state_dict()
    save(sd, tmp_path / "opt.npz")
    got = load(tmp_path / "opt.npz")
    assert got["param_groups"] == [
        {**sd["param_groups"][0], "betas": tuple(sd["param_groups"][0]["betas"])}
    ]
    for index, entry in sd["state"].items():
        assert list(got["state"][index]) == list(entry)
        for name, value in entry.items():
            np.testing.assert_array_equal(got["state"][index][name], value)


def test_accepts_str_and_pathlike_and_keeps_the_name(tmp_path):
    state = {"a": np.arange(3)}
    save(state, str(tmp_path / "plain"))  # no suffix: must not become 'plain.npz'
    assert (tmp_path / "plain").exists() and not (tmp_path / "plain.npz").exists()
    assert_same_arrays(load(str(tmp_path / "plain")), state)
    save(state, pathlib.PurePath(tmp_path / "weights.bin"))
    assert_same_arrays(load(tmp_path / "weights.bin"), state)
    assert sorted(os.listdir(tmp_path)) == ["plain", "weights.bin"]


def test_plain_npz_loads_as_dict(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, x=np.arange(4), y=np.eye(2))
    got = load(path)
    assert_same_arrays(got, {"x": np.arange(4), "y": np.eye(2)})


def test_file_is_a_readable_npz_without_pickle(tmp_path):
    save({"w": np.ones(3)}, tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as archive:
        for name in archive.files:
            archive[name]  # every member loads with pickle disabled


# ---------------------------------------------------------------- refusals


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.npz"):
        load(tmp_path / "nothere.npz")


def test_garbage_file(tmp_path):
    path = tmp_path / "garbage.npz"
    path.write_bytes(b"this is not a zip file at all" * 10)
    with pytest.raises(ValueError, match="garbage.npz"):
        load(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.npz"):
        load(path)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.99])
def test_truncated_file(tmp_path, keep):
    path = tmp_path / "model.npz"
    save({"w": np.arange(1000.0), "b": np.ones(10)}, path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ValueError, match="model.npz"):
        load(path)


def test_corrupted_member_bytes(tmp_path):
    path = tmp_path / "model.npz"
    save({"w": np.arange(1000.0)}, path)
    data = bytearray(path.read_bytes())
    data[200] ^= 0xFF  # inside the array's bytes: the zip CRC no longer matches
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="model.npz"):
        load(path)


def test_raw_npy_file_is_refused(tmp_path):
    path = tmp_path / "a.npy"
    np.save(path, np.arange(3))
    with pytest.raises(ValueError, match="a.npy"):
        load(path)


def test_directory_is_refused(tmp_path):
    with pytest.raises(ValueError, match="directory"):
        load(tmp_path)


class _Trap:
    """Unpickling this object creates a marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_carrying_file_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    trap = np.empty(1, dtype=object)
    trap[0] = _Trap(str(marker))
    np.savez(path, weight=trap, bias=np.ones(2))
    with pytest.raises(ValueError, match=r"evil\.npz.*'weight'.*pickle"):
        load(path)
    assert not marker.exists()


def test_pickle_disguised_as_structure_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    trap = np.empty(1, dtype=object)
    trap[0] = _Trap(str(marker))
    np.savez(path, a0=np.ones(2), **{serialization._STRUCTURE_KEY: trap})
    with pytest.raises(ValueError, match="evil.npz"):
        load(path)
    assert not marker.exists()


def test_non_npy_member_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "odd.npz"
    import pickle

    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("payload.pkl", pickle.dumps(_Trap(str(marker))))
    with pytest.raises(ValueError, match="odd.npz"):
        load(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "structure",
    [
        b"not json",
        b'{"format": "other", "version": 1, "root": null}',
        b'{"format": "tinygrad_mlp", "version": 99, "root": null}',
        b'{"format": "tinygrad_mlp", "version": 1, "root": {"array": "a7"}}',
        b'{"format": "tinygrad_mlp", "version": 1, "root": {"dict": [[true, 1]]}}',
        b'{"format": "tinygrad_mlp", "version": 1, "root": {"eval": "1"}}',
        b'{"format": "tinygrad_mlp", "version": 1}',
        b"[" * 100000 + b"]" * 100000,
    ],
)
def test_bad_structure_is_refused(tmp_path, structure):
    path = tmp_path / "bad.npz"
    buf = io.BytesIO()
    np.savez(
        buf, a0=np.ones(2), **{serialization._STRUCTURE_KEY: np.frombuffer(structure, np.uint8)}
    )
    path.write_bytes(buf.getvalue())
    with pytest.raises(ValueError, match="bad.npz"):
        load(path)


@pytest.mark.parametrize(
    ("obj", "error", "message"),
    [
        ({"w": object()}, TypeError, r"obj\['w'\].*object is not an array"),
        ({"w": np.array([1, "a", None], dtype=object)}, ValueError, r"obj\['w'\].*dtype object"),
        ({"w": {1.5: np.ones(1)}}, TypeError, "dict keys must be str or int"),
        ({"w": [1, {2, 3}]}, TypeError, r"obj\['w'\]\[1\].*set"),
    ],
)
def test_failed_save_leaves_old_file_byte_identical(tmp_path, obj, error, message):
    path = tmp_path / "model.npz"
    save({"w": np.arange(5.0)}, path)
    before = path.read_bytes()
    with pytest.raises(error, match=message):
        save(obj, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]


@pytest.mark.parametrize("stage", ["fsync", "replace"])
def test_failure_while_writing_removes_temp_file(tmp_path, monkeypatch, stage):
    path = tmp_path / "model.npz"
    save({"w": np.arange(5.0)}, path)
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(serialization.os, stage, fail)
    with pytest.raises(OSError, match="model.npz"):
        save({"w": np.zeros(100)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_unwritable_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "model.npz"
    save({"w": np.arange(5.0)}, path)
    before = path.read_bytes()
    folder.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match="model.npz"):
            save({"w": np.zeros(3)}, path)
    finally:
        folder.chmod(0o700)
    assert path.read_bytes() == before
    assert os.listdir(folder) == ["model.npz"]


def test_folder_refusing_new_files(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    save({"w": np.arange(5.0)}, path)
    before = path.read_bytes()

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(serialization.tempfile, "mkstemp", refuse)
    with pytest.raises(PermissionError, match="model.npz"):
        save({"w": np.zeros(3)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]


def test_unusual_characters_in_keys(tmp_path):
    state = {
        "\udc80 lone surrogate": np.ones(1),
        "日本": np.zeros(1),
        "": np.arange(2),
        "a\x00b": np.ones(3),
    }
    save(state, tmp_path / "k.npz")
    assert_same_arrays(load(tmp_path / "k.npz"), state)


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        save({"w": np.ones(1)}, tmp_path / "nope" / "m.npz")


def test_path_must_be_str_or_pathlike(tmp_path):
    with pytest.raises(TypeError, match="path must be a str"):
        save({"w": np.ones(1)}, 3)
    with pytest.raises(TypeError, match="path must be a str"):
        load(None)


def test_overwrite_keeps_file_mode(tmp_path):
    path = tmp_path / "m.npz"
    save({"w": np.ones(1)}, path)
    path.chmod(0o640)
    save({"w": np.zeros(1)}, path)
    assert (path.stat().st_mode & 0o777) == 0o640
    np.testing.assert_array_equal(load(path)["w"], np.zeros(1))


@pytest.mark.cuda
def test_cupy_arrays_are_saved_from_the_host(tmp_path):
    from tinygrad_mlp import backend

    if not backend.cupy_available():
        pytest.skip("needs CuPy and a GPU")
    cp = backend.get_array_module("cuda")
    save({"w": cp.arange(4, dtype=cp.float32)}, tmp_path / "g.npz")
    got = load(tmp_path / "g.npz")["w"]
    assert isinstance(got, np.ndarray) and got.dtype == np.float32
    np.testing.assert_array_equal(got, np.arange(4, dtype=np.float32))


def test_load_takes_map_location_and_weights_only_as_torch(tmp_path):
    path = tmp_path / "state.npz"
    state = {"w": tm.tensor([[1.0, 2.0]]), "nested": [tm.tensor([3])]}
    tm.save(state, path)
    for location in ("cpu", tm.device("cpu"), {"cpu": "cpu"}, lambda array, where: array):
        loaded = tm.load(path, map_location=location, weights_only=True)
        np.testing.assert_array_equal(loaded["w"], [[1.0, 2.0]])
        assert loaded["nested"][0].tolist() == [3]
    assert tm.load(path, "cpu", weights_only=False)["w"].shape == (1, 2)
    with pytest.raises(TypeError, match="weights_only"):
        tm.load(path, weights_only="yes")
    with pytest.raises(TypeError, match="map_location"):
        tm.load(path, map_location=3)


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
def test_failure_while_writing_removes_temp_file_safetensors(tmp_path, monkeypatch, stage):
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


def test_overwrite_keeps_file_mode_safetensors(tmp_path):
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
def test_truncated_file_safetensors(tmp_path, keep):
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
def test_cupy_arrays_are_saved_from_the_host_safetensors(tmp_path):
    from tinygrad_mlp import backend

    if not backend.cupy_available():
        pytest.skip("needs CuPy and a GPU")
    cp = backend.get_array_module("cuda")
    save({"w": cp.arange(4, dtype=cp.float32)}, tmp_path / "g.safetensors")
    got = load(tmp_path / "g.safetensors")["w"]
    assert isinstance(got, np.ndarray) and got.dtype == np.float32
    np.testing.assert_array_equal(got, np.arange(4, dtype=np.float32))
