"""tm.testing: check a hand-written backward pass against autodiff and finite differences.

``check_backprop(forward, backward, params, *args)`` compares the gradients a learner derived by
hand with tinygrad_mlp's autodiff and with central differences, naming the parameter and the
element that disagree. ``tinygrad_mlp.testing.strategies`` (needs Hypothesis) draws inputs for
``@given`` tests and runs the check on each with ``check_backprop_property``.
"""

from . import simulated_cuda  # noqa: F401  (registers the simulated 'cuda' device with the backend)
from .backprop import BackpropReport, ParamReport, check_backprop

__all__ = ["check_backprop", "check_backprop_property", "BackpropReport", "ParamReport"]


def check_backprop_property(*args, **kwargs):
    """check_backprop on inputs drawn by Hypothesis (see tinygrad_mlp.testing.strategies)."""
    from .strategies import check_backprop_property as run

    return run(*args, **kwargs)
