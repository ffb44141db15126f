"""Data-parallel training across processes, shaped like ``torch.nn.parallel``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from .. import backend
from .. import distributed as dist
from .._tensor import Tensor
from .modules import Module

__all__ = ["DistributedDataParallel"]


class _Bucket:
    """Parameters of one dtype and device whose gradients travel in one flat message.

    The flat buffer holds every gradient, then one presence flag per parameter (1 where this
    rank has a gradient): after the Allreduce a flag of 0 means no rank had one, and that
    gradient stays None.
    """

    def __init__(self, params: list[Any]) -> None:
        self.params = params
        self.sizes = [p._data.size for p in params]
        self.offsets = [sum(self.sizes[:i]) for i in range(len(params))]
        self.numel = sum(self.sizes)
        array = params[0]._data
        xp = backend.array_module_of(array)
        self.flat = xp.zeros(self.numel + len(params), dtype=array.dtype)

    def slots(self) -> zip:
        """(tensor, offset, size) of each tensor in the flat buffer."""
        return zip(self.params, self.offsets, self.sizes, strict=True)

    def pack_values(self) -> None:
        for p, start, n in self.slots():
            self.flat[start : start + n] = p._data.reshape(-1)

    def unpack_values(self) -> None:
        for p, start, n in self.slots():
            p._data[...] = self.flat[start : start + n].reshape(p._data.shape)

    def pack_grads(self) -> None:
        flags = self.flat[self.numel :]
        for i, (p, start, n) in enumerate(self.slots()):
            part = self.flat[start : start + n]
            if p.grad is None:
                part[...] = 0
                flags[i] = 0
            else:
                part[...] = p.grad._data.reshape(-1)
                flags[i] = 1

    def unpack_grads(self, world_size: int) -> None:
        """Write the averaged gradients back into ``.grad``."""
        self.flat[: self.numel] /= world_size
        flags = backend.to_numpy(self.flat[self.numel :])  # one transfer from a GPU
        for i, (p, start, n) in enumerate(self.slots()):
            if flags[i] == 0:
                continue  # no rank has a gradient for p: it stays None
            avg = self.flat[start : start + n].reshape(p._data.shape)
            if p.grad is not None and p.grad._data.shape == avg.shape:
                p.grad._data[...] = avg
            else:
                p.grad = Tensor._wrap(avg.copy(), False, None)


class _Reducer:
    """The parameters in buckets, the gradient hooks and the state of one iteration.

    Kept outside Module's attribute search so that DistributedDataParallel's parameters are
    exactly those of the wrapped module.
    """

    def __init__(self, params: list[Any], world_size: int, bucket_bytes: int) -> None:
        self.params = params
        self.world_size = world_size
        self.buckets = _make_buckets(params, bucket_bytes)
        self.expected: set[int] = {id(p) for p in params}
        self.ready: set[int] = set()
        self.synced = False
        self.enabled = True
        self.handles: list[Any] = []

    def sync(self) -> None:
        """Average every gradient over the ranks: one Allreduce per bucket."""
        for bucket in self.buckets:
            bucket.pack_grads()
            dist.all_reduce(bucket.flat)
            bucket.unpack_grads(self.world_size)
        self.synced = True

    def hook_for(self, p: Any):
        """A post-accumulate-grad hook on ``p``: the last expected parameter reduces them all.

        The engine runs these hooks once backward has put every gradient into ``.grad``, so when
        the last parameter expected in this backward reports, every gradient is final.
        """

        def hook(_: Any) -> None:
            if not self.enabled or self.synced:
                return
            self.ready.add(id(p))
            if self.expected <= self.ready:
                self.sync()

        return hook


def _make_buckets(params: list[Any], bucket_bytes: int) -> list[_Bucket]:
    """Consecutive parameters of one dtype and device, up to ``bucket_bytes`` per bucket.

    Buckets are filled in reverse parameter order, the order backward produces gradients in.
    """
    buckets: list[_Bucket] = []
    current: list[Any] = []
    size = 0
    for p in reversed(params):
        array = p._data
        if current and (
            size + array.nbytes > bucket_bytes
            or array.dtype != current[0]._data.dtype
            or backend.device_of(array) != backend.device_of(current[0]._data)
        ):
            buckets.append(_Bucket(current))
            current, size = [], 0
        current.append(p)
        size += array.nbytes
    if current:
        buckets.append(_Bucket(current))
    return buckets


def _describe(named: list[tuple[str, Any]]) -> list[tuple[str, tuple[int, ...], str]]:
    return [(name, tuple(t._data.shape), str(t._data.dtype)) for name, t in named]


def _check_same_everywhere(what: str, named: list[tuple[str, Any]]) -> None:
    """Gather every rank's (name, shape, dtype) list and raise on every rank if they differ."""
    mine = _describe(named)
    everyone: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, mine)
    reference = everyone[0]
    for rank, theirs in enumerate(everyone[1:], start=1):
        if theirs == reference:
            continue
        ref_by_name = {n: (s, d) for n, s, d in reference}
        their_by_name = {n: (s, d) for n, s, d in theirs}
        for name in list(ref_by_name) + [n for n in their_by_name if n not in ref_by_name]:
            a, b = ref_by_name.get(name), their_by_name.get(name)
            if a != b:
                describe = {None: "absent"}
                raise RuntimeError(
                    f"DistributedDataParallel: {what} {name!r} differs between ranks: rank 0 "
                    f"has {describe.get(a, _shape_dtype(a))}, rank {rank} has "
                    f"{describe.get(b, _shape_dtype(b))}; every rank must build the same model"
                )
        raise RuntimeError(
            f"DistributedDataParallel: the {what}s of rank 0 and rank {rank} come in different "
            "orders; every rank must build the same model"
        )


def _shape_dtype(entry: Any) -> str:
    shape, dtype = entry
    return f"shape {shape} ({dtype})"


def _buffers(module: Module) -> list[tuple[str, Any]]:
    named = getattr(module, "named_buffers", None)
    return [(n, b) for n, b in named() if b is not None] if named is not None else []


def _reachable(outputs: Any) -> set[int]:
    """ids of the leaf tensors that the graph behind ``outputs`` reads."""
    stack = list(_tensors_in(outputs))
    seen: set[int] = set()
    leaves: set[int] = set()
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        node = getattr(t, "grad_fn", None) if hasattr(type(t), "grad_fn") else t._node
        if node is None:
            leaves.add(id(t))
        else:
            stack.extend(node.inputs)
    return leaves


def _tensors_in(value: Any) -> Iterator[Tensor]:
    if isinstance(value, Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors_in(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors_in(v)


class DistributedDataParallel(Module):
    """Run ``module`` on every rank and average its gradients over the ranks after backward.

    At construction every rank checks that all ranks hold the same parameters (names, shapes,
    dtypes) and then takes rank 0's values, so ranks that started from different weights train
    the same model. Gradients are averaged in flat buckets of at most ``bucket_cap_mb`` MB, one
    Allreduce each.

    The averaging runs from gradient hooks (``Tensor.register_post_accumulate_grad_hook``,
    which the engine calls once backward has filled every ``.grad``) when the last parameter
    expected in this backward reports. With ``find_unused_parameters=True`` each forward walks
    the graph behind its output to learn which parameters to expect; otherwise all parameters
    are expected, and a backward that leaves one out makes the next forward raise. A parameter
    that no rank gave a gradient keeps ``grad`` None. Without engine hooks, call
    ``sync_gradients()`` between ``backward()`` and the optimizer's ``step()``; it is a no-op
    when the hooks have already averaged this iteration's gradients.

    ``state_dict()`` keys carry the ``module.`` prefix, as in PyTorch; save
    ``ddp.module.state_dict()`` for a file that loads into the bare model.
    """

    def __init__(
        self,
        module: Module,
        device_ids: Any = None,
        output_device: Any = None,
        dim: int = 0,
        broadcast_buffers: bool = True,
        process_group: Any = None,
        bucket_cap_mb: float = 25,
        find_unused_parameters: bool = False,
        gradient_as_bucket_view: bool = False,
        static_graph: bool = False,
    ) -> None:
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel wraps a Module, got {type(module).__name__}")
        if not dist.is_initialized():
            raise RuntimeError(
                "DistributedDataParallel needs a process group: call "
                "tinygrad_mlp.distributed.init_process_group('mpi') first"
            )
        if bucket_cap_mb <= 0:
            raise ValueError(f"bucket_cap_mb must be positive, got {bucket_cap_mb}")
        self.module = module
        self.broadcast_buffers = bool(broadcast_buffers)
        self.find_unused_parameters = bool(find_unused_parameters)
        named = list(module.named_parameters())
        _check_same_everywhere("parameter", named)
        _check_same_everywhere("buffer", _buffers(module))
        params = [p for _, p in named]
        trained = [p for p in params if p.requires_grad]
        world = dist.get_world_size()
        bucket_bytes = int(bucket_cap_mb * 1024 * 1024)
        self._reducer = _Reducer(trained, world, bucket_bytes)
        self._sync_state(params + [b for _, b in _buffers(module)], bucket_bytes)
        if hasattr(Tensor, "register_post_accumulate_grad_hook"):
            for p in trained:
                hook = self._reducer.hook_for(p)
                self._reducer.handles.append(p.register_post_accumulate_grad_hook(hook))
        self._hooks = bool(self._reducer.handles)

    def _sync_state(self, tensors: list[Any], bucket_bytes: int) -> None:
        """Give every rank rank 0's values, one broadcast per bucket."""
        for bucket in _make_buckets(tensors, bucket_bytes):
            bucket.pack_values()
            dist.broadcast(bucket.flat, src=0)
            bucket.unpack_values()

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The wrapped module's forward; also starts a new gradient-averaging iteration."""
        reducer = self._reducer
        if self._hooks and reducer.enabled and reducer.ready and not reducer.synced:
            missing = [
                name
                for name, p in self.module.named_parameters()
                if id(p) in reducer.expected and id(p) not in reducer.ready
            ]
            raise RuntimeError(
                "DistributedDataParallel: the previous backward did not give a gradient to "
                f"{missing}, so its gradients were never averaged; pass "
                "find_unused_parameters=True when some parameters do not take part in the loss"
            )
        if self.broadcast_buffers:
            buffers = [b for _, b in _buffers(self.module)]
            if buffers:
                self._sync_state(buffers, 1 << 62)
        reducer.ready = set()
        reducer.synced = False
        out = self.module(*args, **kwargs)
        if self.find_unused_parameters and reducer.enabled:
            reachable = _reachable(out)
            reducer.expected = {id(p) for p in reducer.params if id(p) in reachable}
        return out

    def sync_gradients(self) -> None:
        """Average the gradients over the ranks now, unless this iteration's are already done."""
        if self._reducer.enabled and not self._reducer.synced:
            self._reducer.sync()

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Inside, backward accumulates gradients locally; the next backward outside averages."""
        previous = self._reducer.enabled
        self._reducer.enabled = False
        try:
            yield
        finally:
            self._reducer.enabled = previous
