"""Rewrite the op table of docs/autograd.md (under "## Ops") from the op registry: one row per op
in ``tinygrad_mlp.ops.OPS``, its texts from ``tinygrad_mlp/_op_docs.py``.

    python docs/op_table.py            # rewrite the table in place
    python docs/op_table.py --check    # exit 1 when the table differs from the registry's
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "autograd.md"
HEADING = "## Ops"


def table_span(lines: list[str]) -> tuple[int, int]:
    """The first and one-past-last line of the first table after the ops heading."""
    start = lines.index(HEADING)
    while not lines[start].startswith("|"):
        start += 1
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return start, end


def current_table(text: str) -> str:
    """The op table as docs/autograd.md has it now."""
    lines = text.split("\n")
    start, end = table_span(lines)
    return "\n".join(lines[start:end]) + "\n"


def with_table(text: str, table: str) -> str:
    """``text`` with its op table replaced by ``table``."""
    lines = text.split("\n")
    start, end = table_span(lines)
    return "\n".join(lines[:start] + table.rstrip("\n").split("\n") + lines[end:])


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    from tinygrad_mlp._op_docs import markdown_table

    text, table = PAGE.read_text(), markdown_table()
    if current_table(text) == table:
        return 0
    if "--check" in argv:
        print(f"{PAGE.relative_to(ROOT)}: the op table differs from the registry's")
        return 1
    PAGE.write_text(with_table(text, table))
    print(f"rewrote the op table of {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
