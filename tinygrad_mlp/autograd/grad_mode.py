"""Process-wide switches of the engine: grad mode and anomaly mode (``tm.autograd.grad_mode``).

This module imports nothing of the package, so the Tensor module can import it."""

from __future__ import annotations

import functools
import inspect
from typing import Any

__all__ = [
    "no_grad",
    "enable_grad",
    "set_grad_enabled",
    "inference_mode",
    "is_grad_enabled",
    "is_inference_mode_enabled",
    "set_anomaly_detection",
    "detect_anomaly",
    "is_anomaly_enabled",
]


class _Mode:
    """The engine's switches."""

    grad_enabled = True
    inference = False  # inside an inference_mode() block
    anomaly = False
    last_inplace = 0  # the stamp of the newest in-place change of any tensor


def _decorate(fn: Any, make: Any) -> Any:
    """``fn`` run inside ``make()``'s context; a generator function's body runs inside it at
    every resumption (as PyTorch's grad-mode decorators do)."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(*args: Any, **kwargs: Any) -> Any:
            with make():
                gen = fn(*args, **kwargs)
            try:
                with make():
                    value = next(gen)
                while True:
                    try:
                        sent = yield value
                    except GeneratorExit:
                        with make():
                            gen.close()
                        raise
                    except BaseException as e:  # noqa: BLE001 - handed on to the generator
                        with make():
                            value = gen.throw(e)
                    else:
                        with make():
                            value = gen.send(sent)
            except StopIteration as stop:
                return stop.value

        return generator

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with make():
            return fn(*args, **kwargs)

    return wrapper


class _GradMode:
    """A context manager and decorator that sets grad mode inside and restores it after; as
    PyTorch's, it decorates with or without the call (``@no_grad()`` and ``@no_grad``)."""

    _enabled = False

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls in (no_grad, enable_grad) and len(args) == 1 and callable(args[0]) and not kwargs:
            return _decorate(args[0], cls)  # the bare decorator: @no_grad
        return super().__new__(cls)

    def __enter__(self) -> None:
        self._prev = _Mode.grad_enabled
        _Mode.grad_enabled = self._enabled

    def __exit__(self, *exc: object) -> None:
        _Mode.grad_enabled = self._prev

    def __call__(self, fn):
        return _decorate(fn, self.__class__)


class no_grad(_GradMode):
    """Context manager and decorator: ops inside record nothing and their results need no grad."""

    _enabled = False


class enable_grad(_GradMode):
    """Context manager and decorator: turn recording back on inside a ``no_grad`` block."""

    _enabled = True


class inference_mode(_GradMode):
    """As ``no_grad`` (PyTorch's faster variant; here the two are the same)."""

    def __new__(cls, mode: Any = True) -> Any:
        if callable(mode):  # the bare decorator: @inference_mode
            return _decorate(mode, inference_mode)
        return object.__new__(cls)

    def __init__(self, mode: bool = True) -> None:
        self._enabled = not mode

    def __enter__(self) -> None:
        super().__enter__()
        self._prev_inference = _Mode.inference
        _Mode.inference = not self._enabled

    def __exit__(self, *exc: object) -> None:
        _Mode.inference = self._prev_inference
        super().__exit__(*exc)

    def __call__(self, fn):
        mode = not self._enabled
        return _decorate(fn, lambda: inference_mode(mode))


class set_grad_enabled(_GradMode):
    """Turn recording on or off: as a function call, or for a ``with`` block."""

    def __new__(cls, mode: bool) -> Any:
        return object.__new__(cls)

    def __init__(self, mode: bool) -> None:
        self._prev = _Mode.grad_enabled
        self._enabled = bool(mode)
        _Mode.grad_enabled = self._enabled

    def __enter__(self) -> None:
        pass

    def __call__(self, fn):
        _Mode.grad_enabled = self._prev  # as a decorator: do not change the mode now
        mode = self._enabled
        return _decorate(fn, lambda: set_grad_enabled(mode))


def is_grad_enabled() -> bool:
    """True when ops are being recorded for backward."""
    return _Mode.grad_enabled


def is_inference_mode_enabled() -> bool:
    """True inside an ``inference_mode()`` block."""
    return _Mode.inference


def set_anomaly_detection(enabled: bool) -> None:
    """Make backward raise at the first op whose output or gradient holds NaN or inf, naming it."""
    _Mode.anomaly = bool(enabled)


def is_anomaly_enabled() -> bool:
    """True when anomaly detection is on."""
    return _Mode.anomaly


class detect_anomaly:
    """Context manager: anomaly detection on inside the block (see ``set_anomaly_detection``)."""

    def __init__(self, check_nan: bool = True) -> None:
        self._on = bool(check_nan)

    def __enter__(self) -> None:
        self._prev = _Mode.anomaly
        _Mode.anomaly = self._on

    def __exit__(self, *exc: object) -> None:
        _Mode.anomaly = self._prev
