"""``tm.device``: PyTorch's device object, here a string ("cpu", "cuda", "cuda:0") with the
attributes of one, so that it goes wherever a device name goes."""

from __future__ import annotations

from typing import Any

from . import backend


class _DeviceError(RuntimeError, ValueError):
    """An unknown device: RuntimeError as in PyTorch (and a ValueError, as the names are)."""


class device(str):  # noqa: N801  (PyTorch's name)
    """A device: ``tm.device("cuda")``, ``tm.device("cuda", 0)``, ``tm.device("cuda:0")``."""

    __slots__ = ()

    def __new__(cls, type: Any, index: int | None = None) -> device:  # noqa: A002
        text = str(type)
        if index is not None:
            if ":" in text:
                raise ValueError(f"device: type {text!r} has an index already; got index {index}")
            if isinstance(index, bool) or not isinstance(index, int) or index < 0:
                raise ValueError(f"device: the index must be a non-negative int, got {index!r}")
            text = f"{text}:{index}"
        try:
            backend._normalise_device(text)
        except ValueError as e:
            raise _DeviceError(str(e)) from None
        return super().__new__(cls, text.lower())

    @property
    def type(self) -> str:
        """'cpu' or 'cuda'."""
        return str.split(self, ":")[0]

    @property
    def index(self) -> int | None:
        """The index after the colon, or None."""
        parts = str.split(self, ":")
        return int(parts[1]) if len(parts) == 2 else None

    def __repr__(self) -> str:
        index = self.index
        return f"device(type={self.type!r}" + ("" if index is None else f", index={index}") + ")"
