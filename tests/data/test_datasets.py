"""Tests for datasets: IDX parsing, MNIST from disk and from a local server, toy sets, images."""

import functools
import gzip
import hashlib
import http.server
import os
import re
import socket
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_mlp import datasets
from tinygrad_mlp.datasets import image_folder, make_moons, make_xor, mnist, read_idx

IDX_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C}
IDX_CODES.update({np.float32: 0x0D, np.float64: 0x0E})
TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS = datasets.MNIST_FILES


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of an array: magic, big-endian int32 dimensions, big-endian data."""
    code = IDX_CODES[array.dtype.type]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">i4").tobytes()
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def raises_naming(path: Path):
    return pytest.raises(ValueError, match=re.escape(str(path)))


def small_mnist(folder: Path, n_train: int = 5, n_test: int = 3, seed: int = 0) -> dict:
    """Write four small MNIST-shaped IDX files into folder; return the arrays by file name."""
    rng = np.random.default_rng(seed)
    arrays = {
        TRAIN_IMAGES: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        TRAIN_LABELS: rng.integers(0, 10, n_train, dtype=np.uint8),
        TEST_IMAGES: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        TEST_LABELS: rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        write_idx(folder / name, array)
    return arrays


def sums_of(folder: Path) -> dict:
    return {name: sha256_of(folder / name) for name in datasets.MNIST_FILES}


# ---------------------------------------------------------------------------------------------
# read_idx


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    array=hnp.arrays(
        dtype=st.sampled_from([np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]),
        shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5),
    ),
    compress=st.booleans(),
)
def test_read_idx_round_trip(tmp_path, array, compress):
    path = write_idx(tmp_path / ("a.idx.gz" if compress else "a.idx"), array, compress)
    out = read_idx(path)
    assert out.shape == array.shape
    assert out.dtype == array.dtype and out.dtype.isnative
    assert out.flags.writeable
    np.testing.assert_array_equal(out, array)


def test_read_idx_detects_gzip_by_magic_and_accepts_str(tmp_path):
    array = np.arange(6, dtype=np.int16).reshape(2, 3)
    path = write_idx(tmp_path / "no_suffix", array, compress=True)
    np.testing.assert_array_equal(read_idx(str(path)), array)


def test_read_idx_bad_magic(tmp_path):
    path = tmp_path / "bad-magic.idx"
    path.write_bytes(b"\x01\x00\x08\x01" + np.array([2], ">i4").tobytes() + b"\x00\x00")
    with raises_naming(path) as info:
        read_idx(path)
    assert "bad IDX magic" in str(info.value)
    path.write_bytes(b"\x00\x00\x07\x01" + np.array([2], ">i4").tobytes() + b"\x00\x00")
    with raises_naming(path):
        read_idx(path)


def test_read_idx_too_short_for_header(tmp_path):
    path = tmp_path / "tiny.idx"
    path.write_bytes(b"\x00\x00")
    with raises_naming(path):
        read_idx(path)
    path.write_bytes(b"\x00\x00\x08\x03" + np.array([2, 28], ">i4").tobytes())  # needs 3 dims
    with raises_naming(path) as info:
        read_idx(path)
    assert "truncated IDX header" in str(info.value)


def test_read_idx_short_body(tmp_path):
    data = idx_bytes(np.zeros((4, 28, 28), np.uint8))
    path = tmp_path / "short.idx.gz"
    path.write_bytes(gzip.compress(data[:-10]))
    with raises_naming(path) as info:
        read_idx(path)
    assert "truncated IDX body" in str(info.value)
    assert "need 3136 bytes, found 3126" in str(info.value)


def test_read_idx_wrong_count_in_header(tmp_path):
    data = bytearray(idx_bytes(np.zeros(10, np.uint8)))
    data[4:8] = np.array([7], ">i4").tobytes()  # header says 7 items, body holds 10
    path = tmp_path / "count.idx"
    path.write_bytes(bytes(data))
    with raises_naming(path) as info:
        read_idx(path)
    assert "longer than its header says" in str(info.value)


@pytest.mark.parametrize("kind", ["garbage", "truncated", "corrupted"])
def test_read_idx_bad_gzip(tmp_path, kind):
    good = gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8)))
    data = {
        "garbage": b"this is not a gzip stream at all",
        "truncated": good[: len(good) // 2],
        "corrupted": good[:12] + bytes(b ^ 0xFF for b in good[12:-8]) + good[-8:],
    }[kind]
    path = tmp_path / "bad.idx.gz"
    path.write_bytes(data)
    with raises_naming(path) as info:
        read_idx(path)
    assert "gzip" in str(info.value)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.idx"):
        read_idx(tmp_path / "nowhere.idx")


# ---------------------------------------------------------------------------------------------
# mnist from files on disk


def test_mnist_reads_small_files(tmp_path):
    arrays = small_mnist(tmp_path)
    x_train, y_train, x_test, y_test = mnist(tmp_path, download=False, checksums=sums_of(tmp_path))
    assert x_train.shape == (5, 28, 28) and x_train.dtype == np.uint8
    assert x_test.shape == (3, 28, 28) and x_test.dtype == np.uint8
    assert y_train.dtype == np.int64 and y_test.dtype == np.int64
    np.testing.assert_array_equal(x_train, arrays[TRAIN_IMAGES])
    np.testing.assert_array_equal(y_train, arrays[TRAIN_LABELS])
    np.testing.assert_array_equal(x_test, arrays[TEST_IMAGES])
    np.testing.assert_array_equal(y_test, arrays[TEST_LABELS])
    # checksums={} turns checking off
    assert len(mnist(tmp_path, download=False, checksums={})[0]) == 5


def test_mnist_default_checksums_refuse_other_files(tmp_path):
    small_mnist(tmp_path)
    with raises_naming(tmp_path / TRAIN_IMAGES) as info:
        mnist(tmp_path, download=False)
    assert datasets.MNIST_SHA256[TRAIN_IMAGES] in str(info.value)


def test_mnist_bad_checksum_on_disk(tmp_path):
    small_mnist(tmp_path)
    sums = sums_of(tmp_path)
    sums[TEST_LABELS] = "0" * 64
    with raises_naming(tmp_path / TEST_LABELS) as info:
        mnist(tmp_path, download=False, checksums=sums)
    assert "SHA-256 mismatch" in str(info.value)


def test_mnist_missing_files_without_download(tmp_path):
    small_mnist(tmp_path)
    (tmp_path / TEST_IMAGES).unlink()
    with pytest.raises(FileNotFoundError) as info:
        mnist(tmp_path, download=False, checksums={})
    message = str(info.value)
    assert (
        str(tmp_path) in message
        and TEST_IMAGES in message
        and TRAIN_IMAGES not in message.split(";")[0]
    )
    assert "download=True" in message


def test_mnist_folder_from_env_and_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYGRAD_MLP_DATA", str(tmp_path / "data"))
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "data" / "mnist"))):
        mnist(download=False)
    small_mnist(tmp_path / "data" / "mnist")
    assert mnist(download=False, checksums={})[0].shape == (5, 28, 28)
    monkeypatch.delenv("TINYGRAD_MLP_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    expected = tmp_path / "home" / ".cache" / "tinygrad_mlp" / "mnist"
    with pytest.raises(FileNotFoundError, match=re.escape(str(expected))):
        mnist(download=False)


def test_mnist_labels_above_nine(tmp_path):
    small_mnist(tmp_path)
    write_idx(tmp_path / TRAIN_LABELS, np.array([1, 2, 10, 3, 4], np.uint8))
    with raises_naming(tmp_path / TRAIN_LABELS) as info:
        mnist(tmp_path, download=False, checksums={})
    assert "found 10" in str(info.value)


def test_mnist_count_mismatch(tmp_path):
    small_mnist(tmp_path)
    write_idx(tmp_path / TEST_LABELS, np.array([1, 2], np.uint8))
    with raises_naming(tmp_path / TEST_LABELS) as info:
        mnist(tmp_path, download=False, checksums={})
    assert "3 images" in str(info.value) and "2 labels" in str(info.value)


def test_mnist_wrong_image_shape_or_type(tmp_path):
    small_mnist(tmp_path)
    write_idx(tmp_path / TRAIN_IMAGES, np.zeros((5, 28, 27), np.uint8))
    with raises_naming(tmp_path / TRAIN_IMAGES) as info:
        mnist(tmp_path, download=False, checksums={})
    assert "(5, 28, 27)" in str(info.value)
    write_idx(tmp_path / TRAIN_IMAGES, np.zeros((5, 28, 28), np.float32))
    with raises_naming(tmp_path / TRAIN_IMAGES):
        mnist(tmp_path, download=False, checksums={})


def test_mnist_truncated_file_on_disk(tmp_path):
    small_mnist(tmp_path)
    path = tmp_path / TEST_IMAGES
    path.write_bytes(path.read_bytes()[:-20])
    with raises_naming(path):
        mnist(tmp_path, download=False, checksums={})


# ---------------------------------------------------------------------------------------------
# mnist downloads, against a local HTTP server


class _Server:
    """A static file server on 127.0.0.1 that counts the requests it answers."""

    def __init__(self, folder: Path):
        self.requests: list[str] = []
        requests = self.requests

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_request(self, code="-", size="-"):
                requests.append(self.path)

            def log_message(self, *args):  # keep the test output quiet
                pass

        handler = functools.partial(Handler, directory=str(folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server(tmp_path):
    """Serves tmp_path/served/good (four small files) and tmp_path/served/bad (one corrupted)."""
    good = tmp_path / "served" / "good"
    arrays = small_mnist(good)
    bad = tmp_path / "served" / "bad"
    small_mnist(bad)
    corrupted = bytearray((bad / TRAIN_IMAGES).read_bytes())
    corrupted[-30] ^= 0xFF
    (bad / TRAIN_IMAGES).write_bytes(bytes(corrupted))
    srv = _Server(tmp_path / "served")
    srv.arrays = arrays
    srv.sums = sums_of(good)
    yield srv
    srv.close()


def test_download_then_cache(tmp_path, server, capsys):
    cache = tmp_path / "cache" / "mnist"
    x_train, y_train, x_test, y_test = mnist(
        cache, mirrors=[server.url + "/good/"], checksums=server.sums
    )
    np.testing.assert_array_equal(x_train, server.arrays[TRAIN_IMAGES])
    np.testing.assert_array_equal(y_test, server.arrays[TEST_LABELS])
    assert sorted(p.name for p in cache.iterdir()) == sorted(datasets.MNIST_FILES)
    assert len(server.requests) == 4
    assert "downloading train-images-idx3-ubyte.gz" in capsys.readouterr().err

    mnist(cache, mirrors=[server.url + "/good/"], checksums=server.sums)
    assert len(server.requests) == 4  # served from the cache

    (cache / TEST_LABELS).unlink()
    mnist(cache, mirrors=[server.url + "/good"], checksums=server.sums, progress=False)
    assert server.requests[4:] == ["/good/" + TEST_LABELS]
    assert capsys.readouterr().err == ""


def test_download_falls_back_to_next_mirror(tmp_path, server):
    cache = tmp_path / "cache"
    mirrors = [server.url + "/absent/", server.url + "/good/"]
    mnist(cache, mirrors=mirrors, checksums=server.sums, progress=False)
    assert server.requests.count("/absent/" + TRAIN_IMAGES) == 1
    assert server.requests.count("/good/" + TRAIN_IMAGES) == 1


def test_download_mirrors_module_attribute(tmp_path, server, monkeypatch):
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", (server.url + "/good/",))
    mnist(tmp_path / "cache", checksums=server.sums, progress=False)
    assert len(server.requests) == 4


def test_download_corrupted_file_is_refused_and_not_kept(tmp_path, server):
    cache = tmp_path / "cache"
    with raises_naming(cache / TRAIN_IMAGES) as info:
        mnist(cache, mirrors=[server.url + "/bad/"], checksums=server.sums, progress=False)
    assert server.sums[TRAIN_IMAGES] in str(info.value)
    assert not (cache / TRAIN_IMAGES).exists()
    assert list(cache.iterdir()) == []  # no partial download left behind either


def test_download_corrupted_then_good_mirror(tmp_path, server):
    cache = tmp_path / "cache"
    mirrors = [server.url + "/bad/", server.url + "/good/"]
    x_train = mnist(cache, mirrors=mirrors, checksums=server.sums, progress=False)[0]
    np.testing.assert_array_equal(x_train, server.arrays[TRAIN_IMAGES])
    assert sorted(p.name for p in cache.iterdir()) == sorted(datasets.MNIST_FILES)


def test_download_unreachable_server(tmp_path):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cache = tmp_path / "cache"
    with pytest.raises(ConnectionError, match=re.escape(str(cache))):
        mnist(cache, mirrors=[f"http://127.0.0.1:{port}/"], checksums={}, progress=False)
    assert list(cache.iterdir()) == []


def test_download_with_no_mirrors(tmp_path):
    with pytest.raises(ValueError, match="mirrors is empty"):
        mnist(tmp_path, mirrors=[], checksums={})


# ---------------------------------------------------------------------------------------------
# the real MNIST files, when this checkout sits next to them


def _real_mnist_folder():
    candidates = [Path(__file__).resolve().parents[3] / "shared" / "datasets" / "mnist"]
    if os.environ.get("TINYGRAD_MLP_DATA"):
        candidates.insert(0, Path(os.environ["TINYGRAD_MLP_DATA"]) / "mnist")
    for folder in candidates:
        if all((folder / name).is_file() for name in datasets.MNIST_FILES):
            return folder
    return None


REAL_MNIST = _real_mnist_folder()


@pytest.mark.skipif(REAL_MNIST is None, reason="the real MNIST files are not present")
def test_real_mnist():
    x_train, y_train, x_test, y_test = mnist(REAL_MNIST, download=False)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and x_test.dtype == np.uint8
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert y_train.dtype == np.int64 and y_test.dtype == np.int64
    np.testing.assert_array_equal(np.unique(y_train), np.arange(10))
    np.testing.assert_array_equal(np.unique(y_test), np.arange(10))
    assert x_train.max() == 255 and x_train.min() == 0
    assert y_train[:5].tolist() == [5, 0, 4, 1, 9]  # the well-known first training labels


# ---------------------------------------------------------------------------------------------
# toy sets


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 300), seed=st.integers(0, 2**32 - 1))
def test_make_moons_shapes_and_classes(n, seed):
    x, y = make_moons(n, seed=seed)
    assert x.shape == (n, 2) and x.dtype == np.float32
    assert y.shape == (n,) and y.dtype == np.int64
    assert (y == 0).sum() == n // 2 and (y == 1).sum() == n - n // 2


def test_make_moons_reproducible_and_shuffled():
    x1, y1 = make_moons(200, seed=7)
    x2, y2 = make_moons(200, seed=7)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    x3, _ = make_moons(200, seed=8)
    assert not np.array_equal(x1, x3)
    assert 0 < y1[:100].sum() < 100  # classes are mixed, not in two blocks


def test_make_moons_noiseless_points_lie_on_the_half_circles():
    x, y = make_moons(101, noise=0.0, seed=0)
    outer, inner = x[y == 0].astype(np.float64), x[y == 1].astype(np.float64)
    np.testing.assert_allclose(np.hypot(outer[:, 0], outer[:, 1]), 1.0, atol=1e-6)
    assert (outer[:, 1] >= -1e-6).all()
    np.testing.assert_allclose(np.hypot(inner[:, 0] - 1.0, inner[:, 1] - 0.5), 1.0, atol=1e-6)
    assert (inner[:, 1] <= 0.5 + 1e-6).all()


@pytest.mark.parametrize("kwargs", [{"n": 0}, {"n": -5}, {"n": 2.0}, {"noise": -0.1}])
def test_make_moons_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        make_moons(**kwargs)


def test_make_xor():
    x, y = make_xor()
    assert x.shape == (4, 2) and x.dtype == np.float32
    assert y.shape == (4, 1) and y.dtype == np.float32
    np.testing.assert_array_equal(y[:, 0], np.logical_xor(x[:, 0], x[:, 1]))


# ---------------------------------------------------------------------------------------------
# image folders


@pytest.fixture
def image_tree(tmp_path):
    """cat/ holds a red PNG, a grey JPEG and an RGBA PNG; dog/ a blue JPG; plus files to ignore."""
    image_module = pytest.importorskip("PIL.Image")
    root = tmp_path / "pets"
    (root / "dog").mkdir(parents=True)
    (root / "cat").mkdir()
    (root / ".hidden").mkdir()
    image_module.new("RGB", (12, 9), (255, 0, 0)).save(root / "cat" / "a.png")
    image_module.new("L", (5, 5), 128).save(root / "cat" / "b.jpeg")
    image_module.new("RGBA", (20, 30), (0, 255, 0, 255)).save(root / "cat" / "c.PNG")
    image_module.new("RGB", (7, 7), (0, 0, 255)).save(root / "dog" / "z.jpg", quality=100)
    (root / "cat" / "notes.txt").write_text("not an image")
    image_module.new("RGB", (4, 4)).save(root / ".hidden" / "x.png")
    return root


def test_image_folder_reads_tree(image_tree):
    x, y, names = image_folder(image_tree, size=(8, 6))
    assert names == ["cat", "dog"]
    assert x.shape == (4, 8, 6, 3) and x.dtype == np.float32
    assert y.tolist() == [0, 0, 0, 1] and y.dtype == np.int64
    assert 0.0 <= x.min() and x.max() <= 1.0
    np.testing.assert_allclose(x[0], np.broadcast_to([1.0, 0.0, 0.0], (8, 6, 3)))
    np.testing.assert_allclose(x[1], 128 / 255, atol=2 / 255)  # grey, converted to RGB
    np.testing.assert_allclose(x[2], np.broadcast_to([0.0, 1.0, 0.0], (8, 6, 3)))
    np.testing.assert_allclose(x[3], np.broadcast_to([0.0, 0.0, 1.0], (8, 6, 3)), atol=3 / 255)


def test_image_folder_default_size_and_chosen_classes(image_tree):
    x, y, names = image_folder(str(image_tree), classes=["dog", "cat"])
    assert names == ["dog", "cat"]
    assert x.shape == (4, 100, 100, 3)
    assert y.tolist() == [0, 1, 1, 1]
    x, y, names = image_folder(image_tree, size=(4, 4), classes=["dog"])
    assert x.shape == (1, 4, 4, 3) and y.tolist() == [0] and names == ["dog"]


def test_image_folder_missing_folder_or_class(tmp_path, image_tree):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nowhere"))):
        image_folder(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=re.escape(str(image_tree / "bird"))):
        image_folder(image_tree, classes=["cat", "bird"])


def test_image_folder_without_images(tmp_path):
    pytest.importorskip("PIL")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "a" / "readme.txt").write_text("no pictures")
    with raises_naming(tmp_path / "empty"):
        image_folder(tmp_path / "empty")


def test_image_folder_unreadable_image(image_tree):
    broken = image_tree / "dog" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with raises_naming(broken):
        image_folder(image_tree, size=(4, 4))


def test_image_folder_without_pillow(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    with pytest.raises(ImportError, match=re.escape('pip install -e ".[images]"')):
        image_folder(tmp_path)
