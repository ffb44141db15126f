"""L-BFGS, as torch.optim.LBFGS."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..autograd.grad_mode import enable_grad
from ..backend import array_module_of
from .optimizer import Optimizer, _hyper_parameters, _non_negative

__all__ = ["LBFGS"]


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"invalid {name}: {value!r} (must be a positive int)")
    return value


def _line_search(name: str, value: Any) -> Any:
    if value not in (None, "strong_wolfe"):
        raise RuntimeError("only 'strong_wolfe' is supported")
    return value


class LBFGS(Optimizer):
    """Limited-memory BFGS over all parameters as one flat vector, as torch.optim.LBFGS:
    ``step(closure)`` runs up to ``max_iter`` iterations, each a two-loop recursion over the
    last ``history_size`` curvature pairs (s, y) for the direction d, then a step of lr along d
    (the first of lr * min(1, 1 / sum |g|)), or a strong-Wolfe line search."""

    _state_names = frozenset(
        {
            "func_evals",
            "n_iter",
            "d",
            "t",
            "old_dirs",
            "old_stps",
            "ro",
            "H_diag",
            "prev_flat_grad",
            "prev_loss",
            "al",
        }  # fmt: skip
    )

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 100,
        line_search_fn: str | None = None,
    ) -> None:
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        super().__init__(params, _hyper_parameters(locals()))
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]

    _hyper_checks = {
        "max_iter": _positive_int,
        "max_eval": _positive_int,
        "tolerance_grad": _non_negative,
        "tolerance_change": _non_negative,
        "history_size": _positive_int,
        "line_search_fn": _line_search,
    }

    def _load_state_entry(self, index: int, entry: Any, param: Any) -> dict[str, Any]:
        """The saved state as it is: its vectors span all parameters, not one."""
        self._check_state_names(index, entry)
        return {name: _copied(value) for name, value in entry.items()}

    # ------------------------------------------------------------ the flat vector

    def _xp(self) -> Any:
        return array_module_of(self._params[0]._data)

    def _flat_grad(self) -> Any:
        xp = self._xp()
        parts = [
            xp.zeros(p._data.size, p._data.dtype) if p.grad is None else p.grad._data.reshape(-1)
            for p in self._params
        ]
        return xp.concatenate(parts)

    def _add(self, step: float, direction: Any) -> None:
        """p = p + step * direction, piece by piece."""
        start = 0
        for p in self._params:
            n = p._data.size
            p._data += step * direction[start : start + n].reshape(p._data.shape)
            start += n

    def _set(self, values: list) -> None:
        for p, v in zip(self._params, values, strict=True):
            p._data[...] = v

    def _evaluate(self, closure: Callable[[], Any], x: list, t: float, d: Any) -> tuple:
        """The loss and flat gradient at x + t d (the parameters are put back to x after)."""
        self._add(t, d)
        loss = float(closure())
        grad = self._flat_grad()
        self._set(x)
        return loss, grad

    # ------------------------------------------------------------ the step

    def step(self, closure: Callable[[], Any]) -> Any:  # type: ignore[override]
        """Run up to ``max_iter`` L-BFGS iterations; ``closure`` recomputes the loss and the
        gradients (zero_grad, forward, backward) and returns the loss."""
        if closure is None:
            raise RuntimeError("LBFGS.step needs a closure that recomputes the loss")
        group = self.param_groups[0]
        lr, max_iter, max_eval = group["lr"], group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        history_size = group["history_size"]
        xp = self._xp()
        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        def evaluate() -> Any:
            with enable_grad():
                return closure()

        orig_loss = evaluate()
        loss = float(orig_loss)
        evals = 1
        state["func_evals"] += 1
        flat_grad = self._flat_grad()
        if float(xp.abs(flat_grad).max()) <= tolerance_grad:
            return orig_loss
        d, t = state.get("d"), state.get("t")
        old_dirs, old_stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
        h_diag, prev_flat_grad = state.get("H_diag"), state.get("prev_flat_grad")
        prev_loss = state.get("prev_loss")
        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            if state["n_iter"] == 1:
                d = -flat_grad
                old_dirs, old_stps, ro, h_diag = [], [], [], 1.0
            else:
                # a new curvature pair (s, y), kept when y^T s is clearly positive
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = float(y @ s)
                if ys > 1e-10:
                    if len(old_dirs) == history_size:
                        old_dirs.pop(0), old_stps.pop(0), ro.pop(0)
                    old_dirs.append(y), old_stps.append(s), ro.append(1.0 / ys)
                    h_diag = ys / float(y @ y)
                # the two-loop recursion: d = -H g with H the L-BFGS inverse Hessian
                al = state.setdefault("al", [None] * history_size)
                q = -flat_grad
                for i in range(len(old_dirs) - 1, -1, -1):
                    al[i] = float(old_stps[i] @ q) * ro[i]
                    q = q - al[i] * old_dirs[i]
                d = r = q * h_diag
                for i in range(len(old_dirs)):
                    be_i = float(old_dirs[i] @ r) * ro[i]
                    r += (al[i] - be_i) * old_stps[i]
            prev_flat_grad = flat_grad.copy()
            prev_loss = loss
            if state["n_iter"] == 1:
                t = min(1.0, 1.0 / float(xp.abs(flat_grad).sum())) * lr
            else:
                t = lr
            gtd = float(flat_grad @ d)
            if gtd > -tolerance_change:
                break
            if group["line_search_fn"] == "strong_wolfe":
                x0 = [p._data.copy() for p in self._params]
                loss, flat_grad, t, ls_evals = _strong_wolfe(
                    lambda x, t, d: self._evaluate(evaluate, x, t, d),
                    x0, t, d, loss, flat_grad, gtd, max_ls=max_eval - evals,
                )  # fmt: skip
                self._add(t, d)
                converged = float(xp.abs(flat_grad).max()) <= tolerance_grad
            else:
                self._add(t, d)
                ls_evals = 0
                converged = False
                if n_iter != max_iter:
                    loss = float(evaluate())
                    flat_grad = self._flat_grad()
                    converged = float(xp.abs(flat_grad).max()) <= tolerance_grad
                    ls_evals = 1
            evals += ls_evals
            state["func_evals"] += ls_evals
            if n_iter == max_iter or evals >= max_eval or converged:
                break
            if float(xp.abs(d * t).max()) <= tolerance_change:
                break
            if abs(loss - prev_loss) < tolerance_change:
                break
        state.update(
            d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=h_diag,
            prev_flat_grad=prev_flat_grad, prev_loss=prev_loss,
        )  # fmt: skip
        return orig_loss


def _copied(value: Any) -> Any:
    """Arrays (and tensors, and lists of them) copied, other values as they are."""
    if isinstance(value, list):
        return [_copied(v) for v in value]
    data = getattr(value, "_data", value)
    return data.copy() if hasattr(data, "copy") and hasattr(data, "shape") else value


# ---------------------------------------------------------------- the strong-Wolfe line search


def _cubic_minimum(x1, f1, g1, x2, f2, g2, bounds=None) -> float:
    """The minimiser of the cubic through (x1, f1, g1) and (x2, f2, g2), kept inside
    ``bounds`` (default: between x1 and x2); the middle when the cubic has no minimum."""
    low, high = bounds if bounds is not None else (min(x1, x2), max(x1, x2))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    square = d1 * d1 - g1 * g2
    if square < 0:
        return (low + high) / 2.0
    d2 = square**0.5
    if x1 <= x2:
        point = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        point = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(point, low), high)


def _strong_wolfe(evaluate, x, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9,
                  max_ls=25) -> tuple:  # fmt: skip
    """A step t along d meeting the strong Wolfe conditions (sufficient decrease with c1, a
    flat enough slope with c2), by bracketing then zooming with cubic interpolation (Nocedal
    and Wright, algorithms 3.5 and 3.6). Returns (loss, flat gradient, t, evaluations)."""
    xp = array_module_of(d)
    d_norm = float(xp.abs(d).max())
    f_new, g_new = evaluate(x, t, d)
    evals, gtd_new = 1, float(g_new @ d)
    t_prev, f_prev, g_prev, gtd_prev = 0.0, f, g, gtd
    done, ls_iter = False, 0
    # bracketing: grow t until an interval surely holds an acceptable step
    while ls_iter < max_ls:
        if f_new > f + c1 * t * gtd or (ls_iter > 1 and f_new >= f_prev):
            points = [[t_prev, f_prev, g_prev, gtd_prev], [t, f_new, g_new, gtd_new]]
            break
        if abs(gtd_new) <= -c2 * gtd:
            points, done = [[t, f_new, g_new, gtd_new]], True
            break
        if gtd_new >= 0:
            points = [[t_prev, f_prev, g_prev, gtd_prev], [t, f_new, g_new, gtd_new]]
            break
        bounds = (t + 0.01 * (t - t_prev), t * 10)
        t_next = _cubic_minimum(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds)
        t_prev, f_prev, g_prev, gtd_prev = t, f_new, g_new, gtd_new
        t = t_next
        f_new, g_new = evaluate(x, t, d)
        evals, gtd_new = evals + 1, float(g_new @ d)
        ls_iter += 1
    if ls_iter == max_ls:
        points = [[0.0, f, g, None], [t, f_new, g_new, None]]
    # zoom: shrink the bracket around the step with the lower loss
    stuck = False
    low, high = (0, 1) if points[0][1] <= points[-1][1] else (1, 0)
    while not done and ls_iter < max_ls:
        lo_t, hi_t = min(points[0][0], points[1][0]), max(points[0][0], points[1][0])
        if abs(points[1][0] - points[0][0]) * d_norm < tolerance_change:
            break
        t = _cubic_minimum(*points[0][:2], points[0][3], *points[1][:2], points[1][3])
        # NOTE: a step too close to an end of the bracket makes little progress: moved inward
        margin = 0.1 * (hi_t - lo_t)
        if min(hi_t - t, t - lo_t) < margin:
            if stuck or t >= hi_t or t <= lo_t:
                t = hi_t - margin if abs(t - hi_t) < abs(t - lo_t) else lo_t + margin
                stuck = False
            else:
                stuck = True
        else:
            stuck = False
        f_new, g_new = evaluate(x, t, d)
        evals, gtd_new = evals + 1, float(g_new @ d)
        ls_iter += 1
        if f_new > f + c1 * t * gtd or f_new >= points[low][1]:
            points[high] = [t, f_new, g_new, gtd_new]
            low, high = (0, 1) if points[0][1] <= points[1][1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (points[high][0] - points[low][0]) >= 0:
                points[high] = list(points[low])
            points[low] = [t, f_new, g_new, gtd_new]
    t, f_new, g_new, _ = points[low]
    return f_new, g_new, t, evals
