"""Baselines: the most-frequent class of the training split, and the SVM with C chosen on train only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
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


def with_images(rows: list[dict], folder: Path) -> list[dict]:
    """The rows, each with a small PNG whose colour is its CMI class (so image_only runs)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for r in rows:
        path = folder / f"{r['pair_id']}.png"
        Image.new("RGB", (12, 12), (60 * S.cmi_class(r["cmi"]), 40, 200)).save(path)
        out.append({**r, "image_path": str(path)})
    return out


def heldout_rows(n: int = 15, start: int = 1000) -> list[dict]:
    """n held-out pairs (another world: pair ids p1000...), every one of split heldout."""
    return [labelled_row(i, S.CMI_LEVELS[i % 5], S.SC_LEVELS[i % 5], split="heldout") for i in range(start, start + n)]


def subset_embeddings(src: Path, ids: set[str], path: Path) -> Path:
    table = S.read_table(src, S.EMBEDDINGS).to_pylist()
    return S.write_table(S.from_rows([r for r in table if r["pair_id"] in ids], S.EMBEDDINGS), path, S.EMBEDDINGS)


@pytest.fixture
def two_worlds(tmp_path):
    """A labelled set and a held-out set, with images and (same class centres) separate embedding files."""
    rows = with_images(stratified_labelled(60), tmp_path / "img")
    held = with_images(heldout_rows(), tmp_path / "img_heldout")
    both = write_embeddings(tmp_path / "all.parquet", rows + held)
    return {
        "rows": rows, "held": held,
        "lab": write_labelled(tmp_path / "labelled.parquet", rows),
        "heldout": write_labelled(tmp_path / "heldout.parquet", held),
        "emb": subset_embeddings(both, {r["pair_id"] for r in rows}, tmp_path / "emb.parquet"),
        "held_emb": subset_embeddings(both, {r["pair_id"] for r in held}, tmp_path / "held_emb.parquet"),
    }


def test_heldout_is_scored_by_every_system_once_per_repeat_and_leaves_test_rows_alone(two_worlds, monkeypatch):
    w = two_worlds
    import sklearn.model_selection as ms

    fitted: list[int] = []  # rows of every CV search (a fit on held-out data would add some)

    class RecordingSearch(ms.GridSearchCV):
        def fit(self, X, y=None, **kw):
            fitted.append(len(X))
            if isinstance(X, np.ndarray) and X.shape[1] == S.ARTICLE_DIM:
                assert max(X[:, -1]) < 1000  # the SVM never sees a held-out embedding
            return super().fit(X, y, **kw)

    monkeypatch.setattr(ms, "GridSearchCV", RecordingSearch)
    plain, plain_summary = B.run_baselines(w["lab"], w["emb"], 2, SEED, FAST)
    fits_without = list(fitted)
    table, summary = B.run_baselines(w["lab"], w["emb"], 2, SEED, FAST, heldout_path=w["heldout"],
                                     heldout_embeddings=w["held_emb"])
    assert fitted[len(fits_without):] == fits_without  # the same fits, nothing more

    systems = ["most_frequent", "text_only", "image_only", "svm"]
    assert summary["systems"] == systems
    assert summary["heldout"] == {"path": str(w["heldout"]), "n": len(w["held"])}
    rows = table.to_pylist()
    held_ids = sorted(r["pair_id"] for r in w["held"])
    for system in systems:
        for k in range(2):
            got = [r for r in rows if r["system"] == system and r["repeat"] == k and r["split"] == "heldout"]
            assert sorted(r["pair_id"] for r in got) == held_ids
            assert all(r["cmi_true"] == S.cmi_class(S.CMI_LEVELS[int(r["pair_id"][1:]) % 5]) for r in got)
    svm_held = [r for r in rows if r["system"] == "svm" and r["split"] == "heldout"]
    assert np.mean([r["cmi_true"] == r["cmi_pred"] for r in svm_held]) >= 0.9  # its own embeddings, the fitted model

    test_rows = table.filter(pc.equal(table.column("split"), "test"))
    assert set(plain.column("split").to_pylist()) == {"test"}
    assert test_rows.equals(plain) and test_rows.to_pylist() == plain.to_pylist()
    assert {k: v for k, v in summary.items() if k != "heldout"} == plain_summary


def test_heldout_of_another_split_or_empty_is_named(two_worlds, tmp_path):
    w = two_worlds
    bad = write_labelled(tmp_path / "bad_heldout.parquet", w["held"][:-1] + [{**w["held"][-1], "split": "test"}])
    with pytest.raises(CmiscError, match="bad_heldout.parquet"):
        B.run_baselines(w["lab"], None, 1, SEED, FAST, heldout_path=bad)
    empty = write_labelled(tmp_path / "empty_heldout.parquet", [])
    with pytest.raises(CmiscError, match="empty_heldout.parquet"):
        B.run_baselines(w["lab"], None, 1, SEED, FAST, heldout_path=empty)
    leak = write_labelled(tmp_path / "leak_heldout.parquet", [{**w["rows"][0], "split": "heldout"}])
    with pytest.raises(CmiscError, match=f"leak_heldout.parquet.*{w['rows'][0]['pair_id']}"):
        B.run_baselines(w["lab"], None, 1, SEED, FAST, heldout_path=leak)


def test_svm_without_a_heldout_embedding_is_named(two_worlds, tmp_path):
    w = two_worlds
    missing = w["held"][3]["pair_id"]
    partial = subset_embeddings(w["held_emb"], {r["pair_id"] for r in w["held"]} - {missing}, tmp_path / "partial.parquet")
    with pytest.raises(CmiscError, match=f"partial.parquet.*{missing}"):
        B.run_baselines(w["lab"], w["emb"], 1, SEED, FAST, heldout_path=w["heldout"], heldout_embeddings=partial)
    with pytest.raises(CmiscError, match=f"heldout.parquet.*{w['held'][0]['pair_id']}"):
        B.run_baselines(w["lab"], w["emb"], 1, SEED, FAST, heldout_path=w["heldout"])
    # Without the SVM no held-out embeddings are needed.
    table, _ = B.run_baselines(w["lab"], None, 1, SEED, FAST, heldout_path=w["heldout"])
    assert table.to_pylist() and "svm" not in set(table.column("system").to_pylist())


def test_cli_passes_the_heldout_set_through(two_worlds, tmp_path):
    w = two_worlds
    out = tmp_path / "baselines"
    code = B.cli_main(["--labelled", str(w["lab"]), "--out", str(out), "--params", str(REPO / "params.yaml"),
                       "--repeats", "1", "--heldout", str(w["heldout"])])
    assert code == 0
    table = pq.read_table(out / "predictions.parquet").to_pylist()
    assert len([r for r in table if r["split"] == "heldout"]) == 3 * len(w["held"])  # 3 systems, no SVM
    assert json.loads((out / "summary.json").read_text())["heldout"] == {"path": str(w["heldout"]), "n": len(w["held"])}


def test_the_svm_on_the_rows_span_predicts_as_on_the_full_vectors():
    """More dimensions than training items, as the article embeddings have: rotating onto the
    training rows' span keeps every inner product, so the fitted SVM decides the same."""
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(80, 300)), rng.integers(0, 4, 80)
    X_new = rng.normal(size=(200, 300))  # not in the span
    span = B.RowSpace().fit(X)
    assert span.basis_.shape == (300, 80)
    full = LinearSVC(multi_class="crammer_singer", C=0.01, max_iter=5000, random_state=0).fit(X, y)
    small = LinearSVC(multi_class="crammer_singer", C=0.01, max_iter=5000, random_state=0).fit(span.transform(X), y)
    assert np.allclose(full.decision_function(X_new), small.decision_function(span.transform(X_new)), atol=1e-6)
    assert (full.predict(X_new) == small.predict(span.transform(X_new))).all()
