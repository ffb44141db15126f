"""NNClassifier: a multi-layer perceptron with scikit-learn's fit / predict / score interface."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

from . import nn, optim
from ._tensor import Tensor, no_grad
from .backend import np
from .nn import functional as F
from .utils.data import DataLoader

__all__ = ["NNClassifier"]

_ACTIVATIONS = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh}
_OPTIMIZERS = ("sgd", "momentum", "adam")
_PREDICT_BATCH = 8192


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"NNClassifier: {name} must be a positive int, got {value!r}")
    return int(value)


def _non_negative(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
        raise ValueError(f"NNClassifier: {name} must be a number >= 0, got {value!r}")
    if math.isinf(value):
        raise ValueError(f"NNClassifier: {name} must be finite, got {value!r}")
    return float(value)


class NNClassifier:
    """A multi-layer perceptron classifier with fit, predict, predict_proba and score.

    ``hidden`` gives the sizes of the hidden layers, each followed by ``activation``. Two
    classes get one sigmoid output unit trained with binary cross-entropy; more classes get a
    softmax output trained with cross-entropy. The objective is the mean loss over the training
    samples plus ``(l1 * sum|W| + l2 / 2 * sum W**2) / n_samples`` over the weight matrices
    (biases are not penalised), so ``l1`` and ``l2`` weigh the whole training set, as in a loss
    summed over the samples. Training runs ``epochs`` passes of mini-batch ``optimizer``
    ('sgd', 'momentum' with momentum 0.9, or 'adam') at learning rate ``lr``. Labels may be any
    sortable values (ints, strings); ``classes_`` holds them in sorted order. ``seed`` makes the
    initial weights and the shuffling reproducible. After fit, ``loss_curve_`` holds the mean
    objective (loss plus penalty) of each epoch and ``model_`` the trained nn.Sequential.
    """

    def __init__(
        self,
        hidden: Sequence[int] = (50,),
        activation: str = "sigmoid",
        l1: float = 0.0,
        l2: float = 0.0,
        epochs: int = 300,
        batch_size: int = 50,
        lr: float = 0.1,
        optimizer: str = "sgd",
        seed: int | None = None,
        verbose: bool = False,
    ) -> None:
        if isinstance(hidden, numbers.Integral) and not isinstance(hidden, bool):
            hidden = (hidden,)
        if not isinstance(hidden, (list, tuple)):
            raise ValueError(f"NNClassifier: hidden must be a tuple of layer sizes, got {hidden!r}")
        self.hidden = tuple(_positive_int("each hidden layer size", h) for h in hidden)
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"NNClassifier: activation must be one of {sorted(_ACTIVATIONS)}, "
                f"got {activation!r}"
            )
        self.activation = activation
        self.l1 = _non_negative("l1", l1)
        self.l2 = _non_negative("l2", l2)
        self.epochs = _positive_int("epochs", epochs)
        self.batch_size = _positive_int("batch_size", batch_size)
        self.lr = _non_negative("lr", lr)
        if self.lr == 0:
            raise ValueError(f"NNClassifier: lr must be positive, got {lr!r}")
        if optimizer not in _OPTIMIZERS:
            raise ValueError(
                f"NNClassifier: optimizer must be one of {_OPTIMIZERS}, got {optimizer!r}"
            )
        self.optimizer = optimizer
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise ValueError(f"NNClassifier: seed must be an int or None, got {seed!r}")
        self.seed = seed
        self.verbose = bool(verbose)

    def __repr__(self) -> str:
        return (
            f"NNClassifier(hidden={self.hidden}, activation={self.activation!r}, l1={self.l1}, "
            f"l2={self.l2}, epochs={self.epochs}, batch_size={self.batch_size}, lr={self.lr}, "
            f"optimizer={self.optimizer!r}, seed={self.seed})"
        )

    # ------------------------------------------------------------ input checks

    def _check_x(self, x: Any, name: str = "X") -> np.ndarray:
        """X as a float32 array of shape (n_samples, n_features) of finite numbers."""
        try:
            array = np.asarray(x.numpy() if isinstance(x, Tensor) else x)
        except (TypeError, ValueError) as e:
            raise ValueError(f"NNClassifier: {name} must be a 2-D numeric array: {e}") from None
        if array.dtype.kind not in "biuf":
            raise ValueError(f"NNClassifier: {name} must be numeric, got dtype {array.dtype}")
        if array.ndim != 2:
            raise ValueError(
                f"NNClassifier: {name} must be 2-D (n_samples, n_features), got shape "
                f"{array.shape}; reshape a single sample with X.reshape(1, -1)"
            )
        if array.shape[0] == 0:
            raise ValueError(f"NNClassifier: {name} has no samples (shape {array.shape})")
        if not np.isfinite(array).all():
            raise ValueError(f"NNClassifier: {name} holds NaN or infinite values")
        if hasattr(self, "n_features_in_") and array.shape[1] != self.n_features_in_:
            raise ValueError(
                f"NNClassifier: {name} has {array.shape[1]} features, but the classifier was "
                f"fitted on {self.n_features_in_}"
            )
        return array.astype(np.float32, copy=False)

    def _check_y(self, y: Any, n_samples: int) -> np.ndarray:
        """y as a 1-D array of n_samples labels."""
        array = np.asarray(y.numpy() if isinstance(y, Tensor) else y)
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 1:
            raise ValueError(
                f"NNClassifier: y must be 1-D (n_samples,), got shape {array.shape}; "
                "pass class labels, not one-hot rows"
            )
        if len(array) != n_samples:
            raise ValueError(
                f"NNClassifier: X has {n_samples} samples but y has {len(array)} labels"
            )
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise ValueError("NNClassifier: y holds NaN or infinite labels")
        return array

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise RuntimeError("NNClassifier is not fitted yet; call fit(X, y) first")

    # ------------------------------------------------------------ training

    def _build(self, n_features: int, n_outputs: int, gen: np.random.Generator) -> nn.Sequential:
        """Linear layers with the activation between them, drawn from ``gen``."""
        sizes = (n_features, *self.hidden, n_outputs)
        layers: list[nn.Module] = []
        for i in range(len(sizes) - 1):
            linear = nn.Linear(sizes[i], sizes[i + 1])
            bound = 1 / math.sqrt(sizes[i])  # Linear's default U(+-1/sqrt(n_in)), seeded here
            nn.init.uniform_(linear.weight, -bound, bound, generator=gen)
            nn.init.uniform_(linear.bias, -bound, bound, generator=gen)
            layers.append(linear)
            if i < len(sizes) - 2:
                layers.append(_ACTIVATIONS[self.activation]())
        return nn.Sequential(*layers)

    def _penalty(self, weights: list[nn.Parameter], n_samples: int) -> Tensor | None:
        """(l1 * sum|W| + l2 / 2 * sum W**2) / n_samples over the weight matrices."""
        if self.l1 == 0 and self.l2 == 0:
            return None
        total = None
        for w in weights:
            term = None
            if self.l1:
                term = w.abs().sum() * (self.l1 / n_samples)
            if self.l2:
                # d/dW of l2 / 2 * W**2 is l2 * W
                square = (w * w).sum() * (self.l2 / (2 * n_samples))
                term = square if term is None else term + square
            total = term if total is None else total + term
        return total

    def fit(self, X: Any, y: Any) -> NNClassifier:
        """Train a fresh network on X (n_samples, n_features) and labels y; returns self."""
        for name in ("model_", "n_features_in_", "classes_", "loss_curve_"):
            self.__dict__.pop(name, None)
        x = self._check_x(X)
        labels = self._check_y(y, len(x))
        classes, targets = np.unique(labels, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(
                f"NNClassifier: y needs at least 2 classes to learn from, got {classes.tolist()}"
            )
        gen = np.random.default_rng(self.seed)
        binary = len(classes) == 2
        model = self._build(x.shape[1], 1 if binary else len(classes), gen)
        params = list(model.parameters())
        if self.optimizer == "adam":
            opt: optim.Optimizer = optim.Adam(params, lr=self.lr)
        else:
            momentum = 0.9 if self.optimizer == "momentum" else 0.0
            opt = optim.SGD(params, lr=self.lr, momentum=momentum)
        weights = [p for p in params if p.ndim == 2]
        y_fit = targets.astype(np.float32)[:, None] if binary else targets.astype(np.int64)
        loader = DataLoader(x, y_fit, batch_size=self.batch_size, seed=int(gen.integers(2**63)))

        loss_curve: list[float] = []
        report_every = max(1, self.epochs // 10)
        for epoch in range(1, self.epochs + 1):
            total = 0.0
            for xb, yb in loader:
                out = model(Tensor(xb))
                if binary:
                    loss = F.binary_cross_entropy_with_logits(out, yb)
                else:
                    loss = F.cross_entropy(out, yb)
                penalty = self._penalty(weights, len(x))
                if penalty is not None:
                    loss = loss + penalty
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(xb)
            loss_curve.append(total / len(x))
            if not math.isfinite(loss_curve[-1]):
                raise FloatingPointError(
                    f"NNClassifier: the loss became {loss_curve[-1]} in epoch {epoch}; "
                    f"lower lr (now {self.lr})"
                )
            if self.verbose and (epoch % report_every == 0 or epoch == self.epochs):
                print(f"epoch {epoch:5d}/{self.epochs}  loss {loss_curve[-1]:.5f}")
        self.loss_curve_ = loss_curve
        self.classes_ = classes
        self.n_features_in_ = x.shape[1]
        self.model_ = model
        return self

    # ------------------------------------------------------------ prediction

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), columns in ``classes_`` order."""
        self._check_fitted()
        x = self._check_x(X)
        parts = []
        with no_grad():
            for start in range(0, len(x), _PREDICT_BATCH):
                out = self.model_(Tensor(x[start : start + _PREDICT_BATCH]))
                if len(self.classes_) == 2:
                    p = out.sigmoid().numpy()
                    parts.append(np.concatenate([1 - p, p], axis=1))
                else:
                    parts.append(out.softmax(axis=1).numpy())
        return np.concatenate(parts).astype(np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class label of each sample."""
        self._check_fitted()
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def score(self, X: Any, y: Any) -> float:
        """Accuracy: the share of samples whose predicted label equals y."""
        self._check_fitted()
        x = self._check_x(X)
        labels = self._check_y(y, len(x))
        return float((self.predict(x) == labels).mean())
