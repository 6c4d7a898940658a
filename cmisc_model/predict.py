"""``cmisc predict``: CMI and SC of new image-text pairs with a trained classifier.

One pair, JSON on stdout:

    cmisc predict --image photo.jpg --text article.txt [--source bbc] [--model models/classifier]
    echo "A dog on a red ball." | cmisc predict --image photo.jpg --text -

Many pairs (any pairs-like Parquet file: pairs, corpus, labelled), in batches:

    cmisc predict --pairs data/pairs/bbc.parquet --out scores.parquet [--batch-size 32]

``--model`` is a folder written by ``cmisc train-cl`` (default
``models/classifier``, the pipeline's latest): ``model.pt`` and the
``vocab.parquet`` it was trained with. The text goes through the same
``TextNormaliser`` settings the model was trained with (stored in model.pt);
``--source bbc`` turns on British -> American spelling as in training. The
image gets the evaluation transform (centre crop, no flip).

For each measure the output gives the most probable class, its level on the
label scale, the expected value sum(p x level) (CMI in [0, 1], SC in [-1, 1])
and the probability of each level. The batch output (schema ``SCORES`` below)
has one row per scored pair; rows without a usable image are skipped and
counted.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch
from PIL import Image

from cmisc_model import schemas as S
from cmisc_model.checkpoint import model_config
from cmisc_model.config import from_mapping
from cmisc_model.data import AutoencoderDataset, load_image, pad_ids, usable_rows
from cmisc_model.errors import CmiscError
from cmisc_model.models.classifier import Classifier
from cmisc_model.models.config import ClassifierConfig
from cmisc_model.models.encoders import ArticleEncoder
from cmisc_model.text import TextConfig, TextNormaliser
from cmisc_model.train_autoencoder import amp_context, read_vocab
from cmisc_model.train_classifier import load_classifier_checkpoint, predict_probs

log = logging.getLogger(__name__)

DEFAULT_MODEL = Path("models/classifier")
LEVELS = {"cmi": S.CMI_LEVELS, "sc": S.SC_LEVELS}

# Output of ``cmisc predict --pairs``: one row per scored pair.
SCORES = pa.schema(
    [
        pa.field("pair_id", pa.string(), nullable=False),
        pa.field("cmi_pred", pa.int8(), nullable=False),  # class 0..4 (CMI_LEVELS)
        pa.field("cmi_value", pa.float32(), nullable=False),  # expected CMI in [0, 1]
        pa.field("cmi_prob", pa.list_(pa.float32(), S.N_CLASSES), nullable=False),
        pa.field("sc_pred", pa.int8(), nullable=False),  # class 0..4 (SC_LEVELS)
        pa.field("sc_value", pa.float32(), nullable=False),  # expected SC in [-1, 1]
        pa.field("sc_prob", pa.list_(pa.float32(), S.N_CLASSES), nullable=False),
    ],
    metadata={"cmisc.schema": "scores/1"},
)


class LoadedModel:
    """A classifier folder: the model in eval mode, its vocabulary, text normaliser and image settings."""

    def __init__(self, model_dir: str | Path, device: str | None = None):
        self.dir = Path(model_dir)
        if not self.dir.is_dir():
            raise CmiscError(f"{self.dir}: no such model folder (train one with `cmisc train-cl`)")
        for name in ("model.pt", "vocab.parquet"):
            if not (self.dir / name).exists():
                raise CmiscError(f"{self.dir}: not a classifier folder ({name} is missing)")
        state = load_classifier_checkpoint(self.dir / "model.pt")
        self.vocab, vhash = read_vocab(self.dir)
        if vhash != state["vocab_hash"]:
            raise CmiscError(
                f"{self.dir / 'model.pt'}: trained with vocabulary {state['vocab_hash']}, but "
                f"{self.dir / 'vocab.parquet'} is {vhash}: token ids would not match")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        cfg = model_config(state["config"])
        head = from_mapping(ClassifierConfig, state["classifier"], f"{self.dir}/model.pt classifier")
        self.model = Classifier(ArticleEncoder(cfg), head)
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as e:
            raise CmiscError(f"{self.dir / 'model.pt'}: weights do not fit the model ({str(e).splitlines()[0]})") from e
        self.model.to(self.device).eval()
        self.normaliser = TextNormaliser(from_mapping(TextConfig, state["text"], f"{self.dir}/model.pt text"))
        self.image_size = cfg.image_size
        self.resize_factor = float((state.get("data") or {}).get("resize_factor", 1.15))
        self.state_info = {"system": state.get("system"), "step": state.get("step")}


def describe(cmi_prob: list[float], sc_prob: list[float]) -> dict:
    """Probabilities -> {measure: class, level, expected value, probability per level}."""
    out = {}
    for task, prob in (("cmi", cmi_prob), ("sc", sc_prob)):
        k = max(range(len(prob)), key=prob.__getitem__)
        out[task] = {
            "class": k,
            "level": LEVELS[task][k],
            "expected": round(sum(p * lv for p, lv in zip(prob, LEVELS[task])), 4),
            "probabilities": {f"{lv:g}": round(p, 4) for lv, p in zip(LEVELS[task], prob)},
        }
    return out


def read_text(spec: str) -> str:
    """``-`` = stdin, else a file; non-UTF-8 or empty text is a CmiscError naming it."""
    where = "<stdin>" if spec == "-" else spec
    if spec == "-":
        raw = sys.stdin.buffer.read()
    else:
        path = Path(spec)
        if not path.is_file():
            raise CmiscError(f"{path}: no such text file")
        raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CmiscError(f"{where}: not UTF-8 text (byte {e.start}: {raw[e.start:e.start + 1]!r})") from e
    if not text.strip():
        raise CmiscError(f"{where}: the text is empty")
    return text


@torch.no_grad()
def predict_pair(m: LoadedModel, image_path: str | Path, text: str, source: str | None = None) -> dict:
    """One image + text -> ``describe`` output (plus the model and token counts)."""
    image_path = Path(image_path)
    if not image_path.is_file():
        raise CmiscError(f"{image_path}: no such image file")
    try:
        image = load_image(image_path, m.image_size, m.resize_factor, train=False)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise CmiscError(f"{image_path}: cannot decode the image ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from e
    sentences = m.normaliser.sentences(text, source)
    if not sentences:
        raise CmiscError("the text has no words the model can read")
    ids = [[m.vocab.get(t, 1) for t in s] for s in sentences]
    tokens = pad_ids([ids]).to(m.device)  # (1, S, T)
    with amp_context(m.device):
        res = m.model(image.unsqueeze(0).to(m.device), tokens)
    cmi = torch.softmax(res.cmi_logits.float(), dim=1)[0].tolist()
    sc = torch.softmax(res.sc_logits.float(), dim=1)[0].tolist()
    n_tokens = sum(len(s) for s in ids)
    out = describe(cmi, sc)
    out["model"] = str(m.dir)
    out["sentences"] = len(ids)
    out["tokens"] = n_tokens
    out["unknown_tokens"] = sum(t == 1 for s in ids for t in s)
    return out


def predict_pairs(m: LoadedModel, pairs_path: str | Path, out_path: str | Path, batch_size: int = 32,
                  progress: bool = False) -> dict:
    """Score every usable row of a pairs-like Parquet file -> SCORES Parquet (atomic); returns counts."""
    from cmisc_model.embed import read_pairs

    rows = read_pairs(Path(pairs_path))
    ok, n_unusable = usable_rows(rows)
    if n_unusable:
        log.warning("%s: %d of %d rows have no usable image (status not 'ok'); skipped",
                    pairs_path, n_unusable, len(rows))
    ds = AutoencoderDataset(ok, m.vocab, m.normaliser, m.image_size, train=False, resize_factor=m.resize_factor)
    probs, failed = predict_probs(m.model, ds, batch_size, m.device, progress)
    if failed:
        log.warning("%s: %d images failed to decode; skipped (e.g. %s)", pairs_path, len(failed), failed[0])
    out_rows = []
    for r in ok:
        if r["pair_id"] not in probs:
            continue
        cmi, sc = probs[r["pair_id"]]
        d = describe(cmi, sc)
        out_rows.append({"pair_id": r["pair_id"],
                         "cmi_pred": d["cmi"]["class"], "cmi_value": d["cmi"]["expected"], "cmi_prob": cmi,
                         "sc_pred": d["sc"]["class"], "sc_value": d["sc"]["expected"], "sc_prob": sc})
    table = S.from_rows(out_rows, SCORES, str(out_path))
    with S.atomic_path(Path(out_path)) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return {"rows": len(rows), "scored": len(out_rows), "no_image": n_unusable, "decode_failed": len(failed),
            "out": str(out_path)}


def cli_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="cmisc predict", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="folder from `cmisc train-cl`")
    ap.add_argument("--image", type=Path, help="one image file")
    ap.add_argument("--text", help="its text: a UTF-8 file, or - for stdin")
    ap.add_argument("--source", default=None, help="the text's source (bbc: British -> American spelling)")
    ap.add_argument("--pairs", type=Path, help="a pairs-like Parquet file to score")
    ap.add_argument("--out", type=Path, help="scores Parquet to write (with --pairs)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--device", default=None)
    args = ap.parse_args(argv)
    single = args.image is not None or args.text is not None
    if single == (args.pairs is not None):
        ap.error("give either --image and --text, or --pairs and --out")
    if single and (args.image is None or args.text is None):
        ap.error("--image and --text go together")
    if args.pairs is not None and args.out is None:
        ap.error("--pairs needs --out")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if single:
        if not args.image.is_file():  # before loading the model: fail fast on a typo
            raise CmiscError(f"{args.image}: no such image file")
        text = read_text(args.text)
        m = LoadedModel(args.model, args.device)
        print(json.dumps(predict_pair(m, args.image, text, args.source), indent=2))
    else:
        m = LoadedModel(args.model, args.device)
        print(json.dumps(predict_pairs(m, args.pairs, args.out, args.batch_size, progress=True)))
    return 0
