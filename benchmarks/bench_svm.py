"""The SVM baseline's C search on the full article embeddings and on the training rows' span.

    .venv/bin/python benchmarks/bench_svm.py                 # after `make repro`
    .venv/bin/python benchmarks/bench_svm.py --repeats 0 1 2

For each labelled split and task it runs the `baselines` stage's grid search
(``baselines.svm_c_grid``, stratified CV on the training split, refit) twice in
one process: the pipeline without ``RowSpace`` (standardise, then the SVM on all
2,400 dimensions) and the stage's own pipeline (seed + k as the stage; standardise, rotate onto the
training rows' span, then the SVM). It prints the seconds of each, the chosen C,
the largest difference of the mean CV accuracies and the share of test items
predicted alike.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from cmisc_model import schemas as S
from cmisc_model.config import BaseConfig, load_section
from cmisc_model.corpus.annotations import repeat_split
from cmisc_model.corpus.assemble import CorpusConfig
from cmisc_model.evaluation.baselines import (
    BaselinesConfig,
    _matrix,
    _read_embeddings,
    _svm_pipeline,
    labels,
)


def search(X, y, cfg: BaselinesConfig, seed: int, span: bool) -> tuple[GridSearchCV, float]:
    pipe = _svm_pipeline(cfg, seed)
    if not span:
        pipe.steps = [s for s in pipe.steps if s[0] != "span"]
    cv = StratifiedKFold(n_splits=cfg.cv_folds, shuffle=True, random_state=seed)
    grid = GridSearchCV(pipe, {"svc__C": list(cfg.svm_c_grid)}, cv=cv, scoring="accuracy", refit=True,
                        n_jobs=cfg.n_jobs)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # liblinear's iteration cap and rare classes, as in the stage
        grid.fit(X, y)
    return grid, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--labelled", default="data/corpus/labelled.parquet")
    ap.add_argument("--embeddings", default="data/embeddings/labelled.parquet")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--repeats", type=int, nargs="+", default=[0, 1])
    args = ap.parse_args()
    cfg = load_section(BaselinesConfig, "baselines", args.params)
    split_cfg = load_section(CorpusConfig, "corpus", args.params).labelled
    seed = load_section(BaseConfig, "base", args.params).seed
    rows = S.read_table(args.labelled, S.LABELLED).to_pylist()
    emb = _read_embeddings(args.embeddings)
    total = {True: 0.0, False: 0.0}
    print("| repeat | task | full s | span s | ratio | C full / span | max CV diff | test alike |")
    print("|---|---|---|---|---|---|---|---|")
    for k in args.repeats:
        split = repeat_split(rows, seed, k, split_cfg)
        train = [r for r in split if r["split"] == "train" and r["pair_id"] in emb]
        test = [r for r in split if r["split"] == "test" and r["pair_id"] in emb]
        X, X_test = _matrix(train, emb, args.embeddings), _matrix(test, emb, args.embeddings)
        for task in ("cmi", "sc"):
            y = np.array([labels(r, task) for r in train])
            (full, t_full), (span, t_span) = search(X, y, cfg, seed + k, False), search(X, y, cfg, seed + k, True)
            total[False] += t_full
            total[True] += t_span
            diff = np.abs(full.cv_results_["mean_test_score"] - span.cv_results_["mean_test_score"]).max()
            alike = np.mean(full.predict(X_test) == span.predict(X_test))
            print(f"| {k} | {task} | {t_full:.1f} | {t_span:.1f} | {t_full / t_span:.2f}x | "
                  f"{full.best_params_['svc__C']} / {span.best_params_['svc__C']} | {diff:.4f} | {alike:.3f} |",
                  flush=True)
    print(f"\nall searches: full {total[False]:.1f} s, span {total[True]:.1f} s: {total[False] / total[True]:.2f}x")


if __name__ == "__main__":
    main()
