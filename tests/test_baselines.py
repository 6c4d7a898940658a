"""Baselines: the most-frequent class of the training split, and the SVM with C chosen on train only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from cmisc_model import schemas as S
from cmisc_model.corpus.annotations import LabelledSplitConfig, split_labelled
from cmisc_model.errors import CmiscError
from cmisc_model.evaluation import baselines as B

REPO = Path(__file__).resolve().parents[1]
SEED = 12345


def labelled_row(i: int, cmi: float, sc: float, split: str = "train", source: str = "bbc") -> dict:
    return {
        "pair_id": f"p{i:04d}", "source": source, "doc_id": f"d{i}", "position": "lead", "section_path": [],
        "text_blocks": [{"titles": [], "sentences": ["A sentence."]}], "image_status": "ok",
        "cmi": cmi, "sc": sc, "split": split,
    }


def write_labelled(path: Path, rows: list[dict]) -> Path:
    return S.write_table(S.from_rows(rows, S.LABELLED), path, S.LABELLED)


def stratified_labelled(n: int = 90) -> list[dict]:
    """n pairs whose CMI class = SC class = i % 5 (so the cells are large), split as the corpus stage does."""
    rows = [labelled_row(i, S.CMI_LEVELS[i % 5], S.SC_LEVELS[(i % 5)], source=("bbc", "simplewiki")[i % 2]) for i in range(n)]
    return split_labelled(rows, SEED, LabelledSplitConfig())


def write_embeddings(path: Path, rows: list[dict], separable: bool = True) -> Path:
    rng = np.random.default_rng(0)
    # A random centre per CMI class in every dimension plus unit noise: well
    # separated in 2400 dimensions, also after per-dimension standardisation.
    centres = rng.normal(0, 1, (S.N_CLASSES, S.ARTICLE_DIM)) if separable else np.zeros((S.N_CLASSES, S.ARTICLE_DIM))
    out = []
    for i, r in enumerate(rows):
        v = (centres[S.cmi_class(r["cmi"])] + rng.normal(0, 1, S.ARTICLE_DIM)).astype(np.float32)
        v[-1] = int(r["pair_id"][1:])  # the item's number, to see which items a fit saw
        out.append({"pair_id": r["pair_id"], "vector": v.tolist()})
    return S.write_table(S.from_rows(out, S.EMBEDDINGS), path, S.EMBEDDINGS)


FAST = B.BaselinesConfig(repeats=1, svm_c_grid=[0.01, 1.0], cv_folds=3, max_iter=2000)


def test_most_frequent_class_ties_go_to_the_lower_class():
    assert B.most_frequent_class([3, 1, 1, 3, 2]) == 1
    assert B.most_frequent_class([4, 4, 0]) == 4
    with pytest.raises(CmiscError, match="empty"):
        B.most_frequent_class([])


def test_most_frequent_uses_the_training_split_not_all_labels(tmp_path):
    # Train: CMI 0.25 x6, 1.0 x4; test: 1.0 x8. Over all 18 labels the mode is 1.0
    # (2017's way); over the training split it is 0.25, which must be predicted.
    rows = [labelled_row(i, 0.25, 0.5) for i in range(6)] + [labelled_row(i, 1.0, 1.0) for i in range(6, 10)]
    rows += [labelled_row(i, 1.0, 1.0, split="test") for i in range(10, 18)]
    path = write_labelled(tmp_path / "labelled.parquet", rows)
    table, summary = B.run_baselines(path, None, 1, SEED, FAST)
    preds = [r for r in table.to_pylist() if r["system"] == "most_frequent"]
    assert len(preds) == 8
    assert {r["cmi_pred"] for r in preds} == {S.cmi_class(0.25)}
    assert {r["sc_pred"] for r in preds} == {S.sc_class(0.5)}
    assert all(r["cmi_true"] == S.cmi_class(1.0) and r["split"] == "test" for r in preds)
    assert summary["systems"] == ["most_frequent", "text_only"] and summary["svm_missing"] == "no embeddings file given"
    assert "no usable image" in summary["image_only_missing"]


def test_svm_beats_most_frequent_on_separable_embeddings_and_sees_only_train(tmp_path, monkeypatch):
    rows = stratified_labelled(90)
    lab = write_labelled(tmp_path / "labelled.parquet", rows)
    emb = write_embeddings(tmp_path / "emb.parquet", rows)

    import sklearn.model_selection as ms

    seen: list[set[int]] = []

    class RecordingSearch(ms.GridSearchCV):
        def fit(self, X, y=None, **kw):
            if isinstance(X, np.ndarray):  # the SVM's embeddings (text_only fits on strings)
                seen.append({int(x) for x in X[:, -1]})
            return super().fit(X, y, **kw)

    monkeypatch.setattr(ms, "GridSearchCV", RecordingSearch)
    table, summary = B.run_baselines(lab, emb, 1, SEED, FAST)

    train_ids = {int(r["pair_id"][1:]) for r in rows if r["split"] == "train"}
    test_ids = {r["pair_id"] for r in rows if r["split"] == "test"}
    assert len(seen) == 2  # one search per task (CMI, SC)
    assert all(s == train_ids for s in seen)  # C is chosen by CV on the training split only
    assert set(summary["svm_c"]["0"].values()) <= set(FAST.svm_c_grid)

    acc = {}
    for system in ("svm", "most_frequent"):
        preds = [r for r in table.to_pylist() if r["system"] == system]
        assert {r["pair_id"] for r in preds} == test_ids and len(preds) == len(test_ids)
        acc[system] = np.mean([r["cmi_true"] == r["cmi_pred"] for r in preds])
    assert acc["svm"] >= 0.9 and acc["most_frequent"] <= 0.4


def test_repeats_resplit_and_missing_embedding_is_named(tmp_path):
    rows = stratified_labelled(60)
    lab = write_labelled(tmp_path / "labelled.parquet", rows)
    table, _ = B.run_baselines(lab, tmp_path / "absent.parquet", 3, SEED, FAST)
    tests = [{r["pair_id"] for r in table.to_pylist() if r["repeat"] == k} for k in range(3)]
    assert tests[0] == {r["pair_id"] for r in rows if r["split"] == "test"}  # repeat 0 = the stored split
    assert tests[1] != tests[0]
    write_embeddings(tmp_path / "emb.parquet", rows[1:])
    with pytest.raises(CmiscError, match=rows[0]["pair_id"]):
        B.run_baselines(lab, tmp_path / "emb.parquet", 1, SEED, FAST)


def test_cli_writes_predictions_and_says_why_the_svm_is_missing(tmp_path, capsys):
    lab = write_labelled(tmp_path / "labelled.parquet", stratified_labelled(60))
    out = tmp_path / "baselines"
    code = B.cli_main(["--labelled", str(lab), "--out", str(out), "--params", str(REPO / "params.yaml"), "--repeats", "2"])
    assert code == 0
    table = pq.read_table(out / "predictions.parquet")
    assert set(table.column("repeat").to_pylist()) == {0, 1}
    assert json.loads((out / "summary.json").read_text())["svm_missing"] == "no embeddings file given"
    assert "SVM not run" in capsys.readouterr().out
