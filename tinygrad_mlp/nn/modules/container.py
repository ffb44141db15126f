"""Sequential, ModuleList, ModuleDict, ParameterList and ParameterDict, as in torch.nn."""

from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from itertools import chain
from operator import attrgetter
from typing import Any

from ... import ops as O
from ..._tensor import Tensor
from ...autograd.graph import apply
from .linear import Linear
from .module import Module, Parameter, RemovableHandle

_NONE_TYPE = type(None)  # compared by type: `None in params` would call Tensor.__eq__

__all__ = ["Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict"]


def _renumber(owner: Module, modules: list[Module]) -> None:
    """Register ``modules`` as the children '0', '1', ... of ``owner``, replacing all others."""
    for key in list(owner._modules):
        del owner._modules[key]
        owner.__dict__.pop(key, None)
    for i, m in enumerate(modules):
        owner.add_module(str(i), m)


def _index(index: Any, n: int, what: str) -> int:
    index = operator.index(index)
    if not -n <= index < n:
        raise IndexError(f"index {index} is out of range")
    return index % n


def _named_call(name: str, module: Module, x: Any) -> Any:
    """module(x), with an error's message naming the Sequential layer that raised it."""
    try:
        return module(x)
    except (ValueError, TypeError, RuntimeError, IndexError) as e:
        try:
            named = type(e)(f"Sequential layer {name} ({type(module).__name__}): {e}")
        except Exception:  # an exception class that wants other arguments: keep it as it is
            raise e from None
        raise named from None


class Sequential(Module):
    """Modules applied one after another: ``Sequential(m0, m1, ...)`` or
    ``Sequential(OrderedDict(name=module, ...))``; indexable and sized like a list.

    On a 2-D input, each run of Linear layers with the activation after each (any module whose
    class declares ``_fused_act``) is recorded as one fused op, ``mlp``: the same values and
    gradients as the modules one by one, one node and one backward loop.
    """

    def __init__(self, *args: Any) -> None:
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            items = list(args[0].items())
        else:
            items = [(str(i), m) for i, m in enumerate(args)]
        for i, (name, m) in enumerate(items):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: argument {i} is a {type(m).__name__}, not a Module")
            self.add_module(name, m)

    @property
    def layers(self) -> list[Module]:
        """The modules in order (kept for older code; PyTorch has no such attribute)."""
        return list(self._modules.values())

    # NOTE: the layers as last planned, and the plan: a list of (None, module) for a module run
    # on its own and (linears, acts, first) for a run of Linear layers with the activation after
    # each, which forward records as one op; `first` is the position of the run's first layer.
    _planned: tuple = ()
    _plan: list = []
    _live: tuple = ()  # (module, fused form) of activations with settings (a slope, an alpha)

    def forward(self, input: Any) -> Any:
        layers = tuple(self._modules.values())
        x = input
        if not (isinstance(x, Tensor) and x._data.ndim == 2) or (
            RemovableHandle.live and any(m._has_hooks for m in layers)
        ):
            for name, m in self._modules.items():  # hooks see each call: nothing is fused
                x = _named_call(name, m, x)
            return x
        if layers != self._planned or (self._live and _settings_changed(self._live)):
            self.__dict__["_plan"] = _plan_stack(layers)
            self.__dict__["_planned"] = layers
            self.__dict__["_live"] = _settings_of(layers)
        for linears, acts, first in self._plan:
            if linears is None:
                x = acts(x)
                continue
            params = list(chain.from_iterable(map(_weight_and_bias, linears)))
            if _NONE_TYPE in map(type, params):  # a Linear without bias: module by module
                x = self._one_by_one(x, first)
                continue
            try:
                x = apply(O.MLP, x, *params, acts=acts)
            except (ValueError, TypeError):
                x = self._one_by_one(x, first)  # raises the error of the layer at fault
        return x

    def _one_by_one(self, x: Tensor, first: int) -> Tensor:
        """Run the fused stretch starting at layer ``first`` module by module, naming the layer
        in any error."""
        linears, acts, _ = next(p for p in self._plan if p[2] == first)
        count = len(linears) + sum(a is not None for a in acts)
        for name, m in list(self._modules.items())[first : first + count]:
            x = _named_call(name, m, x)
        return x

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return Sequential(OrderedDict(list(self._modules.items())[index]))
        return list(self._modules.values())[_index(index, len(self), "Sequential")]

    def __setitem__(self, index: int, module: Module) -> None:
        key = list(self._modules)[_index(index, len(self), "Sequential")]
        setattr(self, key, module)

    def __delitem__(self, index: int | slice) -> None:
        keys = list(self._modules)
        doomed = keys[index] if isinstance(index, slice) else [keys[_index(index, len(keys), "")]]
        for key in doomed:
            delattr(self, key)
        _renumber(self, list(self._modules.values()))  # PyTorch renumbers the rest

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def append(self, module: Module) -> Sequential:
        """Add a module at the end."""
        if not isinstance(module, Module):
            raise TypeError(f"Sequential.append: {type(module).__name__} is not a Module")
        self.add_module(str(len(self)), module)
        return self

    def extend(self, sequential: Iterable[Module]) -> Sequential:
        """Add each module at the end."""
        for m in sequential:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> Sequential:
        """Insert a module before position ``index``."""
        if not isinstance(module, Module):
            raise AssertionError(f"module should be of type: {Module}")
        mods = list(self._modules.values())
        n = len(mods)
        if not -n <= index <= n:
            raise IndexError(f"Index out of range: {index}")
        mods.insert(index % (n + 1) if index < 0 else index, module)
        _renumber(self, mods)
        return self


_weight_and_bias = attrgetter("weight", "bias")


def _fusable(m: Module) -> Any:
    """The activation form ``m`` declares for the fused stack (a name or (name, params)), or
    None when it declares none or the mlp op does not know it."""
    act = getattr(m, "_fused_act", None)
    if act is None:
        return None
    name = act if isinstance(act, str) else act[0]
    return act if name in O.ACTIVATIONS else None


def _settings_of(layers: tuple) -> tuple:
    """(module, fused form now) of each activation whose fused form is read from its settings,
    so that a change of them (``m[1].negative_slope = 0.5``) makes a new plan."""
    return tuple(
        (m, _fusable(m))
        for m in layers
        if isinstance(getattr(type(m), "_fused_act", None), property)
    )


def _settings_changed(live: tuple) -> bool:
    """True when some activation's settings changed since the plan was made."""
    return any(_fusable(m) != form for m, form in live)


def _plan_stack(layers: tuple) -> list[tuple[Any, Any, int]]:
    """How Sequential.forward runs ``layers``: see Sequential._plan."""
    plan: list[tuple[Any, Any, int]] = []
    i, n = 0, len(layers)
    while i < n:
        if type(layers[i]) is not Linear:
            plan.append((None, layers[i], i))
            i += 1
            continue
        linears, acts, first = [], [], i
        while i < n and type(layers[i]) is Linear:
            linears.append(layers[i])
            act = _fusable(layers[i + 1]) if i + 1 < n else None
            acts.append(act)
            i += 2 if act is not None else 1
        plan.append((tuple(linears), tuple(acts), first))
    return plan


class ModuleList(Module):
    """A list of modules, registered as children named '0', '1', ..."""

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return ModuleList(list(self._modules.values())[index])
        return self._modules[str(_index(index, len(self), "ModuleList"))]

    def __setitem__(self, index: int, module: Module) -> None:
        self.add_module(str(_index(index, len(self), "ModuleList")), module)

    def __delitem__(self, index: int | slice) -> None:
        mods = list(self._modules.values())
        del mods[index]
        _renumber(self, mods)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __iadd__(self, modules: Iterable[Module]) -> ModuleList:
        return self.extend(modules)

    def __add__(self, other: Iterable[Module]) -> ModuleList:
        return ModuleList(chain(self, other))

    def append(self, module: Module) -> ModuleList:
        """Add a module at the end."""
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        """Add each module at the end."""
        if isinstance(modules, Module) and not isinstance(modules, (ModuleList, Sequential)):
            raise TypeError(
                "ModuleList.extend should be called with an iterable, but got "
                + type(modules).__name__
            )
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> None:
        """Insert a module before position ``index``."""
        mods = list(self._modules.values())
        mods.insert(index, module)
        _renumber(self, mods)

    def pop(self, index: int = -1) -> Module:
        """Remove and return the module at ``index``."""
        m = self[index]
        del self[index]
        return m

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("ModuleList has no forward(); iterate over it")


class ModuleDict(Module):
    """A dict of modules, registered as children under their keys."""

    def __init__(self, modules: Mapping[str, Module] | Iterable | None = None) -> None:
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        delattr(self, key)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __contains__(self, key: object) -> bool:
        return key in self._modules

    def keys(self) -> Iterable[str]:
        """The keys, in insertion order."""
        return self._modules.keys()

    def values(self) -> Iterable[Module]:
        """The modules, in insertion order."""
        return self._modules.values()

    def items(self) -> Iterable[tuple[str, Module]]:
        """(key, module) pairs, in insertion order."""
        return self._modules.items()

    def clear(self) -> None:
        """Remove every module."""
        for key in list(self._modules):
            delattr(self, key)

    def pop(self, key: str) -> Module:
        """Remove and return the module under ``key``."""
        m = self[key]
        del self[key]
        return m

    def update(self, modules: Mapping[str, Module] | Iterable) -> None:
        """Add (key, module) pairs from a mapping or an iterable of pairs."""
        pairs = modules.items() if isinstance(modules, Mapping) else modules
        for j, pair in enumerate(pairs):
            if not isinstance(pair, Iterable) or isinstance(pair, Module):
                raise TypeError(
                    f"ModuleDict update sequence element #{j} should be Iterable; is "
                    + type(pair).__name__
                )
            pair = tuple(pair)
            if len(pair) != 2:
                raise ValueError(
                    f"ModuleDict update sequence element #{j} has length {len(pair)}; 2 is required"
                )
            self[pair[0]] = pair[1]

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("ModuleDict has no forward(); index it")


def _as_parameter(value: Any) -> Parameter:
    if isinstance(value, Parameter):
        return value
    if isinstance(value, Tensor):
        return Parameter(value._data.copy())
    return Parameter(value)


class ParameterList(Module):
    """A list of parameters, registered under '0', '1', ... (tensors become Parameters)."""

    def __init__(self, values: Iterable[Any] | None = None) -> None:
        if values is not None:
            self.extend(values)

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return ParameterList(list(self._parameters.values())[index])
        return self._parameters[str(_index(index, len(self), "ParameterList"))]

    def __setitem__(self, index: int, value: Any) -> None:
        self.register_parameter(
            str(_index(index, len(self), "ParameterList")), _as_parameter(value)
        )

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self) -> Iterator[Parameter]:
        return iter(self._parameters.values())

    def __iadd__(self, values: Iterable[Any]) -> ParameterList:
        return self.extend(values)

    def append(self, value: Any) -> ParameterList:
        """Add a parameter at the end."""
        self.register_parameter(str(len(self)), _as_parameter(value))
        return self

    def extend(self, values: Iterable[Any]) -> ParameterList:
        """Add each parameter at the end."""
        for v in values:
            self.append(v)
        return self

    def extra_repr(self) -> str:
        lines = []
        for k, p in self._parameters.items():
            size = "x".join(map(str, p.shape))
            lines.append(f"  ({k}): Parameter containing: [{type(p).__name__} of size {size}]")
        return "\n".join(lines)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("ParameterList has no forward(); iterate over it")


class ParameterDict(Module):
    """A dict of parameters, registered under their keys (tensors become Parameters)."""

    def __init__(self, parameters: Mapping[str, Any] | Iterable | None = None) -> None:
        if parameters is not None:
            self.update(parameters)

    def __getitem__(self, key: str) -> Parameter:
        return self._parameters[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.register_parameter(key, _as_parameter(value))

    def __delitem__(self, key: str) -> None:
        delattr(self, key)

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self) -> Iterator[str]:
        return iter(self._parameters)

    def __contains__(self, key: object) -> bool:
        return key in self._parameters

    def keys(self) -> Iterable[str]:
        """The keys, in insertion order."""
        return self._parameters.keys()

    def values(self) -> Iterable[Parameter]:
        """The parameters, in insertion order."""
        return self._parameters.values()

    def items(self) -> Iterable[tuple[str, Parameter]]:
        """(key, parameter) pairs, in insertion order."""
        return self._parameters.items()

    def pop(self, key: str) -> Parameter:
        """Remove and return the parameter under ``key``."""
        p = self[key]
        del self[key]
        return p

    def update(self, parameters: Mapping[str, Any] | Iterable) -> None:
        """Add (key, parameter) pairs from a mapping or an iterable of pairs."""
        pairs = parameters.items() if isinstance(parameters, Mapping) else parameters
        for key, value in pairs:
            self[key] = value

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("ParameterDict has no forward(); index it")
