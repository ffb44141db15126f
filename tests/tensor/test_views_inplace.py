"""Views that share memory with their base, and in-place ops on the tape, against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import tinygrad_mlp as tm
import tinygrad_mlp.nn as nn
import tinygrad_mlp.nn.functional as F

torch = pytest.importorskip("torch")

VALUES = np.array([[0.5, -1.5, 2.0, 3.0], [-0.25, 1.0, -2.5, 0.75], [1.5, -0.5, 0.25, -3.0]])


def pair(values=VALUES, requires_grad=False):
    """The same float64 values as a tinygrad_mlp tensor and a torch tensor."""
    return (
        tm.tensor(values, dtype=tm.float64, requires_grad=requires_grad),
        torch.tensor(values, dtype=torch.float64, requires_grad=requires_grad),
    )


def same(ours, theirs, tol=1e-12):
    """Values (and shapes) equal to PyTorch's."""
    expected = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    got = ours.detach().numpy() if isinstance(ours, tm.Tensor) else np.asarray(ours)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)


# ---------------------------------------------------------------- the examples


def test_a_0d_view_written_under_no_grad_reaches_the_base():
    b = tm.tensor([1.0, 2.0, 3.0])
    with tm.no_grad():
        b[0].fill_(7.0)
    same(b, [7.0, 2.0, 3.0])


def test_a_0d_view_sees_a_later_change_of_its_base():
    b = tm.tensor([1.0, 2.0, 3.0])
    v = b[0]
    b.mul_(10)
    assert v.ndim == 0
    same(v, np.array(10.0))


def test_a_row_of_an_expanded_tensor_writes_into_the_original():
    x, xt = pair([1.0, 2.0])
    x.expand(2, 2)[0].mul_(10)
    xt.expand(2, 2)[0].mul_(10)
    same(x, xt)


def test_writing_into_all_of_an_expanded_tensor_is_refused_as_in_pytorch():
    with pytest.raises(RuntimeError, match="single memory location"):
        torch.tensor([1.0, 2.0]).expand(2, 2).mul_(10)
    with pytest.raises(RuntimeError, match="single memory location"):
        tm.tensor([1.0, 2.0]).expand(2, 2).mul_(10)


VIEWS = {
    "int": lambda t: t[1],
    "0-d": lambda t: t[1, 2],
    "slices": lambda t: t[1:, ::2],
    "ellipsis": lambda t: t[..., 1],
    "none": lambda t: t[None, 0],
    "view": lambda t: t.view(2, 6),
    "view -1": lambda t: t.view(-1),
    "reshape": lambda t: t.reshape(4, 3),
    "transpose": lambda t: t.transpose(0, 1),
    "permute": lambda t: t.permute(1, 0),
    "t": lambda t: t.t(),
    "T": lambda t: t.T,
    "mT": lambda t: t.mT,
    "expand row": lambda t: t[:1].expand(2, 4)[1],
    "unsqueeze": lambda t: t.unsqueeze(1),
    "squeeze": lambda t: t[:1].squeeze(0),
    "narrow": lambda t: t.narrow(1, 1, 2),
    "select": lambda t: t.select(1, 3),
    "unbind": lambda t: t.unbind(1)[2],
    "chunk": lambda t: t.chunk(2, 1)[1],
    "split": lambda t: t.split(2, 0)[1],
    "diagonal": lambda t: t.diagonal(),
    "diagonal offset": lambda t: t.diagonal(1),
    "data": lambda t: t.data,
    "detach": lambda t: t.detach(),
    "view of a view": lambda t: t.t()[1:].select(1, 0),
}


@pytest.mark.parametrize("name", list(VIEWS))
def test_a_view_and_its_base_see_each_others_writes(name):
    make = VIEWS[name]
    x, xt = pair()
    v, vt = make(x), make(xt)
    same(v, vt)
    assert v.is_contiguous() == vt.is_contiguous()
    v.mul_(10)  # through the view
    vt.mul_(10)
    same(x, xt)
    x.add_(1)  # through the base
    xt.add_(1)
    same(v, vt)
    v.zero_()
    vt.zero_()
    same(x, xt)


def test_view_of_a_non_contiguous_tensor_is_refused_and_reshape_copies():
    x, xt = pair()
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        xt.t().view(12)
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        x.t().view(12)
    r, rt = x.t().reshape(12), xt.t().reshape(12)
    r.fill_(0)
    rt.fill_(0)
    same(x, xt)  # a copy: the base is unchanged
    with pytest.raises(RuntimeError, match="invalid for input of size"):
        x.view(5, 2)


def test_flip_is_a_copy_as_in_pytorch():
    x, xt = pair()
    f, ft = x.flip(0), xt.flip(0)
    f.fill_(0)
    ft.fill_(0)
    same(x, xt)


# ---------------------------------------------------------------- in-place ops on the tape


INPLACE = {
    "add_": lambda h, y: h.add_(y, alpha=2),
    "sub_": lambda h, y: h.sub_(y),
    "mul_": lambda h, y: h.mul_(y),
    "div_": lambda h, y: h.div_(y * y + 1),
    "pow_": lambda h, y: h.pow_(2),
    "clamp_": lambda h, y: h.clamp_(-1.0, 1.0),
    "zero_": lambda h, y: h.zero_(),
    "fill_": lambda h, y: h.fill_(y.sum()),
    "masked_fill_": lambda h, y: h.masked_fill_(h > 0, 0.5),
    "copy_": lambda h, y: h.copy_(y * 3),
    "relu_": lambda h, y: h.relu_(),
    "+=": lambda h, y: h.__iadd__(y),
    "-=": lambda h, y: h.__isub__(y),
    "*=": lambda h, y: h.__imul__(y),
    "/=": lambda h, y: h.__itruediv__(2.0),
    "setitem": lambda h, y: h.__setitem__((slice(1, None), 0), y[0, :2]),
    "setitem index": lambda h, y: h.__setitem__([0, 2], y[1]),
    "row": lambda h, y: h[1].mul_(y[2]),
    "column": lambda h, y: h[:, 2].add_(y[0, :3]),
    "0-d": lambda h, y: h[0, 1].mul_(y[0, 0]),
}


@pytest.mark.parametrize("name", list(INPLACE))
def test_inplace_ops_inside_the_graph_differentiate_as_in_pytorch(name):
    write = INPLACE[name]
    x, xt = pair(requires_grad=True)
    y, yt = pair(VALUES[::-1].copy(), requires_grad=True)
    h, ht = x * 1.5, xt * 1.5
    alias = h
    before = h[0]
    before_t = ht[0]
    out, out_t = write(h, y), write(ht, yt)
    if name.endswith("=") or name.endswith("_"):
        assert out is h and out_t is ht  # augmented assignment keeps the object
    assert alias is h and h.grad_fn is not None and ht.grad_fn is not None
    same(h, ht)
    same(before, before_t)  # a view taken before sees the change
    (h * h).sum().backward()
    (ht * ht).sum().backward()
    same(x.grad, xt.grad)
    if yt.grad is None:
        assert y.grad is None or not y.grad.numpy().any()
    else:
        same(y.grad, yt.grad)


def test_inplace_mul_by_a_tensor_that_requires_grad_keeps_the_old_value():
    w, wt = pair([1.0, 2.0], requires_grad=True)
    y, yt = pair([3.0, 4.0], requires_grad=True)
    h, ht = w * 2, wt * 2
    h.mul_(y)
    ht.mul_(yt)
    h.sum().backward()
    ht.sum().backward()
    same(w.grad, wt.grad)
    same(y.grad, yt.grad)  # d/dy of (2w * y) is 2w: the value before the write


def test_an_alias_is_the_same_object_after_augmented_assignment():
    x = tm.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    a = h
    h += 1
    assert a is h
    same(a, [3.0, 5.0])
    h = x * 2
    v = h[0]
    h *= 10
    same(v, np.array(20.0))


def test_writing_a_tensor_that_requires_grad_into_one_that_does_not_joins_the_graph():
    w, wt = pair([1.0, 2.0], requires_grad=True)
    buf, buft = tm.zeros(3, dtype=tm.float64), torch.zeros(3, dtype=torch.float64)
    buf[1:] = w * 2
    buft[1:] = wt * 2
    assert buf.requires_grad and buf.grad_fn is not None
    (buf * tm.tensor([1.0, 2.0, 3.0], dtype=tm.float64)).sum().backward()
    (buft * torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)).sum().backward()
    same(w.grad, wt.grad)


def test_index_accumulation_into_a_buffer_as_in_a_backprop_by_hand_lecture():
    g, gt = pair(requires_grad=True)
    ix = [[2, 0], [1, 2], [0, 0]]
    dC, dCt = tm.zeros(3, 2, dtype=tm.float64), torch.zeros(3, 2, dtype=torch.float64)
    for k in range(3):
        for j in range(2):
            dC[ix[k][j]] += g[k, j]
            dCt[ix[k][j]] += gt[k, j]
    same(dC, dCt)
    (dC * dC).sum().backward()
    (dCt * dCt).sum().backward()
    same(g.grad, gt.grad)


def test_rows_of_logits_filled_by_a_model_as_in_pytorch():
    torch.manual_seed(0)
    model_t = torch.nn.Linear(4, 3).double()
    model = nn.Linear(4, 3).double()
    model.weight.data = tm.tensor(model_t.weight.detach().numpy().copy())
    model.bias.data = tm.tensor(model_t.bias.detach().numpy().copy())
    logits, logits_t = tm.zeros(3, 3, dtype=tm.float64), torch.zeros(3, 3, dtype=torch.float64)
    for i in range(3):
        logits[i] = model(tm.tensor(VALUES[i], dtype=tm.float64))
        logits_t[i] = model_t(torch.tensor(VALUES[i], dtype=torch.float64))
    same(logits, logits_t)
    target = [0, 2, 1]
    F.cross_entropy(logits, tm.tensor(target)).backward()
    torch.nn.functional.cross_entropy(logits_t, torch.tensor(target)).backward()
    same(model.weight.grad, model_t.weight.grad)
    same(model.bias.grad, model_t.bias.grad)


@pytest.mark.parametrize(
    "write", [lambda t: t.add_(1), lambda t: t[0].mul_(2), lambda t: t.__setitem__(0, 1.0)]
)
def test_inplace_on_a_leaf_that_requires_grad_is_refused_outside_no_grad(write):
    x, xt = pair([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        write(xt)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        write(x)
    with tm.no_grad():
        write(x)
    with torch.no_grad():
        write(xt)
    same(x, xt)
    assert x.grad_fn is None and x.requires_grad


def test_a_saved_tensor_changed_afterwards_fails_at_backward_naming_the_versions():
    w, wt = pair([1.0, 2.0], requires_grad=True)
    y, yt = pair([3.0, 4.0], requires_grad=True)
    h, ht = w * 2, wt * 2
    z, zt = h * y, ht * yt
    h.add_(1)  # no error yet: only at backward
    ht.add_(1)
    with pytest.raises(RuntimeError, match="is at version 1; expected version 0"):
        zt.sum().backward()
    with pytest.raises(RuntimeError, match="input 0 of op 'mul', is at version 1; expected ver"):
        z.sum().backward()


def test_a_change_that_the_backward_does_not_need_is_allowed_as_in_pytorch():
    w, wt = pair([1.0, 2.0], requires_grad=True)
    h, ht = w * 2, wt * 2
    z, zt = h * 3, ht * 3  # a product by a constant needs only the constant
    h.add_(1)
    ht.add_(1)
    (z.sum() + h.sum()).backward()
    (zt.sum() + ht.sum()).backward()
    same(w.grad, wt.grad)


def test_a_view_of_an_output_changed_in_place_fails_at_backward():
    x, xt = pair([0.5, 1.0], requires_grad=True)
    y, yt = x.exp(), xt.exp()
    y[0].mul_(2)
    yt[0].mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        yt.sum().backward()
    with pytest.raises(RuntimeError, match="output 0 of op 'exp'"):
        y.sum().backward()


ACTIVATIONS = [
    ("relu", {}),
    ("relu6", {}),
    ("leaky_relu", {"negative_slope": 0.2}),
    ("elu", {"alpha": 0.7}),
    ("selu", {}),
    ("celu", {"alpha": 1.3}),
    ("hardtanh", {"min_val": -0.5, "max_val": 2.5}),
    ("hardsigmoid", {}),
    ("hardswish", {}),
]


@pytest.mark.parametrize("name,kw", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_inplace_activations_write_into_their_input(name, kw):
    x, xt = pair([-4.0, -1.0, 0.5, 2.0, 5.0], requires_grad=True)
    h, ht = x * 1.5, xt * 1.5
    out = getattr(F, name)(h, inplace=True, **kw) + h
    out_t = getattr(torch.nn.functional, name)(ht, inplace=True, **kw) + ht
    same(out, out_t, 1e-7)  # NOTE: PyTorch keeps some activation constants in float32
    out.sum().backward()
    out_t.sum().backward()
    same(x.grad, xt.grad, 1e-7)


def test_relu_module_in_place_as_in_pytorch():
    x, xt = pair([-1.0, 2.0], requires_grad=True)
    h, ht = x * 1, xt * 1
    out, out_t = nn.ReLU(inplace=True)(h) + h, torch.nn.ReLU(inplace=True)(ht) + ht
    same(out, out_t)
    same(out, [0.0, 4.0])


# ---------------------------------------------------------------- a state machine


SHAPE = (3, 4)


def _view_ops(shape):
    """View makers that apply to a tensor of ``shape``: (name, function) pairs."""
    ops = []
    if len(shape) >= 1 and shape[0] > 0:
        ops += [
            ("index", lambda t: t[shape[0] - 1]),
            ("slice", lambda t: t[1:]),
            ("narrow", lambda t: t.narrow(0, 0, max(1, shape[0] - 1))),
            ("select", lambda t: t.select(0, 0)),
            ("unsqueeze", lambda t: t.unsqueeze(0)),
        ]
    if len(shape) >= 2:
        ops += [
            ("transpose", lambda t: t.transpose(0, 1)),
            ("step", lambda t: t[:, ::2]),
            ("diagonal", lambda t: t.diagonal()),
            ("reshape", lambda t: t.reshape(-1) if t.is_contiguous() else t[0]),
        ]
    if len(shape) == 1:
        ops += [
            ("expand", lambda t: t.expand(2, *shape)[1]),
            ("view", lambda t: t.view(shape[0], 1)),
        ]
    if len(shape) == 0:
        ops += [("unsqueeze", lambda t: t.unsqueeze(0))]
    return ops


WRITES = [
    ("add_", lambda t, other, scalar: t.add_(scalar)),
    ("mul_", lambda t, other, scalar: t.mul_(scalar)),
    ("add_ grad", lambda t, other, scalar: t.add_(other.sum() * scalar)),
    ("mul_ grad", lambda t, other, scalar: t.mul_(other.mean())),
    ("clamp_", lambda t, other, scalar: t.clamp_(-scalar, scalar)),
    ("fill_", lambda t, other, scalar: t.fill_(scalar)),
    ("copy_ grad", lambda t, other, scalar: t.copy_(other.sum() * scalar)),
    ("zero_", lambda t, other, scalar: t.zero_()),
    ("setitem", lambda t, other, scalar: t.__setitem__(..., other.sum()) if t.ndim else None),
]


COMPUTE = [  # new tensors that depend on a live one: some keep it for their backward
    ("scale", lambda t: t * 2.0 + 1.0),
    ("square", lambda t: t * t),
    ("exp", lambda t: (t * 0.25).exp()),
    ("sum", lambda t: t.sum()),
]


class ViewsAgainstPyTorch(RuleBasedStateMachine):
    """Tensors and their views kept side by side with PyTorch's; each step takes a view or
    writes in place (with grad or under no_grad, through a view or a base), then every live
    tensor is compared; at the end a backward is compared too."""

    @initialize()
    def start(self) -> None:
        self.leaf = pair(requires_grad=True)
        self.other = pair(VALUES[::-1].copy() * 0.5, requires_grad=True)
        h = (self.leaf[0] * 1.0, self.leaf[1] * 1.0)
        buf = pair(np.zeros(SHAPE))
        self.live = [self.leaf, h, buf, (h[0][1], h[1][1]), (buf[0][:, 1], buf[1][:, 1])]
        self.live.append((h[0] * 2.0 + 1.0, h[1] * 2.0 + 1.0))
        self.refused = False

    @rule(data=st.data())
    def take_view(self, data) -> None:
        i = data.draw(st.integers(0, len(self.live) - 1))
        ours, theirs = self.live[i]
        ops = _view_ops(tuple(ours.shape))
        if not ops or len(self.live) > 12:
            return
        name, make = data.draw(st.sampled_from(ops))
        note(f"live[{len(self.live)}] = {name} of live[{i}]")
        self.live.append((make(ours), make(theirs)))

    @rule(data=st.data())
    def compute(self, data) -> None:
        i = data.draw(st.integers(0, len(self.live) - 1))
        if len(self.live) > 12:
            return
        name, fn = data.draw(st.sampled_from(COMPUTE))
        note(f"live[{len(self.live)}] = {name} of live[{i}]")
        ours, theirs = self.live[i]
        self.live.append((fn(ours), fn(theirs)))

    @rule(data=st.data(), scalar=st.sampled_from([0.5, 2.0, -1.5]), grad=st.booleans())
    def write(self, data, scalar, grad) -> None:
        i = data.draw(st.integers(0, len(self.live) - 1))
        name, fn = data.draw(st.sampled_from(WRITES))
        note(f"{name} into live[{i}] {'with' if grad else 'without'} grad")
        ours, theirs = self.live[i]
        errors = []
        for t, other, mode in (
            (ours, self.other[0], tm.enable_grad() if grad else tm.no_grad()),
            (theirs, self.other[1], torch.enable_grad() if grad else torch.no_grad()),
        ):
            try:
                with mode:
                    fn(t, other, scalar)
                errors.append(None)
            except RuntimeError as e:
                errors.append(e)
        assert (errors[0] is None) == (errors[1] is None), (name, errors)

    @invariant()
    def values_match(self) -> None:
        for ours, theirs in getattr(self, "live", []):
            same(ours, theirs)
            # NOTE: reading grad_fn also makes PyTorch regenerate a stale view's history (left
            # stale, a view of a base that joined the graph later refuses in-place writes as
            # if it were a leaf)
            if ours.numel():  # NOTE: an empty view of an empty history has no grad_fn here
                assert (ours.grad_fn is None) == (theirs.grad_fn is None)
            assert ours.requires_grad == theirs.requires_grad

    @precondition(lambda self: hasattr(self, "live"))
    @rule(data=st.data())
    def backward(self, data) -> None:
        chosen = data.draw(st.sets(st.integers(0, len(self.live) - 1), min_size=1))
        note(f"backward of live{sorted(chosen)}")
        losses = []
        for side in (0, 1):
            total = None
            for k in sorted(chosen):
                t, w = self.live[k][side], 1.0 + k
                if t.requires_grad:
                    term = (t * t).sum() * w
                    total = term if total is None else total + term
            losses.append(total)
        if losses[1] is None:
            assert losses[0] is None
            return
        outcome = []
        for side, loss in enumerate(losses):
            leaf, other = self.leaf[side], self.other[side]
            leaf.grad = other.grad = None
            try:
                loss.backward(retain_graph=True)
                outcome.append(None)
            except RuntimeError as e:
                outcome.append(e)
        assert (outcome[0] is None) == (outcome[1] is None), outcome
        if outcome[0] is None:
            for a, b in (self.leaf, self.other):
                if b.grad is None:
                    assert a.grad is None or not a.grad.numpy().any()
                else:
                    same(a.grad, b.grad, 1e-9)


ViewsAgainstPyTorch.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=14,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    derandomize=True,
)
TestViewsAgainstPyTorch = ViewsAgainstPyTorch.TestCase
