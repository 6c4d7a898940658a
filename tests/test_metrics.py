"""Metrics (scikit-learn underneath) checked against hand-computed values on small examples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score, f1_score

from cmisc_model.evaluation import metrics as M


def test_accuracy_and_confusion_by_hand():
    t, p = [0, 1, 2, 3, 4], [0, 1, 2, 3, 3]
    assert M.accuracy(t, p) == pytest.approx(0.8)
    m = M.confusion(t, p)
    assert m.shape == (5, 5) and m.sum() == 5
    assert m[4, 3] == 1 and m[3, 3] == 1 and m[4, 4] == 0  # rows = true, columns = predicted


def test_macro_f1_by_hand_over_present_classes():
    # class 0: tp 1, 2 true, 2 predicted -> F1 = 2*1/(2+2) = 0.5
    # class 1: tp 2, 2 true, 3 predicted -> F1 = 2*2/(2+3) = 0.8
    # class 2: tp 0, 1 true, 0 predicted -> F1 = 0
    # classes 3, 4 neither occur nor are predicted: left out -> (0.5 + 0.8 + 0) / 3
    t, p = [0, 0, 1, 1, 2], [0, 1, 1, 1, 0]
    assert M.macro_f1(t, p) == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert M.macro_f1(t, p) == pytest.approx(f1_score(t, p, average="macro", zero_division=0))


def test_qw_kappa_by_hand():
    # truth [0,1,2], prediction [0,2,2]; weights w_ij = (i-j)^2.
    # observed: cells (0,0),(1,2),(2,2) -> sum w*O = 0 + 1 + 0 = 1
    # expected E_ij = r_i c_j / n with r = (1,1,1,0,0), c = (1,0,2,0,0), n = 3:
    #   i=0: w00*1 + w02*2 = 0 + 8; i=1: w10*1 + w12*2 = 1 + 2; i=2: w20*1 + w22*2 = 4 + 0
    #   sum w*E = 15 / 3 = 5  ->  kappa = 1 - 1/5 = 0.8
    assert M.qw_kappa([0, 1, 2], [0, 2, 2]) == pytest.approx(0.8)
    assert M.qw_kappa([0, 1, 2, 3], [0, 1, 2, 3]) == pytest.approx(1.0)
    # A constant prediction (the most-frequent baseline) agrees by chance only.
    assert M.qw_kappa([0, 1, 2, 2, 4], [2, 2, 2, 2, 2]) == pytest.approx(0.0)
    assert math.isnan(M.qw_kappa([2, 2], [2, 2]))


def test_qw_kappa_weights_use_all_five_classes_by_hand():
    # truth [0,1,3], prediction [0,3,3]: class 2 and 4 absent, so the weights must come from the
    # class numbers, not from the order of the classes present (sklearn without labels= gives 0.8).
    # sum w*O = w13 = 4; r = (1,1,0,1,0), c = (1,0,0,2,0), n = 3:
    #   i=0: w00*1 + w03*2 = 18; i=1: w10*1 + w13*2 = 9; i=3: w30*1 + w33*2 = 9 -> sum w*E = 36/3 = 12
    #   kappa = 1 - 4/12 = 2/3
    assert M.qw_kappa([0, 1, 3], [0, 3, 3]) == pytest.approx(2 / 3)
    assert cohen_kappa_score([0, 1, 3], [0, 3, 3], weights="quadratic") == pytest.approx(0.8)


def test_per_class_precision_and_recall_by_hand():
    t, p = [0, 0, 1, 1, 2], [0, 1, 1, 1, 0]
    pc = M.per_class(t, p)
    # class 0: 2 predicted, 1 right -> P 1/2; 2 true, 1 found -> R 1/2
    # class 1: 3 predicted, 2 right -> P 2/3; 2 true, 2 found -> R 1
    # class 2: never predicted -> P undefined; 1 true, 0 found -> R 0; classes 3, 4: both undefined
    np.testing.assert_allclose(pc["precision"], [0.5, 2 / 3, np.nan, np.nan, np.nan])
    np.testing.assert_allclose(pc["recall"], [0.5, 1.0, 0.0, np.nan, np.nan])
    assert pc["support"].tolist() == [2, 2, 1, 0, 0]
    assert np.isnan(M.per_class([], [])["precision"]).all()


def test_metrics_agree_with_sklearn_on_random_labels():
    rng = np.random.default_rng(3)
    for _ in range(5):
        t, p = rng.integers(0, 5, 60), rng.integers(0, 5, 60)
        assert M.macro_f1(t, p) == pytest.approx(f1_score(t, p, average="macro", zero_division=0))
        assert M.qw_kappa(t, p) == pytest.approx(cohen_kappa_score(t, p, weights="quadratic", labels=list(range(5))))
        assert M.accuracy(t, p) == pytest.approx(float(np.mean(t == p)))


def test_bad_input_is_an_error():
    with pytest.raises(ValueError, match="items"):
        M.accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="0..4"):
        M.accuracy([5], [0])


def test_bootstrap_is_seeded_and_contains_the_estimate():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 5, 92)
    p = np.where(rng.random(92) < 0.7, t, rng.integers(0, 5, 92))
    a = M.bootstrap_ci(t, p, M.accuracy, n=500, seed=1)
    assert a == M.bootstrap_ci(t, p, M.accuracy, n=500, seed=1)
    assert a != M.bootstrap_ci(t, p, M.accuracy, n=500, seed=2)
    lo, hi = a
    assert lo <= M.accuracy(t, p) <= hi
    assert 0.05 < hi - lo < 0.3  # ~ ±1.96 * sqrt(.7*.3/92) = ±0.094
    lo, hi = M.bootstrap_ci(t, p, M.qw_kappa, n=300, seed=1)
    assert lo <= M.qw_kappa(t, p) <= hi


@pytest.mark.parametrize("metric", [M.accuracy, M.macro_f1, M.qw_kappa])
def test_bootstrap_from_confusions_equals_the_metric_on_each_resample(metric):
    """The vectorised bootstrap gives each resample the value the metric itself gives it,
    skewed sets included (a class never predicted, a resample with one class only)."""
    rng = np.random.default_rng(3)
    for m, classes in ((60, 5), (12, 2), (8, 1)):
        t = rng.integers(0, classes, m)
        p = np.where(rng.random(m) < 0.6, t, rng.integers(0, 3, m))
        idx = rng.integers(0, m, size=(200, m))
        fast = M.FROM_CONFUSIONS[metric](M.resampled_confusions(t, p, idx))
        slow = np.array([metric(t[k], p[k]) for k in idx])
        assert np.allclose(fast, slow, equal_nan=True, atol=1e-12)


def test_mean_sd_over_repeats():
    mean, sd = M.mean_sd([0.5, 0.7])
    assert mean == pytest.approx(0.6) and sd == pytest.approx(math.sqrt(0.02))  # sample sd, ddof=1
    mean, sd = M.mean_sd([0.4])
    assert mean == pytest.approx(0.4) and math.isnan(sd)
