"""save and load: arrays, tensors and optimizer state in a plain ``.npz`` file with no pickles.

The file is an ordinary numpy ``.npz`` archive. Every array is a member named ``a0``, ``a1``,
...; the shape of the saved object (dicts, lists, tuples, numbers, strings, None) is a JSON
document stored as a uint8 array under a reserved member name. Loading reads arrays with
``allow_pickle=False`` and parses JSON, so a file can never run code.

A path ending in ``.safetensors`` (or ``format="safetensors"``) uses the safetensors format
instead, written and read by the code below with no dependency: a flat dict of named tensors,
readable by the ``safetensors`` package (and so by PyTorch and Hugging Face tools). Both
formats are written to a temporary file next to the target, synced, and renamed over it.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Callable
from typing import Any

from .backend import is_array, looks_like_cupy, np, to_device, to_numpy

__all__ = ["save", "load"]

_STRUCTURE_KEY = "__tinygrad_mlp_structure__"
_FORMAT = "tinygrad_mlp"
_VERSION = 1
_ZIP_MAGIC = b"PK\x03\x04"
_FORMATS = ("npz", "safetensors")


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


def _atomic_write(target: str, write: Callable[[Any], None]) -> None:
    """Call ``write(file)`` on a temporary file next to ``target``, sync it, rename it over.

    On any failure the temporary file is removed and ``target`` is left as it was.
    """
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
            write(f)
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


def _format_of(path: str, format: str | None) -> str:
    """ "npz" or "safetensors": the ``format`` asked for, else the one the suffix names."""
    if format is None:
        return "safetensors" if path.lower().endswith(".safetensors") else "npz"
    if format not in _FORMATS:
        raise ValueError(f"format must be one of {_FORMATS} or None, got {format!r}")
    return format


def save(
    obj: Any,
    path: str | os.PathLike,
    *,
    format: str | None = None,
    metadata: dict[str, str] | None = None,
) -> None:
    """Write arrays, tensors or an optimizer state_dict to ``path`` atomically, without pickle.

    ``obj`` may nest dicts (str or int keys), lists and tuples of arrays (numpy or CuPy),
    tensors (their values), numpy scalars, ints, floats, bools, strings and None. The file
    at ``path`` is replaced only once the new one is fully written and synced; on any failure
    the previous file is left untouched.

    A path ending in ``.safetensors`` (or ``format="safetensors"``) writes the safetensors
    format instead: ``obj`` must then be a flat dict of str -> tensor or array, and
    ``metadata`` an optional dict of str -> str stored in the header.
    """
    target = _fspath(path)
    if _format_of(target, format) == "safetensors":
        header, arrays = _safetensors_header(obj, metadata)
        _atomic_write(target, lambda f: _write_safetensors(f, header, arrays))
        return
    if metadata is not None:
        raise ValueError("metadata is stored by the safetensors format only")
    arrays: dict[str, np.ndarray] = {}
    try:
        root = _encode(obj, arrays, "obj")
    except RecursionError:
        raise ValueError(f"cannot save to {target}: obj is nested too deeply or cyclic") from None
    header = {"format": _FORMAT, "version": _VERSION, "root": root}
    text = json.dumps(header, separators=(",", ":"))
    arrays[_STRUCTURE_KEY] = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    # a file object, not a name, so that numpy does not append '.npz' to the path
    _atomic_write(target, lambda f: np.savez(f, **arrays))


def load(
    path: str | os.PathLike,
    map_location: Any = None,
    *,
    weights_only: bool | None = None,
    format: str | None = None,
) -> Any:
    """Read a file written by save(), or any pickle-free ``.npz``, as numpy arrays.

    A plain ``.npz`` without tinygrad_mlp's structure loads as a dict of member name -> array.
    Object (pickled) arrays are refused, so loading never runs code from the file: every load
    is what PyTorch calls ``weights_only`` (so both values of it are accepted). A path
    ending in ``.safetensors`` (or ``format="safetensors"``) loads as a dict of name -> array.
    ``map_location`` is where the arrays go, as in PyTorch: a device ('cpu', 'cuda'), a dict
    from the saved device to another, or a function ``(array, 'cpu') -> array``.
    """
    if weights_only is not None and not isinstance(weights_only, bool):
        raise TypeError(f"load(): weights_only must be a bool or None, got {weights_only!r}")
    loaded = _load(_fspath(path), format)
    return loaded if map_location is None else _mapped(loaded, map_location)


def _mapped(value: Any, map_location: Any) -> Any:
    """``value`` with each array moved as ``map_location`` says (arrays are saved from the host,
    so their saved location is 'cpu')."""
    if isinstance(value, dict):
        return {k: _mapped(v, map_location) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_mapped(v, map_location) for v in value)
    if not isinstance(value, np.ndarray):
        return value
    if callable(map_location):
        return map_location(value, "cpu")
    target = map_location.get("cpu", "cpu") if isinstance(map_location, dict) else map_location
    if not isinstance(target, str):
        raise TypeError(
            "load(): map_location must be a device name, a dict of device names or a function, "
            f"got {type(map_location).__name__}"
        )
    return to_device(value, target)


def _load(source: str, format: str | None) -> Any:
    if _format_of(source, format) == "safetensors":
        return _load_safetensors(source)
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


# ---------------------------------------------------------------- safetensors

# The safetensors layout (https://github.com/huggingface/safetensors): an unsigned 64-bit
# little-endian header length N, N bytes of JSON (padded with spaces), then the raw bytes of
# every tensor, C-ordered and little-endian. The JSON maps each name to {"dtype", "shape",
# "data_offsets": [begin, end]} (offsets into the bytes after the header) and may hold
# "__metadata__", a str -> str dict. The tensors' bytes tile the data exactly: no gaps, no
# overlaps, nothing after the last one.
_ST_DTYPES = {
    "BOOL": "bool",
    "U8": "uint8",
    "I8": "int8",
    "U16": "uint16",
    "I16": "int16",
    "U32": "uint32",
    "I32": "int32",
    "U64": "uint64",
    "I64": "int64",
    "F16": "float16",
    "F32": "float32",
    "F64": "float64",
}
_ST_CODES = {np.dtype(name): code for code, name in _ST_DTYPES.items()}
_ST_METADATA = "__metadata__"
_ST_MAX_HEADER = 100_000_000  # the safetensors package's own limit
_ST_ALIGN = 8


def _safetensors_header(
    obj: Any, metadata: dict[str, str] | None
) -> tuple[dict[str, Any], list[np.ndarray]]:
    """The JSON header of a flat str -> array dict and the arrays in the order of their bytes."""
    if not isinstance(obj, dict):
        raise TypeError(
            f"safetensors holds a flat dict of str -> tensor or array, got a {type(obj).__name__}"
        )
    entries: dict[str, tuple[str, list[int], np.ndarray]] = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise TypeError(f"safetensors keys must be str, got {key!r} ({type(key).__name__})")
        if key == _ST_METADATA:
            raise ValueError(f"the key {_ST_METADATA!r} is reserved by safetensors")
        array = _as_host_array(value)
        if array is None:
            raise TypeError(
                f"cannot save obj[{key!r}] as safetensors: a {type(value).__name__} is not a "
                "tensor or array (nested objects need the .npz format)"
            )
        code = _ST_CODES.get(array.dtype.newbyteorder("="))
        if code is None:
            raise TypeError(f"cannot save obj[{key!r}] as safetensors: dtype {array.dtype}")
        entries[key] = (code, [int(n) for n in array.shape], array)
    if metadata is not None and not (
        isinstance(metadata, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
    ):
        raise TypeError("safetensors metadata must be a dict of str -> str")
    # NOTE: the bytes go widest dtype first (as the safetensors package writes them), so that
    # every tensor starts at a multiple of its item size after the 8-aligned header.
    placed = sorted(entries, key=lambda k: -entries[k][2].dtype.itemsize)
    offsets, begin = {}, 0
    for key in placed:
        end = begin + entries[key][2].nbytes
        offsets[key] = [begin, end]
        begin = end
    header: dict[str, Any] = {_ST_METADATA: dict(metadata)} if metadata else {}
    for key, (code, shape, _) in entries.items():
        header[key] = {"dtype": code, "shape": shape, "data_offsets": offsets[key]}
    return header, [entries[key][2] for key in placed]


def _write_safetensors(f: Any, header: dict[str, Any], arrays: list[np.ndarray]) -> None:
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-(8 + len(text)) % _ST_ALIGN)
    f.write(len(text).to_bytes(8, "little"))
    f.write(text)
    for array in arrays:
        little = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
        f.write(little.reshape(-1).view(np.uint8).data)


def _st_entry(name: str, entry: Any, size: int) -> tuple[np.dtype, tuple[int, ...], int, int]:
    """The dtype, shape and byte range of one header entry, checked against the data size."""
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise ValueError(f"entry {name!r} must hold exactly dtype, shape and data_offsets")
    code, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if code not in _ST_DTYPES:
        raise ValueError(f"entry {name!r} has an unknown or unsupported dtype {code!r}")
    if not isinstance(shape, list) or not all(
        type(n) is int and n >= 0 for n in shape
    ):  # bools are not sizes
        raise ValueError(f"entry {name!r} has a bad shape {shape!r}")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(type(n) is int for n in offsets)
    ):
        raise ValueError(f"entry {name!r} has bad data_offsets {offsets!r}")
    begin, end = offsets
    if not 0 <= begin <= end <= size:
        raise ValueError(
            f"entry {name!r} has data_offsets {offsets} outside the {size} bytes of data"
        )
    dtype = np.dtype(_ST_DTYPES[code]).newbyteorder("<")
    count = 1
    for n in shape:
        count *= n
    if end - begin != count * dtype.itemsize:
        raise ValueError(
            f"entry {name!r} of dtype {code} and shape {shape} needs "
            f"{count * dtype.itemsize} bytes, its data_offsets {offsets} span {end - begin}"
        )
    return dtype, tuple(shape), begin, end


def _load_safetensors(source: str) -> dict[str, np.ndarray]:
    """Read a .safetensors file as a dict of name -> host numpy array, checking its layout."""
    try:
        f = open(source, "rb")
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {source}") from None
    except IsADirectoryError:
        raise ValueError(f"cannot load {source}: it is a directory") from None
    with f:
        total = os.fstat(f.fileno()).st_size
        try:
            if total < 8:
                raise ValueError(f"the file has {total} bytes, too few for a header length")
            n = int.from_bytes(f.read(8), "little")
            if n > min(total - 8, _ST_MAX_HEADER):
                raise ValueError(
                    f"bad header length {n}: the file has {total - 8} bytes after the length"
                )
            try:
                header = json.loads(f.read(n).decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
                raise ValueError(f"the header is not valid JSON ({e})") from None
            if not isinstance(header, dict):
                raise ValueError("the header is not a JSON object")
            metadata = header.pop(_ST_METADATA, {})
            if not isinstance(metadata, dict) or not all(
                isinstance(v, str) for v in metadata.values()
            ):
                raise ValueError("__metadata__ must map str to str")
            size = total - 8 - n
            entries = {name: _st_entry(name, entry, size) for name, entry in header.items()}
            position = 0
            for name, (_, _, begin, end) in sorted(entries.items(), key=lambda e: e[1][2:]):
                if begin != position:
                    what = "overlaps the one before" if begin < position else "leaves a gap"
                    raise ValueError(f"the data of entry {name!r} {what} (at byte {begin})")
                position = end
            if position != size:
                raise ValueError(f"{size - position} bytes after the last tensor's data")
            data = bytearray(size)
            if f.readinto(data) != size:
                raise ValueError("the file is truncated")
        except ValueError as e:
            raise ValueError(f"cannot load {source}: {e}") from None
    out: dict[str, np.ndarray] = {}
    for name, (dtype, shape, begin, end) in entries.items():
        count = (end - begin) // dtype.itemsize
        # NOTE: views of one writable buffer, so loading does not hold every tensor twice
        array = np.frombuffer(data, dtype=dtype, count=count, offset=begin).reshape(shape)
        out[name] = array if dtype.isnative else array.astype(dtype.newbyteorder("="))
    return out
