# ruff: noqa: F401 (the names of the family modules, re-exported)
"""The op registry: each op's forward and its one vector-Jacobian product (VJP), side by side.

Every op is two plain functions written against a namespace ``ns``:

- ``forward(ns, *inputs, **params) -> (out, saved)`` computes the result and returns what the
  backward needs as ``saved``;
- ``backward(ns, g, saved, needs) -> tuple`` takes the incoming gradient ``g`` (shaped like
  ``out``) and returns one gradient per input, or ``None`` where ``needs[i]`` is False.

On the fast first-order path ``ns`` is a ``backend.ArrayNamespace`` and the inputs are numpy
(or CuPy) arrays. When a gradient must itself be differentiable (``create_graph=True``) the
engine runs the same forward and the same rule with the Tensor namespace of ``autograd``, whose
functions are recorded ops: so every rule is differentiable again, to any order, without a
second copy. Rules therefore use only what both namespaces offer: arithmetic operators,
comparisons, ``.sum(axis=, keepdims=)``, ``.reshape``, ``.T``, ``.shape``, ``.ndim``,
``.dtype``, indexing, and the functions of ``ns`` (``exp``, ``where``, ``mm``, ``broadcast_to``,
``scatter``, ...). The in-place helpers of ``ns`` (``imul``, ``maximum_``, ...) write into
arrays on the fast path and are plain ops on Tensors; a rule passes them only arrays it made.

Rules never think about broadcasting: the engine sums each gradient back to its input's shape.
A backward must not write into ``g`` or into ``saved`` (both may be shared), and returns new
arrays, distinct from each other, or ``g`` itself. An op marked ``exact`` promises that its rule
returns each input's gradient with that input's shape and dtype; the engine then skips fitting
them (a test holds each such op to the promise). ``saves_inputs`` is False for ops whose rule
never reads its inputs' values, so that changing those inputs in place later is harmless.

Each op also carries a ``sample``: the input shapes, value domains and parameters that the test
suite uses to check every registered op automatically, at first and second order.

The package: ``_registry.py`` holds the machinery (Op, Sample, register, OPS, the errors,
norm_axes); the families register their ops, in this order, which is the order of ``OPS``:
``elementwise.py`` (arithmetic and elementwise functions), ``activations.py`` (the activation
table, its ops, softmax), ``reductions.py``, ``shape.py`` (reshape, permute, indexing, cat,
casts), ``linear.py`` (matmul, linear, the fused stack mlp), ``maths.py`` (inverse
trigonometry, cumsum, einsum, linear algebra) and ``nn.py`` (fused losses, convolution,
pooling). This module re-exports their names: ``ops.ADD``, ``ops.ACTIVATIONS``, ...
"""

from __future__ import annotations

from ._registry import OPS, DTypeError, Op, Sample, ShapeError, norm_axes, register

# The families register their ops in this order, the order of OPS (and of the op table).
# isort: off
from .elementwise import (
    ABS,
    ADD,
    CLAMP,
    COS,
    DIV,
    ERF,
    EXP,
    EXPM1,
    LOG,
    LOG1P,
    MAXIMUM,
    MINIMUM,
    MUL,
    NEG,
    POW,
    POW_TENSOR,
    REMAINDER,
    SIGN,
    SIN,
    SUB,
    WHERE,
    _pow_vjp,
    refuse_integer_division,
)
from .activations import ACTIVATIONS, Activation, LOG_SOFTMAX, RELU, SIGMOID, SOFTMAX, TANH
from .reductions import AMAX, MEAN, PROD, SUM, VAR, _dropped_shape
from .shape import (
    CAST,
    CAT,
    COPY_SLICES,
    DIAGONAL,
    EXPAND,
    GETITEM,
    PERMUTE,
    RESHAPE,
    SCATTER,
    SCATTER_LAST,
    TO_DEVICE,
    _diagonal_index,
)
from .linear import LINEAR, MATMUL, MLP, _check_linear, activation_spec
from .maths import (
    ACOS,
    ASIN,
    ATAN,
    ATAN2,
    CUMSUM,
    EINSUM,
    LINALG_CHOLESKY,
    LINALG_DET,
    LINALG_EIGH,
    LINALG_QR,
    LINALG_SOLVE,
    LINALG_SVD,
    qr_split,
    svd_split,
)
from .nn import (
    AVG_POOL,
    BCE_WITH_LOGITS,
    BINARY_CROSS_ENTROPY,
    CONV,
    CROSS_ENTROPY,
    FOLD,
    MAX_POOL,
    MSE_LOSS,
    UNFOLD,
    pool_divisor,
    pool_padding,
)
# isort: on

__all__ = ["Op", "Sample", "OPS", "ACTIVATIONS", "register", "ShapeError", "DTypeError"]
