"""What a user sees when things go wrong: clear errors, deep graphs, stable numerics, bad files."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import re
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
from tensors import T

import tinygrad_mlp as tm
from tinygrad_mlp import functional as F


def _t(shape, dtype="float64", requires_grad=False) -> T:
    data = np.arange(1, 1 + int(np.prod(shape)), dtype=np.float64).reshape(shape) / 10
    return T(data, dtype=dtype, requires_grad=requires_grad)


def _shapes(*shapes) -> str:
    """A regex matching every shape, written as a tuple, somewhere in a message."""
    return "".join(f"(?=.*{re.escape(str(tuple(s)))})" for s in shapes)


# ---------------------------------------------------------------- shape mismatches

BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "radd": lambda a, b: b.numpy() + a,
    "mse_loss": F.mse_loss,
    "l1_loss": F.l1_loss,
    "binary_cross_entropy_with_logits": F.binary_cross_entropy_with_logits,
}


@pytest.mark.parametrize("name", list(BINARY))
def test_binary_shape_mismatch_names_the_op_and_both_shapes(name):
    a, b = _t((2, 3), requires_grad=True), _t((4, 5))
    with pytest.raises(ValueError, match=_shapes((2, 3), (4, 5))) as info:
        BINARY[name](a, b)
    assert name.removeprefix("r") in str(info.value)


def test_mse_loss_with_a_target_that_requires_grad_names_both_shapes():
    with pytest.raises(ValueError, match=_shapes((2, 3), (3, 2))):
        F.mse_loss(_t((2, 3), requires_grad=True), _t((3, 2), requires_grad=True))


@pytest.mark.parametrize(
    "sa, sb",
    [((2, 3), (4, 5)), ((3,), (4,)), ((2, 3), (4,)), ((2, 2, 3), (3, 3, 4))],
)
def test_matmul_shape_mismatch_names_both_shapes(sa, sb):
    with pytest.raises(RuntimeError, match="(mat|matmul)" + _shapes(sa, sb)):  # PyTorch's type
        _t(sa) @ _t(sb)
    with pytest.raises(RuntimeError, match="at least 1D, but they are 2D and 0D"):
        _t((2, 3)) @ _t(())


def test_linear_shape_mismatches_name_both_shapes():
    layer = tm.nn.Linear(3, 4, dtype="float64")
    with pytest.raises(ValueError, match="linear" + _shapes((2, 5), (4, 3))):
        layer(_t((2, 5)))
    with pytest.raises(ValueError, match="linear" + _shapes((5,), (4, 3))):
        F.linear(_t((2, 3)), _t((4, 3)), _t((5,)))


# ---------------------------------------------------------------- dtypes


def test_matmul_of_float32_and_float64_names_both_dtypes():
    with pytest.raises(RuntimeError, match="(?=.*float32)(?=.*float64)"):  # PyTorch's type
        _t((2, 3), "float32") @ _t((3, 2), "float64")
    with pytest.raises(RuntimeError, match="(?=.*float32)(?=.*float64)"):
        _t((2, 3), "float32") @ tm.tensor(np.ones((3, 2)))  # a float64 tensor on the right


def test_linear_of_float64_input_and_float32_layer_names_both_dtypes():
    layer = tm.nn.Linear(3, 4)  # float32
    with pytest.raises(TypeError, match="(?=.*float64)(?=.*float32)"):
        layer(_t((2, 3), "float64"))
    with pytest.raises(TypeError, match="bias.*(?=.*float64)(?=.*float32)"):
        F.linear(_t((2, 3), "float32"), _t((4, 3), "float32"), _t((4,), "float64"))


# ---------------------------------------------------------------- non-numeric data


@pytest.mark.parametrize(
    "data",
    ["abc", b"abc", None, object(), {"a": 1}, [1, "a"], [[1, 2], [3]], [None, 1.0], 1 + 2j],
    ids=["str", "bytes", "None", "object", "dict", "mixed", "ragged", "None-in-list", "complex"],
)
def test_non_numeric_data_is_a_type_error(data):
    with pytest.raises(TypeError, match="numeric"):
        T(data)


@pytest.mark.parametrize("other", ["x", None, [[1.0], [1.0, 2.0]], object()])
def test_non_numeric_operand_is_a_type_error(other):
    with pytest.raises(TypeError, match="numeric"):
        _t((2, 2)) * other


def test_non_numeric_targets_and_values_are_type_errors():
    logits = _t((2, 3), requires_grad=True)
    with pytest.raises(TypeError, match="cross_entropy.*numeric"):
        F.cross_entropy(logits, ["a", "b"])
    with pytest.raises(TypeError, match="cross_entropy.*numeric"):
        F.cross_entropy(logits, [[0], [1, 2]])
    with pytest.raises(TypeError, match="mse_loss.*numeric"):
        F.mse_loss(logits, None)
    with pytest.raises(TypeError, match="clamp: min"):
        logits.clamp("0")
    with pytest.raises(TypeError, match=r"backward.*\(2, 3\)"):
        (logits * 2).backward("x")


@pytest.mark.parametrize(
    "call",
    [
        lambda x: tm.nn.Linear(3, 4)(x),
        lambda x: F.linear(_t((2, 3), "float32"), x),
        lambda x: F.cross_entropy(x, [0, 1]),
        lambda x: F.nll_loss(x, [0, 1]),
        lambda x: F.mse_loss(x, np.ones((2, 3))),
        lambda x: F.l1_loss(x, np.ones((2, 3))),
        lambda x: F.binary_cross_entropy(x, np.ones((2, 3))),
        lambda x: F.binary_cross_entropy_with_logits(x, np.ones((2, 3))),
    ],
    ids=["Linear", "linear-weight", "cross_entropy", "nll", "mse", "l1", "bce", "bce_logits"],
)
@pytest.mark.parametrize("data", [np.full((2, 3), 0.5, np.float32), [[0.5] * 3] * 2])
def test_arrays_and_lists_where_a_tensor_is_needed_are_type_errors(call, data):
    with pytest.raises(TypeError, match=r"must be a Tensor, got (ndarray|list)"):
        call(data)


def test_grad_of_non_tensors_names_the_position():
    x = _t((3,), requires_grad=True)
    with pytest.raises(TypeError, match="inputs: item 1 is a ndarray, not a Tensor"):
        tm.grad((x * x).sum(), [x, np.ones(3)])
    with pytest.raises(TypeError, match="0 is a ndarray, not a Tensor"):
        tm.grad(np.ones(3), x)


def test_iterating_a_0d_tensor_is_a_type_error_not_an_empty_loop():
    with pytest.raises(TypeError, match="0-d"):
        list(T(1.0))
    assert [t.item() for t in _t((3,))] == pytest.approx([0.1, 0.2, 0.3])


def test_data_loader_of_ragged_data_names_the_argument():
    with pytest.raises(ValueError, match="DataLoader: y"):
        tm.DataLoader(np.ones((2, 2)), [[0], [1, 2]], batch_size=2)


def test_astype_refuses_non_numeric_dtypes_and_int_casts_that_need_grad():
    x = _t((2,), requires_grad=True)
    with pytest.raises(TypeError, match="not supported; use a float, int or bool dtype"):
        x.astype(str)
    ints = x.astype("int64")  # as x.long() in PyTorch: an integer result carries no gradient
    assert ints.dtype == np.int64 and not ints.requires_grad and ints.tolist() == [0, 0]
    assert x.astype("float32").dtype == np.float32


# ---------------------------------------------------------------- labels


@pytest.mark.parametrize("label", [3, 7, -1])
@pytest.mark.parametrize("loss", [F.cross_entropy, F.nll_loss], ids=["cross_entropy", "nll"])
def test_label_out_of_range_names_label_and_class_count(loss, label):
    with pytest.raises(IndexError, match=rf"Target {label}\b.*\b3 classes"):  # PyTorch's type
        loss(_t((2, 3), requires_grad=True), [0, label])


# ---------------------------------------------------------------- backward misuse


def test_backward_on_a_non_scalar_without_a_gradient():
    y = _t((2, 3), requires_grad=True) * 2
    with pytest.raises(RuntimeError, match=r"scalar.*\(2, 3\)"):
        y.backward()


def test_backward_twice_through_a_released_graph_names_retain_graph():
    x = _t((3,), requires_grad=True)
    loss = (x.exp() * x).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph"):
        loss.backward()


def test_backward_twice_through_a_shared_part_of_a_released_graph():
    x = _t((3,), requires_grad=True)
    hidden = x.tanh()
    hidden.sum().backward()
    with pytest.raises(RuntimeError, match=r"second time \(op 'tanh'\)"):
        (hidden * 2).sum().backward()


# ---------------------------------------------------------------- state dicts


def test_load_state_dict_names_missing_and_unexpected_keys():
    model = tm.nn.Sequential(tm.nn.Linear(3, 4), tm.nn.ReLU(), tm.nn.Linear(4, 2))
    state = model.state_dict()
    del state["2.bias"]
    state["2.bais"] = tm.zeros(2)
    with pytest.raises(
        RuntimeError, match=r"(?s)(?=.*Missing key.*2\.bias)(?=.*Unexpected.*2\.bais)"
    ):
        model.load_state_dict(state)


def test_load_state_dict_names_key_and_both_shapes_and_changes_nothing():
    model = tm.nn.Sequential(tm.nn.Linear(3, 4), tm.nn.ReLU(), tm.nn.Linear(4, 2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = {k: tm.zeros_like(v) for k, v in before.items()}
    state["2.weight"] = tm.zeros(4, 2)
    with pytest.raises(RuntimeError, match=r"2\.weight" + _shapes((4, 2), (2, 4))):
        model.load_state_dict(state)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


@pytest.mark.parametrize("value", ["abc", None, [[1.0, 2.0], [3.0]]], ids=["str", "None", "ragged"])
def test_load_state_dict_with_a_non_array_value_names_the_key(value):
    layer = tm.nn.Linear(2, 2)
    with pytest.raises(TypeError, match="'weight'"):
        layer.load_state_dict({"weight": value, "bias": np.zeros(2)})


# ---------------------------------------------------------------- optimizer arguments


def _params():
    return [T(np.zeros(3), requires_grad=True)]


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda p: tm.optim.SGD(p, lr=-0.1), "lr"),
        (lambda p: tm.optim.SGD(p, lr=float("nan")), "lr"),
        (lambda p: tm.optim.SGD(p, lr="0.1"), "lr"),
        (lambda p: tm.optim.SGD(p, lr=0.1, momentum=-0.5), "momentum"),
        (lambda p: tm.optim.SGD(p, lr=0.1, weight_decay=-1), "weight_decay"),
        (lambda p: tm.optim.SGD(p, lr=0.1, nesterov=True), "nesterov"),
        (lambda p: tm.optim.Adam(p, lr=-1e-3), "lr"),
        (lambda p: tm.optim.Adam(p, betas=(1.0, 0.999)), r"betas\[0\]"),
        (lambda p: tm.optim.Adam(p, betas=(0.9, -0.1)), r"betas\[1\]"),
        (lambda p: tm.optim.Adam(p, betas=0.9), "betas"),
        (lambda p: tm.optim.Adam(p, eps=-1e-8), "eps"),
        (lambda p: tm.optim.AdamW(p, weight_decay=-0.01), "weight_decay"),
        (lambda p: tm.optim.AdamW(p, amsgrad="yes"), "amsgrad"),
    ],
)
def test_invalid_optimizer_hyper_parameters_are_named(make, name):
    with pytest.raises(ValueError, match=rf"invalid {name}"):
        make(_params())


# ---------------------------------------------------------------- reshape, axes, indices


def test_bad_reshape():
    x = _t((2, 3))
    with pytest.raises(RuntimeError, match=r"shape '\[4, 2\]' is invalid for input of size 6"):
        x.reshape(4, 2)
    with pytest.raises(RuntimeError, match="reshape"):
        x.reshape(-1, -1)
    with pytest.raises(TypeError, match=r"reshape.*'x'"):
        x.reshape("x")
    with pytest.raises(TypeError, match=r"reshape.*2\.0"):
        x.reshape(2.0, 3)
    with pytest.raises(RuntimeError, match=r"reshape.*\(-2, 3\)"):
        x.reshape(-2, 3)


@pytest.mark.parametrize(
    "call",
    [
        lambda x: x.sum(axis=2),
        lambda x: x.sum(axis=-3),
        lambda x: x.mean(axis=(0, 5)),
        lambda x: x.max(axis=2),
        lambda x: x.softmax(axis=2),
        lambda x: x.log_softmax(axis=-3),
        lambda x: x.argmax(axis=2),
        lambda x: x.flatten(3),
    ],
    ids=["sum", "sum-neg", "mean-tuple", "max", "softmax", "log_softmax", "argmax", "flatten"],
)
def test_axis_out_of_range_is_an_index_error_naming_it(call):
    with pytest.raises(
        IndexError,
        match=r"Dimension out of range \(expected to be in range of \[-2, 1\], but got -?\d\)",
    ):
        call(_t((2, 3)))


@pytest.mark.parametrize("axis", [1.5, "0", [0.0]])
def test_axis_of_the_wrong_type_is_a_type_error(axis):
    with pytest.raises(TypeError, match="dim must be an int"):
        _t((2, 3)).sum(axis=axis)


def test_numpy_integer_axes_and_sizes_are_accepted():
    x = _t((2, 3))
    assert x.sum(axis=np.int64(1)).shape == (2,)
    assert x.reshape(np.int64(3), 2).shape == (3, 2)
    assert x.transpose(np.int32(1), 0).shape == (3, 2)


@pytest.mark.parametrize(
    "axes, error",
    [((0, 2), IndexError), ((0, -3), IndexError), ((0, 1, 2), TypeError), ((1,), TypeError)],
)
def test_bad_transpose_dims(axes, error):
    with pytest.raises(error):  # PyTorch's types: transpose takes two dims in range
        _t((2, 3)).transpose(*axes)
    assert _t((2, 3)).transpose(0, 0).shape == (2, 3)


def test_transpose_dims_of_the_wrong_type():
    with pytest.raises(TypeError, match="dim must be an int, got 'a'"):
        _t((2, 3)).transpose("a", 0)


@pytest.mark.parametrize(
    "index, shown",
    [(5, "5"), ((0, 7), "(0, 7)"), ([0, 9], "[0, 9]"), ((0, 0, 0), "(0, 0, 0)"), (1.5, "1.5")],
)
def test_bad_index_names_index_and_shape(index, shown):
    with pytest.raises(IndexError, match=re.escape(shown) + r".*\(2, 3\)"):
        _t((2, 3))[index]


def test_bad_tensor_index_names_the_shape():
    with pytest.raises(IndexError, match=r"\(2, 3\)"):
        _t((2, 3))[T(np.array([0, 9]), dtype="int64")]


# ---------------------------------------------------------------- results of full reductions


def test_ops_on_the_result_of_a_full_reduction():
    x = _t((3,), requires_grad=True)
    loss = (x * x).sum() * 2 + x.mean() / 3 - 1  # 0-d results feeding more ops
    loss.backward()
    np.testing.assert_allclose(x.grad, 4 * x.numpy() + 1 / 9)


def test_gradient_of_a_0d_leaf_used_twice_is_a_0d_tensor():
    x = T(np.array(2.0), requires_grad=True)
    (x * x * 3).backward()
    assert isinstance(x.grad, tm.Tensor) and x.grad.shape == ()
    assert x.grad.item() == 12.0
    (x * x).backward()
    assert isinstance(x.grad, tm.Tensor) and x.grad.item() == 16.0


# ---------------------------------------------------------------- deep and wide graphs


def test_backward_through_a_chain_of_100k_ops():
    x = T(np.array([1.0, -2.0]), requires_grad=True)
    y = x
    for _ in range(50_000):  # 100,000 ops in one chain
        y = y * 1.00001
        y = y + 0.5
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [1.00001**50_000] * 2, rtol=1e-9)
    # y_n = c y_(n-1) + 0.5  =>  y_N = c^N x + 0.5 (c^N - 1) / (c - 1) (c^N scaled by c)
    c, n = 1.00001, 50_000
    expected = c**n * x.numpy() + 0.5 * (c**n - 1) / (c - 1)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-9)


def test_backward_through_a_node_used_10k_times():
    x = T(np.array([0.5, 2.0, -1.0]), requires_grad=True)
    u = x * 3.0
    total = u
    for _ in range(9_999):
        total = total + u
    total.sum().backward()
    np.testing.assert_allclose(x.grad, [30_000.0] * 3)
    np.testing.assert_allclose(total.numpy(), 30_000 * x.numpy())


def test_gradients_of_10k_distinct_uses_of_one_node_are_summed():
    x = T(np.array([1.5]), requires_grad=True)
    u = x * 2.0
    parts = [u * float(k) for k in range(10_000)]
    while len(parts) > 1:  # a balanced tree of adds over the 10,000 uses
        pairs = zip(parts[0::2], parts[1::2], strict=False)  # an odd last one waits a round
        parts = [a + b for a, b in pairs] + parts[len(parts) // 2 * 2 :]
    parts[0].sum().backward()
    np.testing.assert_allclose(x.grad, [2.0 * sum(range(10_000))])


def test_deleting_a_100k_node_graph_does_not_crash():
    # in a child process, so that a C stack overflow in the destructor shows as a failed run
    code = textwrap.dedent(
        """
        import gc
        import numpy as np
        import tinygrad_mlp as tm
        x = tm.Tensor(np.ones(2), requires_grad=True)
        y = x
        for _ in range(50_000):
            y = (y * 1.0).tanh()
        gc.disable()
        del y
        print("freed")
        """
    )
    here = Path(tm.__file__).parents[1]  # the child imports the same package
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=here
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "freed"


# ---------------------------------------------------------------- numerics with huge logits


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "name",
    ["log_softmax", "softmax", "cross_entropy", "sigmoid", "bce_with_logits", "tanh"],
)
def test_huge_logits_give_finite_values_and_gradients(name, dtype):
    big = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [-1e4, -1e4, -1e4]])
    weights = np.arange(9.0).reshape(3, 3) / 9
    z = T(big, dtype=dtype, requires_grad=True)
    w = T(weights, dtype=dtype)
    losses = {
        "log_softmax": lambda: (z.log_softmax() * w).sum(),
        "softmax": lambda: (z.softmax() * w).sum(),
        "cross_entropy": lambda: F.cross_entropy(z, [1, 0, 2]),
        "sigmoid": lambda: (z.sigmoid() * w).sum(),
        "bce_with_logits": lambda: F.binary_cross_entropy_with_logits(z, weights > 0.5),
        "tanh": lambda: (z.tanh() * w).sum(),
    }
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = losses[name]()
        loss.backward()
    assert np.isfinite(loss.item())
    assert np.isfinite(z.grad.numpy()).all()
    assert z.grad.dtype == np.dtype(dtype)


def test_huge_logits_give_the_right_values():
    z = T(np.array([[1e4, -1e4, 0.0]]), requires_grad=True)
    np.testing.assert_allclose(z.log_softmax().numpy(), [[0.0, -2e4, -1e4]])
    np.testing.assert_allclose(F.cross_entropy(z, [1]).item(), 2e4)
    np.testing.assert_allclose(z.sigmoid().numpy(), [[1.0, 0.0, 0.5]])
    loss = F.binary_cross_entropy_with_logits(z, [[0.0, 1.0, 1.0]], reduction="sum")
    np.testing.assert_allclose(loss.item(), 1e4 + 1e4 + np.log(2))
    loss.backward()
    np.testing.assert_allclose(z.grad, [[1.0, -1.0, -0.5]])


# ---------------------------------------------------------------- anomaly mode


@pytest.fixture
def anomaly_off():
    tm.set_anomaly_detection(False)
    yield
    tm.set_anomaly_detection(False)


CULPRITS = {
    "log": lambda x: (x.log() * 2).sum(),  # log of a negative number: nan
    "div": lambda x: (x / (x - 2.0)).sum(),  # division by zero: inf (1 / t is a reciprocal)
    "pow": lambda x: (x.sqrt() + 1).sum(),  # sqrt of a negative number: nan
    "exp": lambda x: (x * 1000).exp().sum(),  # overflow: inf
}


@pytest.mark.parametrize("op", list(CULPRITS))
def test_anomaly_mode_raises_at_the_op_that_made_nan_or_inf(op, anomaly_off):
    x = T(np.array([-1.0, 2.0]), requires_grad=True)
    tm.set_anomaly_detection(True)
    with np.errstate(all="ignore"):
        loss = CULPRITS[op](x)
    with pytest.raises(RuntimeError, match=rf"anomaly.*'{op}'.*(nan|inf)"):
        loss.backward()


@pytest.mark.parametrize("op", list(CULPRITS))
def test_detect_anomaly_context_manager(op, anomaly_off):
    x = T(np.array([-1.0, 2.0]), requires_grad=True)
    with tm.detect_anomaly(), np.errstate(all="ignore"):
        assert tm.is_anomaly_enabled()
        with pytest.raises(RuntimeError, match=rf"anomaly.*'{op}'"):
            CULPRITS[op](x).backward()
    assert not tm.is_anomaly_enabled()


@pytest.mark.parametrize("op", list(CULPRITS))
def test_without_anomaly_mode_nan_passes_silently(op, anomaly_off):
    x = T(np.array([-1.0, 2.0]), requires_grad=True)
    with np.errstate(all="ignore"):
        CULPRITS[op](x).backward()
    assert x.grad is not None


def test_anomaly_mode_names_the_first_op_not_a_later_one(anomaly_off):
    x = T(np.array([-1.0, 2.0]), requires_grad=True)
    with tm.detect_anomaly(), np.errstate(all="ignore"):
        loss = (x.log().exp() / 0.0).sum()  # log makes nan first; div by 0 comes later
        with pytest.raises(RuntimeError, match="'log'"):
            loss.backward()


def test_anomaly_mode_catches_a_nan_gradient_from_finite_values(anomaly_off):
    # sqrt(0) = 0 is finite, but its gradient 0.5 / sqrt(0) is inf
    x = T(np.array([0.0, 4.0]), requires_grad=True)
    with tm.detect_anomaly(), np.errstate(all="ignore"):
        with pytest.raises(RuntimeError, match=r"backward of op 'pow'"):
            x.sqrt().sum().backward()


def test_anomaly_mode_lets_finite_graphs_through(anomaly_off):
    x = T(np.array([0.5, 2.0]), requires_grad=True)
    with tm.detect_anomaly():
        (x.log() / x).sum().backward()
    np.testing.assert_allclose(x.grad, (1 - np.log([0.5, 2.0])) / np.array([0.5, 2.0]) ** 2)


# ---------------------------------------------------------------- model files


def _model():
    tm.manual_seed(0)
    return tm.nn.Sequential(tm.nn.Linear(4, 8), tm.nn.ReLU(), tm.nn.Linear(8, 3))


@pytest.mark.parametrize("keep", [0.2, 0.5, 0.9])
def test_truncated_model_file_names_the_path(tmp_path, keep):
    path = tmp_path / "model.npz"
    tm.save(_model().state_dict(), path)
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep)])
    with pytest.raises(ValueError, match=re.escape(str(path))):
        tm.load(path)


def test_damaged_model_file_names_the_path(tmp_path):
    path = tmp_path / "model.npz"
    tm.save(_model().state_dict(), path)
    with zipfile.ZipFile(path) as archive:
        first = archive.infolist()[0]
        start = first.header_offset + 30 + len(first.filename) + first.compress_size // 2
    raw = bytearray(path.read_bytes())
    raw[start] ^= 0xFF  # one flipped byte inside the first member's data
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=re.escape(str(path))):
        tm.load(path)


class _Trap:
    """Unpickling this calls open(marker, 'w'), which creates the marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_file_carrying_a_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    trap = np.array([_Trap(str(marker))], dtype=object)
    assert pickle.loads(pickle.dumps(trap[0])) and marker.exists()  # the trap does work
    marker.unlink()
    npz, raw = tmp_path / "evil.npz", tmp_path / "evil.pkl"
    np.savez(npz, weight=np.zeros(3), bias=trap)
    raw.write_bytes(pickle.dumps({"weight": trap}))
    for path in (npz, raw):
        with pytest.raises(ValueError, match=re.escape(str(path))):
            tm.load(path)
    model = _model()
    with pytest.raises(ValueError):
        model.load_state_dict(tm.load(npz))
    assert not marker.exists()


def test_failed_save_leaves_the_previous_file_byte_identical(tmp_path):
    path = tmp_path / "model.npz"
    tm.save(_model().state_dict(), path)
    before = path.read_bytes()
    bad = dict(_model().state_dict(), extra=object())  # not an array
    with pytest.raises(TypeError, match="object"):
        tm.save(bad, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]  # no temp file left
    state = tm.load(path)
    _model().load_state_dict(state)


# ---------------------------------------------------------------- MNIST files


def _idx(array: np.ndarray) -> bytes:
    code = {np.dtype(np.uint8): 0x08}[array.dtype]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">i4").tobytes()
    return header + array.tobytes()


def _write_mnist(folder, n_train=5, n_test=3) -> dict[str, str]:
    """Four small gzip IDX files in the MNIST layout; returns their SHA-256 digests."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    sums = {}
    for name, array in arrays.items():
        raw = gzip.compress(_idx(array), mtime=0)
        (folder / name).write_bytes(raw)
        sums[name] = hashlib.sha256(raw).hexdigest()
    return sums


def test_small_mnist_files_load(tmp_path):
    sums = _write_mnist(tmp_path)
    x_train, y_train, x_test, y_test = tm.mnist(tmp_path, download=False, checksums=sums)
    assert x_train.shape == (5, 28, 28) and y_test.shape == (3,)


def _corrupt(path, how: str) -> None:
    idx = gzip.decompress(path.read_bytes())
    if how == "bad magic":
        idx = b"\x00\x00\x77\x03" + idx[4:]
    elif how == "short body":
        idx = idx[:-1]
    elif how == "long body":
        idx = idx + b"\x00" * 7
    elif how == "header only":
        idx = idx[:6]
    raw = gzip.compress(idx, mtime=0)
    if how == "broken gzip":
        raw = raw[: len(raw) // 2]
    path.write_bytes(raw)


@pytest.mark.parametrize(
    "how, message",
    [
        ("bad magic", "bad IDX magic"),
        ("short body", "truncated IDX body"),
        ("long body", "longer"),
        ("header only", "truncated IDX header"),
        ("broken gzip", "decompress"),
    ],
)
@pytest.mark.parametrize("name", ["train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"])
def test_corrupted_mnist_file_names_the_file(tmp_path, name, how, message):
    _write_mnist(tmp_path)
    _corrupt(tmp_path / name, how)
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / name)) + ".*" + message):
        tm.mnist(tmp_path, download=False, checksums={})


def test_mnist_file_with_a_wrong_checksum_names_the_file(tmp_path):
    sums = _write_mnist(tmp_path)
    name = "train-labels-idx1-ubyte.gz"
    raw = bytearray((tmp_path / name).read_bytes())
    raw[-9] ^= 1  # a flipped bit in the gzip trailer changes the digest
    (tmp_path / name).write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / name)) + ".*SHA-256"):
        tm.mnist(tmp_path, download=False, checksums=sums)


def test_mnist_files_swapped_between_images_and_labels_name_the_file(tmp_path):
    _write_mnist(tmp_path)
    images, labels = tmp_path / "t10k-images-idx3-ubyte.gz", tmp_path / "t10k-labels-idx1-ubyte.gz"
    images_raw = images.read_bytes()
    images.write_bytes(labels.read_bytes())
    labels.write_bytes(images_raw)
    with pytest.raises(ValueError, match=re.escape(str(images))):
        tm.mnist(tmp_path, download=False, checksums={})
