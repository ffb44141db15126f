"""The two namespaces the engine runs derivative rules in, with the few things it asks of them.

First-order gradients travel as arrays: rules run on an ``ArrayNamespace`` (numpy or CuPy, with
the speed tricks of ``backend``). With ``create_graph=True`` they travel as Tensors: each op's
forward and rule run again on the ``TensorNamespace``, whose functions are recorded ops, so the
gradient is itself on the tape, differentiable again. Beside the names the rules use, both
offer the engine the same small interface, so that it never asks which one it holds:

- ``of(g)``: the namespace for a gradient ``g`` (a class method: the device decides), and
  ``known``: the namespaces of common gradient types, found without a call;
- ``saved(node)``: what the node's rule reads;
- ``fit(ig, data, node, i)``: a rule's gradient for input ``i`` made of that input's shape,
  dtype and device (broadcasting undone here, once, for every rule);
- ``add(a, b)``: the sum of two gradients of one tensor;
- ``lift(seed)``: a new array as a seed of this kind;
- ``own(g, source)``: ``g`` as a value the caller may keep (a copy of an array that is the
  incoming gradient ``source``, a view, or someone else's memory);
- ``wrap(g)`` and ``unwrap(t)``: a gradient as a Tensor (for hooks and ``.grad``) and back;
  ``as_grad(g, source)``: ``wrap(own(g, source))``, a new ``.grad``;
- ``reads(op, i, needs)``: whether the rule reads input ``i`` (for version checks);
- ``recording()``: the grad mode rules run in (no_grad for arrays, enable_grad for Tensors).
"""

from __future__ import annotations

from typing import Any

from .. import backend
from .. import ops as O
from .._conversion import _lift
from .._tensor import Tensor, _binary, where
from ..backend import np
from .grad_mode import enable_grad, no_grad
from .graph import Node, _wrap, apply

__all__ = ["ArrayNamespace", "TensorNamespace"]

_ndarray = np.ndarray


def _sum_to(ig: Any, shape: tuple, node: Node, i: int) -> Any:
    try:
        return backend.sum_to(ig, shape)
    except ValueError:
        raise RuntimeError(
            f"op '{node.op.name}' produced a gradient of shape {tuple(ig.shape)} for its input "
            f"{i} of shape {tuple(shape)}"
        ) from None


class ArrayNamespace(backend.ArrayNamespace):
    """``backend.ArrayNamespace`` with the engine's interface: gradients are arrays."""

    fits_all = False  # an op marked exact returns fitted gradients: the engine trusts it

    @staticmethod
    def of(g: Any) -> ArrayNamespace:
        if type(g) is _ndarray:
            return _NUMPY
        xp = backend.array_module_of(g)
        ns = _array_namespaces.get(xp)
        if ns is None:
            ns = _array_namespaces[xp] = ArrayNamespace(xp)
        return ns

    @staticmethod
    def saved(node: Node) -> Any:
        return node.saved

    @staticmethod
    def fit(ig: Any, data: Any, node: Node, i: int) -> Any:
        if isinstance(ig, np.generic) or not hasattr(ig, "shape"):
            ig = np.asarray(ig, dtype=data.dtype)  # numpy returns products of 0-d arrays as scalars
        if type(ig) is not type(data) and backend.device_of(ig) != backend.device_of(data):
            ig = backend.to_device(ig, backend.device_of(data))
        if ig.shape != data.shape:
            ig = _sum_to(ig, data.shape, node, i)
        return ig if ig.dtype == data.dtype else ig.astype(data.dtype)

    @staticmethod
    def add(a: Any, b: Any) -> Any:
        out = a + b
        return np.asarray(out) if isinstance(out, np.generic) else out  # 0-d sums are scalars

    @staticmethod
    def own(g: Any, source: Any = None) -> Any:
        # NOTE: a rule returns new arrays, g itself or views of g; only new ones may be kept
        return g if g is not source and g.base is None else g.copy()

    @staticmethod
    def as_grad(g: Any, source: Any = None) -> Tensor:
        return _wrap(g if g is not source and g.base is None else g.copy())  # as own() does

    @staticmethod
    def lift(seed: Any) -> Any:
        return seed

    wrap = staticmethod(_wrap)

    @staticmethod
    def unwrap(t: Tensor) -> Any:
        return t._data

    @staticmethod
    def reads(op: O.Op, i: int, needs: tuple) -> bool:
        """Whether the rule reads input ``i``'s value: never for an op that saves no input, a
        product's factor only for the gradient of the other factor, a quotient's numerator
        only for the denominator's, an activation's input only where its derivative is
        written in it (not tanh's or sigmoid's)."""
        if not op.saves_inputs:
            return False
        if op is O.MUL or op is O.MATMUL:
            return needs[1 - i]
        if op is O.DIV:
            return i == 1 or needs[1]
        act = O.ACTIVATIONS.get(op.name)
        return act is None or act.needs_input

    recording = staticmethod(no_grad)


_NUMPY = ArrayNamespace(np)
_array_namespaces: dict[Any, ArrayNamespace] = {np: _NUMPY}
ArrayNamespace.known = {_ndarray: _NUMPY}  # of() without a call, for the common gradients


class TensorNamespace:
    """The names of ``backend.ArrayNamespace``, as recorded ops on Tensors."""

    differentiable = True

    fits_all = True  # a rule on Tensors may return constants: every gradient is fitted
    known: dict = {}  # of() depends on the device of the Tensor's array

    def __init__(self, arrays: backend.ArrayNamespace) -> None:
        self.arrays = arrays  # for constants (index offsets, ones) on the right device

    @staticmethod
    def of(g: Tensor) -> TensorNamespace:
        arrays = backend.namespace_of(g._data)
        ns = _tensor_namespaces.get(id(arrays))
        if ns is None:
            ns = _tensor_namespaces[id(arrays)] = TensorNamespace(arrays)
        return ns

    def saved(self, node: Node) -> Any:
        """The forward run again on the input tensors, recorded; a custom Function's ctx holds
        tensors already."""
        if node.op.custom is not None:
            return node.saved
        with enable_grad():
            return node.op.forward(self, *node.inputs, **node.params)[1]

    @staticmethod
    def fit(ig: Any, data: Any, node: Node, i: int) -> Tensor:
        if not isinstance(ig, Tensor):
            ig = _wrap(ig if backend.is_array(ig) else np.asarray(ig, dtype=data.dtype))
        if tuple(ig.shape) != tuple(data.shape):
            ig = _sum_to(ig, data.shape, node, i)
        return ig if ig.dtype == data.dtype else ig.to(data.dtype)

    @staticmethod
    def add(a: Tensor, b: Tensor) -> Tensor:
        return a + b

    @staticmethod
    def own(g: Tensor, source: Any = None) -> Tensor:
        return g  # a recorded result is never written into

    lift = staticmethod(_wrap)

    @staticmethod
    def wrap(g: Tensor) -> Tensor:
        return g

    @staticmethod
    def as_grad(g: Tensor, source: Any = None) -> Tensor:
        return g

    @staticmethod
    def unwrap(t: Tensor) -> Tensor:
        return t

    @staticmethod
    def reads(op: O.Op, i: int, needs: tuple) -> bool:
        return True  # the forward runs again on every input

    recording = staticmethod(enable_grad)

    @staticmethod
    def _t(x: Any, like: Any = None) -> Tensor:
        if isinstance(x, Tensor):
            return x
        if isinstance(like, Tensor):
            return _lift(x, like)
        return _wrap(x if backend.is_array(x) else np.asarray(x))

    # elementwise functions
    def exp(self, x):
        return self._t(x).exp()

    def expm1(self, x):
        return self._t(x).expm1()

    def log(self, x):
        return self._t(x).log()

    def log1p(self, x):
        return self._t(x).log1p()

    def sin(self, x):
        return self._t(x).sin()

    def cos(self, x):
        return self._t(x).cos()

    def tanh(self, x):
        return self._t(x).tanh()

    def erf(self, x):
        return self._t(x).erf()

    def abs(self, x):
        return self._t(x).abs()

    def sign(self, x):
        return self._t(x).sign()

    def clip(self, x, low, high):
        return apply(O.CLAMP, self._t(x), low=low, high=high)

    def maximum(self, a, b):
        return _binary(O.MAXIMUM, a, b)

    def minimum(self, a, b):
        return _binary(O.MINIMUM, a, b)

    def where(self, condition, a, b):
        return where(condition, a, b)

    def kept(self, g, keep):
        return where(keep, g, 0)

    def arctan(self, x):
        return apply(O.ATAN, x)

    def arcsin(self, x):
        return apply(O.ASIN, x)

    def arccos(self, x):
        return apply(O.ACOS, x)

    def arctan2(self, y, x):
        return _binary(O.ATAN2, y, x)

    def cumsum(self, x, axis):
        return apply(O.CUMSUM, x, axis=axis)

    def einsum(self, equation, *xs):
        return apply(O.EINSUM, *[self._t(x) for x in xs], equation=equation)

    # linear algebra
    def linalg_solve(self, a, b):
        return apply(O.LINALG_SOLVE, self._t(a), self._t(b, a))

    def linalg_det(self, a):
        return apply(O.LINALG_DET, a)

    def linalg_cholesky(self, a, uplo=None):
        return apply(O.LINALG_CHOLESKY, a, uplo=uplo)

    def linalg_eigh(self, a, uplo=None):
        return apply(O.LINALG_EIGH, a, uplo=uplo)

    def linalg_qr(self, a):
        return apply(O.LINALG_QR, a)

    def linalg_svd(self, a):
        return apply(O.LINALG_SVD, a)

    # reductions and shapes
    def amax(self, x, axis=None, keepdims=False):
        return apply(O.AMAX, x, axis=axis, keepdims=keepdims)

    def prod(self, x, axis=None, keepdims=False):
        return apply(O.PROD, x, axis=axis, keepdims=keepdims)

    def permute(self, x, axes):
        return apply(O.PERMUTE, x, axes=tuple(axes))

    def broadcast_to(self, x, shape):
        x = self._t(x)
        return x if tuple(x.shape) == tuple(shape) else apply(O.EXPAND, x, shape=tuple(shape))

    def sum_to(self, x, shape):
        return backend.sum_to(x, shape)

    def scatter(self, g, index, shape):
        return apply(O.SCATTER, g, index=index, shape=tuple(shape))

    def concatenate(self, xs, axis=0):
        return apply(O.CAT, *xs, axis=axis)

    def cast(self, x, dtype):
        return x if x.dtype == dtype else apply(O.CAST, x, dtype=dtype)

    def to_device(self, x, device):
        return x if x.device == device else apply(O.TO_DEVICE, x, device=device)

    def device_of(self, x):
        return x.device

    # products and the speed-trick names, as plain ops
    def mm(self, a, b):
        return apply(O.MATMUL, a, b)

    def matmul(self, a, b):
        return apply(O.MATMUL, a, b)

    def mT(self, x):
        return x.transpose(-2, -1)

    def row_sums(self, a):
        return a.sum(axis=1)

    def column_sums(self, a):
        return a.sum(axis=0)

    def row_max(self, a):
        return apply(O.AMAX, a.detach(), axis=1)  # only ever a shift that cancels out

    def constant(self, kind, n, arg):
        return self.arrays.constant(kind, n, arg)

    @staticmethod
    def scalar(value, like):
        return value

    def iadd(self, a, b):
        return a + b

    def imul(self, a, b):
        return a * b

    def sub_at(self, a, index, value):
        flat = a.reshape(-1)
        ones = self.arrays.scatter(
            self.arrays.xp.full(len(index), value, dtype=a.dtype), index, flat.shape
        )
        return (flat - ones).reshape(a.shape)

    def maximum_(self, a, b):
        return self.maximum(a, b)

    def tanh_(self, a):
        return a.tanh()

    def clip_(self, a, low, high):
        return self.clip(a, low, high)

    # sliding windows
    def windows(self, x, kernel_size, dilation, padding, stride, batch_inside=False):
        params = dict(kernel_size=kernel_size, dilation=dilation, padding=padding, stride=stride)
        cols = apply(O.UNFOLD, x, **params)
        if not batch_inside:
            return cols
        nd = len(kernel_size)
        return self.permute(cols, (1, *range(2, 2 + nd), 0, *range(2 + nd, 2 + 2 * nd)))

    def fold_windows(self, cols, size, kernel_size, dilation, padding, stride):
        params = dict(kernel_size=kernel_size, dilation=dilation, padding=padding, stride=stride)
        return apply(O.FOLD, cols, output_size=tuple(size), **params)

    def max_windows(self, x, kernel_size, dilation, padding, stride):
        # the maxima as constants: a rule reads only the positions of the maxima
        return backend.max_windows(x._data, kernel_size, dilation, padding, stride)

    def spread_max(self, g, arg, size, kernel_size, dilation, padding, stride):
        # g at the window position arg: g times a constant one-hot, folded back into place
        hot = backend.window_one_hot(arg, kernel_size)
        nd = len(size)
        spread = g.reshape(tuple(g.shape[:2]) + (1,) * nd + tuple(g.shape[2:])) * hot
        return self.fold_windows(spread, size, kernel_size, dilation, padding, stride)


_tensor_namespaces: dict[int, TensorNamespace] = {}
