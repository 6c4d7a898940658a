"""Classification metrics for CMI and SC (5 ordered classes each), in plain numpy.

- ``accuracy``: share of items predicted exactly.
- ``macro_f1``: unweighted mean of the per-class F1 over the classes present
  in truth ∪ prediction (sklearn's ``f1_score(average="macro")`` default). A
  class that neither occurs nor is predicted in a 92-item test set tells
  nothing about the system, so it is left out rather than counted as F1 = 0;
  a class that occurs but is never predicted (or the reverse) counts as 0.
- ``qw_kappa``: Cohen's kappa with quadratic weights over all 5 classes, the
  usual agreement measure for ordinal labels (a CMI of 0.75 predicted as 1.0
  costs less than one predicted as 0). It is 0 for any constant prediction,
  e.g. the most-frequent baseline, and NaN when truth and prediction are both
  a single (same) class.
- ``confusion``: 5×5 counts, rows = true class, columns = predicted class.
- ``bootstrap_ci``: seeded percentile bootstrap over test items.
- ``mean_sd``: mean and sample standard deviation over evaluation repeats.

Departure from 2017: the 2017 code reported accuracy and precision/recall/F1
only, on 128 items scored from 92 (original_impl.md §7, §11.4).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

N_CLASSES = 5

Metric = Callable[[np.ndarray, np.ndarray], float]


def _arrays(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=np.int64).ravel()
    p = np.asarray(y_pred, dtype=np.int64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} items, y_pred {p.size}")
    if t.size and (min(t.min(), p.min()) < 0 or max(t.max(), p.max()) >= N_CLASSES):
        raise ValueError(f"classes must lie in 0..{N_CLASSES - 1}")
    return t, p


def accuracy(y_true, y_pred) -> float:
    t, p = _arrays(y_true, y_pred)
    if t.size == 0:
        return math.nan
    return float(np.mean(t == p))


def confusion(y_true, y_pred, n_classes: int = N_CLASSES) -> np.ndarray:
    """Counts ``m[i, j]`` of items of true class i predicted as j."""
    t, p = _arrays(y_true, y_pred)
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (t, p), 1)
    return m


def macro_f1(y_true, y_pred) -> float:
    """Mean F1 over the classes in truth ∪ prediction (see the module docstring)."""
    t, p = _arrays(y_true, y_pred)
    if t.size == 0:
        return math.nan
    m = confusion(t, p)
    tp = np.diag(m).astype(float)
    n_true, n_pred = m.sum(axis=1), m.sum(axis=0)
    present = (n_true + n_pred) > 0
    # F1 = 2 tp / (n_true + n_pred); present classes have a positive denominator.
    f1 = 2 * tp[present] / (n_true[present] + n_pred[present])
    return float(f1.mean())


def qw_kappa(y_true, y_pred, n_classes: int = N_CLASSES) -> float:
    """Quadratic-weighted Cohen's kappa: 1 - Σ w·O / Σ w·E, w_ij = (i-j)²."""
    t, p = _arrays(y_true, y_pred)
    if t.size == 0:
        return math.nan
    observed = confusion(t, p, n_classes).astype(float)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / t.size
    i, j = np.indices((n_classes, n_classes))
    w = (i - j) ** 2  # the usual /(K-1)² normalisation cancels in the ratio
    denom = float((w * expected).sum())
    if denom == 0.0:
        return math.nan
    return float(1.0 - (w * observed).sum() / denom)


METRICS: dict[str, Metric] = {"accuracy": accuracy, "macro_f1": macro_f1, "kappa": qw_kappa}


def bootstrap_ci(
    y_true, y_pred, metric: Metric = accuracy, n: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``metric``: resample the test items with
    replacement ``n`` times (numpy Generator seeded with ``seed``) and take the
    (1-level)/2 and (1+level)/2 quantiles. Resamples where the metric is
    undefined (NaN) are ignored."""
    t, p = _arrays(y_true, y_pred)
    if t.size == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, t.size, size=(n, t.size))
    values = np.array([metric(t[k], p[k]) for k in idx], dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return (math.nan, math.nan)
    lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return (float(lo), float(hi))


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1); sd is NaN for fewer than 2 values."""
    v = np.asarray([x for x in values if not (isinstance(x, float) and math.isnan(x))], dtype=float)
    if v.size == 0:
        return (math.nan, math.nan)
    return (float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else math.nan)
