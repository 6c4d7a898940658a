"""Linear probes: does the article embedding know what the image shows?

For pairs whose scene is known (the sample world's ``scenes.jsonl``), a
logistic regression is fitted on the autoencoder's article embeddings of the
training split and scored on the validation and test splits, for each scene
attribute: the number of objects, and the salient (largest) object's colour,
shape and position. Beside it, the same probe on the text alone (bag of words):
the text mentions some objects, so it knows some of this; what the embedding
knows beyond the text is what it took from the image.
"""

from __future__ import annotations

import numpy as np

from cmisc_model.sample_world import scenes as S

ATTRIBUTES = {
    "n_objects": lambda s: len(s.objects),
    "salient_colour": lambda s: s.salient.colour,
    "salient_shape": lambda s: s.salient.shape,
    "salient_position": lambda s: s.salient.position,
}


def _fit_score(X_train, y_train, X_test, y_test, text: bool) -> float:
    import warnings

    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(set(y_train)) < 2:
        return float(np.mean(np.array(y_test) == y_train[0]))
    first = CountVectorizer(ngram_range=(1, 2), binary=True, token_pattern=r"\S+") if text else StandardScaler()
    model = make_pipeline(first, LogisticRegression(max_iter=1000, C=0.1 if not text else 1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X_train, y_train)
    return float(np.mean(model.predict(X_test) == np.array(y_test)))


def probe(embeddings: dict[str, np.ndarray], texts: dict[str, str], rows: list[dict],
          scenes: dict[str, S.Scene]) -> dict:
    """``{attribute: {"embedding", "text_only", "majority", "n_train", "n_test"}}`` (test accuracy)."""
    known = [r for r in rows if r["pair_id"] in scenes and r["pair_id"] in embeddings]
    train = [r for r in known if r["split"] == "train"]
    test = [r for r in known if r["split"] != "train"]
    out = {}
    if not train or not test:
        return out
    for name, attr in ATTRIBUTES.items():
        y_tr = [attr(scenes[r["pair_id"]]) for r in train]
        y_te = [attr(scenes[r["pair_id"]]) for r in test]
        values, counts = np.unique(y_tr, return_counts=True)
        out[name] = {
            "embedding": _fit_score(np.stack([embeddings[r["pair_id"]] for r in train]), y_tr,
                                    np.stack([embeddings[r["pair_id"]] for r in test]), y_te, text=False),
            "text_only": _fit_score([texts[r["pair_id"]] for r in train], y_tr,
                                    [texts[r["pair_id"]] for r in test], y_te, text=True),
            "majority": float(np.mean(np.array(y_te) == values[counts.argmax()])),
            "n_train": len(train), "n_test": len(test),
        }
    return out


# Per region of the 3 x 3 grid, what the object standing there is (None: no object).
REGION_ATTRIBUTES = {
    "occupied": lambda o, salient: o is not None,
    "colour": lambda o, salient: o.colour,
    "shape": lambda o, salient: o.shape,
    "size": lambda o, salient: o.size,
    "salient": lambda o, salient: o == salient,
}


def region_targets(scene: S.Scene, grid: int = 3) -> list[S.SceneObject | None]:
    """The object in each region, in the encoder's order (row-major over the grid)."""
    cells: list[S.SceneObject | None] = [None] * grid * grid
    for o in scene.objects:
        col, row = S.POSITIONS[o.position]
        cells[row * grid + col] = o
    return cells


def region_probe(regions: dict[str, np.ndarray], rows: list[dict], scenes: dict[str, S.Scene]) -> dict:
    """Does each region vector know what stands in its region? ``regions``: pair_id -> (9, D)
    region features (the encoder's, before any text). A logistic regression per attribute
    on the regions of the training split, scored on the others' regions: ``occupied`` over
    all regions, ``colour``/``shape``/``size``/``salient`` over occupied ones. These are the
    facts a text's mention is checked against, so a weak one caps what the classifier can
    get right: the weak attributes are those the image features lose."""
    known = [r for r in rows if r["pair_id"] in scenes and r["pair_id"] in regions]
    train = [r for r in known if r["split"] == "train"]
    test = [r for r in known if r["split"] != "train"]
    out: dict = {}
    if not train or not test:
        return out

    def table(part: list[dict], name: str) -> tuple[np.ndarray, list]:
        X, y = [], []
        for r in part:
            scene = scenes[r["pair_id"]]
            for vec, o in zip(regions[r["pair_id"]], region_targets(scene)):
                if name == "occupied" or o is not None:
                    X.append(vec)
                    y.append(REGION_ATTRIBUTES[name](o, scene.salient))
        return np.stack(X), y

    for name in REGION_ATTRIBUTES:
        X_tr, y_tr = table(train, name)
        X_te, y_te = table(test, name)
        values, counts = np.unique(y_tr, return_counts=True)
        out[name] = {
            "region": _fit_score(X_tr, y_tr, X_te, y_te, text=False),
            "majority": float(np.mean(np.array(y_te) == values[counts.argmax()])),
            "n_train": len(y_tr), "n_test": len(y_te),
        }
    return out
