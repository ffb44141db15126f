"""How tensors print: PyTorch's layout (four decimals, one width per tensor, scientific notation
when the magnitudes call for it, summaries of big tensors) and ``set_printoptions``."""

from __future__ import annotations

import math
from typing import Any

from .backend import np

__all__ = ["set_printoptions", "get_printoptions", "tensor_repr", "backward_name"]

_PROFILES = {
    "default": {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80},
    "short": {"precision": 2, "threshold": 1000, "edgeitems": 2, "linewidth": 80},
    "full": {"precision": 4, "threshold": math.inf, "edgeitems": 3, "linewidth": 80},
}
_options: dict[str, Any] = {**_PROFILES["default"], "sci_mode": None}


def set_printoptions(
    precision: int | None = None,
    threshold: float | None = None,
    edgeitems: int | None = None,
    linewidth: int | None = None,
    profile: str | None = None,
    sci_mode: bool | None = None,
) -> None:
    """Set how tensors print, as ``torch.set_printoptions``: digits after the point, the element
    count above which a tensor is summarised, the items kept at each edge of a summary, the line
    width, a profile ('default', 'short', 'full') and scientific notation (None: automatic)."""
    if profile is not None:
        if profile not in _PROFILES:
            raise ValueError(
                f"set_printoptions: unknown profile {profile!r}; expected one of {list(_PROFILES)}"
            )
        _options.update(_PROFILES[profile])
    given = {"precision": precision, "threshold": threshold, "edgeitems": edgeitems}
    given["linewidth"] = linewidth
    _options.update({k: v for k, v in given.items() if v is not None})
    _options["sci_mode"] = sci_mode  # NOTE: as PyTorch, an omitted sci_mode resets it to automatic


def get_printoptions() -> dict[str, Any]:
    """The current print options as a dict."""
    return dict(_options)


class _Formatter:
    """One width and one notation for all the elements of a tensor (PyTorch's rules)."""

    def __init__(self, values: Any) -> None:
        self.floating = values.dtype.kind == "f"
        self.int_mode = True
        self.sci_mode = False
        self.max_width = 1
        precision = _options["precision"]
        flat = values.reshape(-1)
        if not self.floating:
            if flat.size:
                self.max_width = max(len(str(v)) for v in flat.tolist())
        else:
            finite = flat[np.isfinite(flat) & (flat != 0)].astype(np.float64)
            if not finite.size:
                return  # zeros, NaNs and infinities only: the defaults
            magnitude = np.abs(finite)
            low, high = magnitude.min(), magnitude.max()
            self.int_mode = bool(np.all(finite == np.ceil(finite)))
            self.sci_mode = (
                high / low > 1000.0 or high > 1.0e8 or low < 1.0e-4
                if _options["sci_mode"] is None
                else _options["sci_mode"]
            )
            if self.sci_mode:
                spec, extra = f".{precision}e", 0
            elif self.int_mode:
                spec, extra = ".0f", 1  # room for the point that marks a float
            else:
                spec, extra = f".{precision}f", 0
            widths = (len(format(v, spec)) + extra for v in finite.tolist())
            self.max_width = max(self.max_width, *widths)

    def format(self, value: Any) -> str:
        """One element, right-aligned to the common width."""
        precision = _options["precision"]
        if not self.floating:
            text = str(value)
        elif self.sci_mode:
            text = f"{value:{self.max_width}.{precision}e}"
        elif self.int_mode:
            text = f"{value:.0f}"
            if not (math.isinf(value) or math.isnan(value)):
                text += "."
        else:
            text = f"{value:.{precision}f}"
        return " " * (self.max_width - len(text)) + text


def _summarised(values: Any) -> Any:
    """The elements a summary shows: ``edgeitems`` at each end of every dimension."""
    edge = _options["edgeitems"]
    if values.ndim == 0:
        return values
    if values.ndim == 1:
        return np.concatenate([values[:edge], values[-edge:]]) if len(values) > 2 * edge else values
    if not edge:
        return values[(slice(0, 0),) * values.ndim]
    if len(values) > 2 * edge:
        values = np.concatenate([values[:edge], values[-edge:]])
    return np.stack([_summarised(row) for row in values])


def _vector(values: Any, indent: int, summarise: bool, formatter: _Formatter) -> str:
    edge = _options["edgeitems"]
    per_line = max(1, int(math.floor((_options["linewidth"] - indent) / (formatter.max_width + 2))))
    if summarise and not edge:
        data = ["..."]
    elif summarise and len(values) > 2 * edge:
        data = [formatter.format(v) for v in values[:edge].tolist()]
        data += [" ..."] + [formatter.format(v) for v in values[-edge:].tolist()]
    else:
        data = [formatter.format(v) for v in values.tolist()]
    lines = [", ".join(data[i : i + per_line]) for i in range(0, len(data), per_line)]
    return "[" + ("," + "\n" + " " * (indent + 1)).join(lines) + "]"


def _nested(values: Any, indent: int, summarise: bool, formatter: _Formatter) -> str:
    if values.ndim == 0:
        return formatter.format(values.item())
    if values.ndim == 1:
        return _vector(values, indent, summarise, formatter)
    edge = _options["edgeitems"]
    if summarise and len(values) > 2 * edge:
        parts = [_nested(values[i], indent + 1, summarise, formatter) for i in range(edge)]
        parts.append("...")
        n = len(values)
        parts += [_nested(values[i], indent + 1, summarise, formatter) for i in range(n - edge, n)]
    else:
        parts = [_nested(row, indent + 1, summarise, formatter) for row in values]
    return "[" + ("," + "\n" * (values.ndim - 1) + " " * (indent + 1)).join(parts) + "]"


def _with_suffixes(text: str, suffixes: list[str], indent: int) -> str:
    out = [text]
    last_line = len(text) - text.rfind("\n") + 1
    for suffix in suffixes:
        # NOTE: measured as PyTorch's text ("torch.float64"), so that a tensor breaks its lines
        # where PyTorch's does, whatever the length of this module's name
        size = len(suffix.replace("tinygrad_mlp.", "torch."))
        if last_line + size + 2 > _options["linewidth"]:
            out.append(",\n" + " " * indent + suffix)
            last_line = indent + size
        else:
            out.append(", " + suffix)
            last_line += size + 2
    return "".join(out) + ")"


_DEFAULT_DTYPES = ("float32", "int64", "bool")


def tensor_repr(
    values: Any, dtype: Any, device: str, grad_fn: str | None, requires_grad: bool
) -> str:
    """The text of ``repr(tensor)`` for host ``values`` of a tensor with these attributes."""
    prefix = "tensor("
    indent = len(prefix)
    suffixes = []
    if device != "cpu":
        suffixes.append(f"device='{device if ':' in device else device + ':0'}'")
    name = values.dtype.name
    if values.size == 0:
        if values.ndim != 1:
            suffixes.append(f"size={tuple(values.shape)}")
        if name != "float32":
            suffixes.append(f"dtype={dtype}")
        body = "[]"
    else:
        if not _options["edgeitems"]:
            suffixes.append(f"size={tuple(values.shape)}")
        if name not in _DEFAULT_DTYPES:
            suffixes.append(f"dtype={dtype}")
        if name == "float16":
            values = values.astype(np.float32)  # NOTE: PyTorch widens halves before printing
        summarise = values.size > _options["threshold"]
        formatter = _Formatter(_summarised(values) if summarise else values)
        body = _nested(values, indent, summarise, formatter)
    if grad_fn is not None:
        suffixes.append(f"grad_fn=<{grad_fn}>")
    elif requires_grad:
        suffixes.append("requires_grad=True")
    return _with_suffixes(prefix + body, suffixes, indent)


# ---------------------------------------------------------------- names of backward nodes

_BACKWARD_NAMES = {
    "pow_tensor": "PowBackward1",
    "clamp": "ClampBackward1",
    "expm1": "Expm1Backward0",
    "log1p": "Log1PBackward0",
    "relu6": "HardtanhBackward0",
    "reshape": "ViewBackward0",
    "cast": "ToCopyBackward0",
    "to_device": "ToCopyBackward0",
    "cross_entropy": "NllLossBackward0",
    "mlp": "AddmmBackward0",
    "binary_cross_entropy_with_logits": "BinaryCrossEntropyWithLogitsBackward0",
}
_REDUCTIONS = ("sum", "mean", "prod")


def _index_name(index: Any) -> str:
    """PyTorch's node for an indexing: the advanced index if any, else the last basic one."""
    items = index if isinstance(index, tuple) else (index,)
    if any(not isinstance(i, (int, slice, type(None), type(Ellipsis))) for i in items):
        return "IndexBackward0"
    items = [i for i in items if i is not Ellipsis]
    if not items:
        return "AliasBackward0"
    last = items[-1]
    if last is None:
        return "UnsqueezeBackward0"
    return "SliceBackward0" if isinstance(last, slice) else "SelectBackward0"


def _matmul_name(op: str, dims: tuple[int, ...]) -> str:
    if op == "linear":
        if len(dims) == 3:  # with a bias
            return "AddmmBackward0" if dims[0] == 2 else "ViewBackward0"
        return "MmBackward0" if dims[0] == 2 else "UnsafeViewBackward0"
    names = {(2, 2): "MmBackward0", (1, 1): "DotBackward0", (2, 1): "MvBackward0"}
    return names.get(dims, "SqueezeBackward4" if dims == (1, 2) else "UnsafeViewBackward0")


def backward_name(op: str, params: dict, dims: tuple) -> str:
    """PyTorch's class name for the backward node of ``op`` applied with ``params`` to inputs
    of ``dims`` dimensions (the name of a matmul or linear node depends on them)."""
    name = _BACKWARD_NAMES.get(op)
    if name is not None:
        return name
    if op == "getitem":
        return _index_name(params.get("index"))
    if op in _REDUCTIONS:
        return op.capitalize() + ("Backward0" if params.get("axis") is None else "Backward1")
    if op in ("matmul", "linear") and dims:
        return _matmul_name(op, dims)
    return "".join(w[:1].upper() + w[1:] for w in op.split("_")) + "Backward0"
