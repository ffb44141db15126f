"""The README's Python examples run as they are written (each in a fresh process, in a temporary
folder), so the README stays true to the code."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "datasets" / "mnist"
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
# illustrations of a whole program that need names the block does not define
ILLUSTRATIONS = ("make_model(",)


def _needs(block: str) -> list[str]:
    wanted = {
        "onnxruntime": "onnxruntime",
        "import torch": "torch",
        "safetensors": "safetensors",
        "hypothesis": "hypothesis",
        "tm.onnx.export": "onnx",
    }
    return [module for text, module in wanted.items() if text in block]


def _params():
    for i, block in enumerate(BLOCKS):
        marks = (
            [pytest.mark.slow] if "tm.mnist(" in block or "check_backprop_property" in block else []
        )
        yield pytest.param(i, block, marks=marks, id=f"block{i}")


@pytest.mark.parametrize(("index", "block"), list(_params()))
def test_readme_block_runs(index, block, tmp_path):
    if any(text in block for text in ILLUSTRATIONS):
        pytest.skip("an illustration of a whole program (names it does not define)")
    for module in _needs(block):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"needs {module}")
    if "tm.viz.draw" in block and shutil.which("dot") is None:
        pytest.skip("needs Graphviz's dot")
    if "tm.mnist(" in block:
        if not MNIST.is_dir():
            pytest.skip("needs the shared MNIST folder")
        block = block.replace('"../shared/datasets/mnist"', repr(str(MNIST)))
    if "check_backprop_property" in block:  # the block continues the one before it
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
    assert result.returncode == 0, f"README block {index} failed:\n{block}\n{result.stderr[-3000:]}"
    if "print(y.item())" in block:
        assert result.stdout.splitlines()[0] == "8.0"  # the value the README's comment states
