"""Module and Parameter: the registration, traversal and state-dict machinery of torch.nn.Module."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from ... import backend
from ..._tensor import Tensor
from ...autograd.graph import replayable
from ...backend import np

__all__ = ["Parameter", "Module"]


class Parameter(Tensor):
    """A tensor that a Module owns and an optimizer updates (requires_grad by default)."""

    __slots__ = ()

    def __init__(
        self, data: Any = None, requires_grad: bool = True, dtype: Any = None, device: Any = None
    ):
        if data is None:
            data = np.empty(0, dtype=np.float32)
        if dtype is None and backend.is_array(data):
            dtype = data.dtype  # a Parameter keeps its data's dtype, as torch.nn.Parameter does
        super().__init__(data, requires_grad=requires_grad, dtype=dtype, device=device)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class _IncompatibleKeys(NamedTuple):
    """Keys that ``load_state_dict(strict=False)`` did not find or did not expect."""

    missing_keys: list[str]
    unexpected_keys: list[str]

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"  # PyTorch's words
        return (
            f"_IncompatibleKeys(missing_keys={self.missing_keys}, "
            f"unexpected_keys={self.unexpected_keys})"
        )


LoadResult = _IncompatibleKeys


def _is_tensor(value: Any) -> bool:
    return isinstance(value, Tensor)


def _parse_to(args: tuple, kwargs: dict) -> tuple[str | None, Any]:
    """(device, dtype) from the arguments of ``Module.to``, as torch.nn.Module.to reads them."""
    device = kwargs.pop("device", None)
    dtype = kwargs.pop("dtype", None)
    kwargs.pop("non_blocking", None)
    if kwargs:
        raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
    for arg in args:
        if isinstance(arg, Tensor):
            device, dtype = arg.device, arg.dtype
        elif isinstance(arg, str) and arg.split(":")[0] in ("cpu", "cuda"):
            device = arg
        elif getattr(arg, "type", None) in ("cpu", "cuda"):  # a device object
            device = arg.type
        else:
            dtype = arg
    if dtype is not None:
        try:
            dtype = np.dtype(getattr(dtype, "np", dtype))
        except TypeError:
            raise TypeError(f"to() expects a device or a dtype, got {dtype!r}") from None
        if dtype.kind != "f":
            raise TypeError(
                f"nn.Module.to only accepts floating point dtypes, but got desired dtype={dtype}"
            )
    if device is not None:
        device = device.split(":")[0]
    return device, dtype


class RemovableHandle:
    """What the register_*_hook methods return: ``remove()`` unregisters the hook."""

    _next_id = 0
    live = 0  # hooks registered and not removed, on any module (0: Sequential may fuse freely)

    def __init__(self, module: Any, kind: str) -> None:
        RemovableHandle._next_id += 1
        RemovableHandle.live += 1
        self.id = RemovableHandle._next_id
        self._module, self._kind = module, kind

    def remove(self) -> None:
        """Unregister the hook (again: nothing)."""
        hooks = self._module.__dict__.get(self._kind)
        if hooks is not None and hooks.pop(self.id, None) is not None:
            RemovableHandle.live -= 1
            if not hooks:
                self._module.__dict__[self._kind] = None

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


class Module:
    """Base class of layers and models, registering parameters, buffers and submodules.

    Assigning a Parameter, a Module, or a tensor to a registered buffer name registers it, as in
    PyTorch; plain lists, tuples and dicts of modules or parameters are searched too (an
    extension kept for older code). Subclasses need not call ``super().__init__()``.
    """

    training: bool
    _version = 1
    # attributes that hold the registries and caches, never searched for legacy members
    _internal_names = frozenset(
        {"_parameters", "_buffers", "_modules", "_planned", "_plan", "_live"}
    )

    def __new__(cls, *args: Any, **kwargs: Any) -> Module:
        self = super().__new__(cls)
        d = self.__dict__
        d["_parameters"] = {}
        d["_buffers"] = {}
        d["_non_persistent_buffers_set"] = set()
        d["_modules"] = {}
        d["training"] = True
        return self

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args or kwargs:
            raise TypeError(
                f"{type(self).__name__}.__init__() got unexpected arguments (Module takes none)"
            )

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The computation; subclasses define it."""
        raise NotImplementedError(
            f'Module [{type(self).__name__}] is missing the required "forward" function'
        )

    # hooks: None until one is registered (a class attribute, so the common call is one check)
    _forward_hooks: dict | None = None
    _forward_pre_hooks: dict | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._forward_hooks is None and self._forward_pre_hooks is None:
            return self.forward(*args, **kwargs)
        for hook in list((self._forward_pre_hooks or {}).values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        out = self.forward(*args, **kwargs)
        for hook in list((self._forward_hooks or {}).values()):
            result = hook(self, args, out)
            if result is not None:
                out = result
        return out

    def register_forward_pre_hook(self, hook: Callable[..., Any], *, prepend: bool = False):
        """Call ``hook(module, args)`` before each forward; a returned value (a tuple, or one
        value) replaces the arguments. Returns a handle whose ``remove()`` unregisters it."""
        return self._add_hook("_forward_pre_hooks", hook, prepend)

    def register_forward_hook(self, hook: Callable[..., Any], *, prepend: bool = False):
        """Call ``hook(module, args, output)`` after each forward; a returned value replaces the
        output. Returns a handle whose ``remove()`` unregisters it."""
        return self._add_hook("_forward_hooks", hook, prepend)

    def _add_hook(self, kind: str, hook: Callable[..., Any], prepend: bool) -> RemovableHandle:
        if not callable(hook):
            raise TypeError(f"hook must be callable, got {type(hook).__name__}")
        hooks = self.__dict__.get(kind)
        if hooks is None:
            hooks = {}
            self.__dict__[kind] = hooks
        handle = RemovableHandle(self, kind)
        hooks[handle.id] = hook
        if prepend:
            self.__dict__[kind] = {
                handle.id: hook,
                **{k: v for k, v in hooks.items() if k != handle.id},
            }
        return handle

    @property
    def _has_hooks(self) -> bool:
        return bool(self._forward_hooks) or bool(self._forward_pre_hooks)

    # ------------------------------------------------------------ registration

    def __setattr__(self, name: str, value: Any) -> None:
        d = self.__dict__
        params, buffers, modules = d["_parameters"], d["_buffers"], d["_modules"]
        if isinstance(value, Parameter):
            buffers.pop(name, None)
            modules.pop(name, None)
            params[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                    "(nn.Parameter or None expected)"
                )
            params[name] = None
        elif isinstance(value, Module):
            params.pop(name, None)
            buffers.pop(name, None)
            modules[name] = value
        elif name in modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as child module '{name}' "
                    "(nn.Module or None expected)"
                )
            modules[name] = None
        elif name in buffers:
            if value is not None and not _is_tensor(value):
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                    "(Tensor or None expected)"
                )
            buffers[name] = value
        d[name] = value

    def __delattr__(self, name: str) -> None:
        d = self.__dict__
        for table in (d["_parameters"], d["_buffers"], d["_modules"]):
            table.pop(name, None)
        d["_non_persistent_buffers_set"].discard(name)
        object.__delattr__(self, name)

    def _check_name(self, kind: str, name: Any) -> None:
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string. Got {type(name).__name__}")
        if "." in name:
            raise KeyError(f'{kind} name can\'t contain ".", got: {name}')
        if name == "":
            raise KeyError(f'{kind} name can\'t be empty string ""')

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` (or None) under ``name``."""
        self._check_name("parameter", name)
        if name in self.__dict__ and name not in self._parameters:
            raise KeyError(f"attribute '{name}' already exists")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"cannot assign '{type(param).__name__}' object to parameter '{name}' "
                "(nn.Parameter or None required)"
            )
        self._parameters[name] = param
        self.__dict__[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Register a tensor that is state but not a parameter (moved by ``.to``, saved in the
        state dict unless ``persistent=False``)."""
        self._check_name("buffer", name)
        if name in self.__dict__ and name not in self._buffers:
            raise KeyError(f"attribute '{name}' already exists")
        if tensor is not None and not _is_tensor(tensor):
            raise TypeError(
                f"cannot assign '{type(tensor).__name__}' object to buffer '{name}' "
                "(Tensor or None required)"
            )
        self._buffers[name] = tensor
        self.__dict__[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register ``module`` (or None) as a child under ``name``."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._check_name("module", name)
        if name in self.__dict__ and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        self._modules[name] = module
        self.__dict__[name] = module

    register_module = add_module

    def get_submodule(self, target: str) -> Module:
        """The submodule at the dotted path ``target`` ('' is this module)."""
        m = self
        for part in target.split(".") if target else ():
            child = m._modules.get(part)
            if child is None:
                raise AttributeError(f"{type(m).__name__} has no attribute `{part}`")
            m = child
        return m

    def get_parameter(self, target: str) -> Parameter:
        """The parameter at the dotted path ``target``."""
        mod, _, name = target.rpartition(".")
        owner = self.get_submodule(mod)
        if name not in owner._parameters:
            raise AttributeError(f"`{name}` is not an nn.Parameter")
        return owner._parameters[name]

    # ------------------------------------------------------------ discovery

    def _legacy_members(self) -> Iterator[tuple[str, Any]]:
        """(name, value) for modules and parameters inside plain lists, tuples and dicts."""
        skip = self._internal_names
        stack = [
            (k, v)
            for k, v in reversed(self.__dict__.items())
            if type(v) in (list, tuple, dict) and k not in skip
        ]
        while stack:
            name, value = stack.pop()
            if isinstance(value, (Parameter, Module)):
                yield name, value
            elif type(value) in (list, tuple):
                stack.extend(reversed([(f"{name}.{i}", v) for i, v in enumerate(value)]))
            elif type(value) is dict:
                stack.extend(reversed([(f"{name}.{k}", v) for k, v in value.items()]))

    def _own(self, kind: type) -> Iterator[tuple[str, Any]]:
        table = self._parameters if kind is Parameter else self._modules
        yield from table.items()
        for name, value in self._legacy_members():
            if isinstance(value, kind):
                yield name, value

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """(name, module) for each direct submodule."""
        seen: set[int] = set()
        for name, m in self._own(Module):
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self) -> Iterator[Module]:
        """The direct submodules."""
        for _, m in self.named_children():
            yield m

    def named_modules(
        self, memo: set | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """(dotted name, module) for this module and every module below it, depth first."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, m in self._own(Module):
            if m is None:
                continue
            yield from m.named_modules(
                memo, f"{prefix}.{name}" if prefix else name, remove_duplicate
            )

    def modules(self) -> Iterator[Module]:
        """This module and every module below it."""
        for _, m in self.named_modules():
            yield m

    def _named_members(self, kind: str, prefix: str, recurse: bool, remove_duplicate: bool):
        seen: set[int] = set()
        mods = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mod_name, m in mods:
            items = m._own(Parameter) if kind == "param" else m._buffers.items()
            for name, value in items:
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield (f"{mod_name}.{name}" if mod_name else name), value

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) for every parameter, each once, e.g. ``0.weight``."""
        return self._named_members("param", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Every parameter, each once, in PyTorch's order."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Tensor]]:
        """(dotted name, buffer) for every buffer, e.g. ``bn.running_mean``."""
        return self._named_members("buffer", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        """Every buffer."""
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # ------------------------------------------------------------ modes and moves

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn`` on every submodule (children first) and then on this module."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    @replayable
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every parameter's gradient."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad._data[...] = 0

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Set ``requires_grad`` on every parameter."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def train(self, mode: bool = True) -> Module:
        """Switch this module and its submodules to training mode (or evaluation)."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> Module:
        """Switch to evaluation mode (dropout off, batch norm uses its running statistics)."""
        return self.train(False)

    def _apply_arrays(self, fn: Callable[[Any, bool], Any]) -> Module:
        """Replace each parameter's, gradient's and buffer's array by ``fn(array, is_param)``."""
        for m in self.modules():
            for p in m._own(Parameter):
                p = p[1]
                if p is None:
                    continue
                p._data = fn(p._data, True)
                if p.grad is not None:
                    p.grad = Tensor._wrap(fn(p.grad._data, True), False, None)
            for b in list(m._buffers.values()):
                if b is not None:
                    b._data = fn(b._data, False)
        return self

    def to(self, *args: Any, **kwargs: Any) -> Module:
        """Move (``to("cuda")``) or cast (``to(tm.float64)``) parameters and buffers in place.

        A dtype applies to floating parameters and buffers only, as in PyTorch.
        """
        device, dtype = _parse_to(args, kwargs)

        def move(array: Any, is_param: bool) -> Any:
            if dtype is not None and array.dtype.kind == "f" and array.dtype != dtype:
                array = array.astype(dtype)
            if device is not None:
                array = backend.to_device(array, device)
            return array

        return self._apply_arrays(move)

    def cuda(self, device: Any = None) -> Module:
        """Move to the GPU."""
        return self.to("cuda")

    def cpu(self) -> Module:
        """Move to the CPU."""
        return self.to("cpu")

    def double(self) -> Module:
        """Cast floating parameters and buffers to float64."""
        return self.to(np.float64)

    def float(self) -> Module:
        """Cast floating parameters and buffers to float32."""
        return self.to(np.float32)

    def half(self) -> Module:
        """Cast floating parameters and buffers to float16."""
        return self.to(np.float16)

    # ------------------------------------------------------------ state

    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        for name, p in self._own(Parameter):
            if p is not None:
                destination[prefix + name] = p if keep_vars else Tensor._wrap(p._data, False, None)
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = b if keep_vars else Tensor._wrap(b._data, False, None)

    def state_dict(
        self, *args: Any, destination: Any = None, prefix: str = "", keep_vars: bool = False
    ) -> OrderedDict[str, Tensor]:
        """name -> detached tensor sharing memory with each parameter and persistent buffer.

        Keys and order are PyTorch's: a module's own parameters, then its buffers, then each
        child's under ``child_name.``.
        """
        if args:  # PyTorch's deprecated positional (destination, prefix, keep_vars)
            destination = args[0]
            prefix = args[1] if len(args) > 1 else prefix
            keep_vars = args[2] if len(args) > 2 else keep_vars
        if destination is None:
            destination = OrderedDict()
        # NOTE: a submodule that appears under two names is saved under both, as in PyTorch
        for mod_name, m in self.named_modules(prefix=prefix.rstrip("."), remove_duplicate=False):
            m._save_to_state_dict(destination, f"{mod_name}." if mod_name else "", keep_vars)
        return destination

    def _state_entries(self) -> dict[str, Tensor]:
        """key -> the tensor (parameter or buffer) that a state-dict value loads into."""
        return dict(self.state_dict(keep_vars=True))

    def load_state_dict(
        self, state_dict: dict[str, Any], strict: bool = True, assign: bool = False
    ) -> _IncompatibleKeys:
        """Copy tensors or arrays into the parameters and buffers in place, keeping each one's
        dtype and device.

        As in PyTorch, missing and unexpected keys (when ``strict``) and shape mismatches (always)
        raise one RuntimeError listing every problem; a refused load changes nothing.
        """
        if not hasattr(state_dict, "items"):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
        targets = self._state_entries()
        missing = [k for k in targets if k not in state_dict]
        unexpected = [k for k in state_dict if k not in targets]
        errors: list[str] = []
        if strict:
            if unexpected:
                keys = ", ".join(f'"{k}"' for k in unexpected)
                errors.append(f"Unexpected key(s) in state_dict: {keys}. ")
            if missing:
                keys = ", ".join(f'"{k}"' for k in missing)
                errors.insert(0, f"Missing key(s) in state_dict: {keys}. ")
        staged = []
        for name, target in targets.items():
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
            if tuple(host.shape) != tuple(target.shape):
                errors.append(
                    f"size mismatch for {name}: copying a param with shape {tuple(host.shape)} "
                    f"from checkpoint, the shape in current model is {tuple(target.shape)}."
                )
                continue
            staged.append((target, host))
        if errors:
            body = "\n\t".join(errors)
            raise RuntimeError(
                f"Error(s) in loading state_dict for {type(self).__name__}:\n\t{body}"
            )
        for target, host in staged:
            array = backend.to_device(host.astype(target._data.dtype, copy=False), target.device)
            if assign:
                target._data = array.copy() if array is host else array
            else:
                target._data[...] = array
        return _IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------ display

    def extra_repr(self) -> str:
        """The one-line description inside this module's repr."""
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        extra = self.extra_repr()
        kids = list(self.named_children())
        if not kids:
            return f"{self._get_name()}({extra})"
        lines = [f"{self._get_name()}("]
        if extra:
            lines.extend("  " + line for line in extra.split("\n"))
        for name, m in kids:
            body = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        lines.append(")")
        return "\n".join(lines)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()))
