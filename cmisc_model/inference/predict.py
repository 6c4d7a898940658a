"""``cmisc predict``: CMI and SC of new image-text pairs with a trained classifier.

One pair, one JSON record on stdout:

    cmisc predict --image photo.jpg --text "A red circle in the upper left."
    cmisc predict --image photo.jpg --text-file article.txt [--source bbc]
    echo "A red circle in the upper left." | cmisc predict --image photo.jpg --text-file -

Many pairs (any pairs-like Parquet file: pairs, corpus, labelled), in batches:

    cmisc predict --pairs data/pairs/bbc.parquet --out scores.parquet [--batch-size 32]

``--model`` is a folder written by ``cmisc train-cl`` (default
``models/classifier``, the pipeline's latest): ``model.pt`` and the
``vocab.parquet`` it was trained with. The text goes through the same
``TextNormaliser`` settings the model was trained with (stored in model.pt);
``--source bbc`` turns on British -> American spelling as in training. The
image gets the evaluation transform (centre crop, no flip).

The single-pair JSON and each row of the batch Parquet have the same fields
(schema ``SCORES`` in schemas.py): for each measure the most probable class
(``cmi_pred``), its level (``cmi_level``), the expected value sum(p x level)
(``cmi_expected``: CMI in [0, 1], SC in [-1, 1]) and the probability of each
level (``cmi_prob``); then what the model read and ``warnings``. The batch
output keeps every input row: a row it could not score has ``scored`` false
and a ``reason``.

The default model is trained on the generated sample world, whose texts use a
few hundred words: when many of a text's tokens are unknown to the model, or
its vocabulary is that small, the output warns that the scores mean little.

torch is imported only when a model is loaded, so ``--help`` is instant.
"""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter
from pathlib import Path

from cmisc_model import schemas as S
from cmisc_model.errors import CmiscError
from cmisc_model.text.sentences import split_sentences

log = logging.getLogger(__name__)

DEFAULT_MODEL = Path("models/classifier")
LEVELS = {"cmi": S.CMI_LEVELS, "sc": S.SC_LEVELS}
SCORES = S.SCORES

# More unknown tokens than this share: the text is unlike what the model was trained on.
UNKNOWN_WARN_SHARE = 0.2
# A vocabulary this small cannot come from a real corpus (real Simple English
# Wikipedia gives tens of thousands of words at min_count 10; the sample world ~700).
SMALL_VOCAB = 5000


class LoadedModel:
    """A classifier folder: the model in eval mode, its vocabulary, text normaliser and image settings."""

    def __init__(self, model_dir: str | Path, device: str | None = None):
        import torch

        from cmisc_model.config import from_mapping
        from cmisc_model.corpus.vocab import read_vocab
        from cmisc_model.models.classifier import Classifier
        from cmisc_model.models.config import ClassifierConfig
        from cmisc_model.models.encoders import ArticleEncoder
        from cmisc_model.text.normalise import TextConfig, TextNormaliser
        from cmisc_model.training.checkpoint import model_config
        from cmisc_model.training.classifier import load_classifier_checkpoint

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

    def model_warning(self) -> str | None:
        """Said once per run: a model with a toy vocabulary gives toy scores on real pairs."""
        n = len(self.vocab)
        if n >= SMALL_VOCAB:
            return None
        return (f"{self.dir}: the model knows only {n} words, so it was trained on a small corpus such as "
                "the generated sample world (the pipeline's default); its scores on real pairs mean little")


def describe(cmi_prob: list[float], sc_prob: list[float]) -> dict:
    """Probabilities -> the SCORES fields of both measures (class, level, expected value, probabilities)."""
    out: dict = {}
    for task, prob in (("cmi", cmi_prob), ("sc", sc_prob)):
        k = max(range(len(prob)), key=prob.__getitem__)
        out[f"{task}_pred"] = k
        out[f"{task}_level"] = LEVELS[task][k]
        out[f"{task}_expected"] = round(sum(p * lv for p, lv in zip(prob, LEVELS[task])), 4)
        out[f"{task}_prob"] = [round(p, 4) for p in prob]
    return out


def text_warnings(n_tokens: int, n_unknown: int, n_vocab: int) -> list[str]:
    if n_tokens and n_unknown / n_tokens > UNKNOWN_WARN_SHARE:
        share = f"{n_unknown} of {n_tokens} tokens ({n_unknown / n_tokens:.0%})"
        return [f"{share} are not among the model's {n_vocab} words: the text is unlike its training data"]
    return []


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


def score_rows(m: LoadedModel, rows: list[dict], batch_size: int = 32, progress: bool = False) -> list[dict]:
    """Pairs rows (pair_id, source, text_blocks, image_path, image_status) -> one SCORES record
    each, in input order; what cannot be scored keeps its row with the reason."""
    from cmisc_model.training.classifier import predict_probs
    from cmisc_model.training.data import AutoencoderDataset

    records, todo = [], []
    for r in rows:
        ids = [[m.vocab.get(t, 1) for t in s] for s in m.normaliser.blocks(r["text_blocks"], r["source"])]
        n_tokens = sum(len(s) for s in ids)
        n_unknown = sum(t == 1 for s in ids for t in s)
        rec = {"pair_id": r["pair_id"], "source": r["source"], "scored": False, "reason": None,
               "sentences": len(ids), "tokens": n_tokens, "unknown_tokens": n_unknown,
               "warnings": text_warnings(n_tokens, n_unknown, len(m.vocab))}
        if r.get("image_status") != "ok":
            rec["reason"] = f"no usable image (image_status {r.get('image_status')})"
        elif not r.get("image_path"):
            rec["reason"] = "no image file (image_path is empty)"
        elif not n_tokens:
            rec["reason"] = "the text has no words the model can read"
        else:
            todo.append(r)
        records.append(rec)
    probs: dict = {}
    if todo:
        ds = AutoencoderDataset(todo, m.vocab, m.normaliser, m.image_size, train=False,
                                resize_factor=m.resize_factor)
        probs, _ = predict_probs(m.model, ds, batch_size, m.device, progress)
    queued = {r["pair_id"] for r in todo}
    for rec in records:
        if rec["pair_id"] in probs:
            rec.update(describe(*probs[rec["pair_id"]]), scored=True)
        elif rec["pair_id"] in queued:
            rec["reason"] = "the image cannot be decoded"
    # the schema's field order, unscored fields null: the JSON reads like a row of the Parquet
    return [{name: rec.get(name) for name in S.SCORES.names} for rec in records]


def predict_pair(m: LoadedModel, image_path: str | Path, text: str, source: str | None = None) -> dict:
    """One image + text -> one SCORES record (pair_id null); bad input is a CmiscError."""
    from PIL import Image

    from cmisc_model.training.data import load_image

    image_path = Path(image_path)
    if not image_path.is_file():
        raise CmiscError(f"{image_path}: no such image file")
    try:  # decode here too, so that a broken image is an error naming it, not a skipped row
        load_image(image_path, m.image_size, m.resize_factor, train=False)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CmiscError(f"{image_path}: cannot decode the image ({why})") from e
    row = {"pair_id": "<input>", "source": source, "image_path": str(image_path), "image_status": "ok",
           "text_blocks": [{"titles": [], "sentences": split_sentences(text)}]}
    (rec,) = score_rows(m, [row], batch_size=1)
    if not rec["scored"]:
        raise CmiscError(f"{image_path}: {rec['reason']}")
    return {**rec, "pair_id": None}


def predict_pairs(m: LoadedModel, pairs_path: str | Path, out_path: str | Path, batch_size: int = 32,
                  progress: bool = False) -> dict:
    """Score a pairs-like Parquet file -> SCORES Parquet (atomic), one row per input row; returns counts."""
    from cmisc_model.inference.embed import read_pairs

    rows = read_pairs(Path(pairs_path))
    records = score_rows(m, rows, batch_size, progress)
    reasons = Counter(r["reason"] for r in records if not r["scored"])
    for reason, n in reasons.items():
        log.warning("%s: %d of %d rows not scored: %s (kept with scored=false)", pairs_path, n, len(rows), reason)
    n_warned = sum(bool(r["warnings"]) for r in records)
    if n_warned:
        log.warning("%s: %d of %d rows have many tokens the model does not know (see the warnings column)",
                    pairs_path, n_warned, len(rows))
    meta = {"cmisc.model": str(m.dir)}
    if m.model_warning():
        meta["cmisc.warning"] = m.model_warning()
    S.write_table(S.from_rows(records, S.SCORES, str(out_path)), out_path, S.SCORES, metadata=meta)
    return {"rows": len(rows), "scored": len(rows) - sum(reasons.values()), "not_scored": dict(reasons),
            "with_warnings": n_warned, "out": str(out_path)}


def cli_main(argv: list[str]) -> int:
    from cmisc_model.commands import command_parser

    ap = command_parser("cmisc predict", __doc__)
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="model folder written by cmisc train-cl")
    one = ap.add_argument_group("one pair (prints a JSON record)")
    one.add_argument("--image", type=Path, help="the image file")
    text = one.add_mutually_exclusive_group()
    text.add_argument("--text", help="the text itself, e.g. a caption (- reads it from stdin)")
    text.add_argument("--text-file", metavar="PATH", help="a UTF-8 file holding the text (- for stdin)")
    one.add_argument("--source", default=None,
                     help="the text's source, as in training: bbc turns on British -> American spelling")
    many = ap.add_argument_group("a pairs file (writes a scores Parquet)")
    many.add_argument("--pairs", type=Path, help="pairs-like Parquet file to score (pairs, corpus or labelled)")
    many.add_argument("--out", type=Path, help="scores Parquet to write")
    many.add_argument("--batch-size", type=int, default=32, help="pairs per forward pass")
    ap.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when available)")
    args = ap.parse_args(argv)
    has_text = args.text is not None or args.text_file is not None
    single = args.image is not None or has_text
    if single == (args.pairs is not None):
        ap.error("give either --image and --text (or --text-file), or --pairs and --out")
    if single and (args.image is None or not has_text):
        ap.error("--image and --text (or --text-file) go together")
    if args.pairs is not None and args.out is None:
        ap.error("--pairs needs --out")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if single:
        if not args.image.is_file():  # before loading the model: fail fast on a typo
            raise CmiscError(f"{args.image}: no such image file")
        if args.text_file is not None:
            text_value = read_text(args.text_file)
        elif args.text == "-":
            text_value = read_text("-")
        elif not args.text.strip():
            raise CmiscError("--text: the text is empty")
        else:
            text_value = args.text
        m = LoadedModel(args.model, args.device)
        rec = predict_pair(m, args.image, text_value, args.source)
        for w in filter(None, [m.model_warning(), *rec["warnings"]]):
            print(f"warning: {w}", file=sys.stderr)
        print(json.dumps(rec, indent=2))
    else:
        m = LoadedModel(args.model, args.device)
        if m.model_warning():
            print(f"warning: {m.model_warning()}", file=sys.stderr)
        print(json.dumps(predict_pairs(m, args.pairs, args.out, args.batch_size, progress=True)))
    return 0
