"""The backward engine: accumulation, shared graphs, no_grad, graph release, errors, Tensor API."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
from tensors import T

import tinygrad_mlp as tm
from tinygrad_mlp.autograd.graph import apply
from tinygrad_mlp.ops import OPS


def leaf(values, dtype="float64") -> T:
    return T(np.asarray(values, dtype=float), dtype=dtype, requires_grad=True)


# ---------------------------------------------------------------- accumulation and sharing


def test_gradients_accumulate_across_backward_calls_until_zero_grad():
    x = leaf([1.0, -2.0, 3.0])
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, -4.0, 6.0])
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [4.0, -8.0, 12.0])
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [7.0, -5.0, 15.0])
    x.zero_grad()
    assert x.grad is None
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, -4.0, 6.0])


def test_shared_subexpression():
    a = leaf(3.0)
    b = a + a
    c = b * b  # c = 4 a^2, dc/da = 8 a
    c.backward()
    assert a.grad == pytest.approx(24.0)
    assert c.item() == pytest.approx(36.0)


def test_diamond_graph():
    a = leaf([0.5, -1.0])
    b = a * 2.0
    c = a.exp()
    d = (b * c).sum()  # d = 2 a e^a, dd/da = 2 e^a (1 + a)
    d.backward()
    x = np.array([0.5, -1.0])
    np.testing.assert_allclose(a.grad, 2 * np.exp(x) * (1 + x), rtol=1e-12)


def test_tensor_used_many_times():
    x = leaf([1.0, 2.0])
    total = x * 0.0
    for k in range(1, 51):
        total = total + x * float(k)
    (total * x).sum().backward()  # sum(1275 x^2): d/dx = 2550 x
    np.testing.assert_allclose(x.grad, [2550.0, 5100.0])


def test_same_tensor_on_both_sides_of_an_op():
    x = leaf([3.0, -2.0])
    (x * x * x).sum().backward()
    np.testing.assert_allclose(x.grad, [27.0, 12.0])
    y = leaf([3.0])
    (y / y).sum().backward()
    np.testing.assert_allclose(y.grad, [0.0], atol=1e-15)


def test_broadcast_gradients_are_reduced_to_the_input_shape():
    x = leaf(np.arange(3.0).reshape(3, 1))
    y = leaf(np.arange(4.0))
    s = leaf(2.0)
    ((x + y) * s).sum().backward()
    assert x.grad.shape == (3, 1) and y.grad.shape == (4,) and s.grad.shape == ()
    np.testing.assert_array_equal(x.grad, [[8.0], [8.0], [8.0]])
    np.testing.assert_array_equal(y.grad, [6.0, 6.0, 6.0, 6.0])
    assert s.grad == pytest.approx(np.sum(np.arange(3.0)[:, None] + np.arange(4.0)))


# ---------------------------------------------------------------- no_grad / enable_grad


def test_no_grad_records_nothing():
    x = leaf([1.0, 2.0])
    with tm.no_grad():
        assert not tm.is_grad_enabled()
        y = (x * 2.0).exp().sum()
    assert tm.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf and y.op is None
    with pytest.raises(RuntimeError):
        y.backward()
    assert x.grad is None


def test_no_grad_restores_the_mode_after_an_exception():
    with pytest.raises(ZeroDivisionError):
        with tm.no_grad():
            raise ZeroDivisionError
    assert tm.is_grad_enabled()


def test_no_grad_as_decorator():
    @tm.no_grad()
    def double(t):
        """Doubles."""
        assert not tm.is_grad_enabled()
        return t * 2.0

    x = leaf([1.0])
    y = double(x)
    assert not y.requires_grad
    assert double.__name__ == "double" and double.__doc__ == "Doubles."
    assert tm.is_grad_enabled()
    assert (x * 2.0).requires_grad


def test_enable_grad_inside_no_grad():
    x = leaf([1.0, 2.0])
    with tm.no_grad():
        with tm.enable_grad():
            assert tm.is_grad_enabled()
            y = (x * x).sum()
        assert not tm.is_grad_enabled()
        z = x * x
    assert y.requires_grad and not z.requires_grad
    y.backward()
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])


# ---------------------------------------------------------------- graph release


def test_second_backward_through_a_freed_graph_raises():
    x = leaf([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_retain_graph_allows_a_second_backward_and_gradients_double():
    x = leaf([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.clone()
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * first, rtol=1e-15)
    np.testing.assert_allclose(first, np.exp([1.0, 2.0]) * (1 + np.array([1.0, 2.0])))


def test_a_dropped_forward_frees_its_graph():
    x = leaf(np.ones(1000))
    hidden = x.exp()
    ref = weakref.ref(hidden)
    out = (hidden * 2.0).sum()
    del hidden
    gc.collect()
    assert ref() is not None  # held by the graph of out
    del out
    assert ref() is None  # freed by reference counting alone, no cycles


def test_backward_frees_the_saved_arrays():
    x = leaf(np.ones(10))
    hidden = x * 3.0
    ref = weakref.ref(hidden)
    out = (hidden.exp() * 2.0).sum()
    del hidden
    out.backward()
    assert ref() is None  # the released graph no longer holds intermediates


def test_deep_chain_backward_has_no_recursion_limit():
    x = leaf([0.5])
    y = x
    for _ in range(100_000):
        y = y + x
    y.backward()  # y = 100001 x
    assert x.grad[0] == pytest.approx(100_001.0)
    assert y.item() == pytest.approx(0.5 * 100_001)


def test_deleting_a_deep_graph_does_not_crash():
    x = leaf([1.0])
    y = x
    for _ in range(100_000):
        y = y * 1.0
    ref = weakref.ref(y)
    del y
    assert ref() is None


# ---------------------------------------------------------------- errors


def test_backward_on_non_scalar_needs_a_gradient():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="scalar"):
        (x * 2.0).backward()
    y = x * 2.0
    y.backward(np.array([1.0, 10.0]))
    np.testing.assert_array_equal(x.grad, [2.0, 20.0])


def test_backward_with_a_gradient_of_the_wrong_shape():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        (x * 2.0).backward(np.ones(3))
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        (x * 2.0).backward(np.ones((2, 1)))


def test_backward_on_a_tensor_without_grad():
    with pytest.raises(RuntimeError):
        T([1.0]).sum().backward()


def test_matmul_shape_mismatch_names_both_shapes():
    a, b = T(np.ones((2, 3))), T(np.ones((4, 5)))
    with pytest.raises(RuntimeError) as info:  # PyTorch's type
        a @ b
    assert "(2, 3)" in str(info.value) and "(4, 5)" in str(info.value)


OPERATORS = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
}


@pytest.mark.parametrize("name", list(OPERATORS))
@pytest.mark.parametrize("left, right", [((2, 3), (4,)), ((3, 1), (2, 2)), ((2, 3, 4), (3, 3))])
def test_unbroadcastable_operators_name_both_shapes(name, left, right):
    fn = OPERATORS[name]
    a, b = np.ones(left), np.ones(right)
    for x, y in ((T(a), T(b)), (T(a), b), (a, T(b))):
        with pytest.raises(ValueError) as info:
            fn(x, y)
        assert str(left) in str(info.value) and str(right) in str(info.value)


BINARY_OPS = [op for op in OPS.values() if op.arity == 2 and op.name != "where"]


@pytest.mark.parametrize("op", BINARY_OPS, ids=[op.name for op in BINARY_OPS])
def test_every_binary_op_names_both_shapes_when_they_do_not_fit(op):
    a, b = T(np.ones((2, 3))), T(np.ones((4,)))
    with pytest.raises(RuntimeError) as info:  # PyTorch's type (still a ValueError too)
        apply(op, a, b)
    assert "(2, 3)" in str(info.value) and "(4,)" in str(info.value)


def test_anomaly_mode_names_the_op():
    x = leaf([0.0, 1.0])
    with tm.detect_anomaly(), np.errstate(divide="ignore"):
        assert tm.is_anomaly_enabled()
        y = x.log().sum()
        with pytest.raises(RuntimeError, match="log"):
            y.backward()
    assert not tm.is_anomaly_enabled()


# ---------------------------------------------------------------- tm.grad


def test_grad_function_returns_gradients_and_leaves_grad_alone():
    x = leaf([1.0, 2.0])
    w = leaf([3.0, -1.0])
    y = (x * w).sum()
    gx, gw = tm.grad(y, [x, w])
    assert isinstance(gx, tm.Tensor) and isinstance(gw, tm.Tensor) and not gx.requires_grad
    np.testing.assert_array_equal(gx, [3.0, -1.0])
    np.testing.assert_array_equal(gw, [1.0, 2.0])
    assert x.grad is None and w.grad is None


def test_grad_function_with_grad_outputs_non_leaves_and_unused_inputs():
    x = leaf([1.0, 2.0])
    unused = leaf([5.0])
    h = x * x
    y = h * 3.0
    (gh,) = tm.grad(y, h, grad_outputs=np.array([1.0, 2.0]), retain_graph=True)
    np.testing.assert_array_equal(gh, [3.0, 6.0])
    with pytest.raises(RuntimeError):
        tm.grad(y, [x, unused], grad_outputs=np.ones(2), retain_graph=True)
    gx, gu = tm.grad(y, [x, unused], grad_outputs=np.ones(2), allow_unused=True)
    np.testing.assert_array_equal(gx, [6.0, 12.0])
    assert gu is None


# ---------------------------------------------------------------- leaves, non-leaves, aliasing


def test_leaves_and_non_leaves():
    x = leaf([1.0, 2.0])
    c = T([1.0, 2.0])
    h = x * 2.0
    k = x * 2.0
    assert x.is_leaf and c.is_leaf and not h.is_leaf
    assert h.op == "mul" and x.op is None
    assert h.requires_grad and not c.requires_grad and not (c * 2.0).requires_grad
    h.retain_grad()
    (h * h + k).sum().backward()
    np.testing.assert_array_equal(h.grad, [4.0, 8.0])
    assert k.grad is None  # non-leaf without retain_grad
    np.testing.assert_array_equal(x.grad, [10.0, 18.0])
    with pytest.raises(RuntimeError):
        c.retain_grad()


def test_grads_of_two_leaves_are_never_aliased():
    x, y = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (x + y).sum().backward()
    assert x.grad is not y.grad
    x.grad[...] += 100.0
    np.testing.assert_array_equal(y.grad, [1.0, 1.0])
    # also when the seed is the caller's array, or passes through a retained non-leaf
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    s = a + b
    s.retain_grad()
    seed = np.array([1.0, 1.0])
    (s + 0.0).backward(seed)
    seed[...] = 7.0
    a.grad[...] = -1.0
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])
    np.testing.assert_array_equal(s.grad, [1.0, 1.0])
    assert not np.shares_memory(a.grad, a.data)


def test_grads_are_writable_and_have_the_shape_and_dtype_of_their_tensor():
    x32 = T(np.ones((2, 1), dtype=np.float32), requires_grad=True)
    y64 = leaf(np.arange(3.0))
    (x32 * y64).sum().backward()
    assert x32.grad.dtype == np.float32 and x32.grad.shape == (2, 1)
    assert y64.grad.dtype == np.float64 and y64.grad.shape == (3,)
    np.testing.assert_array_equal(x32.grad, [[3.0], [3.0]])
    z = leaf(np.ones((2, 3)))
    z.sum().backward()  # the rule hands back a broadcast view
    z.grad[0, 0] = 5.0
    assert z.grad.shape == (2, 3) and z.grad.sum() == 10.0


# ---------------------------------------------------------------- the Tensor API


def test_tensor_attributes():
    t = T(np.zeros((2, 3, 4)))
    assert t.shape == (2, 3, 4) and isinstance(t.shape, tuple)
    assert t.ndim == 3 and t.dim() == 3 and t.size() == (2, 3, 4) and t.size(1) == 3
    assert t.numel() == 24 and len(t) == 2
    assert t.dtype == np.float64 and t.device == tm.backend.default_device()
    assert not t.requires_grad and t.grad is None and t.is_leaf
    s = T(1.5)
    assert s.shape == () and s.ndim == 0 and s.numel() == 1 and s.size() == ()
    with pytest.raises(TypeError):
        len(s)


def test_repr_item_numpy_detach_and_to():
    x = T([1.5, -2.0], requires_grad=True, device="cpu")
    r = repr(x)
    assert r == "tensor([ 1.5000, -2.0000], requires_grad=True)"  # PyTorch's form
    assert "grad_fn=<MulBackward0>" in repr(x * 2.0)
    assert "dtype=" in repr(T([1.0], dtype="float64"))
    assert T([[4.25]]).item() == 4.25 and isinstance(T([[4.25]]).item(), float)
    with pytest.raises(RuntimeError, match="cannot be converted to Scalar"):
        x.item()
    n = x.numpy()
    assert isinstance(n, np.ndarray)
    np.testing.assert_array_equal(n, [1.5, -2.0])
    d = x.detach()
    assert not d.requires_grad and d.is_leaf
    np.testing.assert_array_equal(d.numpy(), x.numpy())
    assert x.to("cpu") is x and x.cpu() is x
    (x * d).sum().backward()  # nothing flows through the detached copy
    np.testing.assert_array_equal(x.grad, [1.5, -2.0])
    x.zero_grad()
    assert x.grad is None


def test_requires_grad_copies_the_callers_array():
    a = np.ones(3)
    t = T(a, requires_grad=True)
    t.data[0] = 5.0
    assert a[0] == 1.0


def test_a_float_index_tensor_is_refused_and_a_bool_tensor_masks():
    x = tm.Tensor(np.arange(6.0).reshape(3, 2))
    with pytest.raises(IndexError, match="long, int or bool"):
        x[tm.Tensor([1, 0])]  # the Tensor class makes float32, as torch.Tensor does
    picked = x[tm.Tensor(np.array([True, False, True]), dtype=bool)]
    np.testing.assert_array_equal(picked.numpy(), np.arange(6.0).reshape(3, 2)[[0, 2]])


def test_leaf_hooks_run_after_an_in_place_change_of_the_leaf():
    # an in-place change leaves a stamp among the tensor's extras: delivery must still find
    # the hooks (and, with none, still hand over a correct gradient)
    w = tm.tensor([1.0, 2.0], requires_grad=True)
    v = tm.tensor([3.0, 4.0], requires_grad=True)
    with tm.no_grad():
        w.mul_(2.0)
        v.add_(1.0)
    seen = []
    w.register_hook(lambda g: seen.append(g.numpy().copy()) or g * 10)
    ((w * w).sum() + (v * 3.0).sum()).backward()
    assert len(seen) == 1 and np.array_equal(seen[0], [4.0, 8.0])  # 2 w, w = (2, 4)
    assert np.array_equal(w.grad.numpy(), [40.0, 80.0])
    assert np.array_equal(v.grad.numpy(), [3.0, 3.0])


def test_a_leaf_hook_runs_once_on_the_sum_of_its_edges():
    # as PyTorch: the hook sees d/dx (x^2 + 3x) = 2x + 3, not 2x and 3 apart
    x = tm.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(g.numpy().copy()) or g.clamp(max=6.0))
    ((x * x).sum() + (x * 3.0).sum()).backward()
    assert len(seen) == 1 and np.array_equal(seen[0], [5.0, 7.0])
    assert np.array_equal(x.grad.numpy(), [5.0, 6.0])  # clamped once, on the sum
    (g,) = tm.autograd.grad((x * x).sum() + (x * 3.0).sum(), x)
    assert len(seen) == 2 and np.array_equal(g.numpy(), [5.0, 6.0])


def test_a_retained_non_leaf_runs_its_hook_once():
    w = tm.tensor([2.0, 4.0], requires_grad=True)
    y = w * 1.0
    y.retain_grad()
    seen = []
    y.register_hook(lambda g: seen.append(g.numpy().copy()) or g * 10)
    (y * y).sum().backward()
    assert len(seen) == 1 and np.array_equal(seen[0], [4.0, 8.0])
    assert np.array_equal(y.grad.numpy(), [40.0, 80.0])
    assert np.array_equal(w.grad.numpy(), [40.0, 80.0])
