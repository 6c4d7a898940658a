"""Linear probes: does the article embedding know what the image shows?

For pairs whose scene is known (the sample world's ``scenes.jsonl``), a
logistic regression is fitted on the autoencoder's article embeddings of the
training split and scored on the validation and test splits, for each scene
attribute: the number of objects, and the salient (largest) object's colour,
shape and position. Beside it, the same probe on the text alone (bag of words):
the text mentions some objects, so it knows some of this; what the embedding
knows beyond the text is what it took from the image (issue 10).
"""

from __future__ import annotations

import numpy as np

from cmisc_model import scenes as S

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
