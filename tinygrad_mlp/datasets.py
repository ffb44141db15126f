"""Datasets as numpy arrays: MNIST from checked IDX files, toy 2-D sets, folders of images."""

from __future__ import annotations

import gzip
import hashlib
import http.client
import math
import os
import sys
import tempfile
import urllib.request
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

from .backend import np

__all__ = [
    "MNIST_FILES",
    "MNIST_MIRRORS",
    "MNIST_SHA256",
    "image_folder",
    "make_moons",
    "make_xor",
    "mnist",
    "read_idx",
]

MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

# the lines of a SHA256SUMS file, as `sha256sum` writes them: digest, two spaces, file name
_MNIST_SHA256SUMS = """
440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609  train-images-idx3-ubyte.gz
3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c  train-labels-idx1-ubyte.gz
8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6  t10k-images-idx3-ubyte.gz
f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6  t10k-labels-idx1-ubyte.gz
"""
MNIST_SHA256 = dict(line.split()[::-1] for line in _MNIST_SHA256SUMS.strip().splitlines())

# Base URLs tried in order; mnist() reads this at call time, so assigning to it redirects downloads.
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

_DOWNLOAD_TIMEOUT_S = 60
_CHUNK_BYTES = 1 << 16
_GZIP_MAGIC = b"\x1f\x8b"

# IDX type code (third magic byte) -> big-endian element type
_IDX_DTYPES = {
    0x08: ">u1",
    0x09: ">i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_IMAGES_INSTALL_HINT = 'install the images extra with: pip install -e ".[images]"'


# ---------------------------------------------------------------------------------------------
# IDX files


def _parse_idx(data: bytes, path: Path) -> np.ndarray:
    """Decode the bytes of an uncompressed IDX file; `path` is only for error messages."""
    if len(data) < 4:
        raise ValueError(f"{path}: too short for an IDX header ({len(data)} bytes)")
    zero0, zero1, code, ndim = data[:4]
    if zero0 or zero1 or code not in _IDX_DTYPES:
        codes = ", ".join(f"{c:02x}" for c in _IDX_DTYPES)
        raise ValueError(
            f"{path}: bad IDX magic {data[:4].hex()}; expected 0000, a type code ({codes}) "
            "and the number of dimensions"
        )
    header_bytes = 4 + 4 * ndim
    if len(data) < header_bytes:
        raise ValueError(
            f"{path}: truncated IDX header; {ndim} dimensions need {header_bytes} bytes, "
            f"found {len(data)}"
        )
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    if any(d < 0 for d in dims):
        raise ValueError(f"{path}: negative size in IDX header, dimensions {dims}")
    dtype = np.dtype(_IDX_DTYPES[code])
    count = math.prod(dims)
    expected = count * dtype.itemsize
    found = len(data) - header_bytes
    if found != expected:
        what = "truncated IDX body" if found < expected else "IDX body longer than its header says"
        raise ValueError(
            f"{path}: {what}; dimensions {dims} of {dtype.name} need {expected} bytes, "
            f"found {found}"
        )
    flat = np.frombuffer(data, dtype=dtype, count=count, offset=header_bytes)
    # astype copies into native byte order, and the copy is writeable (frombuffer's view is not)
    return flat.astype(dtype.newbyteorder("=")).reshape(dims)


def _decompress_if_gzip(data: bytes, path: Path) -> bytes:
    """The IDX bytes of a file that is gzip-compressed (by name or by magic) or raw."""
    if not (path.suffix == ".gz" or data[:2] == _GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(f"{path}: could not decompress gzip file: {e}") from e


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file, gzip-compressed or raw, into a numpy array of its stored type."""
    path = Path(path)
    return _parse_idx(_decompress_if_gzip(path.read_bytes(), path), path)


# ---------------------------------------------------------------------------------------------
# MNIST


def _mnist_folder(root: str | os.PathLike | None) -> Path:
    """root, else $TINYGRAD_MLP_DATA/mnist, else ~/.cache/tinygrad_mlp/mnist."""
    if root is not None:
        return Path(root).expanduser()
    data_home = os.environ.get("TINYGRAD_MLP_DATA")
    if data_home:
        return Path(data_home).expanduser() / "mnist"
    return Path.home() / ".cache" / "tinygrad_mlp" / "mnist"


def _check_sha256(data: bytes, path: Path, expected: str | None, download: bool = True) -> None:
    """Refuse file contents whose SHA-256 differs from the expected hex digest (None: no check);
    the message says how to mend it with or without downloading."""
    if expected is None:
        return
    found = hashlib.sha256(data).hexdigest()
    if found != expected.lower():
        remedy = (
            "delete the file to download it again"
            if download
            else "the file is damaged or truncated: replace it with an intact copy"
        )
        raise ValueError(f"{path}: SHA-256 mismatch, expected {expected}, found {found}; {remedy}")


def _show_progress(name: str, done: int, total: int) -> None:
    """Rewrite the download line on stderr; total is 0 when the server did not send a length."""
    if total:
        percent = 100 * done // total
        line = f"{percent:3d}% ({done / 1e6:.1f}/{total / 1e6:.1f} MB)"
    else:
        line = f"{done / 1e6:.1f} MB"
    sys.stderr.write(f"\rdownloading {name}: {line}")
    sys.stderr.flush()


def _fetch(url: str, out: BinaryIO, name: str, progress: bool) -> str:
    """Stream a URL into an open binary file, return the SHA-256 hex digest of what was written."""
    digest = hashlib.sha256()
    done = 0
    try:
        with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
            total = int(response.headers.get("Content-Length") or 0)
            while chunk := response.read(_CHUNK_BYTES):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress:
                    _show_progress(name, done, total)
    finally:
        if progress and done:
            sys.stderr.write("\n")
    if total and done != total:
        raise ConnectionError(f"connection closed after {done} of {total} bytes")
    return digest.hexdigest()


def _download(
    name: str, folder: Path, mirrors: Sequence[str], sha256: str | None, progress: bool
) -> None:
    """Fetch folder/name from the first mirror that serves it intact, atomically."""
    if not mirrors:
        raise ValueError(f"cannot download {name} into {folder}: the list of mirrors is empty")
    folder.mkdir(parents=True, exist_ok=True)
    failures = []
    served_bad_copy = False
    for base in mirrors:
        url = base.rstrip("/") + "/" + name
        fd, part_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
        part = Path(part_name)
        try:
            with os.fdopen(fd, "wb") as out:
                found = _fetch(url, out, name, progress)
            if sha256 is not None and found != sha256.lower():
                served_bad_copy = True
                failures.append(f"{url}: SHA-256 {found}, expected {sha256}")
                continue
            # NOTE: the temp file sits in the same folder, so os.replace is an atomic rename and
            # the real name never holds a partial or unchecked download.
            os.replace(part, folder / name)
            return
        except (OSError, http.client.HTTPException) as e:  # URLError and timeouts are OSErrors
            failures.append(f"{url}: {e}")
        finally:
            part.unlink(missing_ok=True)
    detail = "; ".join(failures)
    if served_bad_copy:
        raise ValueError(f"no mirror served an intact copy of {folder / name}: {detail}")
    raise ConnectionError(
        f"could not download {name} into {folder}: {detail}; "
        "copy the file there by hand, or pass other mirrors="
    )


def _load_mnist_file(path: Path, sha256: str | None, download: bool = True) -> np.ndarray:
    """Read a file once, check its checksum on the compressed bytes, then parse it."""
    data = path.read_bytes()
    _check_sha256(data, path, sha256, download)
    return _parse_idx(_decompress_if_gzip(data, path), path)


def _check_images(images: np.ndarray, path: Path) -> np.ndarray:
    """Refuse anything but uint8 images of shape (n, 28, 28)."""
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(
            f"{path}: expected uint8 images of shape (n, 28, 28), "
            f"found {images.dtype} of shape {images.shape}"
        )
    return images


def _check_labels(labels: np.ndarray, path: Path) -> np.ndarray:
    """Refuse anything but uint8 digits of shape (n,); return them as int64."""
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(
            f"{path}: expected uint8 labels of shape (n,), "
            f"found {labels.dtype} of shape {labels.shape}"
        )
    if labels.size and labels.max() > 9:
        raise ValueError(f"{path}: labels must be digits 0-9, found {int(labels.max())}")
    return labels.astype(np.int64)


def mnist(
    root: str | os.PathLike | None = None,
    download: bool = True,
    progress: bool = True,
    mirrors: Sequence[str] | None = None,
    checksums: Mapping[str, str] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST as (x_train, y_train, x_test, y_test): uint8 images (n, 28, 28), int64 labels."""
    # checksums maps file names to SHA-256 hex digests; None means MNIST_SHA256, and a file whose
    # name is absent from the mapping is not checked (so checksums={} turns checking off).
    folder = _mnist_folder(root)
    sums = MNIST_SHA256 if checksums is None else checksums
    missing = [name for name in MNIST_FILES if not (folder / name).is_file()]
    if missing and not download:
        raise FileNotFoundError(
            f"MNIST folder {folder} is missing {', '.join(missing)}; call mnist(download=True) "
            f"to fetch them, or copy the four files {', '.join(MNIST_FILES)} there"
        )
    if missing:
        urls = MNIST_MIRRORS if mirrors is None else mirrors
        urls = (urls,) if isinstance(urls, str) else tuple(urls)
        for name in missing:
            _download(name, folder, urls, sums.get(name), progress)

    paths = [folder / name for name in MNIST_FILES]
    arrays = [_load_mnist_file(path, sums.get(path.name), download) for path in paths]
    x_train, x_test = _check_images(arrays[0], paths[0]), _check_images(arrays[2], paths[2])
    y_train, y_test = _check_labels(arrays[1], paths[1]), _check_labels(arrays[3], paths[3])
    for images, labels, images_path, labels_path in (
        (x_train, y_train, paths[0], paths[1]),
        (x_test, y_test, paths[2], paths[3]),
    ):
        if len(images) != len(labels):
            raise ValueError(
                f"{images_path} holds {len(images)} images but {labels_path} "
                f"holds {len(labels)} labels"
            )
    return x_train, y_train, x_test, y_test


# ---------------------------------------------------------------------------------------------
# Toy sets


def make_moons(
    n: int = 1000, noise: float = 0.2, seed: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles: x float32 (n, 2), y int64 (n,) in {0, 1}, shuffled."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if not noise >= 0:
        raise ValueError(f"noise must be a non-negative standard deviation, got {noise!r}")
    rng = np.random.default_rng(seed)
    n_outer = n // 2
    n_inner = n - n_outer
    t_outer = np.linspace(0.0, np.pi, n_outer)
    t_inner = np.linspace(0.0, np.pi, n_inner)
    outer = np.stack([np.cos(t_outer), np.sin(t_outer)], axis=1)
    inner = np.stack([1.0 - np.cos(t_inner), 1.0 - np.sin(t_inner) - 0.5], axis=1)
    x = np.concatenate([outer, inner])
    y = np.concatenate([np.zeros(n_outer, np.int64), np.ones(n_inner, np.int64)])
    if noise > 0:
        x += rng.normal(scale=noise, size=x.shape)
    order = rng.permutation(n)
    return x[order].astype(np.float32), y[order]


def make_xor() -> tuple[np.ndarray, np.ndarray]:
    """The four XOR points: x float32 (4, 2), y float32 (4, 1)."""
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([[0], [1], [1], [0]], dtype=np.float32)
    return x, y


# ---------------------------------------------------------------------------------------------
# Image folders


def image_folder(
    path: str | os.PathLike,
    size: tuple[int, int] = (100, 100),
    classes: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read path/class_name/*.jpg|jpeg|png as x float32 (n, H, W, 3) in [0, 1], y, class names."""
    # size is (height, width), the order of the array axes; Pillow's resize wants (width, height).
    try:
        from PIL import Image
    except ImportError as e:
        raise ImportError(
            f"image_folder needs Pillow, which is not installed; {_IMAGES_INSTALL_HINT}"
        ) from e
    height, width = (int(s) for s in size)
    if height < 1 or width < 1:
        raise ValueError(f"size must be a positive (height, width), got {tuple(size)}")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist or is not a folder")

    if classes is None:
        class_names = sorted(
            d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")
        )
    else:
        class_names = list(classes)
        for name in class_names:
            if not (root / name).is_dir():
                raise FileNotFoundError(f"class folder {root / name} does not exist")

    files: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(class_names):
        found = sorted(
            f
            for f in (root / name).iterdir()
            if f.is_file() and f.suffix.lower() in _IMAGE_SUFFIXES and not f.name.startswith(".")
        )
        files += found
        labels += [label] * len(found)
    if not files:
        raise ValueError(
            f"no images in {root}; expected class_name/*.jpg|jpeg|png files, "
            f"found class folders {class_names}"
        )

    pixels = np.empty((len(files), height, width, 3), dtype=np.uint8)
    for i, file in enumerate(files):
        try:
            with Image.open(file) as image:
                rgb = image.convert("RGB").resize((width, height), Image.BILINEAR)
                pixels[i] = np.asarray(rgb, dtype=np.uint8)
        except (OSError, ValueError, SyntaxError) as e:  # Pillow's decode errors use all three
            raise ValueError(f"{file}: could not read image: {e}") from e
    x = pixels.astype(np.float32)
    x /= 255
    return x, np.asarray(labels, dtype=np.int64), class_names
