"""Classification metrics for CMI and SC (5 ordered classes each), from scikit-learn.

- ``accuracy``: share of items predicted exactly.
- ``macro_f1``: ``sklearn.metrics.f1_score(average="macro", zero_division=0)``,
  the unweighted mean of the per-class F1 over the classes present in
  truth ∪ prediction (sklearn's default labels). A class that neither occurs
  nor is predicted in a 92-item test set tells nothing about the system, so it
  is left out rather than counted as F1 = 0; a class that occurs but is never
  predicted (or the reverse) counts as 0.
- ``qw_kappa``: ``sklearn.metrics.cohen_kappa_score(weights="quadratic")`` with
  ``labels`` = all 5 classes, so the weight of a cell is (i - j)² of the class
  indices even when a class is absent (without ``labels`` sklearn would number
  only the classes present, which changes the weights). It is the usual
  agreement measure for ordinal labels (a CMI of 0.75 predicted as 1.0 costs
  less than one predicted as 0); 0 for any constant prediction, e.g. the
  most-frequent baseline, and NaN when truth and prediction are both a single
  (same) class.
- ``confusion``: ``sklearn.metrics.confusion_matrix`` over the 5 classes,
  rows = true class, columns = predicted class.
- ``per_class``: precision, recall and support of each class
  (``precision_recall_fscore_support(average=None)``); NaN where undefined
  (precision of a class never predicted, recall of one that never occurs).
- ``bootstrap_ci``: seeded percentile bootstrap over test items.
- ``mean_sd``: mean and sample standard deviation over evaluation repeats.

The test (tests/test_metrics.py) checks each against values computed by hand.

Departure from 2017: the 2017 code reported accuracy and precision/recall/F1
only, on 128 items scored from 92 (original_impl.md §7, §11.4).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np
from sklearn.metrics import (
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

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
    return confusion_matrix(t, p, labels=np.arange(n_classes)).astype(np.int64)


def macro_f1(y_true, y_pred) -> float:
    """Mean F1 over the classes in truth ∪ prediction (see the module docstring)."""
    t, p = _arrays(y_true, y_pred)
    if t.size == 0:
        return math.nan
    return float(f1_score(t, p, average="macro", zero_division=0))


def qw_kappa(y_true, y_pred, n_classes: int = N_CLASSES) -> float:
    """Quadratic-weighted Cohen's kappa over ``n_classes`` classes: 1 - Σ w·O / Σ w·E, w_ij = (i-j)²."""
    t, p = _arrays(y_true, y_pred)
    if t.size == 0:
        return math.nan
    with warnings.catch_warnings():  # undefined (one shared class): NaN, said in the docstring, not warned
        warnings.simplefilter("ignore")
        return float(cohen_kappa_score(t, p, labels=np.arange(n_classes), weights="quadratic"))


def per_class(y_true, y_pred, n_classes: int = N_CLASSES) -> dict[str, np.ndarray]:
    """``{"precision", "recall", "support"}``, one entry per class 0..n_classes-1."""
    t, p = _arrays(y_true, y_pred)
    if t.size == 0:
        nan = np.full(n_classes, math.nan)
        return {"precision": nan, "recall": nan.copy(), "support": np.zeros(n_classes, dtype=np.int64)}
    precision, recall, _, support = precision_recall_fscore_support(
        t, p, labels=np.arange(n_classes), average=None, zero_division=np.nan)
    return {"precision": precision.astype(float), "recall": recall.astype(float), "support": support.astype(np.int64)}


METRICS: dict[str, Metric] = {"accuracy": accuracy, "macro_f1": macro_f1, "kappa": qw_kappa}


def resampled_confusions(t: np.ndarray, p: np.ndarray, idx: np.ndarray, n_classes: int = N_CLASSES) -> np.ndarray:
    """Confusion counts (R, C, C) of the resamples ``idx`` (R, m) of the items (t, p)."""
    R = idx.shape[0]
    codes = t[idx] * n_classes + p[idx] + (n_classes * n_classes) * np.arange(R)[:, None]  # (R, m)
    return np.bincount(codes.ravel(), minlength=R * n_classes * n_classes).reshape(R, n_classes, n_classes)


def _accuracy_of(cm: np.ndarray) -> np.ndarray:
    return np.trace(cm, axis1=1, axis2=2) / cm.sum(axis=(1, 2))


def _macro_f1_of(cm: np.ndarray) -> np.ndarray:
    """``macro_f1`` per confusion matrix: F1 = 2TP / (2TP + FP + FN) over the classes in truth ∪ prediction."""
    tp = np.diagonal(cm, axis1=1, axis2=2).astype(float)  # (R, C)
    truth, pred = cm.sum(axis=2), cm.sum(axis=1)  # (R, C) each
    present = (truth + pred) > 0
    f1 = np.where(present, 2 * tp / np.maximum(truth + pred, 1), 0.0)
    return f1.sum(axis=1) / present.sum(axis=1)


def _qw_kappa_of(cm: np.ndarray) -> np.ndarray:
    """``qw_kappa`` per confusion matrix (sklearn's formula); NaN where the expected disagreement is 0."""
    c = np.arange(cm.shape[1])
    w = (c[:, None] - c[None, :]) ** 2  # (C, C)
    truth, pred = cm.sum(axis=2), cm.sum(axis=1)  # (R, C)
    expected = truth[:, :, None] * pred[:, None, :] / cm.sum(axis=(1, 2))[:, None, None]  # (R, C, C)
    denominator = (w * expected).sum(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1 - (w * cm).sum(axis=(1, 2)) / denominator


FROM_CONFUSIONS: dict[Metric, Callable[[np.ndarray], np.ndarray]] = {
    accuracy: _accuracy_of, macro_f1: _macro_f1_of, qw_kappa: _qw_kappa_of}


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
    if metric in FROM_CONFUSIONS:  # all resamples at once: 1,000 x 2,000 items in milliseconds
        values = FROM_CONFUSIONS[metric](resampled_confusions(t, p, idx))
    else:
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


def fmt(x, digits: int = 3) -> str:
    """A figure for a report table: ``digits`` decimals, — for a missing or NaN value."""
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"
