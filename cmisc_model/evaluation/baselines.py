"""The paper's baselines (Table 3): most-frequent class and a linear SVM on
frozen article embeddings. The third baseline, the classifier trained without
autoencoder initialisation, is trained by the classifier code.

Both run over evaluation repeats 0..K-1 (``annotations.repeat_split``: repeat
0 is the corpus stage's labelled split, repeat k re-splits with seed + k) and
score every test item of each repeat exactly once. They are fitted on the
``train`` part only: ``val`` is what the classifier uses for checkpoint
selection, so all systems learn from the same items (``include_val: true``
adds it).

- **most_frequent**: the most frequent class of the training split, per task,
  predicted for every test item (ties: the lower class).
  Departure from 2017: 2017 reported the majority rate of all 826 labels
  (0.5642 = 466/826, 0.6550 = 541/826), test items included.
- **svm**: ``LinearSVC(multi_class="crammer_singer")`` on standardised 2400-d
  article embeddings, one model per task (CMI, SC), C chosen by stratified
  k-fold cross-validation on the training split only, scored once per test item.
  Departure from 2017: 2017 searched C over linspace(0.001, 2, 1000) and scored
  the 80 test items that survived a dropped partial batch (original_impl.md §8);
  the default grid here is 5 log-spaced values from 1e-4 to 0.01 (1000 fits per
  fold buy nothing on ~600 items and take long; larger C was never chosen on
  standardised embeddings), set in params.yaml.

- **text_only**: bag of words (the normalised tokens, unigrams and bigrams)
  -> multinomial logistic regression, C by the same CV. It sees no image.
- **image_only**: the image as an 8 x 8 RGB thumbnail (192 standardised
  pixels) -> logistic regression, C by CV. It sees no text.
  These two rows (not in the paper) say how far each modality alone
  gets on the same splits: a classifier of the *relation* between image and
  text must beat both.

When no embeddings file is given (or it does not exist), the SVM does not run
and the summary says why.

With a held-out set (``heldout_path``: a labelled world of its own, every row
of split ``heldout``), the models each repeat fitted on its training split
also predict every held-out pair (PREDICTIONS rows of split ``heldout``).
Nothing is fitted on it, and the test rows are the same as without it. The SVM
then needs the held-out pairs' embeddings (``heldout_embeddings``).
"""

from __future__ import annotations

import argparse
import json
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from cmisc_model import schemas as S
from cmisc_model.corpus.annotations import LabelledSplitConfig, repeat_split
from cmisc_model.errors import CmiscError

TASKS = ("cmi", "sc")


@dataclass
class BaselinesConfig:
    """The ``baselines`` section of params.yaml."""

    repeats: int = 5  # K evaluation repeats (labelled splits 0..K-1)
    svm_c_grid: list[float] = field(default_factory=lambda: [0.0003, 0.001, 0.003, 0.01])
    cv_folds: int = 3  # stratified folds on the training split (fewer when a class is rarer)
    max_iter: int = 2000  # liblinear iterations per fit
    standardise: bool = True  # zero mean, unit variance per embedding dimension (fitted inside each CV fold)
    include_val: bool = False  # also fit on the val split (it is never used for anything else here)
    n_jobs: int = 1  # parallel CV fits (GridSearchCV n_jobs; -1 = all cores)
    lr_c_grid: list[float] = field(default_factory=lambda: [0.001, 0.01, 0.1, 1.0])  # text_only, image_only
    thumbnail_px: int = 8  # image_only: side of the thumbnail whose pixels are the features

    def __post_init__(self):
        if self.repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {self.repeats}")
        if not self.svm_c_grid or min(self.svm_c_grid) <= 0:
            raise ValueError(f"svm_c_grid must be non-empty and positive, got {self.svm_c_grid}")
        if self.cv_folds < 2:
            raise ValueError(f"cv_folds must be >= 2, got {self.cv_folds}")


def labels(row: dict, task: str) -> int:
    return S.cmi_class(row["cmi"]) if task == "cmi" else S.sc_class(row["sc"])


def most_frequent_class(y: list[int]) -> int:
    """The mode of ``y``; ties go to the lower class so the result is deterministic."""
    if not y:
        raise CmiscError("most-frequent baseline: the training split is empty")
    counts = Counter(y)
    best = max(counts.values())
    return min(c for c, n in counts.items() if n == best)


def fit_svm(X: np.ndarray, y: np.ndarray, cfg: BaselinesConfig, seed: int):
    """Fit a Crammer–Singer linear SVM, choosing C by stratified k-fold CV on (X, y).

    Returns (fitted estimator with ``predict``, chosen C). With a single class
    in y the estimator predicts that class (there is nothing to separate).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    classes, counts = np.unique(y, return_counts=True)
    if classes.size < 2:
        return _Constant(int(classes[0])), None
    folds = int(min(cfg.cv_folds, counts.max()))
    search = GridSearchCV(
        _svm_pipeline(cfg, seed),
        {"svc__C": list(cfg.svm_c_grid)},
        cv=StratifiedKFold(n_splits=max(folds, 2), shuffle=True, random_state=seed),
        scoring="accuracy",
        refit=True,
        n_jobs=cfg.n_jobs,
    )
    with warnings.catch_warnings():
        # Rare classes (fewer members than folds) and liblinear's iteration cap
        # are expected on a few hundred items; they do not change the protocol.
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message=".*least populated class.*")
        warnings.filterwarnings("ignore", message=".*fits failed.*")
        search.fit(X, y)
    return search.best_estimator_, float(search.best_params_["svc__C"])


def fit_logistic(X, y: np.ndarray, cfg: BaselinesConfig, seed: int, text: bool):
    """Logistic regression on bag-of-words strings (``text``) or on a pixel matrix, C by stratified CV."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    classes, counts = np.unique(y, return_counts=True)
    if classes.size < 2:
        return _Constant(int(classes[0])), None
    first = ("bow", CountVectorizer(ngram_range=(1, 2), binary=True, token_pattern=r"\S+")) if text \
        else ("scale", StandardScaler())
    pipe = Pipeline([first, ("lr", LogisticRegression(max_iter=2000, random_state=seed))])
    folds = int(min(cfg.cv_folds, counts.max()))
    search = GridSearchCV(pipe, {"lr__C": list(cfg.lr_c_grid)}, scoring="accuracy", refit=True,
                          cv=StratifiedKFold(n_splits=max(folds, 2), shuffle=True, random_state=seed),
                          n_jobs=cfg.n_jobs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rare classes and lbfgs' iteration cap, as for the SVM
        search.fit(X, y)
    return search.best_estimator_, float(search.best_params_["lr__C"])


def text_features(rows: list[dict], text_cfg=None) -> dict[str, str]:
    """pair_id -> the text the model reads (normalised tokens, space-joined)."""
    from cmisc_model.text.normalise import TextConfig, TextNormaliser

    norm = TextNormaliser(text_cfg or TextConfig())
    return {r["pair_id"]: " ".join(t for s in norm.blocks(r["text_blocks"], r["source"]) for t in s) for r in rows}


def image_features(rows: list[dict], px: int) -> dict[str, np.ndarray]:
    """pair_id -> the image as px x px RGB pixels in [0, 1] (an unreadable image is an error naming it)."""
    from PIL import Image

    out = {}
    for r in rows:
        try:
            with Image.open(r["image_path"]) as img:
                out[r["pair_id"]] = np.asarray(img.convert("RGB").resize((px, px), Image.BILINEAR),
                                               dtype=np.float32).ravel() / 255.0
        except (OSError, ValueError) as e:
            raise CmiscError(f"pair {r['pair_id']}: image {r['image_path']} cannot be read ({e})") from e
    return out


class RowSpace:
    """Rotation onto an orthonormal basis of the training rows' span, (n, d) -> (n, rank).

    The article embeddings have more dimensions (2,400) than there are labelled
    training items (~600). A linear SVM's weights lie in the span of its training
    rows, and liblinear's dual solver reads the rows through their inner products,
    which the rotation keeps; so the fitted SVM predicts what it would on the full
    vectors (the same CV scores, C and predictions on the sample world), at a
    third of the cost."""

    def fit(self, X, y=None):
        X = np.asarray(X, dtype=np.float64)
        _, s, vt = np.linalg.svd(X, full_matrices=False)  # rows of vt: a basis of the row space
        self.basis_ = vt[s > s.max(initial=0.0) * max(X.shape) * np.finfo(np.float64).eps].T  # (d, rank)
        return self

    def transform(self, X):
        return np.asarray(X, dtype=np.float64) @ self.basis_

    def fit_transform(self, X, y=None):
        return self.fit(X, y).transform(X)

    def get_params(self, deep=True):  # no parameters: sklearn clones it per CV fold
        return {}

    def set_params(self, **params):
        return self


def _svm_pipeline(cfg: BaselinesConfig, seed: int):
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    steps = [("scale", StandardScaler())] if cfg.standardise else []
    steps.append(("span", RowSpace()))
    steps.append(("svc", LinearSVC(multi_class="crammer_singer", max_iter=cfg.max_iter, random_state=seed)))
    return Pipeline(steps)


class _Constant:
    def __init__(self, value: int):
        self.value = value

    def predict(self, X):
        return np.full(len(X), self.value, dtype=np.int64)


def _read_embeddings(path: Path) -> dict[str, np.ndarray]:
    table = S.read_table(path, S.EMBEDDINGS)
    ids = table.column("pair_id").to_pylist()
    flat = table.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    vectors = np.asarray(flat, dtype=np.float32).reshape(len(ids), S.ARTICLE_DIM)
    return dict(zip(ids, vectors))


def _matrix(rows: list[dict], emb: dict[str, np.ndarray], where: str) -> np.ndarray:
    missing = [r["pair_id"] for r in rows if r["pair_id"] not in emb]
    if missing:
        raise CmiscError(
            f"{where}: no embedding for {len(missing)} labelled pair(s), e.g. {', '.join(missing[:5])}"
        )
    return np.stack([emb[r["pair_id"]] for r in rows])


def _prediction_row(system: str, repeat: int, r: dict, cmi_pred: int, sc_pred: int, split: str = "test") -> dict:
    return {
        "system": system,
        "repeat": repeat,
        "pair_id": r["pair_id"],
        "source": r.get("source"),
        "split": split,
        "cmi_true": labels(r, "cmi"),
        "sc_true": labels(r, "sc"),
        "cmi_pred": int(cmi_pred),
        "sc_pred": int(sc_pred),
        "cmi_prob": None,
        "sc_prob": None,
    }


def run_baselines(
    labelled_path: str | Path,
    embeddings_path: str | Path | None,
    repeats: int,
    seed: int,
    cfg: BaselinesConfig,
    split_cfg: LabelledSplitConfig | None = None,
    progress: bool = False,
    text_cfg=None,
    heldout_path: str | Path | None = None,
    heldout_embeddings: str | Path | None = None,
) -> tuple[pa.Table, dict]:
    """Most-frequent (and, with embeddings, SVM) predictions for repeats 0..repeats-1.

    Returns (PREDICTIONS table, summary). The summary has ``systems``, the
    chosen C per repeat and task, the training majority classes, and
    ``svm_missing`` (a reason) when the SVM could not run. With
    ``heldout_path``, each repeat's models also score every held-out pair
    (``heldout_embeddings``: their article embeddings, needed by the SVM) and
    the summary has ``heldout`` (path, n).
    """
    split_cfg = split_cfg or LabelledSplitConfig()
    labelled_path = Path(labelled_path)
    data, summary = _load_features(labelled_path, embeddings_path, repeats, seed, cfg, text_cfg)
    held = None
    if heldout_path is not None:
        held = _load_heldout(Path(heldout_path), heldout_embeddings, data, cfg, text_cfg)
        summary["heldout"] = {"path": str(heldout_path), "n": len(held.rows)}
    fit_splits = ("train", "val") if cfg.include_val else ("train",)

    out: list[dict] = []
    summary["most_frequent"] = {}
    summary["svm_c"] = {}
    for k in _repeat_range(repeats, progress):
        split_rows = repeat_split(data.rows, seed, k, split_cfg)
        train = [r for r in split_rows if r["split"] in fit_splits]
        test = [r for r in split_rows if r["split"] == "test"]
        if not test:
            raise CmiscError(f"{labelled_path}: repeat {k} has no test items")
        out += _most_frequent_rows(k, train, test, summary, held)
        for system, is_text in (("text_only", True), ("image_only", False)):
            if (data.texts if is_text else data.pixels) is not None:
                out += _logistic_rows(system, is_text, k, (train, test), (data, held), cfg, seed, summary)
        if data.emb is not None:
            out += _svm_rows(k, train, test, (data, held), str(embeddings_path), cfg, seed, summary)
    from cmisc_model.evaluation.report import predictions_table

    return predictions_table(out, str(labelled_path)), summary


@dataclass
class _Features:
    """The labelled pairs and what each baseline sees of them (None: that baseline does not run)."""

    rows: list[dict]  # the columns the grouped split needs
    texts: dict[str, str]
    pixels: dict[str, np.ndarray] | None
    emb: dict[str, np.ndarray] | None


def _load_features(
    labelled_path: Path, embeddings_path: str | Path | None, repeats: int, seed: int, cfg: BaselinesConfig, text_cfg
) -> tuple[_Features, dict]:
    """Read the labelled pairs, their texts, images and embeddings; start the summary with what runs."""
    full = S.read_table(labelled_path, S.LABELLED).to_pylist()
    rows = [{k: r[k] for k in ("pair_id", "source", "doc_id", "cmi", "sc", "split")} for r in full]  # doc_id: the grouped split
    texts = text_features(full, text_cfg)
    no_image = [r["pair_id"] for r in full if r.get("image_status") != "ok" or not r.get("image_path")]
    pixels = None if no_image else image_features(full, cfg.thumbnail_px)
    emb = None
    summary: dict = {"labelled": str(labelled_path), "repeats": repeats, "seed": seed,
                     "systems": ["most_frequent", "text_only"] + ([] if no_image else ["image_only"])}
    if no_image:
        summary["image_only_missing"] = f"{len(no_image)} labelled pair(s) have no usable image, e.g. {no_image[0]}"
    if embeddings_path is None:
        summary["svm_missing"] = "no embeddings file given"
    elif not Path(embeddings_path).exists():
        summary["svm_missing"] = f"{embeddings_path} does not exist"
    else:
        emb = _read_embeddings(Path(embeddings_path))
        summary["systems"].append("svm")
        summary["embeddings"] = str(embeddings_path)
    return _Features(rows, texts, pixels, emb), summary


def _load_heldout(path: Path, embeddings_path: str | Path | None, data: _Features, cfg: BaselinesConfig,
                  text_cfg) -> _Features:
    """Read the held-out pairs and what each baseline that runs sees of them.

    Every baseline that runs must score every held-out pair, so a held-out pair
    without a usable image (image_only runs) or without an embedding (the SVM
    runs) is an error naming the file and the pair, as is a held-out pair that
    is also a labelled pair (it would leak into training)."""
    from cmisc_model.evaluation.heldout import read_heldout

    full = read_heldout(path)  # names the file when it is empty or a row is not of split heldout
    labelled_ids = {r["pair_id"] for r in data.rows}
    shared = [r["pair_id"] for r in full if r["pair_id"] in labelled_ids]
    if shared:
        raise CmiscError(f"{path}: {len(shared)} held-out pair(s) are also labelled pairs, e.g. {shared[0]}")
    rows = [{k: r[k] for k in ("pair_id", "source", "cmi", "sc", "split")} for r in full]
    pixels = None
    if data.pixels is not None:
        no_image = [r["pair_id"] for r in full if r.get("image_status") != "ok" or not r.get("image_path")]
        if no_image:
            raise CmiscError(f"{path}: image_only runs but {len(no_image)} held-out pair(s) have no usable image, "
                             f"e.g. {no_image[0]}")
        pixels = image_features(full, cfg.thumbnail_px)
    emb = None if data.emb is None else _heldout_embeddings(path, embeddings_path, rows)
    return _Features(rows, text_features(full, text_cfg), pixels, emb)


def _heldout_embeddings(path: Path, embeddings_path: str | Path | None, rows: list[dict]) -> dict[str, np.ndarray]:
    """The held-out pairs' article embeddings (the SVM runs, so every held-out pair needs one)."""
    if embeddings_path is None or not Path(embeddings_path).exists():
        what = "no held-out embeddings file given" if embeddings_path is None else f"{embeddings_path} does not exist"
        raise CmiscError(f"{path}: the SVM runs but {what} (--heldout-embeddings), "
                         f"so held-out pair {rows[0]['pair_id']} has no embedding")
    emb = _read_embeddings(Path(embeddings_path))
    missing = [r["pair_id"] for r in rows if r["pair_id"] not in emb]
    if missing:
        raise CmiscError(f"{embeddings_path}: no embedding for {len(missing)} held-out pair(s) of {path}, "
                         f"e.g. {', '.join(missing[:5])}")
    return emb


def _repeat_range(repeats: int, progress: bool):
    iterator = range(repeats)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="baselines: repeats", unit="repeat")
    return iterator


def _most_frequent_rows(k: int, train: list[dict], test: list[dict], summary: dict,
                        held: _Features | None) -> list[dict]:
    """The training split's mode per task, predicted for every test (and held-out) pair."""
    mode = {t: most_frequent_class([labels(r, t) for r in train]) for t in TASKS}
    summary["most_frequent"][str(k)] = mode
    out = [_prediction_row("most_frequent", k, r, mode["cmi"], mode["sc"]) for r in test]
    if held is not None:
        out += [_prediction_row("most_frequent", k, r, mode["cmi"], mode["sc"], "heldout") for r in held.rows]
    return out


def _predicted_rows(system: str, k: int, models: dict, rows: list[dict], X, split: str) -> list[dict]:
    """PREDICTIONS rows of ``rows`` (features ``X``, in the same order) from the fitted per-task models."""
    pred = {t: models[t].predict(X) for t in TASKS}
    return [_prediction_row(system, k, r, pred["cmi"][i], pred["sc"][i], split) for i, r in enumerate(rows)]


def _scored_rows(system: str, k: int, models: dict, test: list[dict], X_test, held: _Features | None,
                 X_held) -> list[dict]:
    """The test rows, then (with a held-out set) the held-out rows, from the same fitted models."""
    out = _predicted_rows(system, k, models, test, X_test, "test")
    if held is not None:
        out += _predicted_rows(system, k, models, held.rows, X_held(), "heldout")
    return out


def _logistic_rows(system: str, is_text: bool, k: int, splits: tuple[list[dict], list[dict]],
                   worlds: tuple[_Features, _Features | None], cfg: BaselinesConfig, seed: int,
                   summary: dict) -> list[dict]:
    """text_only or image_only on repeat ``k``: one logistic regression per task.

    ``splits``: (train, test) rows of the labelled set; ``worlds``: the
    labelled features and the held-out set (or None), each with its own
    texts or pixels (the held-out pair ids are another world's)."""
    def features(world: _Features, rs: list[dict]):
        feats = world.texts if is_text else world.pixels
        values = [feats[r["pair_id"]] for r in rs]
        return values if is_text else np.stack(values)

    (train, test), (data, held) = splits, worlds
    models = {}
    for t in TASKS:
        models[t], c = fit_logistic(features(data, train), np.array([labels(r, t) for r in train]), cfg, seed + k,
                                    is_text)
        summary.setdefault(f"{system}_c", {}).setdefault(str(k), {})[t] = c
    return _scored_rows(system, k, models, test, features(data, test), held, lambda: features(held, held.rows))


def _svm_rows(k: int, train: list[dict], test: list[dict], worlds: tuple[_Features, _Features | None], where: str,
              cfg: BaselinesConfig, seed: int, summary: dict) -> list[dict]:
    """The SVM on repeat ``k``: one model per task on the article embeddings.

    ``worlds``: the labelled features and the held-out set (or None, else
    its embeddings were checked complete when it was read)."""
    data, held = worlds
    X_train = _matrix(train, data.emb, where)
    X_test = _matrix(test, data.emb, where)
    models, chosen = {}, {}
    for t in TASKS:
        y = np.array([labels(r, t) for r in train])
        models[t], chosen[t] = fit_svm(X_train, y, cfg, seed + k)
    summary["svm_c"][str(k)] = chosen
    return _scored_rows("svm", k, models, test, X_test, held, lambda: _matrix(held.rows, held.emb, "held-out"))


def cli_main(argv: list[str]) -> int:
    from cmisc_model.config import BaseConfig, load_section
    from cmisc_model.corpus.assemble import CorpusConfig
    from cmisc_model.evaluation.report import write_predictions

    parser = argparse.ArgumentParser(prog="cmisc baselines", description=__doc__.split("\n\n")[0])
    parser.add_argument("--labelled", type=Path, required=True, help="labelled.parquet from the corpus stage")
    parser.add_argument("--embeddings", type=Path, help="article embeddings (cmisc embed); absent = no SVM")
    parser.add_argument("--out", type=Path, required=True, help="folder for predictions.parquet and summary.json")
    parser.add_argument("--params", default="params.yaml", help="params file (hyperparameters, seed, split)")
    parser.add_argument("--repeats", type=int, help="override baselines.repeats")
    parser.add_argument("--heldout", type=Path, help="held-out labelled.parquet (split heldout): also scored, never fitted on")
    parser.add_argument("--heldout-embeddings", type=Path, help="article embeddings of the held-out pairs (for the SVM)")
    args = parser.parse_args(argv)

    cfg = load_section(BaselinesConfig, "baselines", args.params)
    seed = load_section(BaseConfig, "base", args.params).seed
    split_cfg = load_section(CorpusConfig, "corpus", args.params).labelled
    repeats = args.repeats or cfg.repeats
    from cmisc_model.text.normalise import TextConfig

    text_cfg = load_section(TextConfig, "text", args.params)
    table, summary = run_baselines(args.labelled, args.embeddings, repeats, seed, cfg, split_cfg, progress=True,
                                   text_cfg=text_cfg, heldout_path=args.heldout,
                                   heldout_embeddings=args.heldout_embeddings)
    write_predictions(table, args.out / "predictions.parquet")
    with S.atomic_path(args.out / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    print(f"{args.out / 'predictions.parquet'}: {table.num_rows} predictions, systems {summary['systems']}, {repeats} repeat(s)")
    if "svm_missing" in summary:
        print(f"warning: SVM not run: {summary['svm_missing']}")
    return 0
