"""Named sets of params changes, e.g. the 2017 recipe, for ``dvc exp run``.

    dvc exp run $(cmisc preset paper2017)     # the 2017 network and recipe as an experiment
    cmisc preset paper2017 --list             # what it changes, one key per line

A preset is a list of ``-S key=value`` changes, so an experiment run with it
shows exactly those params in ``dvc exp show`` next to the default recipe.
"""

from __future__ import annotations

import argparse
import json

# The 2017 code (original_impl.md §§6-7), on the CPU-sized network of params.yaml:
# late fusion, a one-channel 30 x 30 thumbnail, image loss weight 1, no
# image-text matching, plain SGD at 0.1 halved per epoch (AE) / every 2 epochs
# (classifier), everything fine-tuned, no text-mirroring flip (2017 flipped the
# image alone, which breaks the labels, so the flip is off here).
PRESETS: dict[str, dict[str, object]] = {
    "paper2017": {
        "autoencoder.model.fusion": "late",
        "autoencoder.model.thumb_size": 30,
        "autoencoder.model.thumb_channels": 1,
        "autoencoder.model.decoder_maps": [32, 8, 3],
        "autoencoder.model.decoder_dropout": 0.1,
        "autoencoder.model.image_loss_weight": 1.0,
        "autoencoder.model.matching_weight": 0.0,
        "autoencoder.model.region_words_weight": 0.0,
        "autoencoder.train.optimizer": "sgd",
        "autoencoder.train.lr": 0.1,
        "autoencoder.train.weight_decay": 0.0,
        "autoencoder.train.schedule": "epoch",
        "autoencoder.train.epochs": 2,
        "autoencoder.train.ground_epochs": 0,
        "autoencoder.train.pre_ground_epochs": 0,
        "autoencoder.data.hflip": False,
        "classifier.model.evidence_dim": 0,
        "classifier.model.article_in_head": True,
        "classifier.train.optimizer": "sgd",
        "classifier.train.lr": 0.1,
        "classifier.train.weight_decay": 0.0,
        "classifier.train.schedule": "epoch",
        "classifier.train.epochs": 6,
        "classifier.train.no_ae_epochs": 6,
        "classifier.train.freeze_features": False,
    },
}


def set_args(name: str) -> list[str]:
    """``["-S", "key=value", ...]`` for ``dvc exp run`` (values as YAML/JSON, without spaces:
    ``$(cmisc preset NAME)`` is split by the shell, and "[32, 8, 3]" would become three words)."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}")
    out = []
    for key, value in PRESETS[name].items():
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        out += ["-S", f"{key}={text}"]
    return out


def apply(params: dict, name: str) -> dict:
    """A copy of a loaded params.yaml mapping with the preset's values set."""
    import copy

    out = copy.deepcopy(params)
    for key, value in PRESETS[name].items():
        *path, last = key.split(".")
        node = out
        for part in path:
            node = node[part]
        if last not in node:
            raise KeyError(f"preset {name!r}: {key} is not a params key")
        node[last] = value
    return out


def cli_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="cmisc preset", description="print a named preset as dvc exp run -S arguments")
    ap.add_argument("name", choices=sorted(PRESETS), help="the preset")
    ap.add_argument("--list", action="store_true", help="one key=value per line instead")
    args = ap.parse_args(argv)
    pairs = set_args(args.name)
    print("\n".join(pairs[1::2]) if args.list else " ".join(pairs))
    return 0
