"""Collective communication over MPI, shaped like ``torch.distributed``.

Launch one process per rank with ``mpiexec -n 2 python train.py``; each calls
``init_process_group("mpi")`` and then the collectives. Tensors are reduced in place through
mpi4py's buffer interface (``Allreduce(MPI.IN_PLACE, array)`` on the tensor's array): nothing
is pickled on the hot path. Needs ``pip install -e ".[mpi]"`` (mpi4py and the MPICH wheel).

CuPy tensors (device 'cuda') are handed to MPI as device buffers when the MPI library is
CUDA-aware (mpi4py says so, or TINYGRAD_MLP_CUDA_AWARE_MPI=1), else staged through a host copy.
NOTE: the CUDA paths have not been run on a GPU yet.

While a process group is initialised, an exception that no one catches prints its traceback
and then aborts the whole job (``MPI.COMM_WORLD.Abort(1)``), so the other ranks do not wait
forever in a collective for a rank that has died. ``sys.exit`` does not reach that hook: a
rank that exits early while the others wait still hangs the job, unless the script runs under
``mpiexec -n N python -m mpi4py script.py``, which aborts on a non-zero exit status too.
"""

from __future__ import annotations

import enum
import os
import sys
import time
import traceback
from typing import Any

from . import backend
from ._tensor import Tensor
from .backend import np

__all__ = [
    "ReduceOp",
    "is_available",
    "is_initialized",
    "init_process_group",
    "destroy_process_group",
    "get_backend",
    "get_rank",
    "get_world_size",
    "barrier",
    "all_reduce",
    "broadcast",
    "all_gather",
    "all_gather_object",
]

_MPI_INSTALL_HINT = 'install the MPI extra with: pip install -e ".[mpi]"  (mpi4py and mpich)'


class ReduceOp(enum.Enum):
    """How ``all_reduce`` combines the ranks' values."""

    SUM = "sum"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"
    AVG = "avg"


class _Group:
    """The state of the one process group: the MPI module, a communicator, rank and size."""

    def __init__(self, mpi: Any, comm: Any) -> None:
        self.MPI = mpi
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.cuda_aware = _cuda_aware(mpi)
        self.previous_excepthook = sys.excepthook


_group: _Group | None = None


def _import_mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError(f"tinygrad_mlp.distributed needs mpi4py; {_MPI_INSTALL_HINT}") from e
    return MPI


def _cuda_aware(mpi: Any) -> bool:
    """Whether MPI takes device buffers: the environment variable first, then mpi4py's query."""
    flag = os.environ.get("TINYGRAD_MLP_CUDA_AWARE_MPI")
    if flag is not None:
        return flag.strip().lower() in ("1", "true", "yes")
    query = getattr(mpi, "Query_cuda_support", None)
    try:
        return bool(query()) if query is not None else False
    except Exception:  # an MPI without the MPIX extension
        return False


def is_available() -> bool:
    """True when mpi4py can be imported (an MPI library is then present too)."""
    try:
        _import_mpi()
    except ImportError:
        return False
    return True


def is_initialized() -> bool:
    """True between ``init_process_group`` and ``destroy_process_group``."""
    return _group is not None


def _current() -> _Group:
    if _group is None:
        raise RuntimeError(
            "the default process group is not initialised: call "
            "tinygrad_mlp.distributed.init_process_group('mpi') first (and launch the script "
            "with mpiexec -n N)"
        )
    return _group


def _abort_on_exception(exc_type, exc, tb) -> None:
    """sys.excepthook while a group is up: print the traceback, then stop every rank."""
    group = _group
    rank = group.rank if group is not None else "?"
    # NOTE: one write, then a pause before the abort: mpiexec forwards each rank's output
    # through a proxy that the abort kills, and a traceback written line by line was cut short
    message = "".join(traceback.format_exception(exc_type, exc, tb))
    sys.stderr.write(f"[rank {rank}] uncaught exception; aborting the MPI job\n{message}")
    sys.stderr.flush()
    if group is not None:
        time.sleep(0.5)
        group.MPI.COMM_WORLD.Abort(1)


def init_process_group(
    backend: str | None = "mpi",
    init_method: str | None = None,
    world_size: int = -1,
    rank: int = -1,
    timeout: Any = None,
    group_name: str = "",
) -> None:
    """Join the job's processes into one group (all of MPI_COMM_WORLD).

    Only the 'mpi' backend exists: rank and world size come from ``mpiexec``, so
    ``init_method`` and ``timeout`` are accepted and ignored; ``world_size`` and ``rank``, when
    given, must agree with MPI's.
    """
    global _group
    if backend not in (None, "mpi"):
        raise ValueError(f"backend {backend!r} is not supported; tinygrad_mlp has only 'mpi'")
    if _group is not None:
        raise RuntimeError("init_process_group was already called (destroy_process_group first)")
    mpi = _import_mpi()
    group = _Group(mpi, mpi.COMM_WORLD.Dup())
    for name, given, actual in (("world_size", world_size, group.size), ("rank", rank, group.rank)):
        if given not in (-1, None) and given != actual:
            group.comm.Free()
            raise ValueError(f"{name}={given} but mpiexec started this process with {actual}")
    _group = group
    sys.excepthook = _abort_on_exception


def destroy_process_group(group: Any = None) -> None:
    """Leave the group: free its communicator and restore sys.excepthook."""
    global _group
    current = _current()
    if sys.excepthook is _abort_on_exception:
        sys.excepthook = current.previous_excepthook
    current.comm.Free()
    _group = None


def get_backend(group: Any = None) -> str:
    """'mpi'."""
    _current()
    return "mpi"


def get_rank(group: Any = None) -> int:
    """This process's rank, 0 to world size - 1."""
    return _current().rank


def get_world_size(group: Any = None) -> int:
    """The number of processes in the group."""
    return _current().size


def barrier(group: Any = None) -> None:
    """Wait until every rank has called barrier."""
    _current().comm.Barrier()


# ---------------------------------------------------------------- buffers


def _array(tensor: Any, what: str) -> Any:
    if isinstance(tensor, Tensor):
        return tensor._data
    if backend.is_array(tensor):
        return tensor
    raise TypeError(f"{what} expects a Tensor, got {type(tensor).__name__}")


def _mpi_op(group: _Group, op: ReduceOp) -> Any:
    mpi = group.MPI
    table = {
        ReduceOp.SUM: mpi.SUM,
        ReduceOp.AVG: mpi.SUM,
        ReduceOp.PRODUCT: mpi.PROD,
        ReduceOp.MIN: mpi.MIN,
        ReduceOp.MAX: mpi.MAX,
    }
    if op not in table:
        raise ValueError(f"op must be a ReduceOp, got {op!r}")
    return table[op]


def _staged(group: _Group, array: Any) -> tuple[Any, bool]:
    """The buffer MPI works on for ``array`` and whether it must be copied back afterwards.

    numpy arrays that are C-contiguous and of a dtype MPI knows are used as they are; float16
    goes through float32 (MPI has no half type), CuPy arrays through the host unless MPI is
    CUDA-aware, anything non-contiguous through a contiguous copy.
    """
    on_gpu = backend.device_of(array) == "cuda"
    if on_gpu and group.cuda_aware:
        xp = backend.array_module_of(array)
        xp.cuda.get_current_stream().synchronize()  # MPI reads the memory outside CuPy's stream
        if array.flags.c_contiguous and array.dtype != np.float16:
            return array, False
        return xp.ascontiguousarray(array, dtype=_wire_dtype(array.dtype)), True
    host = backend.to_numpy(array) if on_gpu else array
    if host.flags.c_contiguous and host.dtype == _wire_dtype(host.dtype) and host is array:
        return host, False
    return np.ascontiguousarray(host, dtype=_wire_dtype(host.dtype)), True


def _wire_dtype(dtype: Any) -> Any:
    return np.dtype(np.float32) if dtype == np.float16 else dtype


def _write_back(array: Any, buffer: Any) -> None:
    if backend.device_of(array) == "cuda":
        array[...] = backend.to_device(buffer, "cuda").astype(array.dtype, copy=False)
    else:
        array[...] = buffer


# ---------------------------------------------------------------- collectives


def all_reduce(
    tensor: Tensor, op: ReduceOp = ReduceOp.SUM, group: Any = None, async_op: bool = False
) -> None:
    """Combine ``tensor`` over all ranks, in place: afterwards every rank holds the result."""
    current = _current()
    if async_op:
        raise NotImplementedError("async_op=True is not supported; collectives block")
    array = _array(tensor, "all_reduce")
    if op == ReduceOp.AVG and array.dtype.kind != "f":
        raise TypeError(f"ReduceOp.AVG needs a floating tensor, got dtype {array.dtype}")
    buffer, copy_back = _staged(current, array)
    current.comm.Allreduce(current.MPI.IN_PLACE, buffer, op=_mpi_op(current, op))
    if op == ReduceOp.AVG:
        buffer /= current.size
    if copy_back:
        _write_back(array, buffer)


def broadcast(tensor: Tensor, src: int, group: Any = None, async_op: bool = False) -> None:
    """Copy rank ``src``'s values into ``tensor`` on every rank, in place."""
    current = _current()
    if async_op:
        raise NotImplementedError("async_op=True is not supported; collectives block")
    if not 0 <= src < current.size:
        raise ValueError(f"src must be a rank in [0, {current.size}), got {src}")
    array = _array(tensor, "broadcast")
    buffer, copy_back = _staged(current, array)
    current.comm.Bcast(buffer, root=src)
    if copy_back:
        _write_back(array, buffer)


def all_gather(
    tensor_list: list[Tensor], tensor: Tensor, group: Any = None, async_op: bool = False
) -> None:
    """Fill ``tensor_list[r]`` with rank r's ``tensor``, on every rank (one Allgather)."""
    current = _current()
    if async_op:
        raise NotImplementedError("async_op=True is not supported; collectives block")
    if len(tensor_list) != current.size:
        raise ValueError(
            f"all_gather: tensor_list has {len(tensor_list)} tensors, the world size is "
            f"{current.size}"
        )
    array = _array(tensor, "all_gather")
    outs = [_array(t, "all_gather") for t in tensor_list]
    for r, out in enumerate(outs):
        if out.shape != array.shape:
            raise ValueError(
                f"all_gather: tensor_list[{r}] has shape {out.shape}, the tensor {array.shape}"
            )
    send, _ = _staged(current, array)
    xp = backend.array_module_of(send)
    received = xp.empty((current.size, *send.shape), dtype=send.dtype)
    current.comm.Allgather(send, received)
    for out, part in zip(outs, received, strict=True):
        _write_back(out, part)


def all_gather_object(object_list: list[Any], obj: Any, group: Any = None) -> None:
    """Fill ``object_list[r]`` with rank r's picklable ``obj`` (for small metadata only)."""
    current = _current()
    if len(object_list) != current.size:
        raise ValueError(
            f"all_gather_object: object_list has {len(object_list)} slots, the world size is "
            f"{current.size}"
        )
    object_list[:] = current.comm.allgather(obj)
