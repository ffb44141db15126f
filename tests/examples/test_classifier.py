"""NNClassifier: fit / predict / predict_proba / score, penalties, errors and reproducibility."""

import numpy as np
import pytest

import tinygrad_mlp as tm
from tinygrad_mlp import NNClassifier


def blobs(n_per_class=60, seed=0, labels=(0, 1, 2)):
    """Well separated Gaussian blobs in 2-D, one per label, shuffled."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 3.0], [3.0, -2.0], [-3.0, -2.0], [3.0, 3.0]])[: len(labels)]
    x = np.concatenate([c + rng.normal(0, 0.7, (n_per_class, 2)) for c in centres])
    y = np.repeat(np.asarray(labels), n_per_class)
    order = rng.permutation(len(x))
    return x[order].astype(np.float32), y[order]


def test_xor_is_solved_by_a_2_3_1_sigmoid_net():
    """The classic 2-3-1 sigmoid network fits the four XOR points."""
    x, y = tm.make_xor()
    labels = y[:, 0].astype(int)
    clf = NNClassifier(hidden=(3,), epochs=500, batch_size=4, lr=5.0, seed=0)
    assert clf.fit(x, labels) is clf
    assert clf.predict(x).tolist() == [0, 1, 1, 0]
    assert clf.score(x, labels) == 1.0
    proba = clf.predict_proba(x)
    assert proba.shape == (4, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert (proba[[1, 2], 1] > 0.9).all() and (proba[[0, 3], 1] < 0.1).all()


def test_three_classes_with_string_labels():
    """Labels of any sortable type come back from predict; classes_ is sorted."""
    x, y = blobs(labels=("cat", "ant", "bee"))
    clf = NNClassifier(hidden=(16,), activation="tanh", epochs=40, batch_size=16, lr=0.1, seed=1)
    clf.fit(x, y)
    assert clf.classes_.tolist() == ["ant", "bee", "cat"]
    assert clf.n_features_in_ == 2
    assert clf.score(x, y) >= 0.95
    predicted = clf.predict(x[:5])
    assert set(predicted.tolist()) <= {"ant", "bee", "cat"}
    proba = clf.predict_proba(x)
    assert proba.shape == (len(x), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert (clf.classes_[proba.argmax(axis=1)] == clf.predict(x)).all()


@pytest.mark.parametrize("optimizer,lr", [("sgd", 0.5), ("momentum", 0.05), ("adam", 0.01)])
def test_each_optimizer_learns_a_held_out_set(optimizer, lr):
    """Every optimizer generalises on blobs drawn with another seed."""
    x, y = blobs(seed=2)
    x_new, y_new = blobs(seed=3)
    clf = NNClassifier(hidden=(10, 10), activation="relu", epochs=30, batch_size=20, lr=lr,
                       optimizer=optimizer, seed=0)  # fmt: skip
    clf.fit(x, y)
    assert clf.score(x_new, y_new) >= 0.95
    assert len(clf.loss_curve_) == 30
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]


def test_same_seed_same_model_other_seed_other_model():
    """seed fixes the initial weights and the shuffling; the global generator is not used."""
    x, y = blobs()
    kwargs = dict(hidden=(8,), epochs=5, batch_size=16, lr=0.3)
    a = NNClassifier(seed=7, **kwargs).fit(x, y).predict_proba(x)
    tm.manual_seed(123)  # must not matter
    b = NNClassifier(seed=7, **kwargs).fit(x, y).predict_proba(x)
    c = NNClassifier(seed=8, **kwargs).fit(x, y).predict_proba(x)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_l2_and_l1_shrink_the_weights():
    """A strong L2 or L1 penalty leaves smaller weight matrices than none."""
    x, y = blobs()
    kwargs = dict(hidden=(16,), epochs=30, batch_size=30, lr=0.3, seed=0)

    def weight_norms(clf):
        weights = [p.numpy() for p in clf.model_.parameters() if p.ndim == 2]
        return sum(np.abs(w).sum() for w in weights), sum((w**2).sum() for w in weights)

    plain_l1, plain_l2 = weight_norms(NNClassifier(**kwargs).fit(x, y))
    _, decayed_l2 = weight_norms(NNClassifier(l2=100.0, **kwargs).fit(x, y))
    sparse_l1, _ = weight_norms(NNClassifier(l1=20.0, **kwargs).fit(x, y))
    assert decayed_l2 < 0.5 * plain_l2
    assert sparse_l1 < 0.5 * plain_l1


def test_penalty_value_and_gradient():
    """(l1 sum|W| + l2/2 sum W^2) / n, with gradient (l1 sign(W) + l2 W) / n."""
    clf = NNClassifier(l1=0.3, l2=2.0)
    w = tm.Tensor(np.array([[0.5, -1.5], [2.0, -0.25]]), requires_grad=True, dtype=np.float64)
    n = 10
    penalty = clf._penalty([w], n)
    data = w.numpy()
    expected = (0.3 * np.abs(data).sum() + 1.0 * (data**2).sum()) / n
    np.testing.assert_allclose(penalty.item(), expected, rtol=1e-12)
    penalty.backward()
    np.testing.assert_allclose(w.grad.numpy(), (0.3 * np.sign(data) + 2.0 * data) / n, rtol=1e-12)
    assert NNClassifier()._penalty([w], n) is None


def test_fit_accepts_tensors_column_labels_and_refits():
    """Tensors and (n, 1) label columns are accepted; a second fit starts afresh."""
    x, y = blobs(labels=(0, 1))
    clf = NNClassifier(hidden=(4,), epochs=20, batch_size=20, lr=0.5, seed=0)
    clf.fit(tm.Tensor(x), y[:, None].astype(np.float32))
    assert clf.score(x, y) >= 0.95
    x3 = np.concatenate([x, x[:, :1]], axis=1)
    clf.fit(x3, y)
    assert clf.n_features_in_ == 3
    assert clf.predict(x3).shape == (len(x),)


def test_verbose_prints_progress(capsys):
    x, y = blobs(n_per_class=10)
    NNClassifier(hidden=(4,), epochs=10, seed=0, verbose=True).fit(x, y)
    out = capsys.readouterr().out
    assert "epoch" in out and "loss" in out


@pytest.mark.parametrize(
    "x,y,message",
    [
        (np.zeros(6), np.zeros(6), "2-D"),
        (np.zeros((6, 2)), np.zeros(5), "6 samples but y has 5"),
        (np.zeros((6, 2)), np.zeros((6, 3)), "1-D"),
        (np.zeros((6, 2)), np.ones(6), "at least 2 classes"),
        (np.full((2, 2), np.nan), np.array([0, 1]), "NaN"),
        (np.zeros((0, 2)), np.zeros(0), "no samples"),
        (np.array([["a", "b"], ["c", "d"]]), np.array([0, 1]), "numeric"),
    ],
)
def test_fit_refuses_bad_data(x, y, message):
    with pytest.raises(ValueError, match=message):
        NNClassifier(epochs=1).fit(x, y)


def test_predict_checks_fitted_and_feature_count():
    x, y = blobs()
    clf = NNClassifier(hidden=(4,), epochs=1, seed=0)
    with pytest.raises(RuntimeError, match="not fitted"):
        clf.predict(x)
    clf.fit(x, y)
    with pytest.raises(ValueError, match="3 features, but the classifier was fitted on 2"):
        clf.predict(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="4 samples but y has 3"):
        clf.score(x[:4], y[:3])


@pytest.mark.parametrize(
    "kwargs,name",
    [
        (dict(hidden=(0,)), "hidden"),
        (dict(hidden="50"), "hidden"),
        (dict(activation="softplus"), "activation"),
        (dict(l1=-1.0), "l1"),
        (dict(l2=float("inf")), "l2"),
        (dict(epochs=0), "epochs"),
        (dict(batch_size=2.5), "batch_size"),
        (dict(lr=0.0), "lr"),
        (dict(optimizer="rmsprop"), "optimizer"),
        (dict(seed="1"), "seed"),
    ],
)
def test_bad_hyper_parameters_name_themselves(kwargs, name):
    with pytest.raises(ValueError, match=name):
        NNClassifier(**kwargs)


def test_exported_from_the_package():
    assert tm.NNClassifier is NNClassifier
    assert "NNClassifier(hidden=(50,)" in repr(NNClassifier())
