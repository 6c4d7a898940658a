"""``cmisc train-cl``: train the CMI/SC classifier (paper §5.3, Fig. 4b) and score the test split.

    cmisc train-cl --labelled data/corpus/labelled.parquet --autoencoder models/autoencoder \\
        --out models/classifier [--no-ae] [--repeats K] [--train-fraction F] \\
        [--live-dir reports/classifier] [--params params.yaml]

The classifier is the autoencoder's encoder (weights from
``AUTOENCODER/model.pt``; vocabulary, word vectors, text and image settings
from the same folder) plus the head of ``models/classifier.py``, trained
jointly with SGD (params ``classifier.train``; 2017: lr 0.1, batch 16, clip 5).

``--no-ae`` is the paper's E_CL^noAE baseline (system ``classifier_no_ae``):
the same network and training, but the encoder starts from random weights.
Its word table still starts from Word2Vec (``word2vec.parquet`` of the
autoencoder folder): the paper says only that the "pre-trained AE" is not
used, and Word2Vec is not part of the AE, so this baseline isolates what the
autoencoder's training adds.

For every evaluation repeat k = 0..K-1 (``annotations.repeat_split``: repeat 0
is the corpus stage's labelled split, k > 0 re-splits with seed + k) a fresh
model is trained on the ``train`` part, the epoch with the best harmonic mean
of CMI and SC accuracy on the ``val`` part is kept (ties: lower val loss), and
that model scores each ``test`` item exactly once.
Departure from 2017: 2017 chose its checkpoint by the harmonic mean on the
*test* set and scored 128 items cycled from 92 (original_impl.md §§7, 11);
here the test split is read only after selection, once per item, no partial
batch dropped.

Outputs in ``--out``: ``predictions.parquet`` (PREDICTIONS rows of every
repeat, with probabilities), ``model.pt`` (repeat 0's selected model, loadable
with ``weights_only=True``; ``cmisc predict`` reads it), ``metrics.json``
(val/test accuracies per repeat), ``config.json``, and copies of
``vocab.parquet`` and ``word2vec.parquet`` so the folder is self-contained.
DVCLive (repeat 0 only) in ``--live-dir``: train loss per step, val accuracies
and loss per epoch.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch.utils.data import DataLoader

from cmisc_model import schemas as S
from cmisc_model.annotations import LabelledSplitConfig, repeat_split
from cmisc_model.checkpoint import load_checkpoint, model_config, plain_config, save_checkpoint
from cmisc_model.config import BaseConfig, from_mapping, load_section
from cmisc_model.data import AutoencoderDataset, BucketBatchSampler, DataConfig, collate
from cmisc_model.errors import CmiscError
from cmisc_model.models.autoencoder import encoder_state_from_autoencoder
from cmisc_model.models.classifier import Classifier
from cmisc_model.models.config import ClassifierConfig, ModelConfig
from cmisc_model.models.encoders import ArticleEncoder, load_word2vec
from cmisc_model.text import TextConfig, TextNormaliser
from cmisc_model.train_autoencoder import (
    AutoencoderParams,
    amp_context,
    read_vocab,
    setup_distributed,
)

log = logging.getLogger(__name__)

FORMAT = "cmisc-classifier/1"
SYSTEM_AE, SYSTEM_NO_AE = "classifier", "classifier_no_ae"
TASKS = ("cmi", "sc")


@dataclass
class ClassifierTrainConfig:
    """params ``classifier.train`` (2017 values where the paper or code gives them)."""

    optimizer: Literal["sgd"] = "sgd"
    lr: float = 0.1  # 2017
    lr_decay: float = 0.5  # x 0.5 every lr_decay_epochs epochs (2017: halved every ~5.7 epochs, a stale epoch size)
    lr_decay_epochs: int = 2
    encoder_lr_scale: float = 1.0  # encoder lr = lr x this (1 = joint training at one rate, as 2017)
    momentum: float = 0.0  # 2017: plain SGD
    batch_size: int = 16  # 2017
    eval_batch_size: int = 32
    clip_norm: float = 5.0  # 2017
    epochs: int = 6  # 2017 kept step 311 of 734 items / 16 = ~6.8 epochs
    max_steps: int | None = None  # stop after this many optimizer steps (None = all epochs)
    select_by: Literal["accuracy", "loss"] = "accuracy"  # val harmonic mean of CMI/SC accuracy, or val loss
    repeats: int | None = None  # evaluation repeats; None = baselines.repeats (the same splits as the baselines)
    train_fraction: float = 1.0  # < 1: train on a random share of the train split (scarce-label study)

    def __post_init__(self) -> None:
        if not 0.0 < self.train_fraction <= 1.0:
            raise ValueError(f"train_fraction {self.train_fraction} is not in (0, 1]")
        if self.repeats is not None and self.repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {self.repeats}")
        if self.epochs < 1 or self.lr_decay_epochs < 1:
            raise ValueError("epochs and lr_decay_epochs must be >= 1")


@dataclass
class ClassifierParams:
    """The ``classifier`` section of params.yaml."""

    model: ClassifierConfig = field(default_factory=ClassifierConfig)
    train: ClassifierTrainConfig = field(default_factory=ClassifierTrainConfig)


# --------------------------------------------------------------------------- data

class LabelledDataset(AutoencoderDataset):
    """``AutoencoderDataset`` over LABELLED rows, plus each row's (CMI, SC) classes.

    Labels are looked up by the batch's ``indices`` (``label_tensors``), so the
    autoencoder's items and ``collate`` are reused unchanged.
    """

    def __init__(self, rows, vocab, normaliser, image_size, train, resize_factor=1.15, hflip=True, seed=0):
        super().__init__(rows, vocab, normaliser, image_size, train, resize_factor, hflip, seed)
        self.rows = list(rows)
        self.cmi = [S.cmi_class(r["cmi"]) if r.get("cmi") is not None else 0 for r in rows]
        self.sc = [S.sc_class(r["sc"]) if r.get("sc") is not None else 0 for r in rows]

    def label_tensors(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.tensor([self.cmi[i] for i in indices], dtype=torch.long),
                torch.tensor([self.sc[i] for i in indices], dtype=torch.long))


def eval_loader(ds: AutoencoderDataset, batch_size: int) -> DataLoader:
    """Every item once, batches sorted by length, the last partial batch kept."""
    sampler = BucketBatchSampler(ds.lengths(), batch_size, shuffle=False)
    return DataLoader(ds, batch_sampler=sampler, collate_fn=collate, num_workers=0)


@torch.no_grad()
def predict_probs(model: Classifier, ds: AutoencoderDataset, batch_size: int, device: torch.device,
                  progress: bool = False) -> tuple[dict[str, tuple[list[float], list[float]]], list[str]]:
    """Eval-mode probabilities per pair: ``({pair_id: (cmi_prob[5], sc_prob[5])}, undecodable pair ids)``."""
    was_training = model.training
    model.eval()
    out: dict[str, tuple[list[float], list[float]]] = {}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(ds), desc="predict", unit="pair")
    for batch in eval_loader(ds, batch_size):
        if batch["pair_ids"]:
            images, tokens = batch["images"].to(device), batch["tokens"].to(device)
            with amp_context(device):
                res = model(images, tokens)
            cmi = torch.softmax(res.cmi_logits.float(), dim=1).cpu()  # (B, 5)
            sc = torch.softmax(res.sc_logits.float(), dim=1).cpu()  # (B, 5)
            for p, c, s in zip(batch["pair_ids"], cmi.tolist(), sc.tolist()):
                out[p] = (c, s)
        if bar is not None:
            bar.update(len(batch["pair_ids"]) + batch["n_skipped"])
    if bar is not None:
        bar.close()
    model.train(was_training)
    failed = [p for p in ds.pair_ids if p not in out]
    return out, failed


def evaluate_split(model: Classifier, ds: LabelledDataset, batch_size: int, device: torch.device) -> dict:
    """Accuracy per task, their harmonic mean, and the summed cross-entropy, over ``ds`` (model selection)."""
    probs, _ = predict_probs(model, ds, batch_size, device)
    n = len(probs)
    correct = {t: 0 for t in TASKS}
    loss = 0.0
    for i, p in enumerate(ds.pair_ids):
        if p not in probs:
            continue
        for t, prob, true in zip(TASKS, probs[p], (ds.cmi[i], ds.sc[i])):
            correct[t] += int(max(range(len(prob)), key=prob.__getitem__) == true)
            loss -= math.log(max(prob[true], 1e-12))
    acc = {t: correct[t] / max(n, 1) for t in TASKS}
    hm = 2 * acc["cmi"] * acc["sc"] / (acc["cmi"] + acc["sc"]) if acc["cmi"] + acc["sc"] > 0 else 0.0
    return {"cmi_accuracy": acc["cmi"], "sc_accuracy": acc["sc"], "harmonic_mean": hm,
            "loss": loss / max(n, 1), "n": n}


def better(new: dict, best: dict | None, select_by: str) -> bool:
    """Is validation result ``new`` better than ``best``? (accuracy: harmonic mean, ties -> lower loss)."""
    if best is None:
        return True
    if select_by == "loss":
        return new["loss"] < best["loss"]
    if new["harmonic_mean"] != best["harmonic_mean"]:
        return new["harmonic_mean"] > best["harmonic_mean"]
    return new["loss"] < best["loss"]


# --------------------------------------------------------------------------- model

@dataclass
class AutoencoderFolder:
    """What the classifier takes from a ``cmisc train-ae`` folder."""

    path: Path
    state: dict  # the AE checkpoint
    cfg: ModelConfig
    vocab: dict[str, int]
    vocab_hash: str
    text_cfg: TextConfig
    resize_factor: float


def read_autoencoder(ae_dir: str | Path) -> AutoencoderFolder:
    """model.pt + vocab.parquet (+ word2vec.parquet) of an AE folder; refuses a vocabulary mismatch."""
    ae_dir = Path(ae_dir)
    for name in ("model.pt", "vocab.parquet", "word2vec.parquet"):
        if not (ae_dir / name).exists():
            raise CmiscError(f"{ae_dir}: not an autoencoder folder ({name} is missing; run `cmisc train-ae`)")
    state = load_checkpoint(ae_dir / "model.pt")
    vocab, vhash = read_vocab(ae_dir)
    if state["vocab_hash"] != vhash:
        raise CmiscError(
            f"{ae_dir / 'model.pt'}: trained with vocabulary {state['vocab_hash']}, but "
            f"{ae_dir / 'vocab.parquet'} is {vhash}: token ids would not match")
    cfg = model_config(state["config"])
    if max(vocab.values()) + 1 != cfg.vocab_size:
        raise CmiscError(f"{ae_dir}: vocab.parquet has {max(vocab.values()) + 1} ids, the model {cfg.vocab_size}")
    text_cfg = from_mapping(TextConfig, state.get("text") or {}, f"{ae_dir}/model.pt text")
    resize = float((state.get("data") or {}).get("resize_factor", DataConfig.resize_factor))
    return AutoencoderFolder(ae_dir, state, cfg, vocab, vhash, text_cfg, resize)


def build_classifier(ae: AutoencoderFolder, head: ClassifierConfig, init: Literal["autoencoder", "random"]) -> Classifier:
    """A classifier whose encoder starts from the AE (``autoencoder``) or from scratch + Word2Vec (``random``)."""
    encoder = ArticleEncoder(ae.cfg)
    if init == "autoencoder":
        encoder.load_state_dict(encoder_state_from_autoencoder(ae.state["model"]))
    else:
        encoder.load_word_vectors(load_word2vec(ae.path / "word2vec.parquet", ae.vocab, ae.cfg.init_range))
    return Classifier(encoder, head)


def load_classifier_checkpoint(path: str | Path) -> dict:
    """A ``cmisc train-cl`` model.pt, loaded with ``weights_only=True``; a bad file is a CmiscError naming it."""
    path = Path(path)
    if not path.exists():
        raise CmiscError(f"{path}: no such classifier checkpoint (run `cmisc train-cl`)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # any unreadable file is bad input
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CmiscError(f"{path}: not a readable checkpoint (corrupt or truncated?): {first}") from e
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        fmt = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CmiscError(f"{path}: not a cmisc classifier checkpoint (format {fmt!r}, expected {FORMAT!r})")
    missing = [k for k in ("config", "classifier", "text", "vocab_hash", "model") if k not in state]
    if missing:
        raise CmiscError(f"{path}: checkpoint lacks {missing}")
    return state


# --------------------------------------------------------------------------- training

def train_repeat(ae: AutoencoderFolder, split_rows: list[dict], params: ClassifierParams, data_cfg: DataConfig,
                 init: str, seed: int, device: torch.device, live=None, progress: bool = False) -> dict:
    """Train on ``train``, select on ``val``; returns the selected model's state and the history.

    The test rows are not touched here.
    """
    tc = params.train
    rng = random.Random(seed)
    train_rows = [r for r in split_rows if r["split"] == "train"]
    val_rows = [r for r in split_rows if r["split"] == "val"]
    if tc.train_fraction < 1.0:
        train_rows = rng.sample(train_rows, max(1, round(tc.train_fraction * len(train_rows))))
    if not train_rows or not val_rows:
        raise CmiscError(f"labelled split has {len(train_rows)} train and {len(val_rows)} val items; need both")
    normaliser = TextNormaliser(ae.text_cfg)
    size = ae.cfg.image_size
    train_ds = LabelledDataset(train_rows, ae.vocab, normaliser, size, True, ae.resize_factor, data_cfg.hflip, seed)
    val_ds = LabelledDataset(val_rows, ae.vocab, normaliser, size, False, ae.resize_factor)

    torch.manual_seed(seed)  # head init, random encoder init (--no-ae), dropout
    model = build_classifier(ae, params.model, init).to(device)
    enc = [p for p in model.encoder.parameters() if p.requires_grad]
    enc_ids = {id(p) for p in enc}
    head = [p for p in model.parameters() if p.requires_grad and id(p) not in enc_ids]
    optimizer = torch.optim.SGD([{"params": enc, "lr": tc.lr * tc.encoder_lr_scale}, {"params": head, "lr": tc.lr}],
                                lr=tc.lr, momentum=tc.momentum)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=tc.lr_decay_epochs, gamma=tc.lr_decay)
    sampler = BucketBatchSampler(train_ds.lengths(), tc.batch_size, True, seed, chunk_batches=data_cfg.bucket_chunk)

    step, best, best_state, history, skipped = 0, None, None, [], 0
    t0 = time.perf_counter()
    model.train()
    for epoch in range(tc.epochs):
        sampler.set_epoch(epoch)
        train_ds.set_epoch(epoch)
        g = torch.Generator().manual_seed(seed * 7919 + epoch)
        loader = DataLoader(train_ds, batch_sampler=sampler, collate_fn=collate,
                            num_workers=data_cfg.num_workers, generator=g)
        if progress:
            from tqdm import tqdm

            loader = tqdm(loader, desc=f"{init} epoch {epoch + 1}/{tc.epochs}", unit="batch", leave=False)
        losses = []
        for batch in loader:
            skipped += batch["n_skipped"]
            if not batch["pair_ids"]:
                continue
            cmi, sc = train_ds.label_tensors(batch["indices"])
            with amp_context(device):
                out = model(batch["images"].to(device), batch["tokens"].to(device), cmi.to(device), sc.to(device))
            if not torch.isfinite(out.loss.detach()):
                raise CmiscError(f"non-finite classifier loss at step {step + 1} (lower classifier.train.lr?)")
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), tc.clip_norm)
            optimizer.step()
            step += 1
            losses.append(out.loss.item())
            if live is not None:
                live.step = step
                live.log_metric("train/loss", losses[-1])
                live.log_metric("train/lr", optimizer.param_groups[1]["lr"])
            if tc.max_steps is not None and step >= tc.max_steps:
                break
        scheduler.step()
        val = evaluate_split(model, val_ds, tc.eval_batch_size, device)
        val.update(epoch=epoch + 1, step=step, train_loss=sum(losses) / max(len(losses), 1))
        history.append(val)
        log.info("%s epoch %d step %d: train loss %.3f, val CMI %.3f SC %.3f (hm %.3f), val loss %.3f",
                 init, epoch + 1, step, val["train_loss"], val["cmi_accuracy"], val["sc_accuracy"],
                 val["harmonic_mean"], val["loss"])
        if live is not None:
            live.step = step
            for k in ("cmi_accuracy", "sc_accuracy", "harmonic_mean", "loss"):
                live.log_metric(f"val/{k}", val[k])
        if better(val, best, tc.select_by):
            best = val
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        if tc.max_steps is not None and step >= tc.max_steps:
            break
    model.load_state_dict(best_state)
    return {"model": model, "best": best, "history": history, "skipped_images": skipped,
            "n_train": len(train_ds), "n_val": len(val_ds), "seconds": time.perf_counter() - t0}


def prediction_rows(system: str, repeat: int, test_rows: list[dict], probs: dict) -> list[dict]:
    rows = []
    for r in test_rows:
        cmi_p, sc_p = probs[r["pair_id"]]
        rows.append({
            "system": system, "repeat": repeat, "pair_id": r["pair_id"], "source": r.get("source"),
            "split": "test", "cmi_true": S.cmi_class(r["cmi"]), "sc_true": S.sc_class(r["sc"]),
            "cmi_pred": max(range(len(cmi_p)), key=cmi_p.__getitem__),
            "sc_pred": max(range(len(sc_p)), key=sc_p.__getitem__),
            "cmi_prob": cmi_p, "sc_prob": sc_p,
        })
    return rows


def train_classifier(labelled_path: str | Path, ae_dir: str | Path, out_dir: str | Path, params: ClassifierParams,
                     repeats: int, seed: int, split_cfg: LabelledSplitConfig | None = None, no_ae: bool = False,
                     data_cfg: DataConfig | None = None, live_dir: str | Path | None = None,
                     device: str | None = None, progress: bool = False) -> dict:
    """The classifier stage: K repeats -> predictions.parquet, model.pt (repeat 0), metrics.json."""
    labelled_path, out_dir = Path(labelled_path), Path(out_dir)
    split_cfg = split_cfg or LabelledSplitConfig()
    data_cfg = data_cfg or DataConfig()
    system, init = (SYSTEM_NO_AE, "random") if no_ae else (SYSTEM_AE, "autoencoder")
    dev = setup_distributed(device).device
    ae = read_autoencoder(ae_dir)
    rows = S.read_table(labelled_path, S.LABELLED).to_pylist()
    unusable = [r["pair_id"] for r in rows if r["image_status"] != "ok" or not r["image_path"]]
    if unusable:
        # Every test item must be scored once, and the classifier needs an image.
        raise CmiscError(f"{labelled_path}: {len(unusable)} labelled pair(s) have no usable image, "
                         f"e.g. {', '.join(unusable[:5])}")

    out_dir.mkdir(parents=True, exist_ok=True)
    predictions, per_repeat = [], []
    for k in range(repeats):
        split_rows = repeat_split(rows, seed, k, split_cfg)
        test_rows = [r for r in split_rows if r["split"] == "test"]
        if not test_rows:
            raise CmiscError(f"{labelled_path}: repeat {k} has no test items")
        live = None
        if k == 0 and live_dir is not None:
            from dvclive import Live

            live = Live(dir=str(live_dir), dvcyaml=False, save_dvc_exp=False)
        res = train_repeat(ae, split_rows, params, data_cfg, init, seed + k, dev, live, progress)
        model = res["model"]

        # The test split, read only now: each item scored once by the selected model.
        test_ds = LabelledDataset(test_rows, ae.vocab, TextNormaliser(ae.text_cfg), ae.cfg.image_size, False,
                                  ae.resize_factor)
        probs, failed = predict_probs(model, test_ds, params.train.eval_batch_size, dev)
        if failed:
            raise CmiscError(f"{labelled_path}: repeat {k}: test image(s) of {', '.join(failed[:5])} "
                             "cannot be decoded, so they cannot be scored")
        rows_k = prediction_rows(system, k, test_rows, probs)
        predictions += rows_k
        test_acc = {f"{t}_accuracy": sum(r[f"{t}_pred"] == r[f"{t}_true"] for r in rows_k) / len(rows_k)
                    for t in TASKS}
        best = res["best"]
        per_repeat.append({
            "repeat": k, "selected_epoch": best["epoch"], "selected_step": best["step"],
            "val": {key: best[key] for key in ("cmi_accuracy", "sc_accuracy", "harmonic_mean", "loss")},
            "test": test_acc, "n_train": res["n_train"], "n_val": res["n_val"], "n_test": len(rows_k),
            "skipped_images": res["skipped_images"], "train_seconds": round(res["seconds"], 1),
            "history": res["history"],
        })
        log.info("%s repeat %d: selected epoch %d (val CMI %.3f SC %.3f); test CMI %.3f SC %.3f",
                 system, k, best["epoch"], best["cmi_accuracy"], best["sc_accuracy"],
                 test_acc["cmi_accuracy"], test_acc["sc_accuracy"])
        if k == 0:
            save_checkpoint({
                "format": FORMAT, "system": system, "init": init, "repeat": 0,
                "config": plain_config(ae.cfg), "classifier": dataclasses.asdict(params.model),
                "text": plain_config(ae.text_cfg),
                "data": {"image_size": ae.cfg.image_size, "resize_factor": ae.resize_factor},
                "vocab_hash": ae.vocab_hash, "step": best["step"], "epoch": best["epoch"],
                "model": model.state_dict(),
                "metrics": {"val": per_repeat[0]["val"]},
            }, out_dir / "model.pt")
            if live is not None:
                for key in ("cmi_accuracy", "sc_accuracy", "harmonic_mean"):
                    live.summary[f"selected/val_{key}"] = best[key]
                live.summary["selected/epoch"] = best["epoch"]
                live.end()

    from cmisc_model.evaluate import predictions_table, write_predictions

    write_predictions(predictions_table(predictions, str(out_dir)), out_dir / "predictions.parquet")

    def mean(part: str, key: str) -> float:
        return sum(r[part][key] for r in per_repeat) / len(per_repeat)

    metrics = {
        "system": system, "init": init, "repeats": repeats, "train_fraction": params.train.train_fraction,
        "val_mean": {key: mean("val", key) for key in ("cmi_accuracy", "sc_accuracy")},
        "test_mean": {key: mean("test", key) for key in ("cmi_accuracy", "sc_accuracy")},
        "per_repeat": per_repeat,
    }
    with S.atomic_path(out_dir / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    config = {"system": system, "autoencoder": str(ae.path), "classifier": dataclasses.asdict(params.model),
              "train": dataclasses.asdict(params.train), "model": plain_config(ae.cfg),
              "text": plain_config(ae.text_cfg), "vocab_hash": ae.vocab_hash, "seed": seed, "repeats": repeats}
    with S.atomic_path(out_dir / "config.json") as tmp:
        tmp.write_text(json.dumps(config, indent=2) + "\n")
    for name in ("vocab.parquet", "word2vec.parquet"):
        # A model folder is self-contained: `cmisc predict` reads the vocabulary from it.
        with S.atomic_path(out_dir / name) as tmp:
            shutil.copyfile(ae.path / name, tmp)
    return metrics


# --------------------------------------------------------------------------- cli

def cli_main(argv: list[str]) -> int:
    from cmisc_model.baselines import BaselinesConfig
    from cmisc_model.corpus import CorpusConfig

    ap = argparse.ArgumentParser(prog="cmisc train-cl", description=__doc__.split("\n\n")[0])
    ap.add_argument("--labelled", type=Path, required=True, help="labelled.parquet from the corpus stage")
    ap.add_argument("--autoencoder", type=Path, required=True, help="model folder from `cmisc train-ae`")
    ap.add_argument("--out", type=Path, required=True, help="model folder to write")
    ap.add_argument("--no-ae", action="store_true", help="baseline: encoder from random init (Word2Vec words)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="evaluation repeats (default: classifier.train.repeats, else baselines.repeats)")
    ap.add_argument("--train-fraction", type=float, default=None, help="train on this share of the train split")
    ap.add_argument("--live-dir", type=Path, default=None, help="DVCLive folder (repeat 0)")
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--device", default=None, help="cpu, cuda (default: cuda when available)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    params = load_section(ClassifierParams, "classifier", args.params)
    if args.train_fraction is not None:
        params.train = dataclasses.replace(params.train, train_fraction=args.train_fraction)
    repeats = args.repeats or params.train.repeats or load_section(BaselinesConfig, "baselines", args.params).repeats
    seed = load_section(BaseConfig, "base", args.params).seed
    split_cfg = load_section(CorpusConfig, "corpus", args.params).labelled
    data_cfg = load_section(AutoencoderParams, "autoencoder", args.params).data
    metrics = train_classifier(args.labelled, args.autoencoder, args.out, params, repeats, seed, split_cfg,
                               args.no_ae, data_cfg, args.live_dir, args.device, progress=True)
    print(json.dumps({k: metrics[k] for k in ("system", "repeats", "val_mean", "test_mean")}, indent=2))
    return 0
