"""The evaluation report: paper Table 3 rebuilt, confusion matrices, label statistics.

``evaluate(prediction_files, labelled_path, out_dir, cfg)`` reads PREDICTIONS
files (any number of systems and repeats: ``classifier``, ``classifier_no_ae``,
``svm``, ``most_frequent``), checks that every test item of every (system,
repeat) is scored exactly once, and writes into ``out_dir``:

- ``metrics/<system>.json``  the DVC metrics, one file per row of Table 3 with the
  same keys in each (``<task>.{accuracy, ci_low, ci_high, mean, kappa}``, and
  ``<task>.shuffled_drop`` for a system scored with shuffled images), so that
  ``dvc metrics show`` prints systems x figures;
- ``details.json``  every figure, not a DVC metric: ``test.<system>.<task>.{accuracy,
  accuracy_ci_low, accuracy_ci_high, accuracy_mean, accuracy_sd, macro_f1…, kappa…,
  n, repeats}``, ``labels.<source>.{n, mean_sc, cmi.<level>, sc.<level>}``, the
  ablations, counterfactuals and accuracy per labelling rule;
- ``table3.md``     Table 3: accuracy with a 95% bootstrap interval, mean ± sd over
  the K repeats, macro-F1 and quadratic-weighted kappa, next to the paper's numbers;
- ``plots/confusion/<system>_<task>.csv`` (columns actual,predicted: DVC's
  ``confusion`` template); PNGs in ``plots/images/`` (``confusion_<system>_<task>.png``,
  ``labels.png``), kept apart so each folder can be declared as one DVC plot;
- ``labels.md``     label distributions per source (paper Tables 1–2), mean SC per source;
- ``report.md``     all of the above in one page.

Choices: the point estimate, its bootstrap interval, macro-F1, kappa and the
confusion matrices are those of **repeat 0** (the corpus stage's split, the
one a reader can reproduce item by item); the spread between splits is shown
separately as mean ± sd over repeats 0..K-1 (pooling items of different splits
into one interval would mix the two sources of variance). The bootstrap uses
the same seed for every system, so on a shared test set the resamples are
paired.

Departure from 2017 (original_impl.md §7, §11.4): 2017 selected checkpoints
on the test set, scored 128 items from 92 (36 twice), scored the SVM on 80 and
computed the majority baseline over all 826 labels. Here duplicates or missing
test items are an error, and every system is scored on the same test items.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cmisc_model import schemas as S
from cmisc_model.corpus.annotations import LabelledSplitConfig, label_distribution, repeat_split
from cmisc_model.errors import CmiscError
from cmisc_model.evaluation import metrics as M
from cmisc_model.evaluation.heldout import expected_items, heldout_markdown, read_heldout

TASKS = ("cmi", "sc")
TASK_NAMES = {"cmi": "CMI", "sc": "SC"}
LEVELS = {"cmi": S.CMI_LEVELS, "sc": S.SC_LEVELS}

# Paper Table 3 and how each number came about (original_impl.md §7, §8).
PAPER_TABLE3 = {
    "classifier": (0.6953, 0.7344, "89/128 and 94/128: 92 test items cycled to 128, checkpoint chosen on the test set"),
    "classifier_no_ae": (0.5625, 0.6562, "72/128 and 84/128: same 128-item scoring"),
    "svm": (0.6875, 0.7125, "55/80 and 57/80: 80 of the 92 test items (partial batch dropped)"),
    "most_frequent": (0.5642, 0.6550, "466/826 and 541/826: majority rate of all labels, test items included"),
}
PAPER_CMI = {0.0: 44, 0.25: 157, 0.5: 466, 0.75: 52, 1.0: 107}  # paper Table 1 (826 pairs)
PAPER_SC = {-1.0: 7, -0.5: 31, 0.0: 109, 0.5: 138, 1.0: 541}  # paper Table 2
PAPER_MEAN_SC = {"bbc": 0.15, "simplewiki": 0.88}  # paper §4: news 0.15, SimpleWiki 0.88

SYSTEM_NAMES = {
    "classifier": "CL (AE-initialised classifier)",
    "classifier_no_ae": "CL without AE initialisation",
    "svm": "Linear SVM on article embeddings",
    "text_only": "Text only (bag of words, logistic regression)",
    "image_only": "Image only (pixels, logistic regression)",
    "most_frequent": "Most frequent class (train split)",
}
ABLATION_NAMES = {
    "images_shuffled": "test images shuffled among test items",
    "images_blank": "blank (grey) images",
    "texts_shuffled": "test texts shuffled among test items",
}
# What metrics/<system>.json keeps per task, and from which details.json figure
# (short names: they are the columns of `dvc metrics show` and `dvc exp show`).
HEADLINE = {"accuracy": "accuracy", "ci_low": "accuracy_ci_low", "ci_high": "accuracy_ci_high",
            "mean": "accuracy_mean", "kappa": "kappa"}


@dataclass
class EvaluateConfig:
    """The ``evaluate`` section of params.yaml."""

    bootstrap: int = 1000  # bootstrap resamples for the 95% intervals
    ci: float = 0.95
    # Table 3's rows, in order; a system without predictions is listed as missing.
    systems: list[str] = field(default_factory=lambda: [
        "classifier", "classifier_no_ae", "svm", "text_only", "image_only", "most_frequent"])

    def __post_init__(self):
        if self.bootstrap < 1:
            raise ValueError(f"bootstrap must be >= 1, got {self.bootstrap}")
        if not 0 < self.ci < 1:
            raise ValueError(f"ci must lie in (0, 1), got {self.ci}")


# --------------------------------------------------------------------------- predictions io

def _duplicates(rows: list[dict], where: str) -> None:
    """Raise if a pair is scored twice within one (system, repeat)."""
    seen: dict[tuple, int] = defaultdict(int)
    for r in rows:
        seen[(r["system"], r["repeat"], r["pair_id"])] += 1
    dup: dict[tuple, list[str]] = defaultdict(list)
    for (system, repeat, pid), n in seen.items():
        if n > 1:
            dup[(system, repeat)].append(pid)
    if dup:
        (system, repeat), ids = min(dup.items())
        raise CmiscError(
            f"{where}: system {system!r}, repeat {repeat}: {len(ids)} pair(s) scored more than once "
            f"(every test item must be scored exactly once; 2017 scored 128 items from 92): {', '.join(sorted(ids)[:10])}"
        )


def predictions_table(rows: list[dict], where: str = "<predictions>") -> pa.Table:
    """Rows -> a validated PREDICTIONS table (any number of systems and repeats).

    ``schemas.validate`` requires unique pair ids per table, so each (system,
    repeat) group is validated on its own after the duplicate check.
    """
    _duplicates(rows, where)
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["system"], r["repeat"])].append(r)
    tables = [S.from_rows(g, S.PREDICTIONS, f"{where} (system {k[0]!r}, repeat {k[1]})") for k, g in sorted(groups.items())]
    if not tables:
        return S.PREDICTIONS.empty_table()
    for t in tables:
        for task in TASKS:
            for col in (f"{task}_true", f"{task}_pred"):
                values = t.column(col).to_pylist()
                bad = [v for v in values if not 0 <= v < S.N_CLASSES]
                if bad:
                    raise CmiscError(f"{where}: column {col!r} has {bad[0]!r}, expected a class 0..{S.N_CLASSES - 1}")
    return pa.concat_tables(tables)


def write_predictions(table: pa.Table, path: str | Path) -> Path:
    """Validate and write a PREDICTIONS file atomically."""
    path = Path(path)
    table = predictions_table(table.to_pylist(), str(path))
    with S.atomic_path(path) as tmp:
        pq.write_table(table.replace_schema_metadata(S.PREDICTIONS.metadata), tmp, compression="zstd")
    return path


def read_predictions(path: str | Path) -> pa.Table:
    path = Path(path)
    raw = S.open_parquet(path, "predictions file")
    missing = [f.name for f in S.PREDICTIONS if f.name not in raw.column_names]
    if missing:
        raise S.SchemaError(f"{path}: column(s) {missing} missing (not a PREDICTIONS file?)")
    return predictions_table(raw.to_pylist(), str(path))


# --------------------------------------------------------------------------- checks

def check_scored_once(rows: list[dict], expected: dict[int, dict[str, dict]], where: str = "predictions") -> None:
    """Every test item of each (system, repeat) scored exactly once, with its true labels.

    ``rows`` are PREDICTIONS rows of split ``test``; ``expected[repeat]`` maps
    the test pair ids of that repeat to their labelled rows. Duplicates, missing
    and unexpected items are errors naming the system, repeat and pair ids.
    """
    _duplicates(rows, where)
    by_group: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        by_group[(r["system"], r["repeat"])].append(r)
    for (system, repeat), group in sorted(by_group.items()):
        if repeat not in expected:
            raise CmiscError(f"{where}: system {system!r}: repeat {repeat} has no labelled split")
        want = expected[repeat]
        got = {r["pair_id"] for r in group}
        missing, extra = sorted(set(want) - got), sorted(got - set(want))
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"{len(missing)} test item(s) not scored: {', '.join(missing[:10])}")
            if extra:
                parts.append(f"{len(extra)} scored item(s) not in the test split: {', '.join(extra[:10])}")
            raise CmiscError(f"{where}: system {system!r}, repeat {repeat}: " + "; ".join(parts))
        for r in group:
            lab = want[r["pair_id"]]
            if r["cmi_true"] != S.cmi_class(lab["cmi"]) or r["sc_true"] != S.sc_class(lab["sc"]):
                raise CmiscError(
                    f"{where}: system {system!r}, repeat {repeat}, pair {r['pair_id']}: true labels "
                    f"({r['cmi_true']}, {r['sc_true']}) differ from labelled.parquet "
                    f"({S.cmi_class(lab['cmi'])}, {S.sc_class(lab['sc'])})"
                )


# --------------------------------------------------------------------------- metrics

def _clean(x):
    """NaN -> None so metrics.json stays valid JSON; floats rounded."""
    if isinstance(x, float):
        return None if math.isnan(x) else round(x, 4)
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_clean(v) for v in x]
    return x


def _none(x) -> float | None:
    return None if math.isnan(x) else float(x)


def score_system(rows: list[dict], cfg: EvaluateConfig, seed: int) -> tuple[dict, dict]:
    """Metrics of one system (all its repeats). Returns (metrics per task, confusion per task)."""
    by_repeat: dict[int, list[dict]] = defaultdict(list)
    for r in rows:
        by_repeat[r["repeat"]].append(r)
    first = min(by_repeat)
    out, conf = {}, {}
    for task in TASKS:
        per_repeat = {
            k: (np.array([r[f"{task}_true"] for r in rs]), np.array([r[f"{task}_pred"] for r in rs]))
            for k, rs in sorted(by_repeat.items())
        }
        t0, p0 = per_repeat[first]
        m: dict = {"n": int(t0.size), "repeat": first, "repeats": len(per_repeat)}
        for name, fn in M.METRICS.items():
            m[name] = fn(t0, p0)
            m[f"{name}_ci_low"], m[f"{name}_ci_high"] = M.bootstrap_ci(t0, p0, fn, cfg.bootstrap, seed, cfg.ci)
            m[f"{name}_mean"], m[f"{name}_sd"] = M.mean_sd([fn(t, p) for t, p in per_repeat.values()])
        out[task] = m
        conf[task] = M.confusion(t0, p0)
        # per-class precision and recall (repeat 0), and whether the system collapsed to one class
        pc = M.per_class(t0, p0)
        m["per_class"] = {f"{v:g}": {"precision": _none(pc["precision"][c]), "recall": _none(pc["recall"][c]),
                                      "n": int(pc["support"][c])}
                          for c, v in enumerate(LEVELS[task])}
        m["collapsed"] = bool(np.bincount(p0, minlength=S.N_CLASSES).max() >= 0.95 * p0.size)
    return out, conf


# --------------------------------------------------------------------------- writing

_f = M.fmt


def _table3(results: dict, cfg: EvaluateConfig, missing: dict[str, str]) -> str:
    pct = round(cfg.ci * 100)
    lines = [
        "## Table 3 (rebuilt)",
        "",
        (
            f"Test split. Accuracy [{pct}% percentile bootstrap interval, {cfg.bootstrap} resamples], macro-F1 and "
            "quadratic-weighted kappa are those of repeat 0 (the stored split); *mean ± sd* is accuracy over the "
            "K evaluation repeats (re-splits with seed + k). The paper's numbers are given for reference only (see the notes below the table)."
        ),
        "",
        "| System | n | CMI acc [CI] | CMI mean ± sd (K) | CMI macro-F1 | CMI κ | SC acc [CI] | SC mean ± sd (K) | SC macro-F1 | SC κ | paper CMI | paper SC |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    systems = list(cfg.systems) + sorted(s for s in results if s not in cfg.systems and ":" not in s)
    for system in systems:
        paper = PAPER_TABLE3.get(system)
        pc, ps = (_f(paper[0], 4), _f(paper[1], 4)) if paper else ("", "")
        name = SYSTEM_NAMES.get(system, system)
        if system not in results:
            lines.append(f"| {name} | — | missing | | | | missing | | | | {pc} | {ps} |")
            continue
        collapsed = [TASK_NAMES[t] for t in TASKS if results[system][t].get("collapsed")]
        if collapsed and system != "most_frequent":
            name += f" (collapsed to one class on {', '.join(collapsed)})"
        cells = [name, str(results[system]["cmi"]["n"])]
        for task in TASKS:
            m = results[system][task]
            cells += [
                f"{_f(m['accuracy'])} [{_f(m['accuracy_ci_low'])}, {_f(m['accuracy_ci_high'])}]",
                f"{_f(m['accuracy_mean'])} ± {_f(m['accuracy_sd'])} ({m['repeats']})",
                _f(m["macro_f1"]),
                _f(m["kappa"]),
            ]
        lines.append("| " + " | ".join(cells + [pc, ps]) + " |")
    lines += ["", "Missing systems:" if missing else ""]
    lines += [f"- {SYSTEM_NAMES.get(s, s)} (`{s}`): {why}" for s, why in missing.items()]
    lines += [
        "",
        "Notes on the paper's numbers (from the 2017 code's own logs and scripts): they are not comparable with the rows above.",
        "",
    ]
    lines += [f"- {SYSTEM_NAMES[s]}: {p[0]:.4f} / {p[1]:.4f} = {p[2]}." for s, p in PAPER_TABLE3.items()]
    lines += [
        "",
        (
            "Here every system is scored once on each test item of the same split; models are selected on the "
            "validation split or by cross-validation on the training split, never on the test split; the "
            "most-frequent class comes from the training split. Macro-F1 averages over the classes present in "
            "truth or prediction; κ uses quadratic weights (0 for a constant prediction)."
        ),
        "",
    ]
    return "\n".join(lines)


def _per_class_md(results: dict, system: str = "classifier") -> str:
    """Precision and recall of each class for one system (repeat 0), one small table per measure."""
    name = SYSTEM_NAMES.get(system, system)
    lines = [f"## Per-class precision and recall ({name}, repeat 0, test split)", ""]
    if system not in results:
        return "\n".join(lines + [f"No predictions of `{system}`.", ""])
    lines += [("*n*: test items of the class; precision is — for a class never predicted, "
               "recall is — for a class absent from the test split."), ""]
    for task in TASKS:
        pc = results[system][task]["per_class"]
        levels = [f"{v:g}" for v in LEVELS[task]]
        lines += [f"| {TASK_NAMES[task]} | " + " | ".join(levels) + " |", "|---|" + "---|" * len(levels)]
        lines.append("| n | " + " | ".join(str(pc[v]["n"]) for v in levels) + " |")
        for measure in ("precision", "recall"):
            lines.append(f"| {measure} | " + " | ".join(_f(pc[v][measure]) for v in levels) + " |")
        lines.append("")
    return "\n".join(lines)


def _labels_md(dist: dict) -> str:
    def row(name, counts, n, levels):
        return f"| {name} | {n} | " + " | ".join(f"{counts[f'{v:g}']} ({counts[f'{v:g}'] / n:.0%})" if n else "0" for v in levels) + " |"

    lines = ["## Label distributions (paper Tables 1 and 2)", ""]
    for task, paper in (("cmi", PAPER_CMI), ("sc", PAPER_SC)):
        levels = LEVELS[task]
        lines += [
            f"**{TASK_NAMES[task]}**",
            "",
            "| Source | n | " + " | ".join(f"{v:g}" for v in levels) + " |",
            "|---|---|" + "---|" * len(levels),
        ]
        for source, d in dist.items():
            lines.append(row(source, d[task], d["n"], levels))
        pn = sum(paper.values())
        lines.append(row("paper (826 pairs)", {f"{k:g}": v for k, v in paper.items()}, pn, levels))
        lines.append("")
    lines += ["## Mean SC per source", "", "| Source | n | mean SC | paper |", "|---|---|---|---|"]
    for source, d in dist.items():
        lines.append(f"| {source} | {d['n']} | {_f(d['mean_sc'], 2)} | {_f(PAPER_MEAN_SC.get(source), 2)} |")
    lines += ["", "(paper §4: news 0.15, SimpleWiki 0.88; COCO captions were not reported)", ""]
    return "\n".join(lines)


def _plot_confusion(m: np.ndarray, task: str, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3.6))
    ax.imshow(m, cmap="Blues")
    ticks = [f"{v:g}" for v in LEVELS[task]]
    ax.set_xticks(range(len(ticks)), ticks)
    ax.set_yticks(range(len(ticks)), ticks)
    ax.set_xlabel(f"predicted {TASK_NAMES[task]}")
    ax.set_ylabel(f"true {TASK_NAMES[task]}")
    ax.set_title(title, fontsize=9)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if m[i, j] > m.max() / 2 else "black")
    fig.tight_layout()
    with S.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def _plot_labels(dist: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sources = [s for s in dist if dist[s]["n"]]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    width = 0.8 / max(len(sources), 1)
    for ax, task in zip(axes[:2], TASKS):
        levels = LEVELS[task]
        for i, s in enumerate(sources):
            share = [dist[s][task][f"{v:g}"] / dist[s]["n"] for v in levels]
            ax.bar(np.arange(len(levels)) + i * width, share, width, label=s)
        ax.set_xticks(np.arange(len(levels)) + width * (len(sources) - 1) / 2, [f"{v:g}" for v in levels])
        ax.set_title(f"{TASK_NAMES[task]} labels (share per source)", fontsize=9)
    axes[0].legend(fontsize=7)
    named = [s for s in sources if s != "all"]
    axes[2].bar(named, [dist[s]["mean_sc"] for s in named], label="this data")
    axes[2].scatter([s for s in named if s in PAPER_MEAN_SC], [PAPER_MEAN_SC[s] for s in named if s in PAPER_MEAN_SC],
                    color="red", zorder=3, label="paper")
    axes[2].set_title("mean SC per source", fontsize=9)
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    with S.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def _write_text(path: Path, text: str) -> None:
    with S.atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------- what the model uses

def ablation_summary(results: dict) -> dict:
    """``{system: {ablation: {task: {"accuracy_mean", "drop"}}}}``: the drop is intact minus ablated
    accuracy in points, both as means over the K repeats."""
    out: dict = {}
    for name in sorted(results):
        if ":" not in name:
            continue
        system, kind = name.split(":", 1)
        if system not in results:
            continue
        out.setdefault(system, {})[kind] = {
            t: {"accuracy_mean": results[name][t]["accuracy_mean"],
                "drop": 100 * (results[system][t]["accuracy_mean"] - results[name][t]["accuracy_mean"])}
            for t in TASKS}
    return out


def headline_metrics(results: dict, ablations: dict, held: dict | None = None) -> dict:
    """``{system: {task: {accuracy, ci_low, ci_high, mean, kappa[, shuffled_drop]}}}`` for the
    systems of Table 3 (not their ablated variants): what metrics/<system>.json holds; with a
    held-out world also its mean accuracy per task under ``heldout``."""
    out = {}
    if held:  # two figures per system, so that `dvc metrics show` still fits a screen
        for system, m in held["heldout"]["test"].items():
            if ":" not in system:
                out[system] = {"heldout": {t: m[t]["accuracy_mean"] for t in TASKS}}
    for system, m in results.items():
        if ":" in system:
            continue
        out[system] = {**out.get(system, {}), **{t: {k: m[t][src] for k, src in HEADLINE.items()} for t in TASKS}}
        shuffled = ablations.get(system, {}).get("images_shuffled")
        for t in TASKS if shuffled else ():
            out[system][t]["shuffled_drop"] = shuffled[t]["drop"]  # points lost with shuffled images
    return out


def rule_accuracy(rows: list[dict], rules: dict[str, dict]) -> dict:
    """``{system: {task: {rule: {"n", "accuracy"}}}}`` over all repeats' test items with a known rule."""
    out: dict = {}
    for r in rows:
        rule = rules.get(r["pair_id"])
        if rule is None or ":" in r["system"]:
            continue
        for t in TASKS:
            cell = out.setdefault(r["system"], {}).setdefault(t, {}).setdefault(rule[f"{t}_rule"], [0, 0])
            cell[0] += 1
            cell[1] += int(r[f"{t}_pred"] == r[f"{t}_true"])
    return {s: {t: {rule: {"n": n, "accuracy": c / n} for rule, (n, c) in sorted(d.items())} for t, d in tasks.items()}
            for s, tasks in out.items()}


def counterfactual_summary(cf_rows: list[dict], rows: list[dict]) -> dict:
    """``{system: {"n", "prediction_changed", "accuracy"}}``: how often the prediction changes when
    one mentioned attribute is changed (the label changes every time), and accuracy on the new labels."""
    intact = {(r["system"], r["repeat"], r["pair_id"]): r for r in rows}
    out: dict = {}
    for r in cf_rows:
        system = r["system"].split(":", 1)[0]
        base = intact.get((system, r["repeat"], r["pair_id"]))
        if base is None:
            continue
        d = out.setdefault(system, {"n": 0, "changed": 0, "correct": 0})
        d["n"] += 1
        d["changed"] += int((r["cmi_pred"], r["sc_pred"]) != (base["cmi_pred"], base["sc_pred"]))
        d["correct"] += int((r["cmi_pred"], r["sc_pred"]) == (r["cmi_true"], r["sc_true"]))
    return {s: {"n": d["n"], "prediction_changed": d["changed"] / d["n"], "accuracy": d["correct"] / d["n"]}
            for s, d in out.items() if d["n"]}


def _ablations_md(ablations: dict, results: dict, rules: dict, counterfactual: dict) -> str:
    lines = ["## What the classifier uses (ablations, mean over the K repeats)", "",
             ("The same selected models on the same test items, with the image or the text taken away; "
              "the labels are those of the intact pairs. A model that relates image and text must lose "
              "accuracy in every row."), "",
             "| System | test set | CMI acc | CMI drop (points) | SC acc | SC drop (points) |", "|---|---|---|---|---|---|"]
    for system, kinds in ablations.items():
        lines.append(f"| {system} | intact | {_f(results[system]['cmi']['accuracy_mean'])} | | "
                     f"{_f(results[system]['sc']['accuracy_mean'])} | |")
        for kind, d in kinds.items():
            lines.append(f"| {system} | {ABLATION_NAMES.get(kind, kind)} | {_f(d['cmi']['accuracy_mean'])} | "
                         f"{_f(d['cmi']['drop'], 1)} | {_f(d['sc']['accuracy_mean'])} | {_f(d['sc']['drop'], 1)} |")
    if counterfactual:
        lines += ["", ("**Counterfactual texts** (sample world): one correctly described object's colour or shape "
                       "changed, so the rules give another label. *changed*: share of items whose prediction changed "
                       "with it (a text-only model cannot tell which wording is right)."), "",
                  "| System | n | prediction changed | accuracy on the new labels |", "|---|---|---|---|"]
        for system, d in counterfactual.items():
            lines.append(f"| {system} | {d['n']} | {_f(d['prediction_changed'])} | {_f(d['accuracy'])} |")
    if rules:
        lines += ["", ("**Accuracy per labelling rule** (all repeats' test items; rules from the sample world's "
                       "ground truth, `cmisc_model/sample_world/scenes.py`)"), ""]
        for task in TASKS:
            names = sorted({rule for s in rules.values() for rule in s.get(task, {})})
            lines += [f"{TASK_NAMES[task]}:", "", "| System | " + " | ".join(names) + " |",
                      "|---|" + "---|" * len(names)]
            for system, d in rules.items():
                cells = [f"{_f(d[task][n]['accuracy'])} ({d[task][n]['n']})" if n in d.get(task, {}) else "—"
                         for n in names]
                lines.append(f"| {system} | " + " | ".join(cells) + " |")
            lines.append("")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- evaluate

def evaluate(
    prediction_files: list[str | Path],
    labelled_path: str | Path,
    out_dir: str | Path,
    cfg: EvaluateConfig | None = None,
    seed: int = 12345,
    split_cfg: LabelledSplitConfig | None = None,
    notes: dict[str, str] | None = None,
    truth: str | Path | None = None,
    counterfactual_files: list[str | Path] | None = None,
    heldout: str | Path | None = None,
    heldout_truth: str | Path | None = None,
    view=None,
) -> dict:
    """Score every system in ``prediction_files`` and write the report into ``out_dir``.

    ``heldout``: the held-out world's labelled.parquet; the rows of split ``heldout``
    are scored against it into the report's headline table (``heldout_truth``: its
    scenes, for its decidability audit). ``view``: the model's view of the sample
    world (``sample_world.audit.View``) for the decidability audits.

    ``seed`` and ``split_cfg`` must be those of the corpus stage (``base.seed``,
    ``corpus.labelled``): they rebuild each repeat's test split for the
    scored-once check. ``notes`` maps a system to why it is missing (e.g. the
    baselines' ``svm_missing``). Returns the metrics dict written to metrics.json
    plus ``missing_systems``, the input paths and ``files`` (what was written).
    """
    cfg = cfg or EvaluateConfig()
    inputs = _load_inputs(prediction_files, Path(labelled_path), seed, split_cfg or LabelledSplitConfig(), notes,
                          heldout)
    results, confusions = _score_table3(inputs.rows, cfg, seed)
    missing = {s: inputs.notes.get(s, "no predictions given") for s in cfg.systems if s not in results}
    what_is_used = _what_is_used(results, inputs, truth, counterfactual_files)
    held = _score_heldout(inputs, cfg, seed, counterfactual_files)
    dist = label_distribution(inputs.labelled)  # paper Tables 1-2, per source
    decidability = _decidability(inputs, truth, heldout_truth, view)
    details = _clean({"test": results, "labels": dist, **what_is_used, **held, "decidability": decidability})
    system_metrics = _clean(headline_metrics(results, what_is_used["ablations"], held))

    out_dir = Path(out_dir)
    files, confusion_md = _write_confusions(confusions, out_dir)
    labels_png = _write_labels_plot(dist, out_dir)
    _write_markdown(inputs, details, dist, cfg, seed, missing, truth, confusion_md, labels_png, out_dir)
    files += _write_metrics(system_metrics, details, out_dir)
    files += [labels_png, out_dir / "table3.md", out_dir / "labels.md", out_dir / "report.md", out_dir / "details.json"]
    return {
        "metrics": system_metrics,
        "test": details["test"],
        "details": details,
        "missing_systems": sorted(missing),
        "labelled": str(inputs.labelled_path),
        "prediction_files": [str(p) for p in prediction_files],
        "files": [str(f) for f in files],
    }


@dataclass
class _Inputs:
    """What the report is computed from: the labelled pairs and the test predictions."""

    prediction_files: list[str | Path]
    labelled_path: Path
    labelled_full: list[dict]  # every column (provenance, the per-rule figures)
    labelled: list[dict]  # the columns the split and the label statistics need
    rows: list[dict]  # PREDICTIONS rows of the test split, every file
    notes: dict[str, str]  # system -> why it is missing
    heldout_rows: list[dict] = field(default_factory=list)  # PREDICTIONS rows of split heldout
    heldout_labelled: list[dict] = field(default_factory=list)


def _load_inputs(
    prediction_files: list[str | Path],
    labelled_path: Path,
    seed: int,
    split_cfg: LabelledSplitConfig,
    notes: dict[str, str] | None,
    heldout: str | Path | None = None,
) -> _Inputs:
    """Read the labelled pairs and the test predictions; check every test item is scored once
    (and, with ``heldout``, every held-out item once per system and repeat)."""
    labelled_full = S.read_table(labelled_path, S.LABELLED).to_pylist()
    labelled = [{k: r[k] for k in ("pair_id", "source", "doc_id", "cmi", "sc", "split")} for r in labelled_full]
    rows: list[dict] = []
    held_rows: list[dict] = []
    notes = dict(notes or {})
    for path in prediction_files:
        table = read_predictions(path).to_pylist()
        rows += [r for r in table if r["split"] == "test"]
        held_rows += [r for r in table if r["split"] == "heldout"]
        reason = _svm_missing(path)
        if reason:
            notes.setdefault("svm", f"not run by the baselines stage: {reason}")
    where = ", ".join(str(p) for p in prediction_files) or "<no prediction files>"
    expected = {}
    for k in sorted({r["repeat"] for r in rows}):
        expected[k] = {r["pair_id"]: r for r in repeat_split(labelled, seed, k, split_cfg) if r["split"] == "test"}
    check_scored_once(rows, expected, where)
    held_labelled = read_heldout(heldout) if heldout is not None else []
    if held_labelled:
        check_scored_once(held_rows, expected_items(held_labelled, held_rows), f"{where} (held-out {heldout})")
    return _Inputs(prediction_files, labelled_path, labelled_full, labelled, rows, notes,
                   held_rows if held_labelled else [], held_labelled)


def _svm_missing(predictions_path: str | Path) -> str | None:
    """Why the SVM did not run, from the summary.json the baselines write beside their predictions."""
    side = Path(predictions_path).with_name("summary.json")
    if not side.exists():
        return None
    try:
        return json.loads(side.read_text(encoding="utf-8")).get("svm_missing")
    except (json.JSONDecodeError, AttributeError):
        return None


def _score_table3(rows: list[dict], cfg: EvaluateConfig, seed: int) -> tuple[dict, dict]:
    """Table 3's figures: (metrics, confusions) per system, ablated variants included."""
    by_system: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_system[r["system"]].append(r)
    results, confusions = {}, {}
    for system, srows in sorted(by_system.items()):
        results[system], confusions[system] = score_system(srows, cfg, seed)
    return results, confusions


def _what_is_used(
    results: dict, inputs: _Inputs, truth: str | Path | None, counterfactual_files: list[str | Path] | None
) -> dict:
    """The ablations, the counterfactual texts and the accuracy per labelling rule.

    The last two need the sample world: its counterfactual predictions, and
    its scenes (``truth``) for the rule behind each pair's labels.
    """
    from cmisc_model.evaluation.ablations import read_scenes, truth_rules

    rules = truth_rules(inputs.labelled_full, read_scenes(truth)) if truth is not None else {}
    cf_rows = _counterfactual_rows(counterfactual_files, "test")
    return {
        "ablations": ablation_summary(results),
        "counterfactual": counterfactual_summary(cf_rows, inputs.rows),
        "rules": rule_accuracy(inputs.rows, rules),
    }


def _counterfactual_rows(files: list[str | Path] | None, split: str) -> list[dict]:
    return [r for p in files or [] for r in read_predictions(p).to_pylist() if r["split"] == split]


def _score_heldout(inputs: _Inputs, cfg: EvaluateConfig, seed: int, counterfactual_files) -> dict:
    """``{"heldout": {"n", "test", "ablations", "counterfactual"}}`` (empty without a held-out set)."""
    if not inputs.heldout_labelled:
        return {}
    results, _ = _score_table3(inputs.heldout_rows, cfg, seed)
    cf_rows = _counterfactual_rows(counterfactual_files, "heldout")
    return {"heldout": {"n": len(inputs.heldout_labelled), "test": results, "ablations": ablation_summary(results),
                        "counterfactual": counterfactual_summary(cf_rows, inputs.heldout_rows)}}


def _decidability(inputs: _Inputs, truth, heldout_truth, view) -> dict:
    """The decidability audit (``sample_world.audit``) of the labelled set and the held-out world."""
    from cmisc_model.sample_world.audit import View, audit, labelled_pairs
    from cmisc_model.sample_world.scenes import read_scenes

    view = view or View()
    out = {}
    for name, rows, path in (("labelled", inputs.labelled_full, truth), ("heldout", inputs.heldout_labelled, heldout_truth)):
        scenes = read_scenes(path) if path else {}
        pairs = labelled_pairs(rows, scenes)
        if pairs:
            out[name] = audit(pairs, view)
    return out


def _write_confusions(confusions: dict, out_dir: Path) -> tuple[list[Path], list[str]]:
    """One confusion CSV and PNG per system and task; returns (files written, report lines)."""
    files = []
    plots = out_dir / "plots"
    confusion_md = ["## Confusion matrices (repeat 0, test split)", ""]
    for system in sorted(confusions):
        if ":" in system:
            continue  # ablations are summarised in their own table (and ":" is no file name)
        for task in TASKS:
            m = confusions[system][task]
            csv_path = plots / "confusion" / f"{system}_{task}.csv"
            _write_text(csv_path, _confusion_csv(m, task))
            png = plots / "images" / f"confusion_{system}_{task}.png"
            _plot_confusion(m, task, f"{system} — {TASK_NAMES[task]}", png)
            files += [csv_path, png]
            confusion_md.append(f"![{system} {TASK_NAMES[task]}]({png.relative_to(out_dir).as_posix()})")
        confusion_md.append("")
    return files, confusion_md


def _confusion_csv(m: np.ndarray, task: str) -> str:
    """One ``actual,predicted`` line per item (DVC's ``confusion`` template)."""
    levels = [f"{v:g}" for v in LEVELS[task]]
    lines = ["actual,predicted"]
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            lines += [f"{levels[i]},{levels[j]}"] * int(m[i, j])
    return "\n".join(lines) + "\n"


def _write_labels_plot(dist: dict, out_dir: Path) -> Path:
    path = out_dir / "plots" / "images" / "labels.png"
    _plot_labels(dist, path)
    return path


def _write_markdown(
    inputs: _Inputs,
    details: dict,
    dist: dict,
    cfg: EvaluateConfig,
    seed: int,
    missing: dict[str, str],
    truth: str | Path | None,
    confusion_md: list[str],
    labels_png: Path,
    out_dir: Path,
) -> None:
    """table3.md, labels.md and report.md (all of it on one page).

    ``details`` holds the rounded figures; ``dist`` the label statistics as counted.
    """
    results = details["test"]
    table3 = _table3(results, cfg, missing)
    ablations_md = _ablations_md(details["ablations"], results, details["rules"], details["counterfactual"])
    labels_md = _labels_md(dist)
    _write_text(out_dir / "table3.md", table3.replace("## ", "# ", 1))
    _write_text(out_dir / "labels.md", labels_md)
    files = inputs.prediction_files
    report = "\n".join([
        "# Evaluation report",
        "",
        provenance(inputs.labelled_full, truth),
        "",
        f"Labelled pairs: `{inputs.labelled_path}` ({len(inputs.labelled)}). Predictions: {', '.join(f'`{p}`' for p in files) or 'none'}.",
        f"Systems: {', '.join(sorted(results)) or 'none'}; repeats per system: "
        + (", ".join(f"{s} {results[s]['cmi']['repeats']}" for s in sorted(results)) or "—")
        + f". Split seed {seed}; bootstrap {cfg.bootstrap} resamples, seed {seed}.",
        "",
        _heldout_md(details, cfg),
        table3,
        _per_class_md(results),
        ablations_md,
        "\n".join(confusion_md),
        labels_md,
        f"![labels]({labels_png.relative_to(out_dir).as_posix()})",
        "",
        _decidability_md(details.get("decidability", {})),
    ])
    _write_text(out_dir / "report.md", report)


def _heldout_md(details: dict, cfg: EvaluateConfig) -> str:
    h = details.get("heldout")
    if not h:
        return ""
    systems = list(cfg.systems) + sorted(s for s in h["test"] if s not in cfg.systems and ":" not in s)
    return heldout_markdown(h["test"], h["ablations"], h["counterfactual"], h["n"], cfg, systems, SYSTEM_NAMES)


def _decidability_md(audits: dict) -> str:
    """The decidability audit of each labelled set (sample world only)."""
    from cmisc_model.sample_world.audit import audit_markdown

    names = {"labelled": "the labelled set", "heldout": "the held-out world"}
    parts = []
    for key, result in audits.items():
        parts += [f"## Which labels the model's input can decide ({names[key]})", "",
                  ("From the sample world's scenes and the model's input size (`cmisc audit`, "
                   "`cmisc_model/sample_world/audit.py`): decidable from the text alone, needing the image, "
                   "or not decidable from the image the model is fed."), "", audit_markdown(result)]
    return "\n".join(parts)


def _write_metrics(system_metrics: dict, details: dict, out_dir: Path) -> list[Path]:
    """metrics/<system>.json (stale ones removed) and details.json; returns the metrics files."""
    files = []
    metrics_dir = out_dir / "metrics"
    for stale in metrics_dir.glob("*.json") if metrics_dir.is_dir() else []:
        if stale.stem not in system_metrics:
            stale.unlink()  # a system no longer scored must not linger as a metric
    for system, figures in system_metrics.items():
        with S.atomic_path(metrics_dir / f"{system}.json") as tmp:
            tmp.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
        files.append(metrics_dir / f"{system}.json")
    with S.atomic_path(out_dir / "details.json") as tmp:
        tmp.write_text(json.dumps(details, indent=2, sort_keys=True) + "\n")
    return files


def provenance(labelled: list[dict], truth: str | Path | None) -> str:
    """Which data the report is about (sample world or real corpora, sizes), the git commit, the params
    and the machine (the training stages of one ``dvc repro`` ran on it too)."""
    import hashlib
    import subprocess
    from collections import Counter

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                check=True, timeout=10).stdout.strip()
        # Uncommitted changes to the code or params, not to what the pipeline itself writes
        # (dvc.lock, .gitignore entries, data/, models/, reports/), so that a rerun at one
        # commit writes the same report whether or not the last run's outputs are committed.
        outputs = [":(exclude)dvc.lock", ":(exclude,glob)**/.gitignore", ":(exclude)data", ":(exclude)models",
                   ":(exclude)reports"]
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *outputs],
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
        commit += " (with uncommitted changes)" if dirty else ""
    except (OSError, subprocess.SubprocessError):
        commit = "unknown (not a git checkout)"
    params = Path("params.yaml")
    phash = hashlib.sha256(params.read_bytes()).hexdigest()[:12] if params.exists() else "—"
    sample = any(r.get("annotator") == "sample-world-rules" for r in labelled)
    sizes = ", ".join(f"{s} {n}" for s, n in sorted(Counter(r.get("source") for r in labelled).items()))
    data = "the generated sample world (labels from its rules)" if sample else "real corpora (human annotations)"
    from cmisc_model.training.runtime import machine_line

    return (f"Data: {data}; {len(labelled)} labelled pairs ({sizes}). Git commit {commit}; params.yaml sha256 "
            f"{phash}. Machine: {machine_line()}. Ground truth for the per-rule figures: {truth or 'none'}.")


def load_configs(params: str | Path = "params.yaml") -> tuple[EvaluateConfig, int, LabelledSplitConfig]:
    """(evaluate section, base.seed, corpus.labelled) from a params file."""
    from cmisc_model.config import BaseConfig, load_section
    from cmisc_model.corpus.assemble import CorpusConfig

    return (
        load_section(EvaluateConfig, "evaluate", params),
        load_section(BaseConfig, "base", params).seed,
        load_section(CorpusConfig, "corpus", params).labelled,
    )


def cli_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="cmisc evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--predictions", type=Path, nargs="*", default=[], help="PREDICTIONS Parquet files")
    parser.add_argument("--labelled", type=Path, required=True, help="labelled.parquet from the corpus stage")
    parser.add_argument("--out", type=Path, required=True, help="report folder (reports/)")
    parser.add_argument("--params", default="params.yaml", help="params file (hyperparameters, seed, split)")
    args = parser.parse_args(argv)
    cfg, seed, split_cfg = load_configs(args.params)
    summary = evaluate(args.predictions, args.labelled, args.out, cfg, seed, split_cfg)
    print(headline(summary))
    return 0


def headline(summary: dict) -> str:
    parts = [
        f"{s}: CMI {_f(m['cmi']['accuracy'])} SC {_f(m['sc']['accuracy'])}"
        for s, m in sorted(summary["test"].items())
    ]
    return "; ".join(parts) or "no systems scored"
