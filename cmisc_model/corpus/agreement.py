"""Agreement between annotators of CMI/SC labels: κ, disagreements, consensus.

Input is a list of ratings, one dict per pair and annotator (``pair_id``,
``annotator``, ``cmi``, ``sc``; ``task_id`` and ``source`` where known), as
``cmisc annotate import`` reads them from a Label Studio export.

- Cohen's κ for every two annotators over the pairs both labelled
  (scikit-learn's ``cohen_kappa_score``), plain and linearly weighted: the
  five levels are ordered, and 0.5 against 0.75 is a smaller miss than 0
  against 1.
- Fleiss' κ over the pairs labelled by the most common number (≥ 2) of
  annotators, since Fleiss' statistic needs the same number of ratings per
  item (statsmodels' ``fleiss_kappa`` when statsmodels is installed; the
  same closed formula, Fleiss 1971, otherwise).
- The disagreement table: every pair whose annotators differ on CMI or SC,
  widest spread first.
- The consensus, one label per pair for ``data.annotations``: the lower
  median of the annotators' levels, per measure (with two annotators, the
  lower of the two labels; 2017 had one annotator and no rule), or, with
  ``agreed``, only the pairs all their annotators agree on.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import warnings
from collections import defaultdict
from itertools import combinations

from cmisc_model import schemas as S

MEASURES = {"cmi": S.CMI_LEVELS, "sc": S.SC_LEVELS}
RESOLVE = ("median", "agreed")


def by_pair(ratings: list[dict]) -> dict[str, list[dict]]:
    """Ratings grouped by pair, each group sorted by annotator."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in ratings:
        groups[r["pair_id"]].append(r)
    return {p: sorted(rs, key=lambda r: r["annotator"]) for p, rs in sorted(groups.items())}


def _finite(x: float) -> float | None:
    return None if x is None or math.isnan(x) else round(float(x), 4)


@contextlib.contextmanager
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def cohen_pairs(ratings: list[dict], measure: str) -> list[dict]:
    """Cohen's κ (plain and linear) for each two annotators with ≥ 2 pairs in common."""
    from sklearn.metrics import cohen_kappa_score

    levels = list(MEASURES[measure])
    table: dict[str, dict[str, float]] = defaultdict(dict)
    for r in ratings:
        table[r["annotator"]][r["pair_id"]] = float(r[measure])
    out = []
    for a, b in combinations(sorted(table), 2):
        common = sorted(set(table[a]) & set(table[b]))
        if len(common) < 2:
            continue
        ya = [levels.index(table[a][p]) for p in common]
        yb = [levels.index(table[b][p]) for p in common]
        labels = list(range(len(levels)))
        with _quiet():  # κ is undefined (nan) when both gave one and the same label throughout
            plain = cohen_kappa_score(ya, yb, labels=labels)
            linear = cohen_kappa_score(ya, yb, labels=labels, weights="linear")
        out.append({"annotators": [a, b], "n": len(common), "kappa": _finite(plain),
                    "kappa_linear": _finite(linear),
                    "agreement": round(sum(x == y for x, y in zip(ya, yb)) / len(common), 4)})
    return out


def fleiss_kappa(counts: list[list[int]]) -> float:
    """Fleiss' κ of a (items × categories) table of counts, each row summing to the same n ≥ 2."""
    try:
        from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss
    except ImportError:
        sm_fleiss = None
    if sm_fleiss is not None:
        import numpy as np

        return float(sm_fleiss(np.asarray(counts, dtype=float), method="fleiss"))
    n_items, n = len(counts), sum(counts[0])
    p_cat = [sum(row[j] for row in counts) / (n_items * n) for j in range(len(counts[0]))]
    p_item = [(sum(c * c for c in row) - n) / (n * (n - 1)) for row in counts]
    p_bar, p_e = sum(p_item) / n_items, sum(p * p for p in p_cat)
    return float("nan") if p_e == 1 else (p_bar - p_e) / (1 - p_e)


def fleiss(ratings: list[dict], measure: str) -> dict:
    """Fleiss' κ over the pairs with the most common number (≥ 2) of ratings."""
    levels = MEASURES[measure]
    groups = [rs for rs in by_pair(ratings).values() if len(rs) >= 2]
    if not groups:
        return {"n": 0, "raters": None, "kappa": None}
    raters = statistics.mode(sorted(len(rs) for rs in groups))
    counts = [[sum(abs(r[measure] - lv) < 1e-6 for r in rs) for lv in levels]
              for rs in groups if len(rs) == raters]
    return {"n": len(counts), "raters": raters, "kappa": _finite(fleiss_kappa(counts))}


def agreement(ratings: list[dict]) -> dict:
    """The agreement report (agreement.json)."""
    groups = by_pair(ratings)
    multi = [rs for rs in groups.values() if len(rs) >= 2]
    out = {
        "ratings": len(ratings),
        "pairs": len(groups),
        "annotators": sorted({r["annotator"] for r in ratings}),
        "pairs_with_several_annotators": len(multi),
    }
    for m in MEASURES:
        same = sum(len({r[m] for r in rs}) == 1 for rs in multi)
        out[m] = {
            "agreement": round(same / len(multi), 4) if multi else None,
            "cohen": cohen_pairs(ratings, m),
            "fleiss": fleiss(ratings, m),
        }
    return out


def disagreements(ratings: list[dict]) -> list[dict]:
    """Pairs whose annotators differ on CMI or SC, widest spread first (disagreements.csv)."""
    rows = []
    for pair_id, rs in by_pair(ratings).items():
        if len(rs) < 2 or all(len({r[m] for r in rs}) == 1 for m in MEASURES):
            continue
        row = {"pair_id": pair_id, "source": rs[0].get("source"),
               "task_ids": " ".join(sorted({str(r.get("task_id")) for r in rs})), "annotators": len(rs)}
        for m in MEASURES:
            row[m] = "; ".join(f"{r['annotator']}={r[m]:g}" for r in rs)
            row[f"{m}_spread"] = max(r[m] for r in rs) - min(r[m] for r in rs)
        rows.append(row)
    # SC spans 2, CMI spans 1: compare spreads on the same (level-step) scale
    return sorted(rows, key=lambda r: (-(r["cmi_spread"] * 4 + r["sc_spread"] * 2), r["pair_id"]))


def consensus(ratings: list[dict], resolve: str = "median") -> list[dict]:
    """One ANNOTATIONS row per pair (``resolve``: median or agreed; see the module docstring)."""
    if resolve not in RESOLVE:
        raise ValueError(f"resolve {resolve!r} is not one of {list(RESOLVE)}")
    out = []
    for pair_id, rs in by_pair(ratings).items():
        labels = {m: [float(r[m]) for r in rs] for m in MEASURES}
        if resolve == "agreed" and any(len(set(v)) > 1 for v in labels.values()):
            continue
        out.append({
            "pair_id": pair_id,
            "cmi": statistics.median_low(labels["cmi"]),
            "sc": statistics.median_low(labels["sc"]),
            "source": rs[0].get("source"),
            "annotator": "+".join(r["annotator"] for r in rs),
        })
    return out
