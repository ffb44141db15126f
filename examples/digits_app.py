"""Draw a digit in the browser and watch an MLP trained on MNIST read it.

    python examples/digits_app.py [--port 8000] [--host 127.0.0.1] [--data-dir DIR] [--model PATH]
        [--metrics PATH] [--threads N]

Open the printed URL, draw a digit on the pad with a mouse, a pen or a finger: after each
stroke the page sends the drawing to the server, which prepares it as MNIST's digits were
prepared and answers with the predicted digit and the ten class probabilities.

--model PATH loads a saved state dict (tm.save of a Sequential of Linear layers with ReLU
between them, e.g. from ``examples/mnist.py --save``) when the file exists. Otherwise the app
trains a 784-256-128-10 ReLU network (SGD with momentum 0.9 and a cosine schedule, 6 epochs of
batch 128 on randomly rotated, scaled and shifted training images, under a minute on two
cores, about 98% test accuracy), saves it to PATH and then serves. The default PATH is
digits_app.npz in $TINYGRAD_MLP_DATA, or in ~/.cache/tinygrad_mlp when that is unset.

HTTP API (all answers are JSON):

    GET  /                      the page (static files from examples/digits_app/)
    POST /predict  {"pixels": [784 numbers in 0..1]}            an MNIST-like 28x28 image
    POST /predict  {"canvas": [H*W numbers in 0..1], "width": W, "height": H}
                   a raw drawing (ink = 1), prepared by mnist_preprocess first
    -> {"digit": d, "probabilities": [10 numbers]}
    bad requests -> {"error": "..."} with 400 (bad JSON or values), 404 (unknown path),
                    405 (wrong method), 411 (no Content-Length), 413 (body over 4 MB)

Web stack: the standard library's http.server.ThreadingHTTPServer. It adds no dependency, one
thread per connection is plenty for a demo (16 clients at once are tested), and the work that
matters, numpy's array code and matrix products, releases the GIL. The page is plain HTML, CSS
and JavaScript served from examples/digits_app/: no build step, no CDN. Inference runs under
tm.no_grad(), whose switch is process-wide, so the forward pass holds a lock (it takes tens of
microseconds; preprocessing runs outside it, in parallel).
"""

from __future__ import annotations

import argparse
import http.server
import json
import math
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import _common  # before numpy: it sets the number of BLAS threads
import numpy as np

import tinygrad_mlp as tm
from tinygrad_mlp import functional as F
from tinygrad_mlp import nn

STATIC_DIR = Path(__file__).resolve().parent / "digits_app"
STATIC_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_SIDE = 2048  # the largest canvas width or height /predict accepts
DEFAULT_ARCH = (784, 256, 128, 10)


# ---------------------------------------------------------------- preprocessing


def _area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of a box filter: output i averages input over its share of the line.

    Output pixel i covers [i, i + 1) * n_in / n_out in input coordinates; each input pixel j
    ([j, j + 1)) counts by how much of that span it overlaps (area averaging, as an image
    program's anti-aliased resize). Works for shrinking and enlarging.
    """
    step = n_in / n_out
    lo = np.arange(n_out)[:, None] * step
    j = np.arange(n_in)[None, :]
    overlap = np.minimum(lo + step, j + 1) - np.maximum(lo, j)
    return np.clip(overlap, 0.0, None) / step


def resize_area(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a 2-D array to (height, width) by area averaging (a box filter)."""
    return _area_matrix(image.shape[0], height) @ image @ _area_matrix(image.shape[1], width).T


def mnist_preprocess(canvas: Any) -> np.ndarray:
    """A drawing (2-D, ink 1, paper 0) as a (28, 28) float32 image prepared the way MNIST was.

    As LeCun et al. did for MNIST: crop to the bounding box of the ink, size-normalise it to
    fit a 20x20 box keeping its aspect ratio (the shorter side is padded to a square around
    its centre, then area-averaged down or up to 20x20, which anti-aliases), then place it in
    a 28x28 field so that its centre of mass (in pixel indices) lands at (14, 14), rounded to
    whole pixels; ink pushed past the border is cut. The result is scaled so its brightest
    pixel is 1, since MNIST's strokes have saturated cores. Raises ValueError for a blank
    canvas or one that is not 2-D.
    """
    a = np.asarray(canvas, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"the canvas must be 2-D, got shape {a.shape}")
    rows = np.flatnonzero(a.max(axis=1) > 0)
    cols = np.flatnonzero(a.max(axis=0) > 0)
    if rows.size == 0:
        raise ValueError("the canvas is blank: there is no ink to read")
    a = a[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = a.shape
    side = max(h, w)
    square = np.zeros((side, side))
    top, left = (side - h) // 2, (side - w) // 2
    square[top : top + h, left : left + w] = a
    # NOTE: padding with an odd difference puts the half pixel on one side; at 20/side scale
    # that moves the digit by less than a tenth of a pixel.
    box = resize_area(square, 20, 20)
    box /= box.max()
    mass = box.sum()
    idx = np.arange(20)
    cy = (box.sum(axis=1) @ idx) / mass
    cx = (box.sum(axis=0) @ idx) / mass
    # NOTE: rounded to 1e-6 first, so that float noise cannot flip an exact half (9.5 -> 5)
    dy, dx = (math.floor(round(14 - c, 6) + 0.5) for c in (cy, cx))
    out = np.zeros((48, 48))  # room for any offset in [-6, 15], cut to 28x28 below
    out[10 + dy : 30 + dy, 10 + dx : 30 + dx] = box
    return out[10:38, 10:38].astype(np.float32)


# ---------------------------------------------------------------- the model


def build_model(sizes: tuple[int, ...] = DEFAULT_ARCH) -> nn.Sequential:
    """Linear layers of the given sizes with ReLU between them."""
    return _common.mlp(list(sizes), "relu")


def model_from_state_dict(state: dict[str, Any]) -> nn.Sequential:
    """A ReLU MLP shaped by a saved state dict ('0.weight', '0.bias', '2.weight', ...)."""
    indices = sorted(int(key.split(".")[0]) for key in state if key.endswith(".weight"))
    if not indices:
        raise ValueError("the state dict has no '<i>.weight' entries of Linear layers")
    sizes = [int(np.shape(state[f"{indices[0]}.weight"])[1])]
    sizes += [int(np.shape(state[f"{i}.weight"])[0]) for i in indices]
    if sizes[0] != 784 or sizes[-1] != 10:
        raise ValueError(f"the model must map 784 pixels to 10 classes, got {sizes}")
    model = build_model(tuple(sizes))
    expected = {f"{2 * k}.{name}" for k in range(len(indices)) for name in ("weight", "bias")}
    if set(state) != expected:
        raise ValueError(f"expected a Linear/ReLU stack with keys {sorted(expected)}")
    model.load_state_dict(state)
    return model.eval()


def augment(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N, 28, 28) images, each rotated (+-12 deg), scaled (0.85-1.1) and shifted (+-2 px).

    One random affine map per image about the centre (14, 14), sampled bilinearly: drawn
    digits are never as neatly placed as MNIST's, and these are the ways they differ.
    """
    n = len(images)
    angle = rng.uniform(-12, 12, n) * math.pi / 180
    scale = rng.uniform(0.85, 1.1, n)
    shift = rng.uniform(-2, 2, (n, 2))
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
    yy, xx = np.mgrid[0:28, 0:28].astype(np.float32) - 14
    # source = R(-angle) / scale @ (target - centre) + centre - shift
    sy = cos[:, None, None] * yy - sin[:, None, None] * xx + 14 - shift[:, 0, None, None]
    sx = sin[:, None, None] * yy + cos[:, None, None] * xx + 14 - shift[:, 1, None, None]
    padded = np.zeros((n, 30, 30), dtype=np.float32)  # a zero border for samples outside
    padded[:, 1:29, 1:29] = images
    sy, sx = np.clip(sy + 1, 0, 28.999), np.clip(sx + 1, 0, 28.999)
    y0, x0 = sy.astype(np.int64), sx.astype(np.int64)
    fy, fx = (sy - y0).astype(np.float32), (sx - x0).astype(np.float32)
    flat = padded.reshape(n, -1)
    base = (y0 * 30 + x0).reshape(n, -1)

    def at(offset: int) -> np.ndarray:
        return np.take_along_axis(flat, base + offset, axis=1).reshape(n, 28, 28)

    top = at(0) * (1 - fx) + at(1) * fx
    bottom = at(30) * (1 - fx) + at(31) * fx
    return top * (1 - fy) + bottom * fy


def load_mnist(data_dir: str | None) -> tuple[np.ndarray, ...]:
    """MNIST as float32 (N, 28, 28) images in 0..1 and int64 labels: train, then test."""
    x_train, y_train, x_test, y_test = _common.load_mnist(data_dir)
    return (
        x_train.astype(np.float32) / 255,
        y_train.astype(np.int64),
        x_test.astype(np.float32) / 255,
        y_test.astype(np.int64),
    )


def train_model(
    x_train: np.ndarray,
    y_train: np.ndarray,
    sizes: tuple[int, ...] = DEFAULT_ARCH,
    epochs: int = 6,
    batch_size: int = 128,
    lr: float = 0.1,
    augment_images: bool = True,
    seed: int = 0,
    log: Any = None,
) -> nn.Sequential:
    """Train a ReLU MLP on (N, 28, 28) images with SGD, momentum 0.9 and a cosine schedule.

    With ``augment_images`` each epoch sees a fresh random affine copy of every image (see
    ``augment``). ``log`` is called with a line per epoch when given.
    """
    tm.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_model(sizes)
    optimizer = tm.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    steps_per_epoch = math.ceil(len(x_train) / batch_size)
    total, step = epochs * steps_per_epoch, 0
    for epoch in range(epochs):
        start = time.perf_counter()
        images = augment(x_train, rng) if augment_images else x_train
        loader = tm.DataLoader(
            images.reshape(len(images), 784), y_train, batch_size=batch_size, seed=seed + epoch
        )
        for xb, yb in loader:
            for group in optimizer.param_groups:  # from lr down to 0 along a half cosine
                group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * step / total))
            loss = F.cross_entropy(model(tm.Tensor(xb)), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
        if log is not None:
            log(
                f"epoch {epoch + 1}/{epochs}  loss {loss.item():.4f}  "
                f"{time.perf_counter() - start:.1f} s"
            )
    return model.eval()


class DigitClassifier:
    """A trained model behind a lock: ``predict`` may be called from many threads at once."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model.eval()
        self._lock = threading.Lock()

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """(N, 10) class probabilities for (N, 784) or (N, 28, 28) images in 0..1."""
        x = np.asarray(images, dtype=np.float32).reshape(-1, 784)
        with self._lock, tm.no_grad():  # no_grad's switch is process-wide
            logits = self.model(tm.Tensor(x)).numpy()
        z = np.exp(logits - logits.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def predict(self, image: np.ndarray) -> tuple[int, list[float]]:
        """The digit and the ten probabilities for one 28x28 image."""
        p = self.probabilities(image)[0]
        return int(p.argmax()), [float(v) for v in p]


# ---------------------------------------------------------------- the HTTP server


class BadRequest(Exception):
    """A request the server refuses: an HTTP status and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _reject_constant(name: str) -> float:
    raise BadRequest(400, f"{name} is not allowed: every value must be a finite number")


def _numbers(value: Any, name: str, length: int) -> np.ndarray:
    """A JSON list of ``length`` numbers in 0..1 as a float64 array, or BadRequest."""
    if not isinstance(value, list):
        raise BadRequest(400, f"'{name}' must be a list of numbers, got {type(value).__name__}")
    if len(value) != length:
        raise BadRequest(400, f"'{name}' must have {length} numbers, got {len(value)}")
    if not set(map(type, value)) <= {int, float}:  # exact types: a bool is refused too
        bad = next(v for v in value if type(v) not in (int, float))
        raise BadRequest(400, f"'{name}' must hold only numbers, found {json.dumps(bad)}")
    array = np.array(value, dtype=np.float64)
    if not np.isfinite(array).all():  # e.g. 1e999, which json reads as inf
        raise BadRequest(400, f"'{name}' must hold finite numbers")
    if array.size and (array.min() < 0 or array.max() > 1):
        raise BadRequest(
            400, f"'{name}' values must be in 0..1, got {array.min():g}..{array.max():g}"
        )
    return array


def _side(payload: dict, name: str) -> int:
    value = payload.get(name)
    if type(value) is not int:
        raise BadRequest(400, f"'{name}' must be an integer, got {json.dumps(value)}")
    if not 1 <= value <= MAX_SIDE:
        raise BadRequest(400, f"'{name}' must be between 1 and {MAX_SIDE}, got {value}")
    return value


def image_from_request(payload: Any) -> np.ndarray:
    """The (28, 28) image a /predict JSON body asks about, or BadRequest saying what is wrong."""
    if not isinstance(payload, dict):
        raise BadRequest(400, "the body must be a JSON object with 'pixels' or 'canvas'")
    if "pixels" in payload:
        return _numbers(payload["pixels"], "pixels", 784).reshape(28, 28)
    if "canvas" in payload:
        width, height = _side(payload, "width"), _side(payload, "height")
        canvas = _numbers(payload["canvas"], "canvas", width * height)
        try:
            return mnist_preprocess(canvas.reshape(height, width))
        except ValueError as e:
            raise BadRequest(400, str(e)) from None
    raise BadRequest(400, "the JSON object needs 'pixels' (784 numbers) or 'canvas'")


class DigitsHandler(http.server.BaseHTTPRequestHandler):
    """GET the page and its files, POST /predict; every refusal is a JSON error."""

    server_version = "digits_app/1.0"
    protocol_version = "HTTP/1.1"  # keep-alive: a client may send many requests on one socket
    classifier: DigitClassifier  # set on the subclass that make_server creates
    log_requests = False

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        if status == 405:
            self.send_header("Allow", "POST" if self.path == "/predict" else "GET, HEAD")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":  # a HEAD answer has the headers of GET's, never a body
            self.wfile.write(body)

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def _route(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        if path not in STATIC_FILES and path != "/predict":
            self._drain()
            return self._error(404, f"no such path: {path}")
        wanted = "POST" if path == "/predict" else "GET"
        if method != wanted and not (method == "HEAD" and wanted == "GET"):
            self._drain()
            return self._error(405, f"{path} takes {wanted}, not {method}")
        if path == "/predict":
            return self._predict()
        name, content_type = STATIC_FILES[path]
        self._send(200, (STATIC_DIR / name).read_bytes(), content_type)

    def _drain(self) -> None:
        """Read (and drop) a small body so the connection stays usable; else close it."""
        length = self.headers.get("Content-Length")
        if length is None:
            return
        try:
            n = int(length)
        except ValueError:
            n = -1
        if 0 <= n <= MAX_BODY_BYTES:
            self.rfile.read(n)
        else:
            self.close_connection = True

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None:
            self.close_connection = True
            raise BadRequest(411, "POST /predict needs a Content-Length header")
        try:
            n = int(length)
        except ValueError:
            self.close_connection = True
            raise BadRequest(400, f"bad Content-Length: {length!r}") from None
        if n < 0:
            self.close_connection = True
            raise BadRequest(400, f"bad Content-Length: {length!r}")
        if n > MAX_BODY_BYTES:
            self.close_connection = True  # the body is never read
            raise BadRequest(413, f"the body is {n} bytes; the limit is {MAX_BODY_BYTES}")
        return self.rfile.read(n)

    def _predict(self) -> None:
        try:
            body = self._read_body()
            try:
                payload = json.loads(body, parse_constant=_reject_constant)
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise BadRequest(400, f"the body is not valid JSON: {e}") from None
            digit, probabilities = self.classifier.predict(image_from_request(payload))
        except BadRequest as e:
            return self._error(e.status, e.message)
        self._json(200, {"digit": digit, "probabilities": probabilities})

    def _handle(self, method: str) -> None:
        try:
            self._route(method)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # noqa: BLE001 -- keep serving; tell the client
            self.close_connection = True
            self.log_error("error on %s %s: %r", method, self.path, e)
            try:
                self._error(500, f"internal error: {type(e).__name__}")
            except OSError:
                pass

    def do_GET(self) -> None:  # noqa: N802 -- http.server's naming
        self._handle("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._handle("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._handle("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

    def do_PATCH(self) -> None:  # noqa: N802
        self._handle("PATCH")

    def do_OPTIONS(self) -> None:  # noqa: N802
        self._handle("OPTIONS")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if self.log_requests:
            super().log_message(format, *args)

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002
        super().log_message(format, *args)


class DigitsServer(http.server.ThreadingHTTPServer):
    """ThreadingHTTPServer with a longer listen queue, for bursts of clients connecting."""

    request_queue_size = 128
    daemon_threads = True


def make_server(
    classifier: DigitClassifier, host: str = "127.0.0.1", port: int = 8000, log: bool = False
) -> DigitsServer:
    """A server (not yet serving) bound to host:port; port 0 picks a free port."""
    handler = type("Handler", (DigitsHandler,), {"classifier": classifier, "log_requests": log})
    return DigitsServer((host, port), handler)


# ---------------------------------------------------------------- the command line


def default_model_path() -> Path:
    """digits_app.npz in $TINYGRAD_MLP_DATA, else in ~/.cache/tinygrad_mlp."""
    home = os.environ.get("TINYGRAD_MLP_DATA")
    folder = Path(home).expanduser() if home else Path.home() / ".cache" / "tinygrad_mlp"
    return folder / "digits_app.npz"


def accuracy(classifier: DigitClassifier, images: np.ndarray, labels: np.ndarray) -> float:
    """The share of images whose most probable class is the label."""
    return float((classifier.probabilities(images).argmax(axis=1) == labels).mean())


def get_classifier(args: argparse.Namespace) -> tuple[DigitClassifier, dict[str, Any]]:
    """Load the model at args.model, or train one on MNIST and save it there; also return what
    was done, for --metrics."""
    path = Path(args.model)
    if path.is_file():
        classifier = DigitClassifier(model_from_state_dict(tm.load(path)))
        print(f"model loaded from {path}", flush=True)
        return classifier, {"model": str(path), "trained": False}
    print(f"no model at {path}: training one on MNIST ({args.epochs} epochs)", flush=True)
    start = time.perf_counter()
    x_train, y_train, x_test, y_test = load_mnist(args.data_dir)
    model = train_model(
        x_train, y_train, epochs=args.epochs, seed=args.seed, log=lambda s: print(s, flush=True)
    )
    classifier = DigitClassifier(model)
    acc = accuracy(classifier, x_test, y_test)
    seconds = time.perf_counter() - start
    print(f"test accuracy {acc:.2%}, trained in {seconds:.1f} s", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tm.save(model.state_dict(), path)
    print(f"model saved to {path}", flush=True)
    info = {"model": str(path), "trained": True, "test_accuracy": acc, "train_seconds": seconds}
    return classifier, {**info, "epochs": args.epochs, "seed": args.seed}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(
        description=__doc__, epilog=_common.THREADS_NOTE, formatter_class=_common.HelpFormatter
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (0: any free one)")
    p.add_argument(
        "--data-dir",
        default=_common.default_mnist_dir(),
        help="folder with the four MNIST .gz files, for training (default: "
        "../shared/datasets/mnist next to the repository when it exists, else the cache)",
    )
    p.add_argument(
        "--model",
        default=str(default_model_path()),
        help="state dict to load; trained and saved there when the file does not exist",
    )
    p.add_argument("--epochs", type=int, default=6, help="epochs when training a model")
    p.add_argument("--seed", type=int, default=0, help="seed when training a model")
    p.add_argument("--log", action="store_true", help="log every request on stderr")
    p.add_argument(
        "--metrics",
        metavar="PATH",
        help="write what was loaded or trained (and the test accuracy) as JSON before serving",
    )
    _common.add_threads_argument(p)
    args = p.parse_args(argv)
    if not 0 <= args.port <= 65535:
        p.error(f"--port must be in 0..65535, got {args.port}")
    if args.epochs < 1:
        p.error("--epochs must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    """Get a model, then serve until interrupted."""
    args = parse_args(argv)
    classifier, metrics = get_classifier(args)
    server = make_server(classifier, args.host, args.port, log=args.log)
    host, port = server.server_address[:2]
    _common.write_metrics(args.metrics, {**metrics, "url": f"http://{host}:{port}/"})
    print(f"serving the digits app on http://{host}:{port}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
