"""The evaluation report: scored-once check, metrics.json, Table 3, plots, and the flow."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from cmisc_model import schemas as S
from cmisc_model.corpus.annotations import LabelledSplitConfig, repeat_split
from cmisc_model.errors import CmiscError
from cmisc_model.evaluation.report import (
    EvaluateConfig,
    evaluate,
    read_predictions,
    write_predictions,
)
from tests.test_baselines import stratified_labelled, write_labelled

SEED = 12345
CFG = EvaluateConfig(bootstrap=200)


def prediction_rows(system: str, repeat: int, rows: list[dict], predict) -> list[dict]:
    """PREDICTIONS rows for the test items of ``repeat``; ``predict(row) -> (cmi, sc)`` classes."""
    out = []
    for r in repeat_split(rows, SEED, repeat, LabelledSplitConfig()):
        if r["split"] != "test":
            continue
        cmi, sc = predict(r)
        out.append({
            "system": system, "repeat": repeat, "pair_id": r["pair_id"], "source": r["source"], "split": "test",
            "cmi_true": S.cmi_class(r["cmi"]), "sc_true": S.sc_class(r["sc"]), "cmi_pred": cmi, "sc_pred": sc,
        })
    return out


def truth(r):
    return S.cmi_class(r["cmi"]), S.sc_class(r["sc"])


@pytest.fixture
def world(tmp_path):
    rows = stratified_labelled(90)
    lab = write_labelled(tmp_path / "labelled.parquet", rows)
    return tmp_path, rows, lab


def write_raw(path: Path, rows: list[dict]) -> Path:
    """Bypass write_predictions' checks, as a buggy producer would."""
    pq.write_table(pa.Table.from_pylist(rows, schema=S.PREDICTIONS), path)
    return path


def test_evaluate_writes_metrics_table3_and_plots(world):
    tmp, rows, lab = world
    preds = []
    for k in (0, 1):
        preds += prediction_rows("classifier", k, rows, truth)
        preds += prediction_rows("most_frequent", k, rows, lambda r: (2, 4))
    # one multi-system, multi-repeat file (schemas.write_table would refuse it: pair ids repeat)
    path = write_predictions(pa.Table.from_pylist(preds, schema=S.PREDICTIONS), tmp / "pred.parquet")
    assert read_predictions(path).num_rows == len(preds)

    out = tmp / "reports"
    summary = evaluate([path], lab, out, CFG, SEED, LabelledSplitConfig())
    # one DVC metrics file per system, with the same few keys in each (the columns of
    # `dvc metrics show`); every figure is in details.json
    declared = {f.stem: json.loads(f.read_text()) for f in (out / "metrics").glob("*.json")}
    assert declared == summary["metrics"] and set(declared) == {"classifier", "most_frequent"}
    assert set(declared["classifier"]) == {"cmi", "sc"}
    assert set(declared["classifier"]["cmi"]) == {"accuracy", "ci_low", "ci_high", "mean", "kappa"}
    assert declared["most_frequent"]["sc"]["accuracy"] == 0.2
    assert not (out / "metrics.json").exists()
    metrics = json.loads((out / "details.json").read_text())

    cl = metrics["test"]["classifier"]["cmi"]
    assert cl["accuracy"] == 1.0 and cl["kappa"] == 1.0 and cl["macro_f1"] == 1.0
    assert cl["accuracy_ci_low"] == 1.0 and cl["accuracy_sd"] == 0.0 and cl["repeats"] == 2
    n_test = sum(r["split"] == "test" for r in rows)
    assert cl["n"] == n_test == 10
    mf = metrics["test"]["most_frequent"]
    # stratified_labelled: 2 test items per class; class 2 (CMI 0.5) and class 4 (SC 1.0) are right
    assert mf["cmi"]["accuracy"] == 0.2 and mf["sc"]["accuracy"] == 0.2 and mf["cmi"]["kappa"] == 0.0
    assert mf["cmi"]["accuracy_ci_low"] <= 0.2 <= mf["cmi"]["accuracy_ci_high"]
    assert summary["missing_systems"] == ["classifier_no_ae", "image_only", "svm", "text_only"]
    assert metrics["labels"]["all"]["n"] == 90 and metrics["labels"]["bbc"]["n"] == 45

    table3 = (out / "table3.md").read_text()
    assert "0.6953" in table3 and "466/826" in table3
    assert "| Most frequent class (train split) | 10 | 0.200 [" in table3
    assert "1.000 ± 0.000 (2)" in table3
    assert sorted(f.name for f in (out / "plots" / "confusion").iterdir()) == [
        "classifier_cmi.csv", "classifier_sc.csv", "most_frequent_cmi.csv", "most_frequent_sc.csv"]
    csv = (out / "plots" / "confusion" / "classifier_cmi.csv").read_text().splitlines()
    assert csv[0] == "actual,predicted" and len(csv) == 1 + n_test
    assert all(a == p for a, p in (line.split(",") for line in csv[1:]))
    for f in ("plots/images/confusion_most_frequent_sc.png", "plots/images/labels.png", "labels.md", "report.md"):
        assert (out / f).stat().st_size > 0, f
    assert (out / "plots/images/labels.png").read_bytes()[:4] == b"\x89PNG"
    report = (out / "report.md").read_text()
    assert "Table 3" in report and "Mean SC per source" in report and "plots/images/confusion_classifier_sc.png" in report

    # a system no longer scored leaves no metrics file behind
    only = [r for r in preds if r["system"] == "classifier"]
    evaluate([write_predictions(pa.Table.from_pylist(only, schema=S.PREDICTIONS), tmp / "cl.parquet")], lab, out,
             CFG, SEED, LabelledSplitConfig())
    assert sorted(f.stem for f in (out / "metrics").glob("*.json")) == ["classifier"]


def test_duplicate_test_item_is_an_error_naming_system_repeat_and_pair(world):
    tmp, rows, lab = world
    preds = prediction_rows("classifier", 0, rows, truth)
    dup = preds + [preds[3]]  # 2017: 128 items scored from 92
    path = write_raw(tmp / "dup.parquet", dup)
    with pytest.raises(CmiscError, match=rf"'classifier', repeat 0: 1 pair\(s\) scored more than once.*{preds[3]['pair_id']}"):
        evaluate([path], lab, tmp / "reports", CFG, SEED)
    # the same system in two files is a duplicate too
    p1 = write_raw(tmp / "a.parquet", preds)
    with pytest.raises(CmiscError, match="scored more than once"):
        evaluate([p1, p1], lab, tmp / "reports", CFG, SEED)


def test_missing_or_foreign_test_items_are_errors(world):
    tmp, rows, lab = world
    preds = prediction_rows("svm", 1, rows, truth)
    path = write_raw(tmp / "missing.parquet", preds[:-1])  # 2017's SVM: 80 of 92
    with pytest.raises(CmiscError, match=rf"'svm', repeat 1: 1 test item\(s\) not scored: {preds[-1]['pair_id']}"):
        evaluate([path], lab, tmp / "reports", CFG, SEED)
    train_id = next(r["pair_id"] for r in rows if r["split"] == "train")
    foreign = preds[:-1] + [dict(preds[-1], repeat=0, pair_id=train_id)]
    write_raw(tmp / "foreign.parquet", prediction_rows("svm", 0, rows, truth)[:-1] + foreign[-1:])
    with pytest.raises(CmiscError, match=rf"not in the test split: {train_id}"):
        evaluate([tmp / "foreign.parquet"], lab, tmp / "reports", CFG, SEED)
    wrong = [dict(r, cmi_true=(r["cmi_true"] + 1) % 5) if i == 0 else r for i, r in enumerate(preds)]
    with pytest.raises(CmiscError, match="true labels"):
        evaluate([write_raw(tmp / "wrong.parquet", wrong)], lab, tmp / "reports", CFG, SEED)


@pytest.mark.usefixtures("prefect")
def test_flow_runs_baselines_evaluates_and_publishes_the_report(world, capsys):
    from prefect.artifacts import Artifact

    from flows.evaluate import main

    tmp, rows, lab = world
    params = tmp / "params.yaml"
    spec = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    spec["baselines"]["repeats"] = 2
    params.write_text(yaml.safe_dump(spec))
    preds = prediction_rows("classifier", 0, rows, truth) + prediction_rows("classifier", 1, rows, truth)
    cl = write_predictions(pa.Table.from_pylist(preds, schema=S.PREDICTIONS), tmp / "classifier.parquet")
    out = tmp / "reports"
    assert main(["--predictions", str(cl), "--labelled", str(lab), "--out", str(out), "--params", str(params), "--baselines"]) == 0

    declared = sorted(f.stem for f in (out / "metrics").glob("*.json"))
    assert declared == ["classifier", "most_frequent", "text_only"]  # no images here: no image_only
    assert json.loads((out / "details.json").read_text())["test"]["most_frequent"]["cmi"]["repeats"] == 2
    assert (out / "baselines" / "predictions.parquet").exists()
    assert "not run: no embeddings file given" in (out / "table3.md").read_text()
    report = Artifact.get("evaluation-report")
    assert report is not None and report.type == "markdown" and "Table 3" in report.data
    table = Artifact.get("evaluation-summary")
    # one row per system with its figures as columns, not one dotted row per number
    rows = {r["system"]: r for r in json.loads(table.data)}
    assert table is not None and rows["classifier"]["CMI acc"] == 1.0 and rows["svm"]["CMI acc"] == "missing"
    assert len(rows) == len(json.loads(table.data)) <= 12
    assert "classifier: CMI 1.000 SC 1.000" in capsys.readouterr().out


def test_report_shows_per_class_precision_and_recall_of_the_classifier(world):
    tmp, rows, lab = world
    # 2 test items per class; CMI class 4 (1.0) always predicted as 3 (0.75), SC right.
    preds = prediction_rows("classifier", 0, rows, lambda r: (min(truth(r)[0], 3), truth(r)[1]))
    path = write_predictions(pa.Table.from_pylist(preds, schema=S.PREDICTIONS), tmp / "pred.parquet")
    out = tmp / "reports"
    evaluate([path], lab, out, CFG, SEED, LabelledSplitConfig())

    per_class = json.loads((out / "details.json").read_text())["test"]["classifier"]["cmi"]["per_class"]
    # class 0.75: 4 predicted, 2 right -> precision 0.5, recall 1; class 1: never predicted, recall 0
    assert per_class["0.75"] == {"precision": 0.5, "recall": 1.0, "n": 2}
    assert per_class["1"] == {"precision": None, "recall": 0.0, "n": 2}
    report = (out / "report.md").read_text()
    assert "## Per-class precision and recall (CL (AE-initialised classifier), repeat 0, test split)" in report
    section = report.split("## Per-class precision and recall", 1)[1].split("\n## ", 1)[0]
    assert ("| CMI | 0 | 0.25 | 0.5 | 0.75 | 1 |\n|---|---|---|---|---|---|\n| n | 2 | 2 | 2 | 2 | 2 |\n"
            "| precision | 1.000 | 1.000 | 1.000 | 0.500 | — |\n"
            "| recall | 1.000 | 1.000 | 1.000 | 1.000 | 0.000 |") in section
    assert "| SC | -1 | -0.5 | 0 | 0.5 | 1 |" in section and section.count("| recall | 1.000 | 1.000 | 1.000 | 1.000 | 1.000 |") == 1


def test_report_cites_only_files_that_exist(world):
    """No citation of a notes file that is not in the repository."""
    import re

    tmp, rows, lab = world
    preds = prediction_rows("classifier", 0, rows, truth)
    path = write_predictions(pa.Table.from_pylist(preds, schema=S.PREDICTIONS), tmp / "pred.parquet")
    out = tmp / "reports"
    evaluate([path], lab, out, CFG, SEED, LabelledSplitConfig())
    repo = Path(__file__).resolve().parents[1]
    for name in ("report.md", "table3.md", "labels.md"):
        text = (out / name).read_text()
        assert "original_impl" not in text
        for cited in re.findall(r"[\w./-]+\.(?:md|py|txt|rst)\b", text):
            assert (repo / cited).exists() or (out / cited).exists(), f"{name} cites {cited}, which does not exist"


def test_provenance_names_the_commit_and_only_code_or_params_changes_make_it_dirty(tmp_path, monkeypatch):
    import subprocess

    from cmisc_model.evaluation.report import provenance

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True,
                       env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
                            "GIT_COMMITTER_EMAIL": "t@example.org", "PATH": "/usr/bin:/bin"})

    for f, text in {"params.yaml": "base: {seed: 1}\n", "dvc.lock": "a\n", "reports/report.md": "r\n",
                    "models/.gitignore": "/x\n", "cmisc.py": "x = 1\n"}.items():
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text(text)
    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "c")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tmp_path, capture_output=True,
                            text=True, check=True).stdout.strip()
    monkeypatch.chdir(tmp_path)
    labelled = [{"source": "coco", "annotator": "sample-world-rules"}]
    clean = provenance(labelled, None)
    assert f"Git commit {commit};" in clean and "sample world" in clean and "coco 1" in clean
    # the machine: CPU, cores, torch version and threads, as a reader needs them to rerun it
    import torch

    assert f"torch {torch.__version__} on " in clean and " cores, " in clean and "Machine: " in clean
    # what a pipeline run rewrites (and autostage stages) is not an uncommitted change
    for f in ("dvc.lock", "reports/report.md", "models/.gitignore"):
        (tmp_path / f).write_text("changed\n")
    git("add", "-A")
    assert provenance(labelled, None) == clean
    (tmp_path / "cmisc.py").write_text("x = 2\n")
    assert f"Git commit {commit} (with uncommitted changes);" in provenance(labelled, None)
