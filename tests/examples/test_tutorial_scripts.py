"""Tutorial-style scripts (tests/scripts/) run with `import torch` and with
`import tinygrad_mlp as torch`, only the import lines changed, and print the same lines."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "tests" / "scripts"
MNIST = Path(os.environ.get("TINYGRAD_MLP_DATA") or ROOT.parent / "shared" / "datasets" / "mnist")

# the import lines of the scripts and what they become for this library
IMPORTS = {
    "import torch": "import tinygrad_mlp as torch",
    "import torch.nn.functional as F": "import tinygrad_mlp.nn.functional as F",
    "from torch import nn": "from tinygrad_mlp import nn",
    "from torch.utils.data import DataLoader, Dataset": (
        "from tinygrad_mlp.utils.data import DataLoader, Dataset"
    ),
}


def as_ours(source: str) -> str:
    """The script with its torch imports replaced, and nothing else."""
    lines = source.split("\n")
    changed = [IMPORTS.get(line, line) for line in lines]
    assert changed != lines, "the script imports nothing from torch"
    return "\n".join(changed)


def run(path: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    # the scripts run as a user runs them: on the default CPU device, as torch's CPU build
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINYGRAD_MLP_")}
    env.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, str(path), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


NUMBER = re.compile(r"-?\d+\.(\d+)")
CMP_LINE = re.compile(
    r"^(.{15}) \| exact: (True |False) \| approximate: (True |False) \| maxdiff: (\S+)$"
)


def same_token(ours: str, theirs: str) -> bool:
    """Equal, or two decimals that differ by at most one unit in the last printed place (or by
    two float32 rounding steps of the value, when those are bigger).

    NOTE: numpy's BLAS and PyTorch's kernels add float32 products in different orders, and
    their float32 exp and log may round differently in the last bit, so a value next to a
    rounding boundary may print with its last digit one apart, and a float32 value printed in
    full (a Python float's repr) may differ after its seventh significant digit."""
    if ours == theirs:
        return True
    a, b = NUMBER.fullmatch(ours.strip("[](),%")), NUMBER.fullmatch(theirs.strip("[](),%"))
    if not (a and b) or len(a.group(1)) < 4 or len(b.group(1)) < 4:
        return False
    x, y = float(a.group(0)), float(b.group(0))
    allowed = max(10.0 ** -min(len(a.group(1)), len(b.group(1))), 2.4e-7 * abs(y))
    return abs(x - y) <= allowed * 1.01


def compare(ours: str, theirs: str, random_line) -> None:
    """Line by line: the module's name and object addresses aside, the same text; lines that
    hold random draws are checked by ``random_line``; the ``cmp`` lines of a hand-written
    backward are compared approximately."""
    ours = re.sub(r"object at 0x[0-9a-f]+", "object at 0x", ours.replace("tinygrad_mlp.", "torch."))
    theirs = re.sub(r"object at 0x[0-9a-f]+", "object at 0x", theirs)
    ours_lines, their_lines = ours.splitlines(), theirs.splitlines()
    assert len(ours_lines) == len(their_lines), (ours, theirs)
    for mine, reference in zip(ours_lines, their_lines, strict=True):
        if random_line is not None and reference.startswith("sample"):
            # both libraries draw from the same distribution, not from the same stream
            random_line(mine)
            random_line(reference)
            continue
        cmp_mine, cmp_ref = CMP_LINE.match(mine), CMP_LINE.match(reference)
        if cmp_ref:
            # whether the hand-written gradient equals autograd's bit for bit depends on the
            # order of float32 sums; the names, closeness and size of the differences must agree
            assert cmp_mine, (mine, reference)
            assert cmp_mine.group(1) == cmp_ref.group(1)
            assert cmp_mine.group(3) == cmp_ref.group(3) == "True "
            assert float(cmp_mine.group(4)) < 1e-6 and float(cmp_ref.group(4)) < 1e-6
            continue
        mine_tokens, ref_tokens = mine.split(" "), reference.split(" ")
        assert len(mine_tokens) == len(ref_tokens), (mine, reference)
        for a, b in zip(mine_tokens, ref_tokens, strict=True):
            assert same_token(a, b), (mine, reference)


def run_both(name: str, tmp_path: Path, *args: str) -> tuple[str, str]:
    source = (SCRIPTS / name).read_text()
    ours_path = tmp_path / f"ours_{name}"
    ours_path.write_text(as_ours(source))
    (tmp_path / "torch").mkdir()
    (tmp_path / "ours").mkdir()
    theirs = run(SCRIPTS / name, tmp_path / "torch", *args)
    assert theirs.returncode == 0, theirs.stderr
    ours = run(ours_path, tmp_path / "ours", *args)
    assert ours.returncode == 0, ours.stderr[-3000:]
    return ours.stdout, theirs.stdout


def valid_bigram_sample(line: str) -> None:
    if line.startswith("sample draws: "):
        draws = [int(v) for v in line[len("sample draws: ") :].strip("[]").split(", ")]
        assert len(draws) == 20 and all(0 < d < 27 for d in draws), line
    else:
        assert re.fullmatch(r"sample \d: [a-z]*\.", line), line


def test_bigram_sampling_prints_as_torch(tmp_path):
    compare(*run_both("bigram_names.py", tmp_path), valid_bigram_sample)


def test_mlp_with_a_hand_written_backward_prints_as_torch(tmp_path):
    compare(*run_both("mlp_backprop.py", tmp_path), None)


@pytest.mark.skipif(not (MNIST / "t10k-images-idx3-ubyte.gz").exists(), reason="needs MNIST")
def test_quickstart_prints_as_torch(tmp_path):
    compare(*run_both("quickstart_mnist.py", tmp_path, str(MNIST)), None)


def test_the_comparison_can_fail():
    with pytest.raises(AssertionError):
        compare("loss: 2.298242", "loss: 2.298252", None)
    with pytest.raises(AssertionError):
        compare("tensor([1., 2.])", "tensor([1, 2])", None)
    with pytest.raises(AssertionError):
        compare("a\nb", "a", None)
    with pytest.raises(AssertionError):
        compare("2.3683571815490723", "2.3683591815490723", None)  # eight float32 steps apart
    compare("loss: 2.298242  [   64/ 2000]", "loss: 2.298243  [   64/ 2000]", None)
    compare("2.3683571815490723", "2.368357419967651", None)  # one float32 step apart
    compare("tinygrad_mlp.Size([2])", "torch.Size([2])", None)
