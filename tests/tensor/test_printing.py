"""Tensors, shapes and dtypes print as PyTorch prints them: repr and str against torch's for the
same data and print options, ``Size``, dtype objects, ``__format__`` and backward node names."""

from __future__ import annotations

import pickle

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_mlp as tm
import tinygrad_mlp.nn.functional as F

torch = pytest.importorskip("torch")

DTYPES = ["float32", "float64", "float16", "int64", "int32", "int16", "int8", "uint8", "bool"]


def torch_text(text: str) -> str:
    """Our text with PyTorch's module name, so the two can be compared."""
    return text.replace("tinygrad_mlp.", "torch.")


@pytest.fixture(autouse=True)
def default_print_options():
    # torch's tensors here are CPU ones, so ours are too (the simulated-CUDA run makes cuda the
    # default, whose suffix test_device_suffix_names_the_device_index checks)
    device = tm.backend.default_device()
    tm.set_default_device("cpu")
    yield
    tm.set_default_device(device)
    tm.set_printoptions(profile="default")
    torch.set_printoptions(profile="default")


def assert_prints_alike(array: np.ndarray) -> None:
    ours, theirs = tm.tensor(array), torch.tensor(array)
    assert torch_text(repr(ours)) == repr(theirs)
    assert torch_text(str(ours)) == str(theirs)


def _values(dtype: str):
    if dtype == "bool":
        return st.booleans()
    if dtype.startswith(("int", "uint")):
        info = np.iinfo(dtype)
        return st.integers(int(info.min), int(info.max))
    return st.one_of(
        st.floats(width=16 if dtype == "float16" else 32, allow_subnormal=False),
        st.sampled_from([0.0, -0.0, 1.0, -3.0, 1e-5, 123456789.0, 0.5, float("nan")]),
    )


@st.composite
def arrays(draw):
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5))
    return draw(hnp.arrays(dtype, shape, elements=_values(dtype)))


@settings(max_examples=60)
@given(arrays())
def test_repr_and_str_match_torch(array):
    assert_prints_alike(array)
    if array.dtype.kind == "f":
        ours, theirs = tm.tensor(array, requires_grad=True), torch.tensor(array, requires_grad=True)
        assert torch_text(repr(ours)) == repr(theirs)
        assert torch_text(repr(ours * 2)) == repr(theirs * 2)


@st.composite
def big_arrays(draw):
    dtype = draw(st.sampled_from(["float32", "float64", "int64", "bool"]))
    shape = draw(st.sampled_from([(1001,), (40, 30), (3, 20, 20), (2, 2, 300), (7, 150)]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1.0, 1e-6, 1e9, 100.0]))
    values = rng.standard_normal(shape) * scale
    if dtype == "bool":
        return values > 0
    return values.astype(dtype) if dtype.startswith("float") else (values * 10).astype(dtype)


@settings(max_examples=15)
@given(big_arrays())
def test_summarised_big_tensors_match_torch(array):
    assert_prints_alike(array)


@settings(max_examples=30)
@given(
    arrays(),
    st.integers(0, 8),
    st.sampled_from([5, 20, 1000]),
    st.integers(0, 4),
    st.integers(10, 120),
    st.sampled_from([None, True, False]),
)
def test_print_options_match_torch(array, precision, threshold, edgeitems, linewidth, sci_mode):
    options = dict(precision=precision, threshold=threshold, edgeitems=edgeitems)
    options.update(linewidth=linewidth, sci_mode=sci_mode)
    tm.set_printoptions(**options)
    torch.set_printoptions(**options)
    assert_prints_alike(array)


@pytest.mark.parametrize("profile", ["short", "full", "default"])
def test_print_profiles_match_torch(profile):
    array = np.random.default_rng(0).standard_normal((40, 30)).astype(np.float32)
    tm.set_printoptions(profile=profile)
    torch.set_printoptions(profile=profile)
    assert_prints_alike(array)


def test_unknown_profile_is_refused():
    with pytest.raises(ValueError, match="'wide'"):
        tm.set_printoptions(profile="wide")


def test_requires_grad_and_grad_fn_suffixes_match_torch():
    data = [[1.5, -2.25], [3.0, 1e-3]]
    ours = tm.tensor(data, requires_grad=True)
    theirs = torch.tensor(data, requires_grad=True)
    assert repr(ours) == repr(theirs)
    assert repr(ours * 2) == repr(theirs * 2)
    assert torch_text(repr(ours.double() * 2)) == repr(theirs.double() * 2)
    # a long line moves the suffix to a line of its own
    wide = np.linspace(-1e3, 1e3, 12, dtype=np.float32)
    w_ours, w_theirs = tm.tensor(wide, requires_grad=True), torch.tensor(wide, requires_grad=True)
    assert repr(w_ours * 1000) == repr(w_theirs * 1000)
    assert "\n" in repr(w_ours * 1000).split("]")[-1]
    p_ours = tm.nn.Parameter(tm.tensor([1.5, 2.0]))
    assert repr(p_ours) == repr(torch.nn.Parameter(torch.tensor([1.5, 2.0])))


def test_device_suffix_names_the_device_index(monkeypatch):
    from tinygrad_mlp import backend

    monkeypatch.setenv("TINYGRAD_MLP_SIMULATE_CUDA", "1")
    monkeypatch.setattr(backend, "_cupy", None)
    t = tm.tensor([1.0, 2.0], device="cuda")
    assert repr(t) == "tensor([1., 2.], device='cuda:0')"
    assert repr(t.double()) == "tensor([1., 2.], device='cuda:0', dtype=tinygrad_mlp.float64)"


# ---------------------------------------------------------------- __format__


@pytest.mark.parametrize("value", [82.7912, -1e-7, 3.0, 123456789.0])
@pytest.mark.parametrize("spec", ["", ".2f", ">12.3e", "g"])
def test_format_of_a_0d_tensor_is_the_format_of_its_number(value, spec):
    ours, theirs = tm.tensor(value), torch.tensor(value)
    assert format(ours, spec) == format(theirs, spec)
    assert f"{tm.tensor(7)}" == f"{torch.tensor(7)}" == "7"


def test_format_of_a_bigger_tensor_prints_it_or_refuses_a_spec():
    assert f"{tm.tensor([1.5, 2.0])}" == str(torch.tensor([1.5, 2.0]))
    with pytest.raises(TypeError):
        format(torch.tensor([1.5]), ".2f")
    with pytest.raises(TypeError, match="'.2f'"):
        format(tm.tensor([1.5]), ".2f")


# ---------------------------------------------------------------- Size and dtypes


def test_size_is_a_tuple_printed_as_torch_prints_it():
    t = tm.zeros(3, 4)
    assert isinstance(t.shape, tm.Size) and isinstance(t.size(), tm.Size)
    assert isinstance(t.shape, tuple) and t.shape == (3, 4) and t.size(1) == 4
    assert torch_text(repr(t.shape)) == repr(torch.zeros(3, 4).shape)
    assert torch_text(str(tm.zeros(()).shape)) == str(torch.zeros(()).shape)
    assert torch_text(f"{t.shape}") == f"{torch.zeros(3, 4).shape}"
    assert t.shape.numel() == torch.Size([3, 4]).numel() == 12
    assert isinstance(t.shape[1:], tm.Size) and t.shape[1:] == (4,)
    assert isinstance(t.shape + (5,), tm.Size) and t.shape + (5,) == (3, 4, 5)
    assert np.zeros(t.shape).shape == (3, 4)
    assert pickle.loads(pickle.dumps(t.shape)) == t.shape


@pytest.mark.parametrize("name", DTYPES)
def test_dtypes_print_as_torch_and_equal_numpy(name):
    ours, theirs = getattr(tm, name), getattr(torch, name)
    assert torch_text(repr(ours)) == repr(theirs) and torch_text(str(ours)) == str(theirs)
    assert ours == np.dtype(name) and np.dtype(name) == ours and hash(ours) == hash(np.dtype(name))
    assert ours.is_floating_point == theirs.is_floating_point
    assert ours.is_signed == theirs.is_signed and ours.itemsize == theirs.itemsize
    assert ours.is_complex is False
    # numpy takes it wherever it takes a dtype
    assert np.zeros(2, dtype=ours).dtype == np.dtype(name)
    assert np.arange(3).astype(ours).dtype == np.dtype(name)
    assert {np.dtype(name): 1}[ours] == 1
    array = np.zeros(2, dtype=name)
    assert tm.tensor(array).dtype is ours and torch_text(str(tm.tensor(array).dtype)) == str(
        torch.tensor(array).dtype
    )
    assert pickle.loads(pickle.dumps(ours)) is ours
    assert isinstance(ours, tm.dtype) and ours != None  # noqa: E711


def test_dtype_aliases_and_type_names():
    assert tm.float is tm.float32 and tm.long is tm.int64 and tm.double is tm.float64
    assert tm.tensor([1.0]).to(tm.float64).dtype == tm.float64
    assert tm.zeros(2, dtype=tm.int64).dtype == np.int64
    assert tm.tensor([1.0]).type() == torch_text(torch.tensor([1.0]).type()).replace(
        "torch.", "tinygrad_mlp."
    )
    assert torch_text(tm.tensor([1]).type()) == torch.tensor([1]).type()


# ---------------------------------------------------------------- backward node names


def _pair(data, requires_grad=True):
    return tm.tensor(data, requires_grad=requires_grad), torch.tensor(
        data, requires_grad=requires_grad
    )


CASES = {
    "add": lambda x, w, b, lib: x + 1,
    "mul": lambda x, w, b, lib: x * x,
    "div": lambda x, w, b, lib: x / 2,
    "neg": lambda x, w, b, lib: -x,
    "pow": lambda x, w, b, lib: x**2,
    "exp": lambda x, w, b, lib: x.exp(),
    "tanh": lambda x, w, b, lib: x.tanh(),
    "relu": lambda x, w, b, lib: x.relu(),
    "sigmoid": lambda x, w, b, lib: x.sigmoid(),
    "sum": lambda x, w, b, lib: x.sum(),
    "sum_dim": lambda x, w, b, lib: x.sum(1),
    "mean": lambda x, w, b, lib: x.mean(),
    "mean_dim": lambda x, w, b, lib: x.mean(1),
    "max": lambda x, w, b, lib: x.max(),
    "min": lambda x, w, b, lib: x.min(),
    "amax": lambda x, w, b, lib: x.amax(1),
    "max_dim": lambda x, w, b, lib: x.max(1).values,
    "min_dim_keepdim": lambda x, w, b, lib: x.min(0, keepdim=True).values,
    "select": lambda x, w, b, lib: x[0],
    "select2": lambda x, w, b, lib: x[1, 2],
    "select_after_slice": lambda x, w, b, lib: x[1:, 0],
    "slice": lambda x, w, b, lib: x[1:],
    "slice_after_select": lambda x, w, b, lib: x[0, 1:],
    "index": lambda x, w, b, lib: x[lib.tensor([0, 1])],
    "index_list": lambda x, w, b, lib: x[[0, 2]],
    "mask": lambda x, w, b, lib: x[x > 0],
    "none": lambda x, w, b, lib: x[None],
    "mm": lambda x, w, b, lib: x @ w.T,
    "linear": lambda x, w, b, lib: lib.nn.functional.linear(x, w, b),
    "linear_no_bias": lambda x, w, b, lib: lib.nn.functional.linear(x, w),
    "cross_entropy": lambda x, w, b, lib: lib.nn.functional.cross_entropy(x, lib.tensor([0, 1, 2])),
    "log_softmax": lambda x, w, b, lib: lib.nn.functional.log_softmax(x, 1),
    "softmax": lambda x, w, b, lib: lib.nn.functional.softmax(x, 1),
    "mse": lambda x, w, b, lib: lib.nn.functional.mse_loss(x, x.detach()),
    "cat": lambda x, w, b, lib: lib.cat([x, x]),
    "cast": lambda x, w, b, lib: x.double(),
    "reshape": lambda x, w, b, lib: x.reshape(12),
    "view": lambda x, w, b, lib: x.view(4, 3),
    "permute": lambda x, w, b, lib: x.permute(1, 0),
    "expand": lambda x, w, b, lib: x.expand(2, 3, 4),
    "where": lambda x, w, b, lib: lib.where(x > 0, x, x),
    "maximum": lambda x, w, b, lib: lib.maximum(x, x),
    "clamp": lambda x, w, b, lib: x.clamp(0, 1),
    "log1p": lambda x, w, b, lib: x.abs().log1p(),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_backward_node_names_match_torch(case):
    data = np.arange(12, dtype=np.float32).reshape(3, 4) / 7 - 0.5
    x, tx = _pair(data)
    w, tw = _pair(np.ones((5, 4), np.float32))
    b, tb = _pair(np.zeros(5, np.float32))
    ours, theirs = CASES[case](x, w, b, tm), CASES[case](tx, tw, tb, torch)
    assert ours.grad_fn.name() == type(theirs.grad_fn).__name__
    assert f"grad_fn=<{type(theirs.grad_fn).__name__}>" in repr(ours)


def test_node_names_survive_backward():
    x, tx = _pair(np.ones((2, 4), np.float32))
    w, tw = _pair(np.ones((3, 4), np.float32))
    b, tb = _pair(np.zeros(3, np.float32))
    logits, t_logits = F.linear(x, w, b), torch.nn.functional.linear(tx, tw, tb)
    loss = F.cross_entropy(logits, tm.tensor([0, 1]))
    t_loss = torch.nn.functional.cross_entropy(t_logits, torch.tensor([0, 1]))
    loss.backward()
    t_loss.backward()
    assert repr(loss) == repr(t_loss) and repr(logits) == repr(t_logits)
