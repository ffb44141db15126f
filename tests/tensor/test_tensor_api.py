"""PyTorch's Tensor and autograd surface, with values worked out by hand."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest

import tinygrad_mlp as tm


def leaf(values, dtype=None):
    return tm.tensor(values, dtype=dtype, requires_grad=True)


def close(t, expected, tol=1e-6):
    value = t.numpy() if isinstance(t, tm.Tensor) else np.asarray(t)
    np.testing.assert_allclose(value, expected, rtol=tol, atol=tol)


# ---------------------------------------------------------------- namespaces


def test_namespaces():
    assert callable(tm.tensor) and not isinstance(tm.tensor, type)
    assert isinstance(tm.tensor([1.0]), tm.Tensor)
    functional = importlib.import_module("tinygrad_mlp.nn.functional")
    assert functional is tm.nn.functional and callable(functional.relu)
    assert callable(tm.autograd.grad) and callable(tm.autograd.backward)
    x = leaf([2.0])
    tm.autograd.backward([(x * x).sum()])
    close(x.grad, [4.0])
    (g,) = tm.autograd.grad((x * x * x).sum(), [x])
    assert isinstance(g, tm.Tensor)
    close(g, [12.0])


# ---------------------------------------------------------------- dtypes


def test_dtype_names_and_aliases():
    assert tm.float16 == np.float16 and tm.half == tm.float16
    assert tm.float32 == np.float32 and tm.float == tm.float32
    assert tm.float64 == np.float64 and tm.double == tm.float64
    assert tm.int32 == np.int32 and tm.int64 == np.int64 and tm.long == tm.int64
    assert tm.bool == np.bool_


def test_dtypes_inferred_from_python_data_and_kept_from_numpy():
    assert tm.tensor(3).dtype == tm.int64
    assert tm.tensor([1, 2]).dtype == tm.int64
    assert tm.tensor(True).dtype == tm.bool
    assert tm.tensor([1.5, 2]).dtype == tm.float32
    assert tm.tensor(np.arange(3, dtype=np.int32)).dtype == tm.int32
    assert tm.tensor(np.zeros(2)).dtype == tm.float64
    assert tm.tensor([1, 2], dtype=tm.float64).dtype == tm.float64


def test_tensor_copies_and_from_numpy_shares_memory():
    a = np.zeros(3)
    t = tm.tensor(a)
    s = tm.from_numpy(a)
    a[0] = 5.0
    assert t[0].item() == 0.0 and s[0].item() == 5.0
    assert s.dtype == tm.float64
    with pytest.raises(TypeError, match="np.ndarray"):
        tm.from_numpy([1, 2])


def test_casts():
    x = tm.tensor([1.7, -2.2, 0.0])
    assert x.long().dtype == tm.int64 and x.long().tolist() == [1, -2, 0]
    assert x.int().dtype == tm.int32
    assert x.bool().tolist() == [True, True, False]
    assert x.double().dtype == tm.float64 and x.half().dtype == tm.float16
    assert tm.tensor([1, 2]).float().dtype == tm.float32
    assert x.to(tm.float64).dtype == tm.float64
    assert x.to(x.device) is x and x.float() is x
    y = x.to("cpu", tm.int64)
    assert y.dtype == tm.int64 and y.device == "cpu"
    assert x.to(dtype=tm.float16).dtype == tm.float16


def test_cast_is_differentiable():
    x = leaf([1.0, 2.0])
    (x.double() * 3).sum().backward()
    assert x.grad.dtype == tm.float32
    close(x.grad, [3.0, 3.0])


def test_only_float_tensors_require_grad():
    with pytest.raises(RuntimeError, match="floating point"):
        tm.tensor([1, 2], requires_grad=True)
    with pytest.raises(RuntimeError, match="floating point"):
        tm.tensor([1, 2]).requires_grad_()
    with pytest.raises(RuntimeError, match="floating point"):
        tm.zeros(2, dtype=tm.int64, requires_grad=True)


def test_int_and_bool_tensors_as_indices_labels_and_masks():
    x = tm.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    assert x[tm.tensor([2, 0])].tolist() == [[5.0, 6.0], [1.0, 2.0]]
    assert x[tm.tensor([True, False, True])].tolist() == [[1.0, 2.0], [5.0, 6.0]]
    assert x[x > 3].tolist() == [4.0, 5.0, 6.0]
    logits = tm.tensor([[2.0, 0.0], [0.0, 2.0]])
    labels = tm.tensor([0, 1])
    loss = tm.nn.functional.cross_entropy(logits, labels)
    close(loss, math.log(1 + math.exp(-2.0)), 1e-6)
    assert (logits.argmax(dim=1) == labels).sum().item() == 2


def test_dtype_promotion():
    i = tm.tensor([1, 2])
    assert (i * 2).dtype == tm.int64
    assert (i * 2.5).dtype == tm.float32 and (i * 2.5).tolist() == [2.5, 5.0]
    assert (i + tm.tensor([0.5, 0.5])).dtype == tm.float32
    assert (tm.tensor([True, False]) + i).tolist() == [2, 2]
    assert (i / tm.tensor([2, 4])).tolist() == [0.5, 0.5]
    assert (i / 2).dtype == tm.float32
    s = tm.tensor([True, True, False]).sum()
    assert s.dtype == tm.int64 and s.item() == 2
    assert (i + tm.tensor([1.0], dtype=tm.float64)).dtype == tm.float64


# ---------------------------------------------------------------- factories


def test_factories():
    assert tm.zeros(2, 3).shape == (2, 3) and tm.zeros(2, 3).dtype == tm.float32
    assert tm.zeros((2, 3)).tolist() == [[0.0] * 3] * 2
    assert tm.ones(2, dtype=tm.int64).tolist() == [1, 1]
    assert tm.full((2,), 7).tolist() == [7, 7] and tm.full((2,), 7).dtype == tm.int64
    assert tm.full((2,), 7.0).dtype == tm.float32
    assert tm.empty(2, 2).shape == (2, 2)
    assert tm.arange(4).tolist() == [0, 1, 2, 3] and tm.arange(4).dtype == tm.int64
    assert tm.arange(1, 7, 2).tolist() == [1, 3, 5]
    assert tm.arange(0, 1, 0.25).tolist() == [0.0, 0.25, 0.5, 0.75]
    assert tm.arange(0, 1, 0.25).dtype == tm.float32
    assert tm.linspace(0, 1, 5).tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert tm.eye(2).tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert tm.eye(2, 3).shape == (2, 3)
    w = tm.zeros(3, requires_grad=True)
    assert w.requires_grad and w.is_leaf
    assert tm.ones(2, dtype=tm.float64, device="cpu").dtype == tm.float64


def test_like_factories():
    x = tm.tensor([[1.0, 2.0]], dtype=tm.float64)
    for out, value in (
        (tm.zeros_like(x), 0.0),
        (tm.ones_like(x), 1.0),
        (tm.full_like(x, 3), 3.0),
        (tm.empty_like(x), None),
    ):
        assert out.shape == (1, 2) and out.dtype == tm.float64 and not out.requires_grad
        if value is not None:
            assert out.tolist() == [[value, value]]
    assert tm.ones_like(x, dtype=tm.int64).dtype == tm.int64
    assert tm.zeros_like(x, requires_grad=True).requires_grad
    r = tm.rand_like(x)
    assert r.shape == (1, 2) and r.dtype == tm.float64
    assert tm.randn_like(x).shape == (1, 2)


def test_random_factories_are_seeded_by_manual_seed():
    tm.manual_seed(7)
    a = (tm.rand(5), tm.randn(2, 3), tm.randint(0, 10, (4,)), tm.rand_like(tm.zeros(2)))
    tm.manual_seed(7)
    b = (tm.rand(5), tm.randn(2, 3), tm.randint(0, 10, (4,)), tm.rand_like(tm.zeros(2)))
    for x, y in zip(a, b, strict=True):
        assert tm.equal(x, y)
    assert not tm.equal(tm.rand(5), a[0])
    u = a[0].numpy()
    assert ((u >= 0) & (u < 1)).all() and a[0].dtype == tm.float32
    ints = tm.randint(3, 6, (200,))
    assert ints.dtype == tm.int64 and set(ints.tolist()) == {3, 4, 5}
    assert tm.randint(5, (3,)).shape == (3,)
    assert tm.randn(2, dtype=tm.float64, requires_grad=True).requires_grad


# ---------------------------------------------------------------- shapes


def test_size_numel_dim_shape_ndim():
    x = tm.zeros(2, 3, 4)
    assert x.size() == (2, 3, 4) and x.shape == (2, 3, 4)
    assert x.size(0) == 2 and x.size(-1) == 4 and x.size(dim=1) == 3
    assert x.numel() == 24 and x.dim() == 3 and x.ndim == 3
    with pytest.raises(IndexError, match="Dimension out of range"):
        x.size(3)


def test_shape_methods():
    x = tm.arange(6).float().reshape(2, 3)
    assert x.unsqueeze(0).shape == (1, 2, 3) and x.unsqueeze(-1).shape == (2, 3, 1)
    assert x.unsqueeze(0).squeeze().shape == (2, 3)
    assert tm.zeros(1, 2, 1).squeeze(0).shape == (2, 1)
    assert x.view(-1).tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert x.view(3, 2).tolist() == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
    assert x.reshape((3, -1)).shape == (3, 2)
    assert tm.zeros(2, 3, 4, 5).flatten(1, 2).shape == (2, 12, 5)
    assert tm.zeros(2, 3, 4).flatten(1).shape == (2, 12) and x.flatten().shape == (6,)
    assert tm.zeros(2, 3, 4).permute(2, 0, 1).shape == (4, 2, 3)
    assert x.transpose(0, 1).tolist() == [[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]]
    assert tm.zeros(2, 3, 4).transpose(0, 2).shape == (4, 3, 2)
    assert x.t().tolist() == x.T.tolist() == x.transpose(1, 0).tolist()
    row = tm.tensor([[1.0, 2.0]])
    assert row.expand(3, 2).tolist() == [[1.0, 2.0]] * 3
    assert row.expand(3, -1).shape == (3, 2)
    assert row.expand_as(tm.zeros(2, 2)).shape == (2, 2)
    assert row.repeat(2, 2).tolist() == [[1.0, 2.0, 1.0, 2.0]] * 2
    assert x.contiguous().tolist() == x.tolist()
    with pytest.raises(RuntimeError, match=r"shape '\[4\]' is invalid for input of size 6"):
        x.view(4)


def test_chunk_split_cat_stack():
    x = tm.arange(5).float()
    assert [c.tolist() for c in x.chunk(2)] == [[0.0, 1.0, 2.0], [3.0, 4.0]]
    assert [c.tolist() for c in x.split(2)] == [[0.0, 1.0], [2.0, 3.0], [4.0]]
    assert [c.tolist() for c in x.split([1, 4])] == [[0.0], [1.0, 2.0, 3.0, 4.0]]
    m = tm.zeros(2, 4)
    assert [c.shape for c in m.chunk(2, dim=1)] == [(2, 2), (2, 2)]
    a, b = tm.tensor([[1.0, 2.0]]), tm.tensor([[3.0, 4.0]])
    assert tm.cat([a, b]).tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert tm.cat([a, b], dim=1).tolist() == [[1.0, 2.0, 3.0, 4.0]]
    assert tm.stack([a, b]).shape == (2, 1, 2) and tm.stack([a, b], dim=2).shape == (1, 2, 2)
    with pytest.raises(RuntimeError, match="Sizes of tensors must match"):
        tm.cat([tm.zeros(2, 3), tm.zeros(2, 4)])
    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size"):
        tm.stack([tm.zeros(2), tm.zeros(3)])


def test_cat_stack_split_gradients():
    a, b = leaf([1.0, 2.0]), leaf([3.0])
    (tm.cat([a, b]) * tm.tensor([1.0, 2.0, 3.0])).sum().backward()
    close(a.grad, [1.0, 2.0])
    close(b.grad, [3.0])
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (tm.stack([a, b], dim=1) * tm.tensor([[1.0, 10.0], [2.0, 20.0]])).sum().backward()
    close(a.grad, [1.0, 2.0])
    close(b.grad, [10.0, 20.0])
    x = leaf([1.0, 2.0, 3.0])
    first, rest = x.split([1, 2])
    (first * 5 + (rest * rest).sum()).sum().backward()
    close(x.grad, [5.0, 4.0, 6.0])
    x = leaf([1.0, 2.0, 3.0, 4.0])
    c0, c1 = x.chunk(2)
    (c0 * 2 + c1 * 3).sum().backward()
    close(x.grad, [2.0, 2.0, 3.0, 3.0])


def test_shape_gradients():
    x = leaf([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    weights = tm.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    (x.t() * weights).sum().backward()
    close(x.grad, [[1.0, 3.0, 5.0], [2.0, 4.0, 6.0]])
    x.grad = None
    (x.view(-1) * tm.arange(6).float()).sum().backward()
    close(x.grad, [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]])
    x.grad = None
    x.unsqueeze(0).expand(4, 2, 3).sum().backward()
    close(x.grad, np.full((2, 3), 4.0))
    x.grad = None
    x.repeat(1, 2).sum().backward()
    close(x.grad, np.full((2, 3), 2.0))


# ---------------------------------------------------------------- indexing


def test_indexing_values():
    x = tm.arange(12).reshape(3, 4)
    assert x[1].tolist() == [4, 5, 6, 7]
    assert x[1, 2].item() == 6 and x[-1, -1].item() == 11
    assert x[:, 1].tolist() == [1, 5, 9]
    assert x[1:, ::2].tolist() == [[4, 6], [8, 10]]
    assert x[None].shape == (1, 3, 4) and x[:, None].shape == (3, 1, 4)
    assert x[..., 0].tolist() == [0, 4, 8]
    assert x[tm.tensor([0, 2]), tm.tensor([1, 3])].tolist() == [1, 11]
    assert x[x % 2 == 0].tolist() == [0, 2, 4, 6, 8, 10]
    with pytest.raises(IndexError):
        x[3]
    with pytest.raises(IndexError, match="long, int or bool"):
        x[tm.tensor([0.5])]


def test_indexing_gradients():
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    (x[0] * 3).sum().backward()
    close(x.grad, [[3.0, 3.0], [0.0, 0.0]])
    x.grad = None
    x[:, 1:].sum().backward()
    close(x.grad, [[0.0, 1.0], [0.0, 1.0]])
    x.grad = None
    x[tm.tensor([1, 1, 0])].sum().backward()  # a repeated index accumulates
    close(x.grad, [[1.0, 1.0], [2.0, 2.0]])
    x.grad = None
    (x[x > 2] ** 2).sum().backward()
    close(x.grad, [[0.0, 0.0], [6.0, 8.0]])
    x.grad = None
    x[None, ..., 0].sum().backward()
    close(x.grad, [[1.0, 0.0], [1.0, 0.0]])


def test_setitem_outside_a_graph_and_under_no_grad():
    x = tm.zeros(3)
    x[1] = 2.0
    x[tm.tensor([True, False, True])] = 7.0
    assert x.tolist() == [7.0, 2.0, 7.0]
    x[:] = tm.tensor([1.0, 2.0, 3.0])
    assert x.tolist() == [1.0, 2.0, 3.0]
    w = tm.ones(2, requires_grad=True)
    with tm.no_grad():
        w[0] = 5.0
    assert w.tolist() == [5.0, 1.0] and w.requires_grad and w.is_leaf
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        w[0] = 1.0


# ---------------------------------------------------------------- reductions


X = [[1.0, 2.0, 3.0], [4.0, 6.0, 5.0]]


def test_sum_mean_prod():
    x = tm.tensor(X)
    assert x.sum().item() == 21.0
    assert x.sum(dim=0).tolist() == [5.0, 8.0, 8.0]
    assert x.sum(dim=1, keepdim=True).tolist() == [[6.0], [15.0]]
    assert x.sum(dim=(0, 1)).item() == 21.0
    assert x.mean().item() == 3.5 and x.mean(dim=1).tolist() == [2.0, 5.0]
    assert x.prod(dim=1).tolist() == [6.0, 120.0] and x.prod().item() == 720.0
    assert x.sum(axis=1, keepdims=True).tolist() == [[6.0], [15.0]]
    assert x.mean(axis=0).tolist() == [2.5, 4.0, 4.0]
    with pytest.raises(IndexError, match="Dimension out of range"):
        x.sum(dim=2)


def test_max_min_with_dim_return_values_and_indices():
    x = tm.tensor(X)
    m = x.max(dim=1)
    assert m.values.tolist() == [3.0, 6.0] and m.indices.tolist() == [2, 1]
    values, indices = x.min(dim=0)
    assert values.tolist() == [1.0, 2.0, 3.0] and indices.tolist() == [0, 0, 0]
    assert indices.dtype == tm.int64
    k = x.max(dim=0, keepdim=True)
    assert k.values.shape == (1, 3) and k.indices.shape == (1, 3)
    assert x.max().item() == 6.0 and x.min().item() == 1.0
    assert x.amax(dim=1).tolist() == [3.0, 6.0] and x.amin(dim=0).tolist() == [1.0, 2.0, 3.0]
    assert x.argmax().item() == 4 and x.argmax(dim=1).tolist() == [2, 1]
    assert x.argmin(dim=0, keepdim=True).tolist() == [[0, 0, 0]]
    assert x.max(axis=1).values.tolist() == [3.0, 6.0]


def test_max_gradient_goes_to_the_chosen_element():
    x = leaf(X)
    x.max(dim=1).values.sum().backward()
    close(x.grad, [[0, 0, 1], [0, 1, 0]])


def test_std_var_default_correction_and_norm():
    x = tm.tensor([1.0, 2.0, 3.0, 4.0])
    close(x.var(), 5.0 / 3.0)  # sum of squared deviations 5, divided by n - 1
    close(x.var(correction=0), 1.25)
    close(x.var(unbiased=False), 1.25)
    close(x.std(), math.sqrt(5.0 / 3.0))
    close(tm.tensor(X).var(dim=1), [1.0, 1.0])
    close(tm.tensor(X).std(dim=0, keepdim=True), [[2.1213203, 2.8284271, 1.4142135]])
    v = tm.tensor([3.0, -4.0])
    close(v.norm(), 5.0)
    close(v.norm(p=1), 7.0)
    close(v.norm(p=float("inf")), 4.0)
    close(v.norm(p=3), (27.0 + 64.0) ** (1 / 3))
    close(tm.tensor([[3.0, 4.0], [6.0, 8.0]]).norm(dim=1), [5.0, 10.0])


def test_logsumexp_softmax_log_softmax():
    x = tm.tensor([[0.0, math.log(3.0)], [1.0, 1.0]])
    close(x.logsumexp(dim=1), [math.log(4.0), 1.0 + math.log(2.0)])
    close(x.logsumexp(dim=1, keepdim=True).shape, (2, 1))
    close(x.softmax(dim=1), [[0.25, 0.75], [0.5, 0.5]])
    close(tm.nn.functional.softmax(x, dim=-1), [[0.25, 0.75], [0.5, 0.5]])
    close(tm.nn.functional.log_softmax(x, dim=1), np.log([[0.25, 0.75], [0.5, 0.5]]))
    close(x.softmax(dim=0)[:, 0], [1 / (1 + math.e), math.e / (1 + math.e)])


def test_all_any():
    b = tm.tensor([[True, False], [True, True]])
    assert b.all().item() is False and b.any().item() is True
    assert b.all(dim=1).tolist() == [False, True]
    assert b.any(dim=0, keepdim=True).tolist() == [[True, True]]
    assert (tm.tensor(X) > 0).all().item() is True


# ---------------------------------------------------------------- comparisons and selection


def test_comparisons_return_bool_tensors():
    a, b = tm.tensor([1.0, 2.0, 3.0]), tm.tensor([3.0, 2.0, 1.0])
    cases = {
        "eq": [False, True, False],
        "ne": [True, False, True],
        "lt": [True, False, False],
        "le": [True, True, False],
        "gt": [False, False, True],
        "ge": [False, True, True],
    }
    operators = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
    for name, expected in cases.items():
        by_method = getattr(a, name)(b)
        by_operator = eval(f"a {operators[name]} b")
        assert by_method.dtype == tm.bool and by_method.tolist() == expected
        assert by_operator.dtype == tm.bool and by_operator.tolist() == expected
        assert getattr(tm, name)(a, b).tolist() == expected
    assert (a > 1.5).tolist() == [False, True, True]
    assert (tm.tensor([1, 2]) == 2).tolist() == [False, True]
    assert (tm.tensor([1, 2]) == tm.tensor([1.0, 2.5])).tolist() == [True, False]


def test_where_masked_fill_maximum_minimum():
    x = leaf([1.0, -2.0, 3.0])
    y = tm.where(x > 0, x, tm.zeros(3))
    assert y.tolist() == [1.0, 0.0, 3.0]
    y.sum().backward()
    close(x.grad, [1.0, 0.0, 1.0])
    assert tm.where(x > 0, x, 0.0).tolist() == [1.0, 0.0, 3.0]
    assert tm.where(tm.tensor([True, False]), 1.0, -1.0).tolist() == [1.0, -1.0]
    assert x.masked_fill(x < 0, 9.0).tolist() == [1.0, 9.0, 3.0]
    with pytest.raises(RuntimeError, match="boolean"):
        x.masked_fill(tm.tensor([1, 0, 1]), 0.0)
    a, b = tm.tensor([1.0, 5.0]), tm.tensor([3.0, 2.0])
    assert tm.maximum(a, b).tolist() == [3.0, 5.0] and tm.minimum(a, b).tolist() == [1.0, 2.0]


def test_clamp_with_numbers_and_tensors():
    x = leaf([-2.0, 0.5, 3.0])
    assert x.clamp(-1, 1).tolist() == [-1.0, 0.5, 1.0]
    assert x.clamp(min=0).tolist() == [0.0, 0.5, 3.0]
    assert x.clamp(max=0).tolist() == [-2.0, 0.0, 0.0]
    assert x.clamp(min=tm.tensor([0.0, 1.0, 0.0])).tolist() == [0.0, 1.0, 3.0]
    assert tm.clamp(x, max=tm.tensor(2.0)).tolist() == [-2.0, 0.5, 2.0]
    x.clamp(-1, 1).sum().backward()
    close(x.grad, [0.0, 1.0, 0.0])


def test_isnan_isinf_isfinite_allclose_equal():
    x = tm.tensor([float("nan"), 1.0, float("inf"), -float("inf")])
    assert x.isnan().tolist() == [True, False, False, False]
    assert x.isinf().tolist() == [False, False, True, True]
    assert x.isfinite().tolist() == [False, True, False, False]
    a = tm.tensor([1.0, 2.0])
    assert tm.allclose(a, a + 1e-7) and not tm.allclose(a, a + 1e-3)
    assert tm.equal(a, tm.tensor([1.0, 2.0])) and not tm.equal(a, tm.tensor([1.0, 2.5]))
    assert not tm.equal(a, tm.tensor([1.0, 2.0, 3.0]))


def test_tensor_hashes_by_identity():
    a, b = tm.tensor([1.0]), tm.tensor([1.0])
    table = {a: "a", b: "b"}
    assert table[a] == "a" and table[b] == "b" and len({a, b, a}) == 2


# ---------------------------------------------------------------- maths


UNARY = {
    # name: (input, value, derivative)
    "sqrt": (4.0, 2.0, 0.25),
    "rsqrt": (4.0, 0.5, -0.0625),
    "square": (3.0, 9.0, 6.0),
    "reciprocal": (2.0, 0.5, -0.25),
    "exp": (0.0, 1.0, 1.0),
    "log": (2.0, math.log(2.0), 0.5),
    "log1p": (1.0, math.log(2.0), 0.5),
    "expm1": (0.0, 0.0, 1.0),
    "sin": (0.0, 0.0, 1.0),
    "cos": (0.0, 1.0, 0.0),
    "abs": (-3.0, 3.0, -1.0),
    "sign": (-3.0, -1.0, 0.0),
    "neg": (3.0, -3.0, -1.0),
}


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_maths_values_and_gradients(name):
    value, expected, derivative = UNARY[name]
    x = leaf([value], tm.float64)
    out = getattr(x, name)()
    close(out, [expected], 1e-12)
    close(getattr(tm, name)(x), [expected], 1e-12)
    out.sum().backward()
    close(x.grad, [derivative], 1e-12)


def test_binary_maths_values_and_gradients():
    a, b = leaf([3.0]), leaf([2.0])
    cases = [
        (a.add(b), 5.0, 1.0, 1.0),
        (a.sub(b), 1.0, 1.0, -1.0),
        (a.mul(b), 6.0, 2.0, 3.0),
        (a.div(b), 1.5, 0.5, -0.75),
        (a.pow(b), 9.0, 6.0, 9.0 * math.log(3.0)),
        (tm.add(a, b, alpha=2), 7.0, 1.0, 2.0),
        (tm.sub(a, b), 1.0, 1.0, -1.0),
        (tm.mul(a, b), 6.0, 2.0, 3.0),
        (tm.div(a, b), 1.5, 0.5, -0.75),
        (tm.pow(a, 2), 9.0, 6.0, 0.0),
    ]
    for out, value, da, db in cases:
        a.grad = b.grad = None
        close(out, [value], 1e-5)
        out.sum().backward()
        close(a.grad, [da], 1e-5)
        close(b.grad if b.grad is not None else [0.0], [db], 1e-5)


def test_matmul_mm_values_and_gradients():
    a = leaf([[1.0, 2.0], [3.0, 4.0]])
    b = leaf([[5.0], [6.0]])
    expected = [[17.0], [39.0]]
    assert a.matmul(b).tolist() == expected and tm.matmul(a, b).tolist() == expected
    assert a.mm(b).tolist() == expected and tm.mm(a, b).tolist() == expected
    assert (a @ b).tolist() == expected
    (a @ b).sum().backward()
    close(a.grad, [[5.0, 6.0], [5.0, 6.0]])
    close(b.grad, [[4.0], [6.0]])
    with pytest.raises(RuntimeError, match=r"\(2, 2\) and \(3,\)"):
        a @ tm.ones(3)


def test_broadcasting_gradient_is_summed_back():
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    b = leaf([10.0, 20.0])
    (x * b).sum().backward()
    close(b.grad, [4.0, 6.0])
    close(x.grad, [[10.0, 20.0], [10.0, 20.0]])
    with pytest.raises(RuntimeError, match=r"\(2,\) and \(3,\)"):
        tm.ones(2) + tm.ones(3)


# ---------------------------------------------------------------- Python protocol


def test_python_protocol():
    loss = tm.tensor(0.123456)
    assert f"{loss:.4f}" == "0.1235" and f"{loss}" == "0.12345600128173828"
    with pytest.raises(TypeError, match="0-d"):
        f"{tm.tensor([2.5]):.1f}"  # as PyTorch: only a 0-d tensor formats as a number
    assert tm.tensor(5).item() == 5 and isinstance(tm.tensor(5).item(), int)
    assert tm.tensor([[4.25]]).item() == 4.25
    assert tm.tensor([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]
    assert tm.tensor(2.0).tolist() == 2.0
    assert float(tm.tensor(2.5)) == 2.5 and int(tm.tensor(3.7)) == 3
    assert bool(tm.tensor(1.0)) and not bool(tm.tensor(0.0))
    x = tm.tensor([1.0, 2.0], device="cpu")
    n = x.numpy()
    assert isinstance(n, np.ndarray) and n.dtype == np.float32
    n[0] = 9.0
    assert x[0].item() == 9.0  # shared memory on the CPU, as in PyTorch
    assert len(x) == 2 and [v.item() for v in x] == [9.0, 2.0]
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(tm.zeros(2))
    with pytest.raises(RuntimeError, match="2 elements cannot be converted to Scalar"):
        tm.zeros(2).item()  # PyTorch's type and words
    with pytest.raises(ValueError, match="only one element"):
        float(tm.zeros(2))


@pytest.mark.skipif(
    tm.backend.default_device() != "cpu", reason="a tensor on another device shows device="
)
def test_repr_like_pytorch():
    assert repr(tm.tensor([1, 2])) == "tensor([1, 2])"
    assert repr(tm.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(tm.tensor([True])) == "tensor([True])"
    assert repr(tm.tensor([True, False])) == "tensor([ True, False])"
    x = leaf([1.0, 2.0])
    assert repr(x) == "tensor([1., 2.], requires_grad=True)"
    assert repr(x * 2) == "tensor([2., 4.], grad_fn=<MulBackward0>)"
    assert repr(tm.tensor([[1.0, 2.0], [3.0, 4.0]])) == "tensor([[1., 2.],\n        [3., 4.]])"
    assert repr(tm.tensor([1.0], dtype=tm.float64)) == "tensor([1.], dtype=tinygrad_mlp.float64)"
    assert repr(tm.tensor([0.5, 1e-5])) == "tensor([5.0000e-01, 1.0000e-05])"


# ---------------------------------------------------------------- autograd attributes


def test_grad_is_a_tensor_and_data_a_detached_view():
    x = leaf([1.0, 2.0])
    assert x.grad is None
    (x * x).sum().backward()
    assert isinstance(x.grad, tm.Tensor) and x.grad.tolist() == [2.0, 4.0]
    d = x.data
    assert isinstance(d, tm.Tensor) and not d.requires_grad and d.grad_fn is None
    d[0] = 7.0
    assert x[0].item() == 7.0


def test_grad_fn_is_leaf_requires_grad_():
    x = leaf([1.0])
    assert x.grad_fn is None and x.is_leaf
    y = x * 2
    assert y.grad_fn is not None and y.grad_fn.name() == "MulBackward0" and not y.is_leaf
    assert (x + 1).grad_fn.name() == "AddBackward0"
    assert x.exp().grad_fn.name() == "ExpBackward0"
    c = tm.tensor([1.0])
    assert c.is_leaf and c.grad_fn is None and not c.requires_grad
    assert c.requires_grad_() is c and c.requires_grad
    assert c.requires_grad_(False) is c and not c.requires_grad
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad_(False)
    with tm.no_grad():
        z = x * 2
    assert z.grad_fn is None and not z.requires_grad


def test_retain_grad():
    x = leaf([1.0, 2.0])
    y = x * 2
    assert not y.retains_grad
    y.retain_grad()
    assert y.retains_grad
    (y * y).sum().backward()
    close(y.grad, [4.0, 8.0])
    close(x.grad, [8.0, 16.0])
    z = x * 3
    (z * z).sum().backward()
    assert z.grad is None  # not retained
    with pytest.raises(RuntimeError, match="requires_grad=False"):
        tm.tensor([1.0]).retain_grad()


def test_detach_detach_clone():
    x = leaf([1.0, 2.0])
    d = x.detach()
    assert not d.requires_grad and d.is_leaf
    d[0] = 5.0
    assert x[0].item() == 5.0  # shares memory
    y = x * 2
    assert y.detach_() is y and not y.requires_grad and y.is_leaf
    c = x.clone()
    assert c.grad_fn is not None and c.tolist() == x.tolist()
    c2 = tm.tensor([1.0, 2.0]).clone()
    c2[0] = 3.0
    (c * c).sum().backward()
    close(x.grad, [10.0, 4.0])


def test_backward_arguments():
    x = leaf([1.0, 2.0])
    (x * x).backward(gradient=tm.tensor([1.0, 10.0]))
    close(x.grad, [2.0, 40.0])
    with pytest.raises(RuntimeError, match="scalar"):
        (x * x).backward()
    x.grad = None
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    close(x.grad, [4.0, 8.0])  # accumulated over the two calls
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()
    t = leaf(3.0)
    (t**3).backward(create_graph=True)
    g = t.grad
    assert g.requires_grad and g.item() == 27.0
    t.grad = None
    g.backward()
    close(t.grad, 18.0)
    a, b = leaf(3.0), leaf(2.0)
    (a * b).backward(inputs=[a])
    assert a.grad.item() == 2.0 and b.grad is None
    with pytest.raises(RuntimeError):
        tm.tensor([1.0]).sum().backward()


# ---------------------------------------------------------------- in-place ops


INPLACE = {
    "add_": lambda t: t.add_(1.0),
    "sub_": lambda t: t.sub_(1.0),
    "mul_": lambda t: t.mul_(2.0),
    "div_": lambda t: t.div_(2.0),
    "zero_": lambda t: t.zero_(),
    "fill_": lambda t: t.fill_(3.0),
    "copy_": lambda t: t.copy_(tm.tensor([5.0, 6.0])),
    "clamp_": lambda t: t.clamp_(0.0, 1.5),
    "masked_fill_": lambda t: t.masked_fill_(tm.tensor([True, False]), 0.0),
    "normal_": lambda t: t.normal_(),
    "uniform_": lambda t: t.uniform_(),
}


@pytest.mark.parametrize("name", list(INPLACE))
def test_inplace_on_a_leaf_requiring_grad_is_refused(name):
    w = tm.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        INPLACE[name](w)
    assert w.tolist() == [1.0, 2.0]


@pytest.mark.parametrize("op", ["+=", "-=", "*=", "/="])
def test_augmented_assignment_on_a_leaf_requiring_grad_is_refused(op):
    w = tm.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        exec(f"w {op} 2.0", {"w": w})


def test_inplace_values():
    x = tm.tensor([1.0, 2.0])
    y = x
    x.add_(1.0)
    x.sub_(tm.tensor([1.0, 1.0]), alpha=2)
    x.mul_(4.0)
    x.div_(2.0)
    assert x is y and x.tolist() == [0.0, 2.0]
    x += 1
    x -= 0.5
    x *= 2
    x /= 3
    assert x is y and x.tolist() == [pytest.approx(1 / 3), pytest.approx(5 / 3)]
    expected = {
        "add_": [2.0, 3.0],
        "sub_": [0.0, 1.0],
        "mul_": [2.0, 4.0],
        "div_": [0.5, 1.0],
        "zero_": [0.0, 0.0],
        "fill_": [3.0, 3.0],
        "copy_": [5.0, 6.0],
        "clamp_": [1.0, 1.5],
        "masked_fill_": [0.0, 2.0],
    }
    for name, values in expected.items():
        t = tm.tensor([1.0, 2.0])
        assert INPLACE[name](t) is t and t.tolist() == values
    tm.manual_seed(0)
    u = tm.zeros(1000).uniform_(2.0, 3.0).numpy()
    assert u.min() >= 2.0 and u.max() < 3.0
    n = tm.zeros(2000).normal_(1.0, 0.5).numpy()
    assert abs(n.mean() - 1.0) < 0.05 and abs(n.std() - 0.5) < 0.05


def test_manual_sgd_under_no_grad_updates_the_same_object():
    model = tm.nn.Linear(2, 1)
    params = list(model.parameters())
    before = [p.detach().clone() for p in params]
    x = tm.tensor([[1.0, 2.0]])
    model(x).sum().backward()
    lr = 0.1
    with tm.no_grad():
        for p in model.parameters():
            q = p
            p -= lr * p.grad
            assert p is q and p.is_leaf and p.requires_grad
    weight, bias = model.weight, model.bias
    assert weight is params[0] and bias is params[1]
    close(weight, before[0].numpy() - lr * np.array([[1.0, 2.0]]))
    close(bias, before[1].numpy() - lr)
    model.zero_grad()
    assert all(p.grad is None or not p.grad.numpy().any() for p in model.parameters())
    w = tm.tensor([1.0], requires_grad=True)
    (w * 3).sum().backward()
    with tm.no_grad():
        w -= 0.5 * w.grad
        w.grad.zero_()
    assert w.tolist() == [-0.5] and w.grad.tolist() == [0.0]


def test_a_saved_tensor_changed_in_place_makes_backward_raise():
    w = tm.tensor([1.0, 2.0], requires_grad=True)
    c = tm.tensor([3.0, 4.0])
    y = w * c  # mul saves c for w's gradient
    c.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation.*'mul'"):
        y.sum().backward()


def test_an_input_of_exp_changed_in_place_makes_backward_raise():
    x = tm.tensor([0.0, 1.0], requires_grad=True)
    c = tm.tensor([1.0, 1.0])
    y = (x * c).exp()
    c.mul_(2.0)
    with pytest.raises(RuntimeError, match="inplace operation.*'mul'"):
        y.sum().backward()
    h = tm.tensor([0.0, 1.0])
    x2 = tm.tensor([1.0, 1.0], requires_grad=True)
    y = (x2 + h).exp()  # add saves nothing: changing h is safe
    h.add_(1.0)
    y.sum().backward()
    close(x2.grad, np.exp([1.0, 2.0]), 1e-6)


def test_changing_w_through_data_is_not_counted_but_through_detach_is_as_in_pytorch():
    torch = pytest.importorskip("torch")
    w, wt = tm.tensor([1.0, 2.0], requires_grad=True), torch.tensor([1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()  # warm: nothing changed
    w.grad, y, yt = None, (w * w).sum(), (wt * wt).sum()
    w.data.add_(1.0)  # .data shares the memory but not the version counter
    wt.data.add_(1.0)
    y.backward()
    yt.backward()
    close(w.grad, wt.grad.numpy())
    y = (w * w).sum()
    w.detach().add_(1.0)  # detach() shares both
    with pytest.raises(RuntimeError, match="'mul'.*version 1; expected version 0"):
        y.backward()


def test_inplace_on_a_non_leaf_inside_the_graph_is_recorded_as_in_pytorch():
    torch = pytest.importorskip("torch")
    x, xt = tm.tensor([1.0, 2.0], requires_grad=True), torch.tensor([1.0, 2.0], requires_grad=True)
    h, ht = x * 2, xt * 2
    alias = h
    h.add_(1.0)
    ht.add_(1.0)
    h += x  # the same object, as in PyTorch
    ht += xt
    assert h is alias and h.grad_fn is not None
    (h * h).sum().backward()
    (ht * ht).sum().backward()
    close(h, ht.detach().numpy())
    close(x.grad, xt.grad.numpy())


def test_inplace_dtype_that_does_not_fit_is_refused():
    with pytest.raises(RuntimeError, match="can't be cast"):
        tm.tensor([1, 2]).add_(0.5)


def test_an_output_saved_by_its_op_changed_in_place_makes_backward_raise():
    x = tm.tensor([0.0, 1.0], requires_grad=True)
    y = x.exp()  # exp's backward reads its output
    with tm.no_grad():
        y.mul_(2.0)
    with pytest.raises(RuntimeError, match="output 0 of op 'exp', is at version 1; expected ver"):
        y.sum().backward()
    x = tm.tensor([0.0, 1.0], requires_grad=True)
    y = x.relu()
    y.relu_()  # recorded: relu_'s own output is saved at version 1
    y.mul_(2.0)
    with pytest.raises(RuntimeError, match="output 0 of op 'relu', is at version 2; expected ver"):
        y.sum().backward()
    x = tm.tensor([0.0, 1.0], requires_grad=True)
    y = x * 2.0  # mul does not need its output: changing it is harmless
    with tm.no_grad():
        y.add_(1.0)
    y.sum().backward()
    close(x.grad, [2.0, 2.0])


def test_zero_dim_operands_take_the_dtype_of_the_other_as_in_pytorch():
    batch = tm.tensor([1.0, 2.0])
    assert (batch * tm.tensor(0.5, dtype=tm.float64)).dtype == tm.float32
    assert (tm.tensor(0.5, dtype=tm.float64) + batch).dtype == tm.float32
    assert (tm.tensor([1, 2], dtype=tm.int32) + tm.tensor(3)).dtype == tm.int32
    assert (tm.tensor([1, 2]) * tm.tensor(0.5, dtype=tm.float64)).dtype == tm.float64
    assert (batch + batch.double()).dtype == tm.float64
    assert tm.tensor(np.float64(2.0)).dtype == tm.float64  # a numpy scalar keeps its dtype
    assert tm.tensor(np.int32(2)).dtype == tm.int32
    joined = tm.cat([tm.tensor([1]), tm.tensor([1.5])])
    assert joined.dtype == tm.float32 and joined.tolist() == [1.0, 1.5]
    picked = tm.where(tm.tensor([True, False]), 1, 0)
    assert picked.dtype == tm.int64 and picked.tolist() == [1, 0]


@pytest.mark.parametrize(
    "make",
    [lambda x: x[:2], lambda x: x.view(3)[:2], lambda x: x.reshape(1, 3).t()[:2, 0]],
    ids=["slice", "view-slice", "transpose"],
)
def test_a_view_saved_by_an_op_sees_in_place_changes_of_its_base(make):
    x = tm.ones(3)
    w = tm.ones(2, requires_grad=True)
    y = (w * make(x)).sum()  # mul saves the view for w's gradient
    x.add_(1.0)  # changes the view's memory too: its gradient [1, 1] would now read [2, 2]
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()
    sibling = tm.ones(3)
    y = (w * sibling[:2]).sum()
    sibling[1:].mul_(3.0)  # another view of the same memory
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()
    v = tm.zeros(2, 3)
    v.view(-1)[0] = 7.0  # a view writes through to its base, as in PyTorch
    assert v[0, 0].item() == 7.0
