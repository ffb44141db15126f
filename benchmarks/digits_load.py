"""Load test of the digits app: many clients at once, every answer checked.

Run from the repository root::

    python benchmarks/digits_load.py --model ~/.cache/tinygrad_mlp/digits_app.npz
    python benchmarks/digits_load.py --model model.npz --clients 16 --requests 50 --kind canvas

It starts ``examples/digits_app.py --model PATH`` in a subprocess on a free port of 127.0.0.1
(port 0: the server picks one and prints its URL; when PATH does not exist the app trains a
model first and saves it there), then runs --clients threads at once, each sending
--requests POST /predict requests on its own keep-alive http.client connection. The requests
are MNIST test digits: ``pixels`` bodies (784 numbers), ``canvas`` bodies (the digit enlarged
4-9 times at a random place on a 280x280 canvas, values rounded to 2 decimals, as the page
sends them) or, with ``--kind mixed`` (the default), alternately one and the other. Each
answer is compared with the digit the same model gives in this process; the script prints
the throughput and the p50 / p99 latencies, and exits with status 1 if any request failed or
got a wrong answer. Everything stays on the loopback interface and is bounded by timeouts.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
sys.path.insert(0, str(EXAMPLES))

import digits_app  # noqa: E402  (sets the BLAS threads before numpy loads)
import numpy as np  # noqa: E402

import tinygrad_mlp as tm  # noqa: E402

HOST = "127.0.0.1"


def start_server(model: str, timeout: float) -> tuple[subprocess.Popen, int, list[str]]:
    """The app in a subprocess on a free port; returns it, its port and its output so far."""
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "digits_app.py"), "--host", HOST, "--port", "0"]
        + ["--model", model],
        cwd=ROOT,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:  # keeps draining the pipe so the server never blocks on it
        for line in proc.stdout:
            lines.append(line)
            if "http://" in line:
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    ready.wait(timeout)
    url = next((line for line in lines if "http://" in line), None)
    if url is None:
        proc.kill()
        proc.wait(10)
        raise SystemExit("the server did not start:\n" + "".join(lines))
    port = int(url.split("http://")[1].split("/")[0].rsplit(":", 1)[1])
    return proc, port, lines


def make_requests(n: int, kind: str, data_dir: str | None, seed: int) -> list[tuple]:
    """n (kind, JSON body, 28x28 image the server should see) from MNIST's test set."""
    _, _, x_test, _ = digits_app.load_mnist(data_dir)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        image = x_test[i]
        this = kind if kind != "mixed" else ("pixels", "canvas")[i % 2]
        if this == "pixels":
            out.append(("pixels", json.dumps({"pixels": image.ravel().tolist()}), image))
            continue
        k = int(rng.integers(4, 10))
        top, left = rng.integers(0, 280 - 28 * k + 1, size=2)
        canvas = np.zeros((280, 280))
        canvas[top : top + 28 * k, left : left + 28 * k] = np.kron(image, np.ones((k, k)))
        canvas = np.round(canvas, 2)
        values = [int(v) if v.is_integer() else v for v in canvas.ravel().tolist()]  # as JS
        body = {"canvas": values, "width": 280, "height": 280}
        out.append(("canvas", json.dumps(body), digits_app.mnist_preprocess(canvas)))
    return out


def run_load(port: int, requests: list[tuple], expected: list[int], clients: int, each: int):
    """Per request: (kind, latency in s, ok); and the wall time of the whole load."""
    barrier = threading.Barrier(clients + 1, timeout=30)

    def client(c: int) -> list[tuple[str, float, bool]]:
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        rows = []
        try:
            barrier.wait()
            for r in range(each):
                i = (c * each + r) % len(requests)
                kind, body = requests[i][0], requests[i][1]
                start = time.perf_counter()
                try:
                    conn.request("POST", "/predict", body, {"Content-Type": "application/json"})
                    response = conn.getresponse()
                    answer = json.loads(response.read())
                    ok = response.status == 200 and answer.get("digit") == expected[i]
                except (OSError, http.client.HTTPException, ValueError):
                    ok = False
                    conn.close()
                    conn = http.client.HTTPConnection(HOST, port, timeout=30)
                rows.append((kind, time.perf_counter() - start, ok))
        finally:
            conn.close()
        return rows

    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(client, c) for c in range(clients)]
        barrier.wait()
        start = time.perf_counter()
        rows = [row for future in futures for row in future.result(timeout=600)]
        wall = time.perf_counter() - start
    return rows, wall


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    """Run the load and print the report; 0 when every answer was right."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model", default=str(digits_app.default_model_path()), help="state dict")
    p.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    p.add_argument("--requests", type=int, default=50, help="requests per client (default 50)")
    p.add_argument("--kind", default="mixed", choices=("pixels", "canvas", "mixed"))
    p.add_argument("--data-dir", default=digits_app._common.default_mnist_dir())
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--startup-timeout", type=float, default=300, help="seconds (training)")
    args = p.parse_args(argv)
    if not (1 <= args.clients <= 64 and 1 <= args.requests <= 1000):
        p.error("--clients must be in 1..64 and --requests in 1..1000")

    proc, port, lines = start_server(args.model, args.startup_timeout)
    try:
        requests = make_requests(
            min(200, args.clients * args.requests), args.kind, args.data_dir, args.seed
        )
        classifier = digits_app.DigitClassifier(
            digits_app.model_from_state_dict(tm.load(args.model))
        )
        expected = [
            int(d)
            for d in classifier.probabilities(np.array([image for _, _, image in requests])).argmax(
                axis=1
            )
        ]
        body_kb = statistics.mean(len(body) for _, body, _ in requests) / 1024
        rows, wall = run_load(port, requests, expected, args.clients, args.requests)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    failed = sum(not ok for _, _, ok in rows)
    print(
        f"digits app load test, {datetime.date.today()}, {platform.platform()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"model {args.model}: {''.join(lines[:1]).strip()}")
    print(
        f"{args.clients} clients x {args.requests} requests ({args.kind}, mean body "
        f"{body_kb:.0f} KB), keep-alive connections on 127.0.0.1:{port}"
    )
    print(
        f"{len(rows)} requests in {wall:.2f} s: {len(rows) / wall:.1f} requests/s; "
        f"{failed} failed or wrong"
    )
    print("kind     n     p50 ms   p99 ms   max ms")
    for kind in sorted({kind for kind, _, _ in rows}) + ["all"]:
        times = [t * 1000 for k, t, _ in rows if kind in (k, "all")]
        print(
            f"{kind:7s} {len(times):4d} {percentile(times, 50):9.1f} "
            f"{percentile(times, 99):8.1f} {max(times):8.1f}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
