"""The op table of docs/autograd.md is the one generated from the registry, and it lists every
registered op."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tinygrad_mlp._op_docs import OP_DOCS, markdown_table
from tinygrad_mlp.ops import OPS

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("op_table", ROOT / "docs" / "op_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_registered_op_has_a_row():
    rows = markdown_table().splitlines()[2:]
    assert [row.split("`")[1] for row in rows] == list(OPS)
    assert set(OP_DOCS) == set(OPS)


def test_the_docs_table_is_the_generated_one():
    page = ROOT / "docs" / "autograd.md"
    assert _script().current_table(page.read_text()) == markdown_table(), (
        "the op table of docs/autograd.md differs from the registry's: "
        "run `python docs/op_table.py` to rewrite it"
    )


def test_an_op_without_docs_is_named(monkeypatch):
    monkeypatch.setitem(OPS, "made_up", OPS["add"])
    with pytest.raises(KeyError, match="made_up"):
        markdown_table()


def test_the_script_rewrites_only_the_table():
    script = _script()
    text = "intro\n\n## Ops\n\nprose\n\n| old | table |\n| --- | --- |\n| a | b |\n\n## Next\n"
    new = script.with_table(text, "| x |\n| --- |\n")
    assert new == "intro\n\n## Ops\n\nprose\n\n| x |\n| --- |\n\n## Next\n"
    assert script.current_table(new) == "| x |\n| --- |\n"
