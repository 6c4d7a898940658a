"""``cmisc scarcity``: the label-scarcity curve, AE-initialised vs no-AE classifier.

    cmisc scarcity --labelled data/corpus/labelled.parquet --autoencoder models/autoencoder \\
        --out reports/scarcity [--fractions 0.1 0.25 0.5 1.0] [--params params.yaml]

The paper's claim (§5.3) is that autoencoder pre-training helps when labels
are scarce. For each training-label fraction both systems are trained on the
same K labelled splits (a random share of each split's ``train`` part, the
same share for both systems), selected on ``val`` and scored once on ``test``.
Fraction 1.0 reuses the classifier stages' ``metrics.json`` when given
(``--full-ae``, ``--full-no-ae``), since they are exactly those runs.

Writes ``scarcity.json`` (per fraction and system: test accuracies per
repeat, mean ± sd, and a paired t-test of AE minus no-AE over the repeats),
``plots/scarcity.csv`` (a DVC linear plot: fraction, system, task, accuracy)
and ``plots/scarcity.png``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cmisc_model import schemas as S

log = logging.getLogger(__name__)
TASKS = ("cmi", "sc")
SYSTEMS = ("classifier", "classifier_no_ae")


@dataclass
class ScarcityConfig:
    """The ``scarcity`` section of params.yaml."""

    fractions: list[float] = field(default_factory=lambda: [0.1, 0.25, 0.5, 1.0])
    repeats: int | None = 3  # K splits per point (the first K of the classifier stages'); None = theirs

    def __post_init__(self):
        if not self.fractions or not all(0 < f <= 1 for f in self.fractions):
            raise ValueError(f"fractions must be shares in (0, 1], got {self.fractions}")
        if self.repeats is not None and self.repeats < 1:
            raise ValueError(f"repeats must be >= 1 or null, got {self.repeats}")


def paired_t(a: list[float], b: list[float]) -> dict:
    """Paired t-test of a - b over repeats (two-sided p; None with fewer than 2 pairs or no spread)."""
    d = [x - y for x, y in zip(a, b)]
    n = len(d)
    mean = sum(d) / n if n else float("nan")
    if n < 2:
        return {"mean_diff": mean, "t": None, "p": None, "n": n}
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    if sd == 0:
        return {"mean_diff": mean, "t": None, "p": None, "n": n}
    from scipy import stats

    t = mean / (sd / math.sqrt(n))
    return {"mean_diff": mean, "t": t, "p": float(2 * stats.t.sf(abs(t), n - 1)), "n": n}


def per_repeat(metrics: dict, task: str, repeats: int) -> list[float]:
    """Test accuracy of repeats 0..repeats-1 (a classifier stage's metrics may hold more)."""
    return [r["test"][f"{task}_accuracy"] for r in metrics["per_repeat"] if r["repeat"] < repeats]


def stage_metrics(path: Path | None, repeats: int) -> dict | None:
    """A classifier stage's metrics.json, when it holds repeats 0..repeats-1 (fraction 1 is that run)."""
    if path is None or not Path(path).exists():
        return None
    metrics = json.loads(Path(path).read_text())
    return metrics if len(per_repeat(metrics, "cmi", repeats)) == repeats else None


def run(labelled: Path, ae_dir: Path, out_dir: Path, fractions: list[float], params_path: Path,
        full: dict[str, Path | None], device: str | None = None, vocab_dir: Path | None = None,
        repeats: int | None = None) -> dict:
    """``vocab_dir``: where the no-AE system takes its vocabulary and Word2Vec (default: the AE folder).
    ``repeats``: K splits per point (default: the classifier stages' K)."""
    from cmisc_model.config import BaseConfig, load_section
    from cmisc_model.corpus.assemble import CorpusConfig
    from cmisc_model.evaluation.baselines import BaselinesConfig
    from cmisc_model.training.autoencoder import AutoencoderParams
    from cmisc_model.training.classifier import (
        ClassifierParams,
        folder_from_params,
        train_classifier,
    )
    from cmisc_model.training.features import PartsMemo

    params = load_section(ClassifierParams, "classifier", params_path)
    repeats = repeats or params.train.repeats or load_section(BaselinesConfig, "baselines", params_path).repeats
    seed = load_section(BaseConfig, "base", params_path).seed
    split_cfg = load_section(CorpusConfig, "corpus", params_path).labelled
    data_cfg = load_section(AutoencoderParams, "autoencoder", params_path).data
    memo = PartsMemo()  # the AE runs share one frozen encoder: each labelled item is encoded once

    def train(system: str, fraction: float, tmp: str, pool=None) -> dict:
        no_ae = system == "classifier_no_ae"
        p = dataclasses.replace(params, train=dataclasses.replace(params.train, train_fraction=fraction))
        log.info("scarcity: %s at %.0f%% of the training labels, %d repeat(s)", system, 100 * fraction, repeats)
        source = folder_from_params(vocab_dir, params_path) if no_ae and vocab_dir else ae_dir
        return train_classifier(labelled, source, Path(tmp) / f"{system}-{fraction}", p, repeats, seed, split_cfg,
                                no_ae, data_cfg, device=device, ablation_kinds=(), memo=None if no_ae else memo,
                                pool=pool)

    runs: dict[tuple[str, float], dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for system in SYSTEMS:  # fraction 1.0 is the classifier stage's own run
            for f in fractions:
                if f == 1.0 and (metrics := stage_metrics(full.get(system), repeats)) is not None:
                    runs[system, f] = metrics
        for f in fractions:  # the AE points in this process, one after another: they share the memo
            if ("classifier", f) not in runs:
                runs["classifier", f] = train("classifier", f, tmp)
        pending = [f for f in fractions if ("classifier_no_ae", f) not in runs]
        runs.update(_no_ae_runs(pending, lambda f, pool: train("classifier_no_ae", f, tmp, pool),
                                params.train.parallel_repeats, repeats, device))
    result: dict = {"repeats": repeats, "fractions": {}}
    for f in fractions:
        entry = {system: {t: per_repeat(runs[system, f], t, repeats) for t in TASKS} for system in SYSTEMS}
        entry["ae_minus_no_ae"] = {t: paired_t(entry["classifier"][t], entry["classifier_no_ae"][t]) for t in TASKS}
        result["fractions"][f"{f:g}"] = entry
    write(result, out_dir)
    return result


def _no_ae_runs(fractions: list[float], train, workers: int, repeats: int, device: str | None) -> dict:
    """The no-AE points: every fraction's repeats are jobs of one worker pool, each fraction's
    ``train(fraction, pool)`` waiting in a thread of its own, so no worker idles between
    fractions (without a pool: one after another)."""
    from concurrent.futures import ThreadPoolExecutor

    from cmisc_model.training.workers import repeat_pool

    pool = repeat_pool(workers, len(fractions) * repeats, device) if fractions else None
    if pool is None:
        return {("classifier_no_ae", f): train(f, None) for f in fractions}
    with pool, ThreadPoolExecutor(len(fractions)) as waiters:
        futures = {f: waiters.submit(train, f, pool) for f in fractions}
        return {("classifier_no_ae", f): future.result() for f, future in futures.items()}


def write(result: dict, out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = ["fraction,system,task,accuracy_mean,accuracy_sd"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, task in zip(axes, TASKS):
        for system, style in (("classifier", "o-"), ("classifier_no_ae", "s--")):
            xs, means, sds = [], [], []
            for f, entry in result["fractions"].items():
                acc = entry[system][task]
                m = sum(acc) / len(acc)
                sd = math.sqrt(sum((a - m) ** 2 for a in acc) / (len(acc) - 1)) if len(acc) > 1 else 0.0
                xs.append(float(f))
                means.append(m)
                sds.append(sd)
                rows.append(f"{f},{system},{task},{m:.4f},{sd:.4f}")
            ax.errorbar(xs, means, yerr=sds, fmt=style, capsize=3, label=system)
        ax.set_xscale("log")
        ax.set_xlabel("share of the training labels")
        ax.set_ylabel(f"test accuracy ({task.upper()})")
        ax.set_title(f"{task.upper()}: mean ± sd over {result['repeats']} splits", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    plots = out_dir / "plots"
    with S.atomic_path(plots / "scarcity.png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    with S.atomic_path(plots / "scarcity.csv") as tmp:
        tmp.write_text("\n".join(rows) + "\n")
    with S.atomic_path(out_dir / "scarcity.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")


def cli_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="cmisc scarcity", description="label-scarcity curve: AE-init vs no-AE")
    ap.add_argument("--labelled", type=Path, required=True, help="labelled.parquet from the corpus stage")
    ap.add_argument("--autoencoder", type=Path, required=True, help="model folder from cmisc train-ae")
    ap.add_argument("--vocab", type=Path, default=None,
                    help="the vocab stage's folder for the no-AE system (default: the autoencoder folder)")
    ap.add_argument("--out", type=Path, required=True, help="report folder (scarcity.json, plots/)")
    ap.add_argument("--fractions", type=float, nargs="+", default=None,
                    help="shares of each split's training labels (default: params scarcity.fractions)")
    ap.add_argument("--full-ae", type=Path, default=None, help="metrics.json of the classifier stage (fraction 1)")
    ap.add_argument("--full-no-ae", type=Path, default=None, help="metrics.json of the no-AE stage (fraction 1)")
    ap.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file")
    ap.add_argument("--device", default=None, help="cpu, cuda (default: cuda when available)")
    args = ap.parse_args(argv)
    from cmisc_model.config import load_section

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = load_section(ScarcityConfig, "scarcity", args.params)
    result = run(args.labelled, args.autoencoder, args.out, args.fractions or cfg.fractions, args.params,
                 {"classifier": args.full_ae, "classifier_no_ae": args.full_no_ae}, args.device, args.vocab,
                 cfg.repeats)
    for f, entry in result["fractions"].items():
        d = entry["ae_minus_no_ae"]
        print(f"{f}: AE - no-AE: CMI {d['cmi']['mean_diff']:+.3f} (p {d['cmi']['p']}), "
              f"SC {d['sc']['mean_diff']:+.3f} (p {d['sc']['p']})")
    return 0
