"""The Python examples of the README and of the manual (docs/*.md) run as they are written (each
in a fresh process, in a temporary folder), so the documentation stays true to the code."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tinygrad_mlp.datasets import MNIST_FILES

ROOT = Path(__file__).resolve().parents[2]
MNIST = ROOT.parent / "shared" / "datasets" / "mnist"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# every Python block, in page order, with the page it stands on
PLACED = [
    (page.relative_to(ROOT).as_posix(), block)
    for page in PAGES
    for block in re.findall(r"```python\n(.*?)```", page.read_text(), re.S)
]
BLOCKS = [block for _, block in PLACED]
# illustrations of a whole program that need names the block does not define
ILLUSTRATIONS = ("make_model(",)


# what a block needs, by a pattern its code matches: ("package", import name) or
# ("program", command); `import tinygrad_mlp as torch  # was: import torch` needs no torch
REQUIREMENTS = {
    r"^import onnxruntime": [("package", "onnxruntime")],
    r"^import torch\b|^from torch\b": [("package", "torch")],
    r"^from safetensors\b|^import safetensors\b": [("package", "safetensors")],
    r"^import hypothesis|^from hypothesis|testing import strategies": [("package", "hypothesis")],
    r"tm\.onnx\.export": [("package", "onnx")],
    # draw() needs both: the graphviz Python package and Graphviz's dot program
    r"tm\.viz\.draw": [("package", "graphviz"), ("program", "dot")],
}


def missing_requirements(
    block: str, find_spec: Any = importlib.util.find_spec, which: Any = shutil.which
) -> list[str]:
    """What the block needs and this machine lacks, each as words for a skip reason."""
    missing = []
    for pattern, needs in REQUIREMENTS.items():
        if not re.search(pattern, block, re.M):
            continue
        for kind, name in needs:
            absent = find_spec(name) is None if kind == "package" else which(name) is None
            reason = f"the {name} Python package" if kind == "package" else f"the {name} program"
            if absent and reason not in missing:
                missing.append(reason)
    if "tm.mnist(" in block and not all((MNIST / name).is_file() for name in MNIST_FILES):
        missing.append(f"the MNIST files in {MNIST}")
    return missing


def _params():
    for i, (page, block) in enumerate(PLACED):
        marks = (
            [pytest.mark.slow] if "tm.mnist(" in block or "check_backprop_property" in block else []
        )
        yield pytest.param(i, block, marks=marks, id=f"{page}:block{i}")


@pytest.mark.parametrize(("index", "block"), list(_params()))
def test_readme_block_runs(index, block, tmp_path):
    if any(text in block for text in ILLUSTRATIONS):
        pytest.skip("an illustration of a whole program (names it does not define)")
    missing = missing_requirements(block)
    if missing:
        pytest.skip("needs " + " and ".join(missing))
    if "tm.mnist(" in block:
        block = block.replace('"../shared/datasets/mnist"', repr(str(MNIST)))
    if "check_backprop_property" in block:  # the block continues the one before it
        assert PLACED[index - 1][0] == PLACED[index][0], "the block it continues is on its page"
        block = BLOCKS[index - 1] + block
    # the README's examples run as a user runs them: on the default CPU device
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINYGRAD_MLP_")}
    env.update(PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    result = subprocess.run(
        [sys.executable, "-c", block],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    page = PLACED[index][0]
    assert result.returncode == 0, f"{page} block {index} failed:\n{block}\n{result.stderr[-3000:]}"
    if "print(y.item())" in block:
        assert result.stdout.splitlines()[0] == "8.0"  # the value the README's comment states


def test_skips_ask_for_the_package_and_the_program_each():
    """dot without the graphviz package (and the package without dot) skips the drawing block."""
    block = next(b for b in BLOCKS if "tm.viz.draw" in b)

    def no_graphviz(name):
        return None if name == "graphviz" else object()

    reasons = missing_requirements(block, find_spec=no_graphviz, which=lambda name: "/usr/bin/dot")
    assert reasons == ["the graphviz Python package"]
    reasons = missing_requirements(block, find_spec=lambda name: object(), which=lambda name: None)
    assert reasons == ["the dot program"]
    assert missing_requirements(block, find_spec=lambda n: object(), which=lambda n: "/bin/x") == []
    torch_block = next(b for b in BLOCKS if b.startswith("import torch\n"))
    reasons = missing_requirements(torch_block, find_spec=lambda n: None, which=lambda n: None)
    assert reasons == ["the torch Python package"]
    # the PyTorch-style script imports tinygrad_mlp as torch: it needs nothing more
    script = next(b for b in BLOCKS if "import tinygrad_mlp as torch" in b)
    assert missing_requirements(script, find_spec=lambda n: None, which=lambda n: None) == []
