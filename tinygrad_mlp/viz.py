"""Pictures of the graph behind a tensor: Graphviz DOT text, and SVG or PNG files drawn from it.

``to_dot(tensor)`` needs nothing: one box per op (its name, output shape and dtype), one per
leaf (its shape, and its name when it is a parameter), an arrow from each input to the op that
reads it, the tensor itself highlighted. The fused ``nn.Sequential`` stack (op ``mlp``) lists
its layers. ``draw(tensor, "graph.svg")`` renders the text with the ``graphviz`` Python package
and Graphviz's ``dot`` program (``pip install graphviz`` and e.g. ``apt-get install graphviz``).
"""

from __future__ import annotations

import gc
import html
import os
import shutil
from collections.abc import Iterable, Sequence
from typing import Any

from ._tensor import Tensor
from .nn import Module, Parameter
from .serialization import _atomic_write, _fspath

__all__ = ["to_dot", "draw", "graph_of"]

_FORMATS = ("svg", "png", "pdf")
_ROOT = "#ffd27f"
_PARAM = "#cfe3ff"
_LEAF = "#e8e8e8"
_INPUT = "#d5f5d0"
_OP = "#ffffff"


def _node_of(t: Tensor) -> Any:
    """The recorded node that made ``t``, or None for a leaf."""
    node = getattr(t, "grad_fn", None)
    return node if node is not None else getattr(t, "_node", None)


def graph_of(outputs: Sequence[Tensor], stop: Iterable[int] = ()) -> list[Tensor]:
    """Every tensor behind ``outputs``, each once, inputs before the ops that read them.

    The walk is iterative (no recursion limit) and does not go below tensors whose ``id`` is
    in ``stop``.
    """
    stop = set(stop)
    order: list[Tensor] = []
    seen: set[int] = set()
    stack = [(t, False) for t in reversed(outputs)]
    while stack:
        t, expanded = stack.pop()
        if expanded:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        node = None if id(t) in stop else _node_of(t)
        if node is None:
            continue
        if getattr(node, "released", False):
            raise RuntimeError(
                f"the graph behind op {node.op.name!r} was released by backward(); call "
                "backward(retain_graph=True) to keep it, or draw before backward"
            )
        for x in reversed(node.inputs):
            if isinstance(x, Tensor) and id(x) not in seen:
                stack.append((x, False))
    return order


def _auto_names(leaves: list[Tensor]) -> dict[int, str]:
    """Names of the parameters among ``leaves``, as the state_dict of the outermost module that
    holds each one names them (the live modules are found through the garbage collector)."""
    wanted = {id(t) for t in leaves if isinstance(t, Parameter)}
    if not wanted:
        return {}
    parent: dict[int, Any] = {}  # id(parameter or module) -> a module that registers it
    for m in gc.get_objects():
        if isinstance(m, Module):
            for table in ("_parameters", "_buffers", "_modules"):
                for value in m.__dict__.get(table, {}).values():
                    parent.setdefault(id(value), m)
    names: dict[int, str] = {}
    for key in wanted:
        root = parent.get(key)
        if key in names or root is None:
            continue
        seen = {id(root)}
        while id(root) in parent and id(parent[id(root)]) not in seen:  # the outermost module
            root = parent[id(root)]
            seen.add(id(root))
        names.update(_param_names(root))
    return names


def _param_names(params: Any) -> dict[int, str]:
    """id(tensor) -> name from a dict of named tensors or a Module (parameters and buffers)."""
    if isinstance(params, dict):
        return {id(t): str(name) for name, t in params.items()}
    names: dict[int, str] = {}
    for attr in ("named_buffers", "named_parameters"):
        if hasattr(params, attr):
            names.update({id(t): name for name, t in getattr(params, attr)()})
    if not names and not hasattr(params, "named_parameters"):
        raise TypeError(
            "params must be a dict of name -> tensor (dict(model.named_parameters())) or a "
            f"Module, got a {type(params).__name__}"
        )
    return names


def _shape(t: Any) -> str:
    return str(tuple(int(n) for n in t.shape))


def _describe(value: Any) -> str:
    """A short text for a parameter or saved value."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"array{_shape(value)} {value.dtype}"
    if isinstance(value, (tuple, list)) and len(value) > 6:
        return f"{type(value).__name__} of {len(value)}"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _act_text(act: Any) -> str:
    if act is None:
        return ""
    if isinstance(act, str):
        return f", {act}"
    name, params = act[0], dict(act[1])
    args = ", ".join(f"{k}={v!r}" for k, v in params.items())
    return f", {name}({args})"


def _lines(rows: list[tuple[str | None, bool]]) -> str:
    """An HTML-like Graphviz label: one row per (text, bold) pair, the text escaped; a None
    row draws a rule."""
    cells = []
    for text, bold in rows:
        if text is None:
            cells.append("<HR/>")
            continue
        text = html.escape(text, quote=True)
        cells.append(f"<TR><TD>{'<B>' + text + '</B>' if bold else text}</TD></TR>")
    return '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0">' + "".join(cells) + "</TABLE>>"


def _op_rows(t: Tensor, node: Any, show_saved: bool) -> list[tuple[str | None, bool]]:
    name = node.op.name
    rows: list[tuple[str | None, bool]] = [(name, True), (f"{_shape(t)} {t._data.dtype}", False)]
    params = dict(getattr(node, "params", None) or {})
    if name == "mlp" and "acts" in params:
        weights = list(node.inputs)[1::2]
        rows.append((None, False))
        for w, act in zip(weights, params.pop("acts"), strict=False):
            out_features, in_features = w.shape
            rows.append((f"Linear {in_features}->{out_features}{_act_text(act)}", False))
    if show_saved:
        rows += [(f"{k}={_describe(v)}", False) for k, v in params.items()]
        saved = getattr(node, "saved", None)
        items = saved if isinstance(saved, (tuple, list)) else (saved,)
        arrays = [v for v in items if hasattr(v, "shape") and hasattr(v, "dtype")]
        rows += [(f"saved {_describe(v)}", False) for v in arrays]
    return rows


def to_dot(tensor: Tensor | Sequence[Tensor], params: Any = None, show_saved: bool = False) -> str:
    """Graphviz DOT text of the graph behind ``tensor`` (or a list of tensors).

    ``params`` names the leaves: a dict of name -> tensor, as ``dict(model.named_parameters())``
    (torchviz's argument), or the Module itself (its parameters and buffers). Without it, the
    parameters are named by the outermost module that holds them; ``params={}`` names
    nothing. ``show_saved``
    adds each op's keyword parameters and the shapes of the arrays its forward saved.
    """
    roots = [tensor] if isinstance(tensor, Tensor) else list(tensor)
    for i, t in enumerate(roots):
        if not isinstance(t, Tensor):
            raise TypeError(f"to_dot draws Tensors; item {i} is a {type(t).__name__}")
    order = graph_of(roots)
    if params is None:
        names = _auto_names([t for t in order if _node_of(t) is None])
    else:
        names = _param_names(params)
    root_ids = {id(t) for t in roots}
    ids: dict[int, str] = {}
    lines = [
        "digraph tinygrad_mlp {",
        '  graph [rankdir=TB, fontname="Helvetica"];',
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11];',
        "  edge [arrowsize=0.7];",
    ]
    for t in order:
        key = ids[id(t)] = f"t{len(ids)}"
        node = _node_of(t)
        if node is None:
            name = names.get(id(t))
            rows: list[tuple[str | None, bool]] = [(name, True)] if name else []
            rows.append((f"{_shape(t)} {t._data.dtype}", False))
            fill = _PARAM if name else (_INPUT if t.requires_grad else _LEAF)
        else:
            rows = _op_rows(t, node, show_saved)
            fill = _OP
        extra = ", penwidth=2.5" if id(t) in root_ids else ""
        if id(t) in root_ids:
            fill = _ROOT
        lines.append(f'  {key} [label={_lines(rows)}, fillcolor="{fill}"{extra}];')
        if node is not None:
            for x in node.inputs:
                if isinstance(x, Tensor):
                    lines.append(f"  {ids[id(x)]} -> {key};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _graphviz():
    try:
        import graphviz
    except ImportError:
        raise ImportError(
            "tinygrad_mlp.viz.draw needs the graphviz Python package: pip install graphviz "
            '(or pip install -e ".[viz]"); to_dot works without it'
        ) from None
    return graphviz


def draw(
    tensor: Tensor | Sequence[Tensor],
    path: str | os.PathLike,
    params: Any = None,
    show_saved: bool = False,
    format: str | None = None,
) -> None:
    """Draw the graph behind ``tensor`` to ``path`` as SVG, PNG or PDF (by suffix or ``format``).

    Needs the ``graphviz`` package and Graphviz's ``dot`` program on the PATH. The file is
    written to a temporary name next to ``path`` and renamed once complete.
    """
    target = _fspath(path)
    fmt = format or os.path.splitext(target)[1].lstrip(".").lower()
    if fmt not in _FORMATS:
        raise ValueError(
            f"cannot draw to {target}: choose a .svg, .png or .pdf file (or format=), got "
            f"{fmt or 'no suffix'!r}"
        )
    source = to_dot(tensor, params=params, show_saved=show_saved)
    graphviz = _graphviz()
    if shutil.which("dot") is None:
        raise RuntimeError(
            "tinygrad_mlp.viz.draw needs Graphviz's 'dot' program, which is not on the PATH: "
            "install Graphviz (apt-get install graphviz, brew install graphviz, or "
            "https://graphviz.org/download/); to_dot works without it"
        )
    try:
        data = graphviz.Source(source).pipe(format=fmt)
    except graphviz.ExecutableNotFound as e:  # found by which, but it would not run
        raise RuntimeError(f"Graphviz's 'dot' program could not run: {e}") from None
    _atomic_write(target, lambda f: f.write(data))
