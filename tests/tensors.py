"""``T``, the tensor constructor of the numerical tests: ``tm.Tensor``, except that a floating
numpy array keeps its dtype. ``tm.Tensor`` (like ``torch.Tensor``) makes float32 of any array;
the gradient and formula checks build float64 tensors from float64 arrays, so they use this."""

from __future__ import annotations

from typing import Any

import tinygrad_mlp as tm


def T(*args: Any, **kwargs: Any) -> tm.Tensor:  # noqa: N802 (the class's name)
    """tm.Tensor(data, ...), with dtype=data.dtype for a floating numpy array given no dtype."""
    data = args[0] if args else None
    # a numpy or CuPy array (anything with a floating dtype that is not a Tensor)
    floating = not isinstance(data, tm.Tensor) and getattr(getattr(data, "dtype", None), "kind", "")
    if floating == "f" and kwargs.get("dtype") is None:
        kwargs["dtype"] = data.dtype
    return tm.Tensor(*args, **kwargs)
