"""The evaluation flow: (optionally) the baselines, then the evaluation report.

``python -m flows.evaluate --predictions P1 P2 ... --labelled L --out reports``
is what the DVC stage ``evaluate`` calls; ``--baselines`` also runs the
most-frequent and SVM baselines first (``--embeddings E`` for the SVM) and
adds their predictions. The report is published as the Prefect Markdown
artifact ``evaluation-report`` and the metrics as the table ``evaluation-summary``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_table_artifact

from cmisc_model import schemas as S
from cmisc_model.config import load_section
from cmisc_model.evaluation.baselines import BaselinesConfig, run_baselines
from cmisc_model.evaluation.report import evaluate, headline, load_configs, write_predictions
from flows.common import markdown, run_cli


@task(name="baselines")
def baselines_task(labelled: str, embeddings: str | None, out_dir: str, params: str) -> tuple[str, dict]:
    cfg = load_section(BaselinesConfig, "baselines", params)
    _, seed, split_cfg = load_configs(params)
    table, summary = run_baselines(labelled, embeddings, cfg.repeats, seed, cfg, split_cfg)
    path = write_predictions(table, Path(out_dir) / "predictions.parquet")
    with S.atomic_path(Path(out_dir) / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return str(path), summary


@task(name="evaluation-report")
def evaluate_task(predictions: list[str], labelled: str, out: str, params: str, notes: dict,
                  truth: str | None = None, counterfactual: list[str] | None = None,
                  heldout: str | None = None, heldout_truth: str | None = None) -> dict:
    from cmisc_model.config import load_params
    from cmisc_model.sample_world.audit import view_from_params

    cfg, seed, split_cfg = load_configs(params)
    counterfactual = [p for p in counterfactual or [] if Path(p).exists()]
    view = view_from_params(load_params(params)) if Path(params).exists() else None
    return evaluate(predictions, labelled, out, cfg, seed, split_cfg, notes, truth or None, counterfactual,
                    heldout or None, heldout_truth or None, view)


def system_rows(summary: dict) -> list[dict]:
    """Table 3 and the ablation systems as rows of {system, CMI acc, CMI CI, CMI mean, CMI kappa, SC ...}."""
    rows = []
    for system, tasks in summary["details"]["test"].items():
        row = {"system": system}
        for t, m in tasks.items():
            name = t.upper()
            row[f"{name} acc"] = m["accuracy"]
            row[f"{name} 95% CI"] = f"[{m['accuracy_ci_low']}, {m['accuracy_ci_high']}]"
            row[f"{name} mean ± sd (K={m['repeats']})"] = f"{m['accuracy_mean']} ± {m['accuracy_sd']}"
            row[f"{name} kappa"] = m["kappa"]
        rows.append(row)
    rows += [{"system": s, "CMI acc": "missing", "SC acc": "missing"} for s in summary["missing_systems"]]
    return rows


@flow(name="evaluate", log_prints=True)
def evaluate_flow(
    predictions: list[str],
    labelled: str,
    out: str = "reports",
    params: str = "params.yaml",
    baselines: bool = False,
    embeddings: str | None = None,
    truth: str | None = None,
    counterfactual: list[str] | None = None,
    heldout: str | None = None,
    heldout_truth: str | None = None,
) -> dict:
    notes: dict[str, str] = {}
    predictions = list(predictions)
    if baselines:
        path, bsum = baselines_task(labelled, embeddings, str(Path(out) / "baselines"), params)
        predictions.append(path)
        if "svm_missing" in bsum:
            notes["svm"] = f"not run: {bsum['svm_missing']}"
            print(f"warning: SVM baseline not run: {bsum['svm_missing']}")
    summary = evaluate_task(predictions, labelled, out, params, notes, truth, counterfactual, heldout, heldout_truth)
    markdown("evaluation-report", (Path(out) / "report.md").read_text(encoding="utf-8"), "Evaluation report (Table 3 rebuilt)")
    # one row per system, one column per headline figure (not one dotted row per number)
    create_table_artifact(table=system_rows(summary), key="evaluation-summary",
                          description="Test metrics: one row per system (Table 3 and the ablations)")
    print(headline(summary))
    return summary


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--predictions", nargs="*", default=[], help="PREDICTIONS Parquet files")
    parser.add_argument("--labelled", required=True, help="labelled.parquet from the corpus stage")
    parser.add_argument("--out", default="reports")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--baselines", action="store_true", help="run the most-frequent and SVM baselines first")
    parser.add_argument("--embeddings", help="article embeddings for the SVM (with --baselines)")
    parser.add_argument("--truth", help="the sample world's scenes.jsonl: accuracy per labelling rule")
    parser.add_argument("--counterfactual", nargs="*", default=[], help="counterfactual predictions (train-cl --truth)")
    parser.add_argument("--heldout", help="the held-out world's labelled.parquet: the report's headline table")
    parser.add_argument("--heldout-truth", help="the held-out world's scenes.jsonl (its decidability audit)")
    args = parser.parse_args(argv)
    summary = evaluate_flow(args.predictions, args.labelled, args.out, args.params, args.baselines, args.embeddings,
                            args.truth, args.counterfactual, args.heldout, args.heldout_truth)
    print(headline(summary))
    print(f"{args.out}/report.md, {args.out}/metrics/<system>.json, {args.out}/details.json written")
    return 0


if __name__ == "__main__":
    run_cli(main)
