"""save and load: arrays, tensors and optimizer state in a plain ``.npz`` file with no pickles.

The file is an ordinary numpy ``.npz`` archive. Every array is a member named ``a0``, ``a1``,
...; the shape of the saved object (dicts, lists, tuples, numbers, strings, None) is a JSON
document stored as a uint8 array under a reserved member name. Loading reads arrays with
``allow_pickle=False`` and parses JSON, so a file can never run code.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from typing import Any

from .backend import is_array, looks_like_cupy, np, to_numpy

__all__ = ["save", "load"]

_STRUCTURE_KEY = "__tinygrad_mlp_structure__"
_FORMAT = "tinygrad_mlp"
_VERSION = 1
_ZIP_MAGIC = b"PK\x03\x04"


def _fspath(path: Any) -> str:
    """A str path from a str or os.PathLike, refusing anything else."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got a {type(path).__name__}")
    return os.fsdecode(os.fspath(path))


def _as_host_array(value: Any) -> np.ndarray | None:
    """The host array behind an array or tensor, or None for anything else."""
    if is_array(value) or looks_like_cupy(value):
        return to_numpy(value)
    data = getattr(value, "_data", None)
    if data is not None and (is_array(data) or looks_like_cupy(data)):
        return to_numpy(data)
    return None


def _encode(value: Any, arrays: dict[str, np.ndarray], where: str) -> Any:
    """A JSON-ready description of value; its arrays are appended to ``arrays``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.generic):  # before int/float: np.float64 subclasses float
        if value.dtype.hasobject:
            raise ValueError(f"cannot save {where}: object scalars are not supported")
        name = f"a{len(arrays)}"
        arrays[name] = np.asarray(value)
        return {"scalar": name}
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                raise TypeError(
                    f"cannot save {where}: dict keys must be str or int, "
                    f"got {key!r} ({type(key).__name__})"
                )
            items.append([key, _encode(item, arrays, f"{where}[{key!r}]")])
        return {"dict": items}
    if isinstance(value, (list, tuple)):
        tag = "list" if isinstance(value, list) else "tuple"
        return {tag: [_encode(item, arrays, f"{where}[{i}]") for i, item in enumerate(value)]}
    array = _as_host_array(value)
    if array is None:
        raise TypeError(
            f"cannot save {where}: a {type(value).__name__} is not an array, tensor, number, "
            "string, None, dict, list or tuple"
        )
    if array.dtype.hasobject:
        raise ValueError(
            f"cannot save {where}: arrays of dtype {array.dtype} hold Python objects "
            "and would need pickle"
        )
    name = f"a{len(arrays)}"
    arrays[name] = array
    return {"array": name}


def _decode(node: Any, members: dict[str, np.ndarray], where: str) -> Any:
    """Rebuild the saved object from its JSON description and the loaded arrays."""
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, dict) and len(node) == 1:
        ((tag, body),) = node.items()
        if tag in ("array", "scalar"):
            if not isinstance(body, str) or body not in members:
                raise ValueError(f"{where} names a missing array {body!r}")
            array = members[body]
            if tag == "array":
                return array
            if array.ndim != 0:
                raise ValueError(f"{where} names a scalar, but array {body!r} is not 0-d")
            return array[()]
        if tag in ("list", "tuple") and isinstance(body, list):
            items = [_decode(item, members, f"{where}[{i}]") for i, item in enumerate(body)]
            return items if tag == "list" else tuple(items)
        if tag == "dict" and isinstance(body, list):
            out: dict[Any, Any] = {}
            for pair in body:
                if not (isinstance(pair, list) and len(pair) == 2):
                    raise ValueError(f"{where} has a malformed dict entry")
                key, item = pair
                if isinstance(key, bool) or not isinstance(key, (str, int)) or key in out:
                    raise ValueError(f"{where} has a bad or repeated dict key {key!r}")
                out[key] = _decode(item, members, f"{where}[{key!r}]")
            return out
    raise ValueError(f"{where} is malformed")


def _new_file_mode() -> int:
    """Permissions for a newly created file: 0o666 less the process umask."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o644


def save(obj: Any, path: str | os.PathLike) -> None:
    """Write arrays, tensors or an optimizer state_dict to ``path`` atomically, without pickle.

    ``obj`` may nest dicts (str or int keys), lists and tuples of arrays (numpy or CuPy),
    tensors (their ``.data``), numpy scalars, ints, floats, bools, strings and None. The file
    at ``path`` is replaced only once the new one is fully written and synced; on any failure
    the previous file is left untouched.
    """
    target = _fspath(path)
    arrays: dict[str, np.ndarray] = {}
    try:
        root = _encode(obj, arrays, "obj")
    except RecursionError:
        raise ValueError(f"cannot save to {target}: obj is nested too deeply or cyclic") from None
    header = {"format": _FORMAT, "version": _VERSION, "root": root}
    text = json.dumps(header, separators=(",", ":"))
    arrays[_STRUCTURE_KEY] = np.frombuffer(text.encode("ascii"), dtype=np.uint8)

    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot save to {target}: folder {folder} does not exist")
    if os.path.isdir(target):
        raise ValueError(f"cannot save to {target}: it is a directory")
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        mode = _new_file_mode()
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=folder
        )
    except OSError as e:
        raise type(e)(f"cannot save to {target}: {e.strerror or e}") from e
    try:
        with os.fdopen(fd, "wb") as f:
            # a file object, not a name, so that numpy does not append '.npz' to the path
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError):
            raise type(e)(f"cannot save to {target}: {e.strerror or e}") from e
        raise
    try:  # make the rename itself durable; not every platform can open a folder
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def load(path: str | os.PathLike) -> Any:
    """Read a file written by save(), or any pickle-free ``.npz``, as host numpy arrays.

    A plain ``.npz`` without tinygrad_mlp's structure loads as a dict of member name -> array.
    Object (pickled) arrays are refused, so loading never runs code from the file.
    """
    source = _fspath(path)
    try:
        f = open(source, "rb")
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {source}") from None
    except IsADirectoryError:
        raise ValueError(f"cannot load {source}: it is a directory") from None
    with f:
        if f.read(4) != _ZIP_MAGIC:
            raise ValueError(f"cannot load {source}: not an .npz archive (no zip header)")
        f.seek(0)
        members: dict[str, np.ndarray] = {}
        try:
            archive = np.load(f, allow_pickle=False)
        except Exception as e:  # zipfile and zlib errors for a damaged archive
            raise ValueError(f"cannot load {source}: damaged or not an .npz file ({e})") from e
        with archive:
            for name in archive.files:
                try:
                    value = archive[name]
                except Exception as e:  # npy header, CRC and truncation errors
                    if isinstance(e, ValueError) and "allow_pickle" in str(e):
                        raise ValueError(
                            f"cannot load {source}: member {name!r} is an object array that "
                            "needs pickle; refusing to unpickle it"
                        ) from None
                    raise ValueError(
                        f"cannot load {source}: member {name!r} is damaged ({e})"
                    ) from e
                if not isinstance(value, np.ndarray):
                    raise ValueError(f"cannot load {source}: member {name!r} is not an array")
                members[name] = value
    if _STRUCTURE_KEY not in members:
        return members
    raw = members.pop(_STRUCTURE_KEY)
    try:
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise ValueError("the structure member is not a 1-d uint8 array")
        header = json.loads(raw.tobytes().decode("utf-8"))
        if not isinstance(header, dict) or header.get("format") != _FORMAT:
            raise ValueError("the structure member is not a tinygrad_mlp description")
        if header.get("version") != _VERSION:
            raise ValueError(f"unsupported format version {header.get('version')!r}")
        if "root" not in header:
            raise ValueError("the structure member has no root")
        return _decode(header["root"], members, "obj")
    except (ValueError, RecursionError) as e:
        raise ValueError(f"cannot load {source}: {e}") from e
