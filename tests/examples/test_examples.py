"""Run each example script in a subprocess on small settings and check its metrics file."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import tinygrad_mlp as tm

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
MNIST_DIR = ROOT.parent / "shared" / "datasets" / "mnist"
HAVE_MNIST = all((MNIST_DIR / name).is_file() for name in tm.datasets.MNIST_FILES)
HAVE_PLOT = importlib.util.find_spec("matplotlib") is not None
HAVE_PILLOW = importlib.util.find_spec("PIL") is not None

needs_mnist = pytest.mark.skipif(not HAVE_MNIST, reason=f"the MNIST files are not in {MNIST_DIR}")
needs_plot = pytest.mark.skipif(not HAVE_PLOT, reason="matplotlib is not installed ([plot])")
needs_pillow = pytest.mark.skipif(not HAVE_PILLOW, reason="Pillow is not installed ([images])")


def run(script: str, *args: str, env: dict | None = None, check: bool = True, timeout=240):
    """Run examples/<script> with args from the repository root; return the finished process."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), full_env.get("PYTHONPATH")]))
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def run_metrics(tmp_path: Path, script: str, *args: str) -> tuple[dict, str]:
    """Run a script with --metrics and return the parsed JSON and the standard output."""
    path = tmp_path / f"{script}.json"
    proc = run(script, *args, "--metrics", str(path))
    return json.loads(path.read_text()), proc.stdout


@pytest.mark.parametrize("script", ["xor.py", "mnist.py", "moons.py", "beans.py", "classifier.py"])
def test_help(script):
    proc = run(script, "--help")
    assert "usage:" in proc.stdout and "--seed" in proc.stdout


@pytest.mark.parametrize("loss", ["bce", "mse"])
def test_xor_solves_the_four_points(tmp_path, loss):
    metrics, out = run_metrics(tmp_path, "xor.py", "--loss", loss)
    assert metrics["accuracy"] == 1.0
    assert metrics["loss"] < 0.01
    assert len(metrics["predictions"]) == 4
    assert "1 xor 0 = 1" in out


def test_moons_reaches_the_classic_accuracy_and_plots(tmp_path):
    args = ["--epochs", "150", "--fresh", "2000"]
    if HAVE_PLOT:
        args += ["--plot", str(tmp_path / "moons.png")]
    metrics, out = run_metrics(tmp_path, "moons.py", *args)
    assert metrics["test_accuracy"] >= 0.95
    assert metrics["fresh_accuracy"] >= 0.95  # the Bayes-optimal boundary scores about 0.971
    assert metrics["epochs"] == 150
    if HAVE_PLOT:
        assert (tmp_path / "moons.png").read_bytes()[:4] == b"\x89PNG"


def test_plot_without_matplotlib_says_what_to_install(tmp_path):
    """A stand-in matplotlib that fails to import gives a clear message, not a traceback."""
    fake = tmp_path / "fake_site" / "matplotlib"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no matplotlib here')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(fake.parent), str(ROOT)])}
    proc = run("moons.py", "--epochs", "2", "--plot", str(tmp_path / "x.png"), env=env, check=False)
    assert proc.returncode != 0
    assert "pip install" in proc.stderr and "[plot]" in proc.stderr
    assert "Traceback" not in proc.stderr


@needs_mnist
def test_mnist_small_run_saves_and_plots(tmp_path):
    model_path = tmp_path / "model.npz"
    args = ["--arch", "784-64-10", "--epochs", "2", "--train-limit", "6000"]
    args += ["--save", str(model_path), "--val-size", "1000"]
    if HAVE_PLOT:
        args += ["--plot", str(tmp_path / "curves.png")]
    metrics, out = run_metrics(tmp_path, "mnist.py", *args)
    assert metrics["test_accuracy"] >= 0.88
    assert metrics["val_accuracy"] >= 0.88
    assert metrics["epochs"] == 2 and metrics["train_images"] == 6000
    assert len(metrics["history"]["test_accuracy"]) == 2
    assert metrics["train_seconds"] > 0
    assert "epoch   2/2" in out and "samples/s" in out
    state = tm.load(model_path)
    assert {k: v.shape for k, v in state.items()} == {
        "0.weight": (64, 784),
        "0.bias": (64,),
        "2.weight": (10, 64),
        "2.bias": (10,),
    }
    if HAVE_PLOT:
        assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"


@needs_mnist
def test_mnist_classic_sigmoid_mse_network_runs(tmp_path):
    """784-16-10, ReLU then sigmoid, randn*0.1, MSE, plain SGD (lr 1.0 here), batch 64."""
    metrics, _ = run_metrics(
        tmp_path, "mnist.py", "--arch", "784-16-10", "--init", "normal0.1", "--loss", "mse",
        "--out-activation", "sigmoid", "--optimizer", "sgd", "--lr", "1.0", "--batch-size",
        "64", "--epochs", "2", "--schedule", "none", "--train-limit", "20000",
    )  # fmt: skip
    assert metrics["loss"] == "mse"
    assert metrics["test_accuracy"] >= 0.70


@needs_mnist
def test_mnist_rejects_a_bad_arch():
    proc = run("mnist.py", "--arch", "784-10-9", check=False)
    assert proc.returncode == 2 and "end with 10 classes" in proc.stderr


@needs_mnist
@pytest.mark.slow
def test_mnist_one_full_epoch_reaches_95_percent(tmp_path):
    """The default network, one epoch over all 60,000 training images."""
    metrics, _ = run_metrics(tmp_path, "mnist.py", "--epochs", "1")
    assert metrics["test_accuracy"] >= 0.95
    assert metrics["train_images"] == 60000


@needs_mnist
@pytest.mark.cuda
def test_mnist_on_the_gpu(tmp_path):
    if not tm.cupy_available():
        pytest.skip("CuPy with a GPU is not available")
    metrics, _ = run_metrics(tmp_path, "mnist.py", "--device", "cuda", "--epochs", "1")
    assert metrics["device"] == "cuda"
    assert metrics["test_accuracy"] >= 0.95


@needs_pillow
def test_beans_on_a_generated_image_folder(tmp_path):
    data = tmp_path / "beans"
    metrics, out = run_metrics(
        tmp_path, "beans.py", "--make-fake-data", str(data), "--fake-count", "12",
        "--image-size", "32", "--standardize", "--optimizer", "adam", "--lr", "1e-3",
        "--epochs", "60", "--seed", "1", "--save", str(tmp_path / "beans.npz"),
    )  # fmt: skip
    for split in ("train", "validation"):
        assert sorted(p.name for p in (data / split).iterdir()) == [
            "angular_leaf_spot",
            "bean_rust",
            "healthy",
        ]
    assert metrics["train_images"] == 36 and metrics["val_images"] == 12
    assert metrics["fake_data"] is True
    assert metrics["train_accuracy"] >= 0.9
    assert 0.0 <= metrics["val_accuracy"] <= 1.0
    assert tm.load(tmp_path / "beans.npz")["0.weight"].shape == (4, 32 * 32 * 3)
    # the classic settings run on the same folder (plain gradient descent, lr 0.001)
    metrics, _ = run_metrics(
        tmp_path, "beans.py", "--data-dir", str(data), "--image-size", "32", "--epochs", "5"
    )
    assert metrics["optimizer"] == "gd" and metrics["epochs"] == 5


@needs_pillow
def test_beans_fake_leaves_are_learnable_by_the_narrow_network(tmp_path):
    # the 30000-4-3-2-1 network on 100x100 generated leaves: well above the 66.7% of chance
    metrics, _ = run_metrics(
        tmp_path, "beans.py", "--make-fake-data", str(tmp_path / "beans"), "--fake-count", "40",
        "--standardize", "--lr", "0.01", "--epochs", "200",
    )  # fmt: skip
    assert metrics["train_images"] == 120 and metrics["val_images"] == 39
    assert metrics["val_accuracy"] > 0.85 and metrics["train_accuracy"] > 0.95


def test_beans_needs_a_data_source():
    proc = run("beans.py", check=False)
    assert proc.returncode == 2 and "--data-dir" in proc.stderr


def test_classifier_xor(tmp_path):
    metrics, out = run_metrics(tmp_path, "classifier.py", "--only", "xor")
    assert metrics["xor_accuracy"] == 1.0
    assert "mnist_test_accuracy" not in metrics


@needs_mnist
def test_classifier_small_mnist(tmp_path):
    metrics, _ = run_metrics(
        tmp_path, "classifier.py", "--only", "mnist", "--train-size", "300", "--epochs", "40"
    )
    assert metrics["mnist_train_images"] == 300
    assert metrics["mnist_test_accuracy"] >= 0.75
