"""The example scripts as a newcomer meets them: --help describes every option, each script takes
--threads, --seed and --metrics (and --data-dir where it reads data), and a wrong --data-dir
ends in a message that says what to do, not in a traceback."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tinygrad_mlp as tm

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
MNIST_DIR = ROOT.parent / "shared" / "datasets" / "mnist"
HAVE_MNIST = all((MNIST_DIR / name).is_file() for name in tm.datasets.MNIST_FILES)
needs_mnist = pytest.mark.skipif(not HAVE_MNIST, reason=f"the MNIST files are not in {MNIST_DIR}")

SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))
READS_MNIST = ("mnist.py", "mnist_cnn.py", "pytorch_mnist.py", "classifier.py", "digits_app.py")
READS_DATA = (*READS_MNIST, "beans.py")


def data_args(script: str, folder: Path, tmp_path: Path) -> list[str]:
    """--data-dir folder, and for the app a model path with no file (so it reads the data)."""
    extra = ["--model", str(tmp_path / "no_model.npz")] if script == "digits_app.py" else []
    return ["--data-dir", str(folder), *extra]


def run(script: str, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run examples/<script> from the repository root, as a user would."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINYGRAD_MLP_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def described_options(help_text: str) -> dict[str, str]:
    """option -> its description, from argparse's --help output (every spelling of it)."""
    section = help_text.split("\noptions:\n", 1)[1]
    options: dict[str, str] = {}
    current: list[str] = []
    for line in section.splitlines():
        entry = re.match(r"^  (-\S.*?)(?:\s{2,}(.*))?$", line)
        if entry:
            current = re.findall(r"(--?[\w-]+)", entry.group(1).split("  ")[0])
            for flag in current:
                options[flag] = (entry.group(2) or "").strip()
        elif line.startswith("    ") and current:
            for flag in current:
                options[flag] = (options[flag] + " " + line.strip()).strip()
        elif not line.strip():
            current = []
        else:  # the epilog
            break
    return options


def test_every_script_is_checked_here():
    assert set(SCRIPTS) == {
        "beans.py", "check_backprop.py", "classifier.py", "digits_app.py", "mnist.py",
        "mnist_cnn.py", "moons.py", "pytorch_mnist.py", "xor.py",
    }  # fmt: skip


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_describes_every_option(script):
    proc = run(script, "--help")
    assert proc.returncode == 0, proc.stderr
    options = described_options(proc.stdout)
    undescribed = [flag for flag, text in options.items() if not text]
    assert not undescribed, f"{script} --help leaves {undescribed} undescribed:\n{proc.stdout}"
    expected = {"--seed", "--metrics"}
    if script != "pytorch_mnist.py":  # a plain PyTorch script: OMP_NUM_THREADS sets its threads
        expected.add("--threads")
    if script in READS_DATA:
        expected.add("--data-dir")
    assert expected <= set(options), f"{script} lacks {expected - set(options)}"
    # each example command of the description stands on a line of its own
    for line in proc.stdout.splitlines():
        assert line.count("python examples/") <= 1, f"two commands run together: {line!r}"


def test_help_parser_reads_argparse_output():
    """The parser above finds an undescribed option (so the test can fail)."""
    text = "usage: x\n\noptions:\n  -h, --help  show help\n  --lr LR\n  --seed SEED  seeds it\n"
    assert described_options(text) == {"-h": "show help", "--help": "show help", "--lr": "",
                                       "--seed": "seeds it"}  # fmt: skip


@pytest.mark.parametrize("script", READS_MNIST)
def test_a_missing_data_dir_says_what_to_do(script, tmp_path):
    missing = tmp_path / "nonexistent"
    proc = run(script, *data_args(script, missing, tmp_path), timeout=120)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    assert str(missing) in proc.stderr and "no such folder" in proc.stderr, proc.stderr
    assert "download=True" not in proc.stderr  # a library call means nothing on a command line
    assert "train-images-idx3-ubyte.gz" in proc.stderr  # what the folder should hold


@needs_mnist
@pytest.mark.parametrize("script", READS_MNIST)
def test_a_data_dir_missing_a_file_names_it(script, tmp_path):
    for name in tm.datasets.MNIST_FILES[1:]:
        (tmp_path / name).symlink_to(MNIST_DIR / name)
    proc = run(script, *data_args(script, tmp_path, tmp_path), timeout=120)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    assert tm.datasets.MNIST_FILES[0] in proc.stderr and "download=True" not in proc.stderr


@needs_mnist
@pytest.mark.parametrize("script", READS_MNIST)
def test_a_truncated_file_under_data_dir_is_named_without_a_download_hint(script, tmp_path):
    for name in tm.datasets.MNIST_FILES[1:]:
        (tmp_path / name).symlink_to(MNIST_DIR / name)
    first = tm.datasets.MNIST_FILES[0]
    (tmp_path / first).write_bytes((MNIST_DIR / first).read_bytes()[:5000])
    proc = run(script, *data_args(script, tmp_path, tmp_path), timeout=120)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "damaged" in proc.stderr or "truncated" in proc.stderr, proc.stderr
    assert "download it again" not in proc.stderr  # --data-dir never downloads
    assert "intact copy" in proc.stderr or "intact copies" in proc.stderr


def test_pytorch_mnist_keeps_data_as_a_hidden_alias(tmp_path):
    proc = run("pytorch_mnist.py", "--data", str(tmp_path / "nowhere"), timeout=60)
    assert proc.returncode != 0 and "no such folder" in proc.stderr
    assert "--data " not in run("pytorch_mnist.py", "--help").stdout


@needs_mnist
def test_pytorch_mnist_writes_metrics(tmp_path):
    path = tmp_path / "m.json"
    args = ["--steps", "30", "--train", "2000", "--test", "500", "--data-dir", str(MNIST_DIR)]
    proc = run("pytorch_mnist.py", *args, "--metrics", str(path))
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(path.read_text())
    printed = float(re.search(r"^test accuracy (\S+)$", proc.stdout, re.M).group(1))
    assert metrics["test_accuracy"] == pytest.approx(printed, abs=5e-5)
    assert metrics["test_correct"] == round(printed * 500) and metrics["steps"] == 30


def test_check_backprop_writes_metrics(tmp_path):
    path = tmp_path / "ok.json"
    proc = run("check_backprop.py", "--steps", "200", "--metrics", str(path))
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(path.read_text())
    assert metrics["passed"] is True and metrics["max_error"] < 1e-6
    assert f"loss after 200 steps: {metrics['loss']:.4f}" in proc.stdout
    broken = tmp_path / "broken.json"
    proc = run("check_backprop.py", "--broken", "sign", "--metrics", str(broken))
    assert proc.returncode == 1
    metrics = json.loads(broken.read_text())
    assert metrics["passed"] is False and metrics["broken"] == "sign"
    assert "is wrong at index" in metrics["report"]


def test_digits_app_writes_metrics_before_serving(tmp_path):
    tm.manual_seed(0)
    model = tm.nn.Sequential(tm.nn.Linear(784, 16), tm.nn.ReLU(), tm.nn.Linear(16, 10))
    tm.save(model.state_dict(), tmp_path / "model.npz")
    metrics_path = tmp_path / "app.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINYGRAD_MLP_")}
    env["PYTHONPATH"] = str(ROOT)
    args = ["--model", str(tmp_path / "model.npz"), "--port", "0", "--metrics", str(metrics_path)]
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "digits_app.py"), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not metrics_path.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert metrics_path.exists(), proc.stderr.read() if proc.poll() is not None else "timeout"
        time.sleep(0.2)  # the file is written whole before the server starts
        metrics = json.loads(metrics_path.read_text())
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
    assert metrics["trained"] is False and metrics["model"] == str(tmp_path / "model.npz")
    assert metrics["url"].startswith("http://127.0.0.1:")


def test_threads_option_sets_blas_threads_before_numpy():
    """--threads N (default 1) reaches the BLAS variables whatever the environment says."""
    code = (
        "import sys; sys.argv = ['x'] + sys.argv[1:]; sys.path.insert(0, 'examples'); "
        "import _common, os; print(_common.THREADS, os.environ['OPENBLAS_NUM_THREADS'], "
        "os.environ['OMP_NUM_THREADS'])"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="7", OMP_NUM_THREADS="7")
    for argv, expected in (
        ([], "1 1 1"),
        (["--threads", "2"], "2 2 2"),
        (["--threads=3"], "3 3 3"),
    ):
        done = subprocess.run(
            [sys.executable, "-c", code, *argv], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert done.stdout.split() == expected.split(), done.stderr
    proc = run("xor.py", "--threads", "0")
    assert proc.returncode == 2 and "--threads" in proc.stderr


def test_threads_never_come_from_the_load_average():
    source = (EXAMPLES / "_common.py").read_text()
    assert "getloadavg" not in source and "cpu_count" not in source


@pytest.mark.skipif(
    shutil.which("mpiexec") is None and not (Path(sys.executable).parent / "mpiexec").exists(),
    reason="needs mpiexec",
)
@needs_mnist
def test_the_mpi_header_names_the_ranks(tmp_path):
    pytest.importorskip("mpi4py")
    here = Path(sys.executable).parent / "mpiexec"
    mpiexec = str(here) if here.exists() else shutil.which("mpiexec")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINYGRAD_MLP_")}
    env["PYTHONPATH"] = str(ROOT)
    args = ["--distributed", "--epochs", "1", "--train-limit", "1024", "--arch", "784-16-10"]
    proc = subprocess.run(
        [mpiexec, "-n", "2", sys.executable, str(EXAMPLES / "mnist.py"), *args, "--quiet"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    if proc.returncode != 0 and "SKIP" in proc.stdout + proc.stderr:
        pytest.skip("MPI cannot start here")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    header = proc.stdout.splitlines()[0]
    assert "data-parallel over 2 MPI ranks (64 images each per batch)" in header, header


@pytest.mark.slow
def test_bench_quick_prints_no_verdicts(tmp_path):
    """A --quick run is a smoke test: its targets are shown but never judged PASS or FAIL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINYGRAD_MLP_")}
    env["PYTHONPATH"] = str(ROOT)
    args = ["--quick", "--only", "xor", "--repeats", "1", "--threads", "1"]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "not judged" in proc.stdout
    assert not re.search(r"\b(FAIL|PASS)\b", proc.stdout), proc.stdout
