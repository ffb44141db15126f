"""The Optimizer base class of torch.optim, and the checks its subclasses share.

An optimizer only touches ``p._data`` and ``p.grad._data`` of each parameter, both backend
arrays, so a step records no graph and allocates no more than its maths needs. Parameters whose
``grad`` is None are skipped, as in PyTorch.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Any

from .._tensor import Tensor
from ..autograd.graph import replayable
from ..backend import device_of, is_array, looks_like_cupy, np, to_device

__all__ = ["Optimizer"]


def _is_array(obj: Any) -> bool:
    return is_array(obj) or looks_like_cupy(obj)


def _is_param(obj: Any) -> bool:
    """A parameter is anything with an array ``._data`` and a ``.grad`` attribute."""
    return not _is_array(obj) and hasattr(obj, "grad") and _is_array(getattr(obj, "_data", None))


def _number(name: str, value: Any) -> float:
    """A finite real number as a float, or a ValueError naming the hyper-parameter."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"invalid {name}: {value!r} (must be a number)")
    out = float(value)
    if math.isnan(out):
        raise ValueError(f"invalid {name}: {value!r} (must be a number, not NaN)")
    return out


def _non_negative(name: str, value: Any) -> float:
    out = _number(name, value)
    if out < 0.0:
        raise ValueError(f"invalid {name}: {value!r} (must be >= 0)")
    return out


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"invalid {name}: {value!r} (must be True or False)")
    return bool(value)


def _betas(name: str, value: Any) -> tuple[float, float]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"invalid betas: {value!r} (must be a pair of numbers in [0, 1))")
    out = []
    for i, beta in enumerate(value):
        b = _number(f"betas[{i}]", beta)
        if not 0.0 <= b < 1.0:
            raise ValueError(f"invalid betas[{i}]: {beta!r} (must be in [0, 1))")
        out.append(b)
    return out[0], out[1]


# the hyper-parameters that mean the same in every optimizer that takes them, and their checks
_COMMON_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    **dict.fromkeys(("lr", "eps", "weight_decay", "momentum"), _non_negative),
    "betas": _betas,
    **dict.fromkeys(("maximize", "amsgrad", "decoupled_weight_decay"), _flag),
}


def _hyper_parameters(arguments: dict[str, Any]) -> dict[str, Any]:
    """An optimizer's defaults from its ``__init__``'s ``locals()``: all but self and params."""
    return {k: v for k, v in arguments.items() if k not in ("self", "params", "__class__")}


def _step_count(index: int, value: Any) -> int:
    """The step counter of a loaded Adam state: a non-negative whole number."""
    if _is_array(value) and value.ndim == 0:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"state of parameter {index}: invalid step {value!r} (must be an int)")
    if not float(value).is_integer() or value < 0:
        raise ValueError(f"state of parameter {index}: invalid step {value!r} (must be >= 0)")
    return int(value)


class _ParamState(MutableMapping):
    """Per-parameter state dicts keyed by the parameter itself, compared by identity.

    Like PyTorch's ``defaultdict(dict)``: reading a missing parameter gives (and stores) ``{}``.
    """

    def __init__(self) -> None:
        self._by_id: dict[int, dict[str, Any]] = {}
        self._params: dict[int, Any] = {}

    def __getitem__(self, param: Any) -> dict[str, Any]:
        key = id(param)
        state = self._by_id.get(key)
        if state is None:
            state = self._by_id[key] = {}
            self._params[key] = param
        return state

    def __setitem__(self, param: Any, state: dict[str, Any]) -> None:
        self._by_id[id(param)] = state
        self._params[id(param)] = param

    def __delitem__(self, param: Any) -> None:
        del self._by_id[id(param)]
        del self._params[id(param)]

    def __contains__(self, param: object) -> bool:
        return id(param) in self._by_id

    def get(self, param: Any, default: Any = None) -> Any:
        return self._by_id.get(id(param), default)

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._params.values()))

    def __len__(self) -> int:
        return len(self._by_id)

    def __repr__(self) -> str:
        return f"ParamState({len(self)} parameters)"


class Optimizer:
    """Base class: parameter groups, per-parameter state, zero_grad and state_dict round trips."""

    # names an optimizer keeps in a parameter's state, checked when a state dict is loaded
    _state_names: frozenset[str] = frozenset()
    _required_state: frozenset[str] = frozenset()
    _scalar_state: frozenset[str] = frozenset()  # numbers, not arrays, besides "step"

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        self.defaults: dict[str, Any] = dict(defaults)
        self.state: _ParamState = _ParamState()
        self.param_groups: list[dict[str, Any]] = []
        if _is_param(params) or _is_array(params) or isinstance(params, (dict, str, bytes)):
            raise TypeError(
                "params must be an iterable of tensors or of parameter-group dicts, "
                f"got a {type(params).__name__}"
            )
        try:
            groups = list(params)
        except TypeError:
            raise TypeError(
                "params must be an iterable of tensors or of parameter-group dicts, "
                f"got a {type(params).__name__}"
            ) from None
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # the checks of this optimizer's own hyper-parameters, before _COMMON_CHECKS:
    # check(name, value) -> the normalised value
    _hyper_checks: dict[str, Callable[[str, Any], Any]] = {}

    def _check_hyper(self, group: dict[str, Any]) -> dict[str, Any]:
        """Validate and normalise a group's hyper-parameters, those of ``defaults`` in order."""
        for name in self.defaults:
            check = self._hyper_checks.get(name) or _COMMON_CHECKS.get(name)
            if check is not None:
                group[name] = check(name, group[name])
        return group

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters, filling hyper-parameters it omits from the defaults."""
        index = len(self.param_groups)
        if not isinstance(param_group, dict):
            raise TypeError(
                f"parameter group {index} must be a dict, got a {type(param_group).__name__}"
            )
        if "params" not in param_group:
            raise KeyError(f"parameter group {index} has no 'params' key")
        params = param_group["params"]
        if _is_param(params):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(
                f"parameter group {index}: params must be an ordered collection, not a set"
            )
        else:
            params = list(params)
        seen: set[int] = set()
        for i, p in enumerate(params):
            if not _is_param(p):
                raise TypeError(
                    f"parameter group {index}: params[{i}] is a {type(p).__name__}, "
                    "not a tensor with .data and .grad"
                )
            if getattr(p, "_node", None) is not None:
                raise ValueError(
                    f"parameter group {index}: params[{i}] is a non-leaf tensor (the result of "
                    "an op); optimize the leaf it was computed from"
                )
            if id(p) in seen:
                raise ValueError(f"parameter group {index}: params[{i}] appears more than once")
            seen.add(id(p))
        for j, other in enumerate(self.param_groups):
            if any(id(p) in seen for p in other["params"]):
                raise ValueError(
                    f"parameter group {index} shares parameters with parameter group {j}; "
                    "a parameter may appear in only one group"
                )
        hyper = {k: v for k, v in param_group.items() if k != "params"}
        group = self._check_hyper({**self.defaults, **hyper})
        group["params"] = params
        self.param_groups.append(group)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "step" in cls.__dict__:  # a compiled step replays the update as a whole
            cls.step = replayable(cls.__dict__["step"])

    @replayable
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every parameter's gradient: set it to None, or fill it with zeros in place."""
        for group in self.param_groups:
            if set_to_none:
                for p in group["params"]:
                    p.grad = None
                continue
            for p in group["params"]:
                g = p.grad
                if g is not None:
                    g._data.fill(0)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; return the closure's loss if given one."""
        raise NotImplementedError(f"{type(self).__name__} does not implement step()")

    # AdamW's decay; NAdam and RAdam take it from their group's "decoupled_weight_decay"
    _decoupled_weight_decay = False

    def _init_state(self, param: Any, group: dict[str, Any]) -> dict[str, Any]:
        """A parameter's state before its first step (PyTorch's lazy set-up); {} keeps none."""
        return {}

    def _updates(self) -> Iterator[tuple[Any, Any, dict[str, Any], dict[str, Any]]]:
        """(param, grad, state, group) for every parameter whose grad is not None, in order.

        ``param`` and ``grad`` are backend arrays; the update writes ``param`` in place. Before
        each is yielded, as in PyTorch's single-tensor steps: an empty state is set up by
        ``_init_state``, its "step" (if it counts steps) goes up by one, the gradient is negated
        for ``maximize``, and a non-zero ``weight_decay`` is applied, either as the L2 term
        grad = grad + weight_decay * param or, decoupled, as param = param * (1 - lr * wd). The
        grad yielded is the parameter's own gradient array only when neither applied; otherwise
        it is a fresh array (an array, not a scalar, even for a 0-d parameter).
        """
        states = self.state._by_id
        for group in self.param_groups:
            maximize = group.get("maximize", False)
            weight_decay = group.get("weight_decay", 0.0)
            decoupled = self._decoupled_weight_decay or group.get("decoupled_weight_decay", False)
            l2 = weight_decay != 0.0 and not decoupled
            shrink = weight_decay != 0.0 and decoupled
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                g = grad._data
                data = p._data
                state = states.get(id(p))
                if not state:
                    state = self._init_state(data, group)
                    if state:
                        self.state[p] = state
                if "step" in state:
                    state["step"] += 1
                if l2:
                    # grad = wd * p - g if maximize else wd * p + g: the same bits as PyTorch's
                    # (-g if maximize else g) + wd * p, in one fresh array
                    decayed = data.copy()
                    decayed *= weight_decay
                    if maximize:
                        decayed -= g
                    else:
                        decayed += g
                    g = decayed
                else:
                    if shrink:
                        data *= 1.0 - group["lr"] * weight_decay
                    if maximize:
                        g = g.copy()
                        g *= -1.0
                yield data, g, state, group

    def state_dict(self) -> dict[str, Any]:
        """A snapshot of state and hyper-parameters, with parameters named by their index."""
        index_of: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            ids = []
            for p in group["params"]:
                index_of[id(p)] = len(index_of)
                ids.append(index_of[id(p)])
            packed["params"] = ids
            groups.append(packed)
        state: dict[int, dict[str, Any]] = {}
        for group in self.param_groups:
            for p in group["params"]:
                entry = self.state._by_id.get(id(p))
                if entry:
                    state[index_of[id(p)]] = {
                        name: Tensor._wrap(value.copy(), False, None) if _is_array(value) else value
                        for name, value in entry.items()
                    }
        return {"state": state, "param_groups": groups}

    def _check_state_names(self, index: int, entry: Any) -> None:
        """A loaded parameter state must be a dict of names this optimizer keeps."""
        if not isinstance(entry, dict):
            raise ValueError(
                f"state of parameter {index} must be a dict, got a {type(entry).__name__}"
            )
        unknown = set(entry) - self._state_names
        if unknown:
            raise ValueError(
                f"state of parameter {index} has unknown entries {sorted(map(str, unknown))} "
                f"for {type(self).__name__} (expected {sorted(self._state_names)})"
            )

    def _load_state_entry(self, index: int, entry: Any, param: Any) -> dict[str, Any]:
        """Check one parameter's loaded state and copy its arrays to the parameter's device."""
        self._check_state_names(index, entry)
        missing = self._required_state - set(entry)
        if entry and missing:
            raise ValueError(f"state of parameter {index} lacks entries {sorted(missing)}")
        data = param._data
        out: dict[str, Any] = {}
        for name, value in entry.items():
            value = getattr(value, "_data", value) if not _is_array(value) else value
            if name == "step":
                out[name] = _step_count(index, value)
            elif name in self._scalar_state:
                out[name] = float(value)
            elif _is_array(value):
                shape = tuple(value.shape)
                if shape != tuple(data.shape):
                    raise ValueError(
                        f"state {name!r} of parameter {index} has shape {shape}, "
                        f"but the parameter has shape {tuple(data.shape)}"
                    )
                # NOTE: copy, cast to the parameter's dtype and move to its device, so that a
                # step continues exactly as it would have before saving
                out[name] = to_device(value, device_of(data)).astype(data.dtype, copy=True)
            else:
                out[name] = value
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore state and hyper-parameters saved by state_dict() from an identical setup."""
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict must be a dict, got a {type(state_dict).__name__}")
        for key in ("state", "param_groups"):
            if key not in state_dict:
                raise KeyError(f"state_dict has no {key!r} entry")
        saved_groups = state_dict["param_groups"]
        saved_state = state_dict["state"]
        if not isinstance(saved_groups, (list, tuple)):
            raise ValueError(
                f"state_dict['param_groups'] must be a list, got a {type(saved_groups).__name__}"
            )
        if not isinstance(saved_state, dict):
            raise ValueError(
                f"state_dict['state'] must be a dict, got a {type(saved_state).__name__}"
            )
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"loaded state dict has {len(saved_groups)} parameter groups, "
                f"but the optimizer has {len(self.param_groups)}"
            )
        param_of: dict[Any, Any] = {}
        new_groups = []
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups, strict=True)):
            if not isinstance(saved, dict) or not isinstance(saved.get("params"), (list, tuple)):
                raise ValueError(f"loaded parameter group {i} is not a dict with a 'params' list")
            indices = list(saved["params"])
            if len(indices) != len(group["params"]):
                raise ValueError(
                    f"loaded parameter group {i} has {len(indices)} parameters, "
                    f"but the optimizer's group {i} has {len(group['params'])}"
                )
            for index, p in zip(indices, group["params"], strict=True):
                if isinstance(index, bool) or not isinstance(index, int) or index in param_of:
                    raise ValueError(f"loaded parameter group {i} has a bad index {index!r}")
                param_of[index] = p
            hyper = {k: v for k, v in group.items() if k != "params"}
            hyper.update((k, v) for k, v in saved.items() if k != "params")
            new_group = self._check_hyper(hyper)
            new_group["params"] = group["params"]
            new_groups.append(new_group)
        new_state = _ParamState()
        for index, entry in saved_state.items():
            if isinstance(index, bool) or index not in param_of:
                raise ValueError(f"loaded state names an unknown parameter index {index!r}")
            param = param_of[index]
            new_state[param] = self._load_state_entry(index, entry, param)
        self.param_groups = new_groups
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {k}: {v}" for k, v in group.items() if k != "params")
        lines.append(")")
        return "\n".join(lines)
