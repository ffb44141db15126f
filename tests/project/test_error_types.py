"""One exception type per kind of mistake, PyTorch's: the public ops, functions and modules are
called with operands of mismatched shapes and of mismatched dtypes (float32 with float64), under
tinygrad_mlp and under torch, and must raise the same built-in exception type (or both none)."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from typing import Any

import pytest

import tinygrad_mlp as tm
from tinygrad_mlp import nn as tnn
from tinygrad_mlp.nn import functional as F

torch = pytest.importorskip("torch")

BUILTIN = (RuntimeError, IndexError, TypeError, ValueError, KeyError, NotImplementedError)


def t(lib: Any, *shape: int, dtype: str = "float32") -> Any:
    """A tensor of ``shape`` filled with 0.25 under ``lib`` (tinygrad_mlp or torch)."""
    return lib.full(shape, 0.25, dtype=getattr(lib, dtype))


def long(lib: Any, *values: int) -> Any:
    return lib.tensor(list(values), dtype=lib.long)


# name -> call(lib, F, nn); each call makes a mistake of shape or dtype (or, where both
# libraries accept the mix, none)
SHAPES: dict[str, Callable] = {
    "add": lambda lib, F, nn: t(lib, 2, 3) + t(lib, 4, 5),
    "sub": lambda lib, F, nn: t(lib, 2, 3) - t(lib, 4, 5),
    "mul": lambda lib, F, nn: t(lib, 2, 3) * t(lib, 4, 5),
    "div": lambda lib, F, nn: t(lib, 2, 3) / t(lib, 4, 5),
    "pow": lambda lib, F, nn: t(lib, 2, 3) ** t(lib, 4, 5),
    "maximum": lambda lib, F, nn: lib.maximum(t(lib, 2, 3), t(lib, 4, 5)),
    "minimum": lambda lib, F, nn: lib.minimum(t(lib, 2, 3), t(lib, 4, 5)),
    "where": lambda lib, F, nn: lib.where(t(lib, 2, 3) > 0, t(lib, 4, 5), t(lib, 2, 3)),
    "eq": lambda lib, F, nn: t(lib, 2, 3) == t(lib, 4, 5),
    "lt": lambda lib, F, nn: t(lib, 2, 3) < t(lib, 4, 5),
    "matmul": lambda lib, F, nn: t(lib, 2, 3) @ t(lib, 4, 5),
    "matmul 1-D": lambda lib, F, nn: t(lib, 3) @ t(lib, 4),
    "matmul batched": lambda lib, F, nn: t(lib, 2, 2, 3) @ t(lib, 3, 4, 5),
    "mm": lambda lib, F, nn: lib.mm(t(lib, 2, 3), t(lib, 4, 5)),
    "bmm": lambda lib, F, nn: lib.bmm(t(lib, 2, 2, 3), t(lib, 2, 4, 5)),
    "dot": lambda lib, F, nn: lib.dot(t(lib, 3), t(lib, 4)),
    "cat": lambda lib, F, nn: lib.cat([t(lib, 2, 3), t(lib, 2, 4)]),
    "stack": lambda lib, F, nn: lib.stack([t(lib, 2, 3), t(lib, 2, 4)]),
    "reshape": lambda lib, F, nn: t(lib, 2, 3).reshape(7),
    "view": lambda lib, F, nn: t(lib, 2, 3).view(4, 2),
    "expand": lambda lib, F, nn: t(lib, 2, 3).expand(4, 3),
    "index": lambda lib, F, nn: t(lib, 2, 3)[5],
    "sum dim": lambda lib, F, nn: t(lib, 2, 3).sum(dim=3),
    "softmax dim": lambda lib, F, nn: F.softmax(t(lib, 2, 3), dim=2),
    "linear": lambda lib, F, nn: F.linear(t(lib, 2, 3), t(lib, 4, 5)),
    "linear bias": lambda lib, F, nn: F.linear(t(lib, 2, 3), t(lib, 4, 3), t(lib, 5)),
    "cosine_similarity": lambda lib, F, nn: F.cosine_similarity(t(lib, 2, 3), t(lib, 4, 5)),
    "mse_loss": lambda lib, F, nn: F.mse_loss(t(lib, 3), t(lib, 2)),
    "l1_loss": lambda lib, F, nn: F.l1_loss(t(lib, 3), t(lib, 2)),
    "smooth_l1_loss": lambda lib, F, nn: F.smooth_l1_loss(t(lib, 3), t(lib, 2)),
    "huber_loss": lambda lib, F, nn: F.huber_loss(t(lib, 3), t(lib, 2)),
    "kl_div": lambda lib, F, nn: F.kl_div(t(lib, 3), t(lib, 2), reduction="batchmean"),
    "binary_cross_entropy": lambda lib, F, nn: F.binary_cross_entropy(t(lib, 3), t(lib, 2)),
    "bce broadcastable": lambda lib, F, nn: F.binary_cross_entropy(t(lib, 3, 1), t(lib, 3)),
    "bce_with_logits": lambda lib, F, nn: F.binary_cross_entropy_with_logits(t(lib, 3), t(lib, 2)),
    "cross_entropy": lambda lib, F, nn: F.cross_entropy(t(lib, 3, 4), long(lib, 0, 1)),
    "cross_entropy label": lambda lib, F, nn: F.cross_entropy(t(lib, 2, 4), long(lib, 0, 7)),
    "cross_entropy probs": lambda lib, F, nn: F.cross_entropy(t(lib, 3, 4), t(lib, 3, 5)),
    "nll_loss": lambda lib, F, nn: F.nll_loss(t(lib, 3, 4), long(lib, 0, 1)),
    "layer_norm": lambda lib, F, nn: F.layer_norm(t(lib, 2, 5), (3,)),
    "embedding": lambda lib, F, nn: F.embedding(long(lib, 0, 9), t(lib, 5, 2)),
    "one_hot": lambda lib, F, nn: F.one_hot(long(lib, 0, 9), 5),
}

DTYPES: dict[str, Callable] = {
    "add": lambda lib, F, nn: t(lib, 2, 3) + t(lib, 2, 3, dtype="float64"),
    "matmul": lambda lib, F, nn: t(lib, 2, 3) @ t(lib, 3, 2, dtype="float64"),
    "matmul 1-D": lambda lib, F, nn: t(lib, 3) @ t(lib, 3, dtype="float64"),
    "matmul batched": lambda lib, F, nn: t(lib, 2, 2, 3) @ t(lib, 2, 3, 2, dtype="float64"),
    "mm": lambda lib, F, nn: lib.mm(t(lib, 2, 3), t(lib, 3, 2, dtype="float64")),
    "bmm": lambda lib, F, nn: lib.bmm(t(lib, 2, 2, 3), t(lib, 2, 3, 2, dtype="float64")),
    "dot": lambda lib, F, nn: lib.dot(t(lib, 3), t(lib, 3, dtype="float64")),
    "cat": lambda lib, F, nn: lib.cat([t(lib, 2, 3), t(lib, 2, 3, dtype="float64")]),
    "where": lambda lib, F, nn: lib.where(t(lib, 2) > 0, t(lib, 2), t(lib, 2, dtype="float64")),
    "linear": lambda lib, F, nn: F.linear(t(lib, 2, 3), t(lib, 4, 3, dtype="float64")),
    "linear bias": lambda lib, F, nn: F.linear(
        t(lib, 2, 3), t(lib, 4, 3), t(lib, 4, dtype="float64")
    ),
    "linear 3-D": lambda lib, F, nn: F.linear(t(lib, 5, 2, 3, dtype="float64"), t(lib, 4, 3)),
    "mse_loss": lambda lib, F, nn: F.mse_loss(t(lib, 3), t(lib, 3, dtype="float64")),
    "cross_entropy probs": lambda lib, F, nn: F.cross_entropy(
        t(lib, 3, 4), t(lib, 3, 4, dtype="float64")
    ),
}


def _mlp(nn: Any, second_in: int = 4) -> Any:
    """Linear(3, 4), ReLU, Linear(second_in, 2): a second_in other than 4 does not fit."""
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(second_in, 2))


# each module class: (constructor, the shape of a wrong input, the shape of a right one, which
# is also given as float64)
MODULES: dict[str, tuple[Callable, tuple, tuple]] = {
    "Linear": (lambda nn: nn.Linear(3, 4), (2, 5), (2, 3)),
    "Linear 3-D": (lambda nn: nn.Linear(3, 4), (6, 2, 5), (6, 2, 3)),
    "Linear 1-D": (lambda nn: nn.Linear(3, 4), (5,), (3,)),
    "BatchNorm1d": (lambda nn: nn.BatchNorm1d(3), (2, 5), (2, 3)),
    "LayerNorm": (lambda nn: nn.LayerNorm(3), (2, 5), (2, 3)),
    "Embedding": (lambda nn: nn.Embedding(5, 2), "index 9", (2,)),
    "Unflatten": (lambda nn: nn.Unflatten(1, (2, 2)), (2, 5), (2, 4)),
    "Flatten": (lambda nn: nn.Flatten(2, 3), (2, 5), (2, 5, 2)),
    "Softmax": (lambda nn: nn.Softmax(dim=2), (2, 5), (2, 5, 1)),
    "LogSoftmax": (lambda nn: nn.LogSoftmax(dim=2), (2, 5), (2, 5, 1)),
    "CosineSimilarity": (lambda nn: _Pair(nn.CosineSimilarity()), (2, 4), (2, 5)),
    "Sequential": (_mlp, (2, 5), (2, 3)),
    "Sequential 3-D": (_mlp, (6, 2, 5), (6, 2, 3)),
    "Sequential 1-D": (_mlp, (5,), (3,)),
    "Sequential second layer": (lambda nn: _mlp(nn, 5), (2, 3), (2, 3)),
    "Softmin": (lambda nn: nn.Softmin(dim=2), (2, 5), (2, 5, 1)),
    "GLU": (lambda nn: nn.GLU(), (2, 5), (2, 4)),
    "PReLU": (lambda nn: nn.PReLU(3), (2, 5), (2, 3)),
    "Bilinear": (lambda nn: _Pair(nn.Bilinear(3, 5, 4)), (2, 4), (2, 3)),
    "PairwiseDistance": (lambda nn: _Pair(nn.PairwiseDistance()), (2, 4), (2, 5)),
    "EmbeddingBag": (lambda nn: nn.EmbeddingBag(5, 2), "index 9", (2, 3)),
    "GroupNorm": (lambda nn: nn.GroupNorm(2, 4), (2, 5), (2, 4)),
    "InstanceNorm1d": (lambda nn: nn.InstanceNorm1d(3, affine=True), (2, 5, 4), (2, 3, 4)),
    "InstanceNorm2d": (lambda nn: nn.InstanceNorm2d(3, affine=True), (2, 5, 4, 4), (2, 3, 4, 4)),
    "BatchNorm2d": (lambda nn: nn.BatchNorm2d(3), (2, 5, 2, 2), (2, 3, 2, 2)),
    "Conv1d": (lambda nn: nn.Conv1d(3, 4, 2), (2, 5, 6), (2, 3, 6)),
    "Conv2d": (lambda nn: nn.Conv2d(3, 4, 2), (2, 5, 6, 6), (2, 3, 6, 6)),
    "ConvTranspose2d": (lambda nn: nn.ConvTranspose2d(3, 4, 2), (2, 5, 3, 3), (2, 3, 3, 3)),
    "MaxPool1d": (lambda nn: nn.MaxPool1d(2), (2, 3, 1), (2, 3, 4)),
    "MaxPool2d": (lambda nn: nn.MaxPool2d(2), (2, 1, 1), (1, 4, 4)),
    "AvgPool2d": (lambda nn: nn.AvgPool2d(2), (2, 1, 1), (1, 4, 4)),
    "AdaptiveAvgPool2d": (lambda nn: nn.AdaptiveAvgPool2d(2), (5,), (1, 4, 4)),
    "Dropout2d": (lambda nn: nn.Dropout2d(), (5,), (2, 3, 4, 4)),
    "Upsample": (lambda nn: nn.Upsample(scale_factor=2), (5,), (1, 1, 2, 3)),
}


LOSS_MODULES = (
    "MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss", "KLDivLoss", "BCELoss", "BCEWithLogitsLoss",
    "CrossEntropyLoss", "NLLLoss",
)  # fmt: skip
# modules of one input, applied elementwise: no shape or dtype of theirs can mismatch
ELEMENTWISE = (
    "CELU", "Dropout", "ELU", "GELU", "Hardsigmoid", "Hardswish", "Hardtanh", "Identity",
    "LeakyReLU", "LogSigmoid", "Mish", "ReLU", "ReLU6", "SELU", "SiLU", "Sigmoid", "Softplus",
    "Tanh", "Threshold",
)  # fmt: skip
CONTAINERS = ("Module", "ModuleDict", "ModuleList", "ParameterDict", "ParameterList")


class _Pair:
    """Calls a module of two inputs with the input and a float32 (2, 5) tensor of the library."""

    def __init__(self, module: Any) -> None:
        self.module = module

    def __call__(self, x: Any) -> Any:
        lib = tm if isinstance(x, tm.Tensor) else torch
        return self.module(x, t(lib, 2, 5))


def outcome(call: Callable) -> type | None:
    """The built-in exception type the call raises (None when it returns)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            call()
        except BUILTIN as e:
            return next(c for c in type(e).__mro__ if c in BUILTIN or c is Exception)
    return None


def both(make: Callable) -> tuple[type | None, type | None]:
    ours = outcome(lambda: make(tm, tm.nn.functional, tm.nn))
    theirs = outcome(lambda: make(torch, torch.nn.functional, torch.nn))
    return ours, theirs


@pytest.mark.parametrize("name", list(SHAPES))
def test_mismatched_shapes_raise_pytorchs_type(name):
    ours, theirs = both(SHAPES[name])
    assert ours is theirs, f"{name}: tinygrad_mlp raises {ours}, torch {theirs}"


@pytest.mark.parametrize("name", list(DTYPES))
def test_mismatched_dtypes_raise_pytorchs_type(name):
    ours, theirs = both(DTYPES[name])
    assert ours is theirs, f"{name}: tinygrad_mlp raises {ours}, torch {theirs}"


@pytest.mark.parametrize("kind", ["shape", "dtype"])
@pytest.mark.parametrize("name", list(MODULES))
def test_modules_raise_pytorchs_type(name, kind):
    build, wrong, right = MODULES[name]

    def make_input(lib: Any) -> Any:
        if kind == "dtype":
            return t(lib, *right, dtype="float64")
        return long(lib, 0, 9) if wrong == "index 9" else t(lib, *wrong)

    tm.manual_seed(0)
    ours = outcome(lambda: build(tnn)(make_input(tm)))
    theirs = outcome(lambda: build(torch.nn)(make_input(torch)))
    assert ours is theirs, f"{name} ({kind}): tinygrad_mlp raises {ours}, torch {theirs}"


@pytest.mark.parametrize("target", [(3,), (2,), (3, 1), (3, 4)])
@pytest.mark.parametrize("name", LOSS_MODULES)
def test_loss_modules_raise_pytorchs_type(name, target):
    """Targets of the same, another and a broadcastable shape, as class labels for the
    classification losses."""
    classes = name in ("CrossEntropyLoss", "NLLLoss")

    def call(lib: Any, nn: Any) -> Any:
        if classes:
            return getattr(nn, name)()(t(lib, 3, 4), long(lib, *range(target[0])))
        return getattr(nn, name)()(t(lib, 3), t(lib, *target))

    ours, theirs = outcome(lambda: call(tm, tnn)), outcome(lambda: call(torch, torch.nn))
    assert ours is theirs, f"{name} target {target}: tinygrad_mlp {ours}, torch {theirs}"


def test_every_module_class_is_walked():
    """A new module class must join one of the lists above."""
    classes = {
        name
        for name, value in vars(tnn).items()
        if inspect.isclass(value) and issubclass(value, tnn.Module)
    }
    walked = {name.split(" ")[0] for name in MODULES} | set(LOSS_MODULES)
    assert classes - walked - set(ELEMENTWISE) - set(CONTAINERS) == set()


def test_sequential_names_the_layer_at_every_rank():
    model = tnn.Sequential(tnn.Linear(3, 4), tnn.ReLU(), tnn.Linear(5, 2))
    for shape in ((3,), (2, 3), (6, 2, 3)):
        with pytest.raises(RuntimeError, match=r"Sequential layer 2 \(Linear\)"):
            model(tm.zeros(*shape))
        with pytest.raises(RuntimeError, match=r"Sequential layer 0 \(Linear\).*float64"):
            model(tm.zeros(*shape, dtype=tm.float64))
    named = tnn.Sequential(
        __import__("collections").OrderedDict(inp=tnn.Linear(3, 4), act=tnn.ReLU())
    )
    with pytest.raises(RuntimeError, match=r"Sequential layer inp \(Linear\)"):
        named(tm.zeros(6, 2, 5))


def test_mse_loss_warns_and_broadcasts_as_pytorch():
    x = tm.tensor([[1.0], [2.0], [4.0]])
    with pytest.warns(UserWarning, match=r"broadcast") as record:
        ours = tm.nn.functional.mse_loss(x, tm.tensor([0.0, 1.0, 3.0]))
    assert "deprecated" not in str(record[0].message)
    theirs = torch.nn.functional.mse_loss(
        torch.tensor([[1.0], [2.0], [4.0]]), torch.tensor([0.0, 1.0, 3.0])
    )
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-6)
    with pytest.raises(RuntimeError, match=r"does not broadcast") as info:
        tm.nn.functional.mse_loss(tm.zeros(3), tm.zeros(2))
    assert "deprecated" not in str(info.value)


ACTIVATIONS_BY_NAME = [
    "relu", "elu", "celu", "gelu", "softplus", "leaky_relu", "selu", "silu", "mish", "hardtanh",
    "relu6", "hardsigmoid", "hardswish", "logsigmoid", "sigmoid", "tanh",
]  # fmt: skip


@pytest.mark.parametrize("name", ACTIVATIONS_BY_NAME)
def test_an_activation_given_a_number_raises_pytorchs_type(name):
    torch = pytest.importorskip("torch")
    with pytest.raises(Exception) as theirs:
        getattr(torch.nn.functional, name)(0.5)
    with pytest.raises(type(theirs.value)) as ours:
        getattr(F, name)(0.5)
    assert type(ours.value) is type(theirs.value), (name, ours.value)


def b(lib: Any, *shape: int) -> Any:
    return lib.ones(shape, dtype=lib.bool)


def _of_bool(name: str) -> Callable:
    """The activation ``name`` applied to a bool tensor."""
    return lambda lib, F, nn: getattr(F, name)(b(lib, 2))


# name -> call(lib, F, nn); each makes one mistake other than a shape or a dtype mix (or, where
# both libraries accept it, none)
OTHER_MISTAKES: dict[str, Callable] = {
    "float & float": lambda lib, F, nn: t(lib, 2) & t(lib, 2),
    "int | float": lambda lib, F, nn: long(lib, 1, 2) | 1.5,
    "float << int": lambda lib, F, nn: t(lib, 2) << 1,
    "int << int": lambda lib, F, nn: long(lib, 1, 2) << 3,
    "-bool": lambda lib, F, nn: -b(lib, 2),
    "abs bool": lambda lib, F, nn: b(lib, 2).abs(),
    "bool // bool": lambda lib, F, nn: b(lib, 2) // b(lib, 2),
    "bool % bool": lambda lib, F, nn: b(lib, 2) % True,
    "fmod bool": lambda lib, F, nn: lib.fmod(b(lib, 2), b(lib, 2)),
    "int // 0": lambda lib, F, nn: long(lib, 1, 2) // 0,
    "fmod int 0": lambda lib, F, nn: lib.fmod(long(lib, 1, 2), long(lib, 0, 1)),
    **{f"F.{name} of bool": _of_bool(name) for name in ACTIVATIONS_BY_NAME},
    "F.relu of None": lambda lib, F, nn: F.relu(None),
    "F.relu inplace of None": lambda lib, F, nn: F.relu(None, inplace=True),
    "F.hardtanh of None": lambda lib, F, nn: F.hardtanh(None),
    "mT of a vector": lambda lib, F, nn: t(lib, 3).mT,
    "chunk of 0-d": lambda lib, F, nn: t(lib).chunk(2),
    "split of 0-d": lambda lib, F, nn: t(lib).split(1),
    "int amin repeated dim": lambda lib, F, nn: long(lib, 3, 1).amin(dim=(0, -1)),
    "add_ None": lambda lib, F, nn: t(lib, 3).add_(None),
    "assign None": lambda lib, F, nn: t(lib, 3).__setitem__(0, None),
    "assign str out of range": lambda lib, F, nn: t(lib, 3).__setitem__(9, "a"),
    "too many indices": lambda lib, F, nn: t(lib).__setitem__((slice(None), 0), 1.0),
    "index put of another dtype": lambda lib, F, nn: t(lib, 3).__setitem__(
        long(lib, 0, 1), t(lib, 2, dtype="float64")
    ),
    "mask fill with a 0-d of another dtype": lambda lib, F, nn: t(lib, 3).__setitem__(
        t(lib, 3) > 0, t(lib, dtype="float64")
    ),
    "0-d index with another dtype": lambda lib, F, nn: t(lib, 3).__setitem__(
        long(lib, 1)[0], t(lib, dtype="float64")
    ),
    "shape before bounds": lambda lib, F, nn: t(lib, 3, 3).__setitem__(
        long(lib, 5, 0), t(lib, 2, 1, 3)
    ),
    "bounds with a fitting value": lambda lib, F, nn: t(lib, 3, 3).__setitem__(
        long(lib, 5, 0), t(lib, 2, 3)
    ),
}


@pytest.mark.parametrize("name", list(OTHER_MISTAKES))
def test_other_mistakes_raise_pytorchs_type(name):
    ours, theirs = both(OTHER_MISTAKES[name])
    assert ours is theirs, f"{name}: tinygrad_mlp raises {ours}, torch {theirs}"
