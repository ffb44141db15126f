"""Higher-order differentiation: Hessian-vector products and third derivatives of every op
against finite differences, tm.autograd.functional against hand-worked formulas (and torch when
it imports), custom Functions at first and second order, hooks, a gradient-penalty step and
Newton's method."""

from __future__ import annotations

import numpy as np
import pytest
from tensors import T
from test_registry import ALL_OPS, IDS, leaves, op_fn, sample

import tinygrad_mlp as tm
import tinygrad_mlp.autograd.functional as AF

# ---------------------------------------------------------------- every op, by finite differences


def _flat_grad(fn, values, w):
    """The gradient of sum(fn(x) * w) at ``values`` (fast path), all inputs flattened together."""
    xs = leaves(values)
    gs = tm.autograd.grad((fn(*xs) * w).sum(), xs, materialize_grads=True)
    return np.concatenate([g.numpy().ravel() for g in gs])


def _hvp(fn, values, w, v, order: int = 2, u=None):
    """H v (order 2) or d/du (H v) (order 3) of sum(fn(x) * w), through create_graph."""
    xs = leaves(values)
    gs = tm.autograd.grad((fn(*xs) * w).sum(), xs, create_graph=True, materialize_grads=True)
    total = sum((g * T(vi)).sum() for g, vi in zip(gs, v, strict=True))
    if not total.requires_grad:
        return np.zeros(sum(np.size(x) for x in values))
    hv = tm.autograd.grad(total, xs, create_graph=order > 2, materialize_grads=True)
    if order == 2:
        return np.concatenate([h.numpy().ravel() for h in hv])
    total = sum((h * T(ui)).sum() for h, ui in zip(hv, u, strict=True))
    if not total.requires_grad:
        return np.zeros(sum(np.size(x) for x in values))
    third = tm.autograd.grad(total, xs, materialize_grads=True)
    return np.concatenate([t.numpy().ravel() for t in third])


def _step(values, direction, eps):
    return [x + eps * d for x, d in zip(values, direction, strict=True)]


def _directions(values, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(np.shape(x)) for x in values]


@pytest.mark.parametrize("op", ALL_OPS, ids=IDS)
def test_hessian_vector_product_and_third_derivative_match_finite_differences(op):
    values, params = sample(op, 2, 3, seed=8)
    fn = op_fn(op, params)
    with tm.no_grad():
        w = T(np.random.default_rng(1).standard_normal(fn(*[T(x) for x in values]).shape))
    v, u = _directions(values, 2), _directions(values, 3)
    eps = 1e-5
    numerical = (
        _flat_grad(fn, _step(values, v, eps), w) - _flat_grad(fn, _step(values, v, -eps), w)
    ) / (2 * eps)
    np.testing.assert_allclose(_hvp(fn, values, w, v), numerical, rtol=1e-5, atol=1e-6)
    # the third derivative along (v, u): central differences of H v along u
    numerical3 = (
        _hvp(fn, _step(values, u, eps), w, v) - _hvp(fn, _step(values, u, -eps), w, v)
    ) / (2 * eps)
    np.testing.assert_allclose(_hvp(fn, values, w, v, 3, u), numerical3, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- tm.autograd.functional


def _cube_sum(x):
    return (x**3).sum()


X = np.array([0.5, -1.0, 2.0])


def test_hessian_of_sum_of_cubes_is_diag_6x():
    h = AF.hessian(_cube_sum, T(X))
    np.testing.assert_allclose(h.numpy(), np.diag(6 * X), rtol=1e-12)


def test_jacobian_of_elementwise_and_matrix_functions():
    a = np.array([[1.0, 2.0, 0.5], [-1.0, 0.0, 3.0]])
    np.testing.assert_allclose(AF.jacobian(lambda x: x**2, T(X)).numpy(), np.diag(2 * X))
    np.testing.assert_allclose(AF.jacobian(lambda x: T(a) @ x, T(X)).numpy(), a)
    ja, jb = AF.jacobian(lambda x, y: x * y, (T(X), T(X + 1)))
    np.testing.assert_allclose(ja.numpy(), np.diag(X + 1))
    np.testing.assert_allclose(jb.numpy(), np.diag(X))


def test_vjp_jvp_hvp_vhp_hand_worked():
    v = np.array([1.0, 2.0, -1.0])
    out, g = AF.vjp(lambda x: x**3, T(X), T(v))
    np.testing.assert_allclose(out.numpy(), X**3)
    np.testing.assert_allclose(g.numpy(), 3 * X**2 * v)
    out, jv = AF.jvp(lambda x: x.sin(), T(X), T(v))
    np.testing.assert_allclose(jv.numpy(), np.cos(X) * v, rtol=1e-12)
    for fn in (AF.hvp, AF.vhp):
        out, hv = fn(_cube_sum, T(X), T(v))
        np.testing.assert_allclose(out.item(), (X**3).sum())
        np.testing.assert_allclose(hv.numpy(), 6 * X * v)

    # a non-diagonal Hessian: f = x0 x1^2 + x2 x0: H = [[0, 2x1, 1], [2x1, 2x0, 0], [1, 0, 0]]
    def f(x):
        return x[0] * x[1] ** 2 + x[2] * x[0]

    h = np.array([[0, 2 * X[1], 1], [2 * X[1], 2 * X[0], 0], [1, 0, 0]])
    np.testing.assert_allclose(AF.hessian(f, T(X)).numpy(), h)
    np.testing.assert_allclose(AF.hvp(f, T(X), T(v))[1].numpy(), h @ v)


def test_functional_against_torch():
    torch = pytest.importorskip("torch")
    tf = torch.autograd.functional
    rng = np.random.default_rng(0)
    x, v = rng.standard_normal(4), rng.standard_normal(4)
    m = rng.standard_normal((3, 4))

    def ours(x):
        return (T(m) @ x.tanh()).sigmoid()

    def theirs(x):
        return torch.sigmoid(torch.from_numpy(m) @ torch.tanh(x))

    def scalar_ours(x):
        return (x.exp() * x.sin()).sum() + (x**2).sum() ** 2

    def scalar_theirs(x):
        return (x.exp() * x.sin()).sum() + (x**2).sum() ** 2

    tx, tv, w = torch.from_numpy(x), torch.from_numpy(v), rng.standard_normal(3)
    close = np.testing.assert_allclose
    close(AF.jacobian(ours, T(x)).numpy(), tf.jacobian(theirs, tx).numpy(), rtol=1e-10)
    close(AF.hessian(scalar_ours, T(x)).numpy(), tf.hessian(scalar_theirs, tx).numpy(), rtol=1e-10)
    close(
        AF.vjp(ours, T(x), T(w))[1].numpy(),
        tf.vjp(theirs, tx, torch.from_numpy(w))[1].numpy(),
        rtol=1e-10,
    )
    close(AF.jvp(ours, T(x), T(v))[1].numpy(), tf.jvp(theirs, tx, tv)[1].numpy(), rtol=1e-10)
    for a, b in ((AF.hvp, tf.hvp), (AF.vhp, tf.vhp)):
        close(a(scalar_ours, T(x), T(v))[1].numpy(), b(scalar_theirs, tx, tv)[1].numpy())


def test_backward_with_create_graph_then_differentiate_grad():
    x = T(X, requires_grad=True)
    (x**3).sum().backward(create_graph=True)
    assert x.grad.requires_grad
    np.testing.assert_allclose(x.grad.numpy(), 3 * X**2)
    (second,) = tm.autograd.grad(x.grad.sum(), x)
    np.testing.assert_allclose(second.numpy(), 6 * X)


# ---------------------------------------------------------------- custom Functions


class Cube(tm.autograd.Function):
    """scale * x^3, with a backward written in tensor ops (so it is differentiable again)."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.save_for_backward(x)
        ctx.scale = scale
        return x * x * x * scale

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        assert ctx.needs_input_grad == (True, False)
        return g * 3 * x * x * ctx.scale, None


class Softplus(tm.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (1 + x.exp()).log()

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / (1 + (-x).exp())


def test_custom_functions_at_first_and_second_order():
    xs = leaves([np.array([[0.3, -1.2], [2.0, 0.7]])])
    np.testing.assert_allclose(Cube.apply(xs[0], 2.0).numpy(), 2 * xs[0].numpy() ** 3)
    for fn in (lambda x: Cube.apply(x, 2.0), Softplus.apply):
        assert tm.autograd.gradcheck(fn, xs)
        assert tm.autograd.gradgradcheck(fn, xs)
    x = xs[0]
    (g,) = tm.autograd.grad(Cube.apply(x, 2.0).sum(), x, create_graph=True)
    (h,) = tm.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h.numpy(), 12 * x.numpy())


# ---------------------------------------------------------------- hooks


def test_register_hook_replaces_the_gradient_until_removed():
    x = T(X, requires_grad=True)
    y = x * 2
    seen = []
    handle = y.register_hook(lambda g: seen.append(g.numpy().copy()) or g * 10)
    z = (y * y).sum()
    z.backward(retain_graph=True)
    np.testing.assert_allclose(seen[0], 2 * y.numpy())
    np.testing.assert_allclose(x.grad.numpy(), 2 * 10 * 2 * y.numpy())
    handle.remove()
    x.grad = None
    z.backward()
    assert len(seen) == 1
    np.testing.assert_allclose(x.grad.numpy(), 2 * 2 * y.numpy())
    leaf = T(X, requires_grad=True)
    leaf.register_hook(lambda g: g * 0 + 1)
    (leaf**2).sum().backward()
    np.testing.assert_array_equal(leaf.grad.numpy(), np.ones(3))


# ---------------------------------------------------------------- training with second order


def _critic(x, w1, b1, w2):
    return (x @ w1.T + b1).tanh() @ w2


def test_gradient_penalty_step_lowers_the_loss_and_its_gradient_is_right():
    rng = np.random.default_rng(0)
    x = T(rng.standard_normal((6, 3)))
    params = leaves([rng.standard_normal((4, 3)), rng.standard_normal(4), rng.standard_normal(4)])

    def loss_fn(w1, b1, w2):
        with tm.enable_grad():  # gradcheck's finite differences run under no_grad
            xi = x.detach().requires_grad_(True)
            out = _critic(xi, w1, b1, w2)
            (gx,) = tm.autograd.grad(out.sum(), xi, create_graph=True)
            penalty = ((gx * gx).sum(dim=1) - 1) ** 2
            return out.mean() + penalty.mean() * 10

    assert tm.autograd.gradcheck(loss_fn, params)
    opt = tm.optim.SGD(params, lr=0.01)
    before = loss_fn(*params).item()
    for _ in range(5):
        opt.zero_grad()
        loss_fn(*params).backward()
        opt.step()
    assert loss_fn(*params).item() < before


def test_newton_on_logistic_regression_converges_in_few_steps():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((40, 3))
    y = (a @ [1.0, -2.0, 0.5] + rng.standard_normal(40) > 0).astype(float)
    ta, ty = T(a), T(y)

    def loss(w):  # logistic loss plus a ridge term: strictly convex, a unique optimum
        z = ta @ w
        return (z.exp().log1p() - ty * z).mean() + (w * w).sum() * 0.05

    w = np.zeros(3)
    for _ in range(8):
        tw = T(w, requires_grad=True)
        (g,) = tm.autograd.grad(loss(tw), tw)
        h = AF.hessian(loss, T(w)).numpy()
        w = w - np.linalg.solve(h, g.numpy())
    tw = T(w, requires_grad=True)
    (g,) = tm.autograd.grad(loss(tw), tw)
    assert np.abs(g.numpy()).max() < 1e-12
    # the optimum by hand: sigmoid residuals balance the ridge term
    s = 1 / (1 + np.exp(-(a @ w)))
    np.testing.assert_allclose(a.T @ (s - y) / 40 + 0.1 * w, 0, atol=1e-12)


def test_newton_on_a_quadratic_takes_one_step():
    rng = np.random.default_rng(2)
    m = rng.standard_normal((3, 3))
    q, b = m @ m.T + np.eye(3), rng.standard_normal(3)

    def f(x):
        return (x * (T(q) @ x)).sum() * 0.5 - (T(b) * x).sum()

    x = T(np.zeros(3), requires_grad=True)
    (g,) = tm.autograd.grad(f(x), x)
    step = np.linalg.solve(AF.hessian(f, x).numpy(), g.numpy())
    np.testing.assert_allclose(-step, np.linalg.solve(q, b), rtol=1e-10)


# ---------------------------------------------------------------- module hooks


def test_module_forward_hooks_see_and_replace_values_and_unfuse_sequential():
    tm.manual_seed(0)
    model = tm.nn.Sequential(tm.nn.Linear(3, 4), tm.nn.ReLU(), tm.nn.Linear(4, 2))
    x = tm.randn(5, 3)
    seen = []
    hook = model[0].register_forward_hook(lambda m, args, out: seen.append(out.detach().clone()))
    pre = model.register_forward_pre_hook(lambda m, args: (args[0] * 2,))
    y = model(x)
    # the pre-hook doubled the input; the forward hook saw layer 0's output of the doubled input
    w, b = model[0].weight.detach().numpy(), model[0].bias.detach().numpy()
    np.testing.assert_allclose(seen[0].numpy(), 2 * x.numpy() @ w.T + b, rtol=1e-6)
    assert y.op == "linear"  # layer by layer while a hook is registered
    hook.remove()
    pre.remove()
    y2 = model(x)
    assert y2.op == "mlp" and len(seen) == 1
    assert y.grad_fn.name() == y2.grad_fn.name() == "AddmmBackward0"  # PyTorch's name for both
    replace = model[2].register_forward_hook(lambda m, args, out: out * 0)
    assert float(model(x).abs().sum()) == 0.0
    replace.remove()
    with pytest.raises(TypeError, match="callable"):
        model.register_forward_hook(3)
