"""The simulated CuPy (tinygrad_mlp.testing.simulated_cuda) keeps CuPy's host/device rules.

The simulation is what lets CPU-only CI run the suite with device="cuda"; these tests check the
rules it must enforce to be worth anything: no implicit conversion, explicit copies work, host
and device arrays do not mix. None of this is a GPU result.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

from tinygrad_mlp.testing import simulated_cuda as cp

IMPLICIT = "Implicit conversion to a NumPy array is not allowed"


def _device(shape=(2, 3)):
    return cp.asarray(np.arange(np.prod(shape), dtype=np.float64).reshape(shape))


def test_is_a_distinct_type_and_says_it_is_a_simulation():
    a = _device()
    assert isinstance(a, cp.ndarray) and not isinstance(a, np.ndarray)
    assert cp.SIMULATED and "SIMULATION" in cp.__doc__
    assert cp.get_array_module(a) is cp and cp.get_array_module(np.ones(2)) is np
    assert cp.cuda.runtime.getDeviceCount() == 1


@pytest.mark.parametrize(
    "convert",
    [
        np.asarray,
        np.array,
        lambda a: np.ascontiguousarray(a),
        lambda a: np.zeros(a.shape).__setitem__(Ellipsis, a),
        lambda a: np.ones((3, 2)).dot(a),
        lambda a: np.stack([a, a]),
        lambda a: np.asarray([a[0, 0], a[0, 1]]),
    ],
)
def test_refuses_implicit_conversion_to_numpy(convert):
    with pytest.raises(TypeError):
        convert(_device())
    with pytest.raises(TypeError, match=IMPLICIT):
        np.asarray(_device())


def test_numpy_functions_and_ufuncs_refuse_device_arrays():
    a = _device()
    for fn in (np.exp, np.sum, np.where, lambda x: np.maximum(x, 0.0), np.concatenate):
        with pytest.raises(TypeError):
            fn(a) if fn is not np.concatenate else fn([a, a])
    assert np.result_type(a, np.float32) == np.float64  # dtype and shape queries still pass
    assert np.shape(a) == (2, 3) and np.ndim(a) == 2


def test_explicit_copies_to_the_host():
    a = _device()
    host = a.get()
    assert type(host) is np.ndarray
    np.testing.assert_array_equal(host, np.arange(6.0).reshape(2, 3))
    host[0, 0] = 99.0  # a copy: the device array is untouched
    assert a[0, 0].item() == 0.0
    assert type(cp.asnumpy(a)) is np.ndarray and a.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert float(a.sum()) == 15.0 and int(a[1, 2]) == 5 and bool(a[0, 1])
    assert f"{a[1, 1]:.1f}" == "4.0"
    back = pickle.loads(pickle.dumps(a))
    assert isinstance(back, cp.ndarray) and back.tolist() == a.tolist()
    assert isinstance(copy.deepcopy(a), cp.ndarray)


def test_mixing_host_and_device_arrays_raises_type_error():
    a, h = _device(), np.ones((2, 3))
    for mix in (
        lambda: a + h,
        lambda: h + a,
        lambda: a * h,
        lambda: h - a,
        lambda: a @ h.T,
        lambda: a.dot(h.T),
        lambda: cp.where(h > 0, a, a),
        lambda: cp.maximum(a, h),
        lambda: cp.matmul(a, h.T),
        lambda: cp.concatenate([a, h]),
    ):
        with pytest.raises(TypeError, match="Unsupported type|Implicit"):
            mix()
    with pytest.raises(TypeError):
        a += h


def test_device_arithmetic_and_functions_give_device_arrays():
    a = _device()
    for out in (
        a + 1,
        2.0 * a,
        np.float64(2.0) * a,
        -a,
        a @ a.T,
        a.T,
        a.reshape(3, 2),
        a[:, 1],
        a[np.array([0, 1])],
        a > 1,
        cp.exp(a),
        cp.where(a > 1, a, 0.0),
        cp.zeros((2, 2)),
        cp.full(3, 1.5),
        cp.stack([a, a]),
        a.sum(),
        a.max(axis=1),
        cp.linalg.norm(a),
        cp.cupyx.scipy.special.erf(a),
    ):
        assert isinstance(out, cp.ndarray), out
    assert a.sum().shape == ()  # reductions give 0-d device arrays, as CuPy's do


def test_in_place_updates_write_device_memory():
    a = cp.zeros(4)
    cp.add.at(a, np.array([0, 0, 2]), 1.0)
    np.testing.assert_array_equal(a.get(), [2.0, 0.0, 1.0, 0.0])
    view = a[1:3]
    view += 5.0
    out = cp.maximum(a, 3.0, out=a)
    assert out is a
    a[0] = np.float64(-1.0)
    a[np.array([3])] = np.array([7.0])  # host indices and values are copied over, as in CuPy
    np.testing.assert_array_equal(a.get(), [-1.0, 5.0, 6.0, 7.0])


def test_the_simulation_is_registered_with_the_backend_not_imported_by_it(monkeypatch):
    from tinygrad_mlp import backend

    assert backend._simulations["cuda"] is cp  # importing the package registers it
    monkeypatch.setenv("TINYGRAD_MLP_SIMULATE_CUDA", "1")
    monkeypatch.setattr(backend, "_cupy", None)
    monkeypatch.setattr(backend, "_simulations", {})
    with pytest.raises(RuntimeError, match="no simulated 'cuda' device is registered"):
        backend.get_array_module("cuda")
    backend.register_simulated_device("cuda", cp)
    assert backend.get_array_module("cuda") is cp
    with pytest.raises(ValueError, match="'tpu'"):
        backend.register_simulated_device("tpu", cp)


def test_backend_selects_the_simulation_with_the_environment_variable(monkeypatch):
    from tinygrad_mlp import backend

    monkeypatch.setenv("TINYGRAD_MLP_SIMULATE_CUDA", "1")
    monkeypatch.setattr(backend, "_cupy", None)
    assert backend.get_array_module("cuda") is cp
    t = backend.to_device(np.ones(3), "cuda")
    assert isinstance(t, cp.ndarray) and backend.device_of(t) == "cuda"
    assert backend.looks_like_cupy(t) and backend.is_array(t)
    assert type(backend.to_numpy(t)) is np.ndarray
    assert backend.device_of(backend.to_device(t, "cpu")) == "cpu"
    np.testing.assert_allclose(backend.erf(t).get(), 0.8427007929497149)
