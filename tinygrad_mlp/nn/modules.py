"""Module, Parameter and the layers that models are built from."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator
from itertools import chain
from operator import attrgetter
from typing import Any, NamedTuple

from .. import backend
from . import functional as F
from .. import ops as O
from ..backend import np
from .._tensor import Tensor, apply

__all__ = [
    "Parameter",
    "Module",
    "Linear",
    "Sequential",
    "ReLU",
    "Sigmoid",
    "Tanh",
    "Softmax",
    "LogSoftmax",
    "Identity",
    "Flatten",
    "Dropout",
]


class Parameter(Tensor):
    """A tensor that a Module owns and an optimizer updates (requires_grad by default)."""

    __slots__ = ()

    def __init__(
        self, data: Any, requires_grad: bool = True, dtype: Any = None, device: str | None = None
    ):
        super().__init__(data, requires_grad=requires_grad, dtype=dtype, device=device)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class LoadResult(NamedTuple):
    """Keys that ``load_state_dict(strict=False)`` did not find or did not expect."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class of layers and models: finds parameters in attributes, lists and dicts."""

    training: bool = True

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The computation; subclasses define it."""
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------ discovery

    def _members(self) -> Iterator[tuple[str, Any]]:
        """(name, value) for each Parameter and Module held directly, in definition order."""
        # containers nest: a list of lists or a dict of lists is searched all the way down
        stack = list(reversed(vars(self).items()))
        while stack:
            name, value = stack.pop()
            if isinstance(value, (Parameter, Module)):
                yield name, value
            elif isinstance(value, (list, tuple)):
                stack.extend(reversed([(f"{name}.{i}", v) for i, v in enumerate(value)]))
            elif isinstance(value, dict):
                stack.extend(reversed([(f"{name}.{k}", v) for k, v in value.items()]))

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """(name, module) for each direct submodule."""
        for name, value in self._members():
            if isinstance(value, Module):
                yield name, value

    def children(self) -> Iterator[Module]:
        """The direct submodules."""
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """(dotted name, module) for this module and every module below it."""
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:
            name, m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            yield name, m
            kids = [(f"{name}.{n}" if name else n, c) for n, c in m.named_children()]
            stack.extend(reversed(kids))

    def modules(self) -> Iterator[Module]:
        """This module and every module below it."""
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) for every parameter, each once, e.g. ``0.weight``."""
        seen: set[int] = set()
        for mod_name, m in self.named_modules(prefix):
            for name, value in m._members():
                if isinstance(value, Parameter) and id(value) not in seen:
                    seen.add(id(value))
                    yield (f"{mod_name}.{name}" if mod_name else name), value

    def parameters(self) -> list[Parameter]:
        """Every parameter, each once, in a stable order."""
        return [p for _, p in self.named_parameters()]

    # ------------------------------------------------------------ state

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every parameter's gradient."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad._data[...] = 0

    def train(self, mode: bool = True) -> Module:
        """Switch this module and its submodules to training mode (or evaluation)."""
        for m in self.modules():
            m.training = bool(mode)
        return self

    def eval(self) -> Module:
        """Switch to evaluation mode (dropout off)."""
        return self.train(False)

    def to(self, device: str) -> Module:
        """Move every parameter (and its gradient) to ``device`` in place."""
        for p in self.parameters():
            p._data = backend.to_device(p._data, device)
            if p.grad is not None:
                p.grad = Tensor._wrap(backend.to_device(p.grad._data, device), False, None)
        return self

    def state_dict(self) -> OrderedDict[str, Any]:
        """name -> host numpy copy of each parameter, in parameter order."""
        return OrderedDict((n, backend.to_numpy(p._data).copy()) for n, p in self.named_parameters())

    def load_state_dict(self, state_dict: dict[str, Any], strict: bool = True) -> LoadResult:
        """Copy arrays into the parameters, keeping each parameter's dtype and device.

        Every key and shape is checked before anything is written, so a refused load changes
        nothing. Missing or unexpected keys raise KeyError when ``strict``; a wrong shape raises
        ValueError naming the key and both shapes.
        """
        if not hasattr(state_dict, "items"):
            raise TypeError(
                f"load_state_dict expects a dict of arrays, got {type(state_dict).__name__}"
            )
        params = dict(self.named_parameters())
        missing = [k for k in params if k not in state_dict]
        unexpected = [k for k in state_dict if k not in params]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing keys {missing}")
            if unexpected:
                parts.append(f"unexpected keys {unexpected}")
            raise KeyError(f"load_state_dict: {' and '.join(parts)}")
        staged = []
        for name, p in params.items():
            if name not in state_dict:
                continue
            value = state_dict[name]
            value = value._data if isinstance(value, Tensor) else value
            try:
                host = backend.to_numpy(value) if backend.is_array(value) else np.asarray(value)
            except (TypeError, ValueError) as e:
                raise TypeError(
                    f"load_state_dict: value for {name!r} is not an array: {e}"
                ) from None
            if host.dtype.kind not in "biuf":
                raise TypeError(
                    f"load_state_dict: value for {name!r} is not numeric ({host.dtype})"
                )
            if tuple(host.shape) != tuple(p.shape):
                raise ValueError(
                    f"load_state_dict: shape mismatch for {name!r}: the file has "
                    f"{tuple(host.shape)}, the model expects {tuple(p.shape)}"
                )
            staged.append((p, backend.to_device(host.astype(p.dtype, copy=True), p.device)))
        for p, array in staged:
            p._data = array
        return LoadResult(missing, unexpected)

    # ------------------------------------------------------------ display

    def extra_repr(self) -> str:
        """The one-line description inside this module's repr."""
        return ""

    def __repr__(self) -> str:
        kids = list(self.named_children())
        if not kids:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, m in kids:
            body = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        lines.append(")")
        return "\n".join(lines)


def _check_features(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"Linear: {name} must be a positive int, got {value!r}")
    return int(value)


class Linear(Module):
    """y = x @ weight.T + bias, with weight (out_features, in_features) as in PyTorch."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        dtype: Any = None,
        device: str | None = None,
    ) -> None:
        self.in_features = _check_features("in_features", in_features)
        self.out_features = _check_features("out_features", out_features)
        # PyTorch's default: weight and bias uniform in +-1/sqrt(in_features)
        bound = 1 / math.sqrt(self.in_features)
        gen = backend.rng()
        dtype = np.float32 if dtype is None else dtype
        w = gen.uniform(-bound, bound, (self.out_features, self.in_features))
        self.weight = Parameter(w, dtype=dtype, device=device)
        self.bias = (
            Parameter(gen.uniform(-bound, bound, self.out_features), dtype=dtype, device=device)
            if bias
            else None
        )

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class Sequential(Module):
    """Modules applied one after another; indexable and sized like a list."""

    def __init__(self, *modules: Module) -> None:
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: argument {i} is a {type(m).__name__}, not a Module")
        self.layers = list(modules)

    def _members(self) -> Iterator[tuple[str, Any]]:
        for i, m in enumerate(self.layers):
            yield str(i), m

    # NOTE: the layers as last planned, and the plan: a list of (None, module) for a module
    # run on its own and (linears, activations) for a run of Linear layers (exactly Linear)
    # with the ReLU, Tanh or Sigmoid after each, which forward records as one fused op: the
    # same values and gradients as the modules one by one, one node and one backward loop.
    _planned: tuple = ()
    _plan: list = []

    def forward(self, x: Any) -> Any:
        layers = self.layers
        if not (isinstance(x, Tensor) and x._data.ndim == 2):
            for m in layers:
                x = m(x)
            return x
        key = tuple(layers)
        if key != self._planned:
            self._plan = _plan_stack(key)
            self._planned = key
        for linears, acts in self._plan:
            if linears is None:
                x = acts(x)
                continue
            params = list(chain.from_iterable(map(_weight_and_bias, linears)))
            if None in params:  # a Linear without bias: module by module
                for m, act in zip(linears, acts, strict=True):
                    x = m(x)
                    x = x if act is None else getattr(x, act)()
                continue
            x = apply(O.MLP, x, *params, acts=acts)
        return x

    def __getitem__(self, index: int | slice) -> Module:
        if isinstance(index, slice):
            return Sequential(*self.layers[index])
        return self.layers[index]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Module]:
        return iter(self.layers)

    def append(self, module: Module) -> Sequential:
        """Add a module at the end."""
        if not isinstance(module, Module):
            raise TypeError(f"Sequential.append: {type(module).__name__} is not a Module")
        self.layers.append(module)
        return self


class ReLU(Module):
    """max(x, 0)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.relu()


class Sigmoid(Module):
    """1 / (1 + e**-x)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.sigmoid()


class Tanh(Module):
    """Hyperbolic tangent."""

    def forward(self, x: Tensor) -> Tensor:
        return x.tanh()


_FUSED_ACTIVATIONS = {ReLU: "relu", Tanh: "tanh", Sigmoid: "sigmoid"}
_weight_and_bias = attrgetter("weight", "bias")


def _plan_stack(layers: tuple) -> list[tuple[Any, Any]]:
    """How Sequential.forward runs ``layers``: see Sequential._plan."""
    plan: list[tuple[Any, Any]] = []
    i, n = 0, len(layers)
    while i < n:
        if type(layers[i]) is not Linear:
            plan.append((None, layers[i]))
            i += 1
            continue
        linears, acts = [], []
        while i < n and type(layers[i]) is Linear:
            linears.append(layers[i])
            act = _FUSED_ACTIVATIONS.get(type(layers[i + 1])) if i + 1 < n else None
            acts.append(act)
            i += 2 if act else 1
        plan.append((tuple(linears), tuple(acts)))
    return plan


class Softmax(Module):
    """Softmax along ``axis``."""

    def __init__(self, axis: int = -1) -> None:
        self.axis = axis

    def forward(self, x: Tensor) -> Tensor:
        return x.softmax(self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class LogSoftmax(Softmax):
    """Log-softmax along ``axis``."""

    def forward(self, x: Tensor) -> Tensor:
        return x.log_softmax(self.axis)


class Identity(Module):
    """Returns its input."""

    def forward(self, x: Any) -> Any:
        return x


class Flatten(Module):
    """Merge the dimensions from ``start_dim`` on (default: all but the batch)."""

    def __init__(self, start_dim: int = 1) -> None:
        self.start_dim = start_dim

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(self.start_dim)


class Dropout(Module):
    """Inverted dropout with drop probability ``p``; the identity in eval mode."""

    def __init__(self, p: float = 0.5) -> None:
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got {p!r}")
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
