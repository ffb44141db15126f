"""Pictures of the graph: DOT text of ops and leaves, escaping, drawing, and clear messages when
graphviz or dot is missing."""

from __future__ import annotations

import os
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import tinygrad_mlp as tm
from tinygrad_mlp import functional as F
from tinygrad_mlp import nn, viz

ROOT = Path(__file__).resolve().parents[2]
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="needs Graphviz's dot")


def nodes(dot: str) -> dict[str, str]:
    """node id -> its attribute text."""
    return dict(re.findall(r"^  (t\d+) \[(.*)\];$", dot, flags=re.M))


def edges(dot: str) -> list[tuple[str, str]]:
    return re.findall(r"^  (t\d+) -> (t\d+);$", dot, flags=re.M)


def small_model():
    tm.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    x = tm.Tensor(np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32))
    loss = F.cross_entropy(model(x), np.array([0, 1, 2, 0, 1]))
    return model, loss


def test_one_node_per_op_and_leaf_and_an_edge_per_input():
    x = tm.Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    w = tm.Tensor([[1.5], [-1.0]], requires_grad=True)
    y = (x @ w).relu().sum() + (x * x).mean()
    dot = viz.to_dot(y)
    found = nodes(dot)
    # leaves x, w; ops matmul, relu, sum, mul, mean, add
    assert len(found) == 6 + 2
    ops = [re.search(r"<B>(\w+)</B>", a).group(1) for a in found.values() if "<B>" in a]
    assert sorted(ops) == sorted(["matmul", "relu", "sum", "mul", "mean", "add"])
    assert len(edges(dot)) == 2 + 1 + 1 + 2 + 1 + 2  # x*x draws two arrows from x
    assert "(2, 2) float32" in dot and "() float32" in dot


def test_root_is_highlighted_once():
    _, loss = small_model()
    dot = viz.to_dot(loss)
    highlighted = [k for k, a in nodes(dot).items() if "penwidth" in a]
    assert len(highlighted) == 1
    assert "cross_entropy" in nodes(dot)[highlighted[0]]
    assert dot.startswith("digraph") and dot.rstrip().endswith("}")


def test_parameter_names_from_a_dict_or_the_module():
    model, loss = small_model()
    for params in (dict(model.named_parameters()), model):
        dot = viz.to_dot(loss, params=params)
        for name in ("0.weight", "0.bias", "2.weight", "2.bias"):
            assert f"<B>{name}</B>" in dot
    assert "0.weight" not in viz.to_dot(loss, params={})
    with pytest.raises(TypeError, match="params must be"):
        viz.to_dot(loss, params=[1, 2])


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(3, 4), nn.Tanh())
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.body(x))


def test_parameter_names_found_automatically():
    model, loss = small_model()  # the model must live for its names to be found
    dot = viz.to_dot(loss)
    for name in ("0.weight", "0.bias", "2.weight", "2.bias"):
        assert f"<B>{name}</B>" in dot
    net = Net()
    loose = nn.Parameter(tm.Tensor(np.ones(2, np.float32)))  # held by no module
    out = net(tm.Tensor(np.ones((5, 3), np.float32))) * loose
    dot = viz.to_dot(out.sum())
    for name in ("body.0.weight", "body.0.bias", "head.weight", "head.bias"):
        assert f"<B>{name}</B>" in dot
    assert dot.count("<B>") == 4 + 4  # the four parameters and the ops mlp, linear, mul, sum


def test_fused_stack_lists_its_layers():
    _, loss = small_model()
    dot = viz.to_dot(loss)
    (mlp,) = [a for a in nodes(dot).values() if "<B>mlp</B>" in a]
    assert "Linear 4-&gt;8, relu" in mlp and "Linear 8-&gt;3<" in mlp
    assert "(5, 3) float32" in mlp


def test_labels_are_escaped():
    w = tm.Tensor(np.ones((2, 2), np.float32), requires_grad=True)
    name = 'a<b>&"c\\d {e|f}'
    dot = viz.to_dot(w.sum(), params={name: w})
    assert "<B>a&lt;b&gt;&amp;&quot;c\\d {e|f}</B>" in dot
    assert name not in dot


def test_show_saved_lists_params_and_saved_arrays():
    x = tm.Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    y = x.softmax(-1)
    assert "axis=" not in viz.to_dot(y)
    shown = viz.to_dot(y, show_saved=True)
    assert re.search(r"(axis|dim)=(-1|1)<", shown)
    assert "saved array(2, 3) float32" in shown


def test_a_leaf_alone_and_several_roots():
    x = tm.Tensor([1.0, 2.0], requires_grad=True)
    assert len(nodes(viz.to_dot(x))) == 1
    a, b = x.exp(), x.log()
    dot = viz.to_dot([a, b])
    assert len(nodes(dot)) == 3
    assert sum("penwidth" in v for v in nodes(dot).values()) == 2
    with pytest.raises(TypeError, match="Tensors"):
        viz.to_dot([a, 1.0])


def test_deep_graph_needs_no_recursion():
    x = tm.Tensor([1.0], requires_grad=True)
    y = x
    for _ in range(3000):
        y = y * 1.0
    assert len(nodes(viz.to_dot(y))) == 3000 * 2 + 1


def test_released_graph_is_refused():
    x = tm.Tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="released"):
        viz.to_dot(y)


# ---------------------------------------------------------------- draw


@needs_dot
@pytest.mark.parametrize("suffix", ["svg", "png"])
def test_draw_writes_the_picture(tmp_path, suffix):
    pytest.importorskip("graphviz")
    model, loss = small_model()
    path = tmp_path / f"graph.{suffix}"
    viz.draw(loss, path, params=model)
    data = path.read_bytes()
    if suffix == "png":
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
    else:
        root = ET.fromstring(data)
        assert root.tag.endswith("svg")
        assert b"0.weight" in data and b"Linear 4&#45;&gt;8, relu" in data
    assert os.listdir(tmp_path) == [path.name]


@needs_dot
def test_escaped_labels_render(tmp_path):
    pytest.importorskip("graphviz")
    w = tm.Tensor(np.ones(2, np.float32), requires_grad=True)
    path = tmp_path / "odd.svg"
    viz.draw(w.sum(), path, params={'<&>"\\{|}': w})
    assert b"&lt;&amp;&gt;" in path.read_bytes()


def test_draw_refuses_unknown_suffix(tmp_path):
    x = tm.Tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"\.svg, \.png or \.pdf"):
        viz.draw(x.exp(), tmp_path / "graph.gif")
    assert os.listdir(tmp_path) == []


def test_missing_graphviz_package_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)
    x = tm.Tensor([1.0], requires_grad=True)
    with pytest.raises(ImportError, match="pip install graphviz"):
        viz.draw(x.exp(), tmp_path / "graph.svg")
    assert os.listdir(tmp_path) == []


def test_missing_dot_program_says_what_to_install(tmp_path, monkeypatch):
    pytest.importorskip("graphviz")
    empty = tmp_path / "empty_bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    x = tm.Tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="install Graphviz"):
        viz.draw(x.exp(), tmp_path / "graph.svg")
    assert os.listdir(tmp_path) == ["empty_bin"]


def test_readme_picture_is_a_small_svg():
    path = ROOT / "docs" / "graph.svg"
    data = path.read_bytes()
    assert len(data) < 40_000
    assert ET.fromstring(data).tag.endswith("svg")


# ---------------------------------------------------------------- examples/_plot.py


def _plot_helper():
    import importlib.util

    spec = importlib.util.spec_from_file_location("_plot", ROOT / "examples" / "_plot.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plot_check_stops_before_training_without_matplotlib(monkeypatch):
    plot = _plot_helper()
    plot.check_plot(None)  # no --plot: nothing to check
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(SystemExit, match="needs matplotlib.*pip install"):
        plot.check_plot("curves.png")
    with pytest.raises(SystemExit, match="needs matplotlib"):
        plot.pyplot()


def test_plot_check_refuses_bad_paths(tmp_path):
    pytest.importorskip("matplotlib")
    plot = _plot_helper()
    with pytest.raises(SystemExit, match="ending in"):
        plot.check_plot(str(tmp_path / "curves.txt"))
    (tmp_path / "d.png").mkdir()
    with pytest.raises(SystemExit, match="directory"):
        plot.check_plot(str(tmp_path / "d.png"))
    plot.check_plot(str(tmp_path / "curves.png"))


def test_plot_curves_writes_an_image(tmp_path):
    pytest.importorskip("matplotlib")
    plot = _plot_helper()
    history = {"loss": [1.0, 0.5], "train_accuracy": [0.5, 0.8], "test_accuracy": [0.4, 0.7]}
    path = tmp_path / "sub" / "curves.png"
    plot.plot_curves(history, str(path))
    assert path.read_bytes().startswith(b"\x89PNG")
