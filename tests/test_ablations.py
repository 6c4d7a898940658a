"""Ablated test sets, counterfactual texts, ground-truth rules, presets and the scarcity test."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from cmisc_model.config import from_mapping, load_params
from cmisc_model.evaluation.ablations import (
    ablated_rows,
    counterfactual_rows,
    derangement,
    truth_rules,
)
from cmisc_model.presets import PRESETS, apply, set_args
from cmisc_model.sample_world import scenes as S
from cmisc_model.training.scarcity import paired_t, per_repeat, stage_metrics


def rows_with_scenes(n=8, seed=0):
    rng = np.random.default_rng(seed)
    rows, scenes = [], {}
    for i in range(n):
        scene = S.random_scene(rng, 2, 160)
        o = scene.salient
        sentences = [f"A {o.size} {o.colour} {o.shape} is shown {S.POSITION_PHRASES[o.position]}.",
                     "The bridge opened in 1901."]
        lab = S.label_sentences(scene, sentences)
        pid = f"p{i}"
        rows.append({"pair_id": pid, "source": "simplewiki", "image_path": f"/img/{i}.jpg", "cmi": lab.cmi,
                     "sc": lab.sc, "text_blocks": [{"titles": ["T"], "sentences": sentences}]})
        scenes[pid] = scene
    return rows, scenes


def test_derangement_moves_every_item():
    for n in (2, 3, 10, 91):
        d = derangement(n, 5)
        assert sorted(d) == list(range(n)) and all(d[i] != i for i in range(n))


def test_ablations_swap_one_part_and_keep_labels(tmp_path):
    rows, _ = rows_with_scenes()
    shuffled = ablated_rows(rows, "images_shuffled", 1, tmp_path / "blank.png")
    assert all(a["image_path"] != b["image_path"] for a, b in zip(rows, shuffled))
    assert [(r["pair_id"], r["cmi"], r["sc"], r["text_blocks"]) for r in shuffled] == \
           [(r["pair_id"], r["cmi"], r["sc"], r["text_blocks"]) for r in rows]
    texts = ablated_rows(rows, "texts_shuffled", 1, tmp_path / "blank.png")
    assert all(a["text_blocks"] != b["text_blocks"] for a, b in zip(rows, texts))
    assert [r["image_path"] for r in texts] == [r["image_path"] for r in rows]
    blank = ablated_rows(rows, "images_blank", 1, tmp_path / "blank.png")
    assert {r["image_path"] for r in blank} == {str(tmp_path / "blank.png")}
    with pytest.raises(ValueError):
        ablated_rows(rows, "nothing", 1, tmp_path)


def test_counterfactuals_change_the_label_by_the_generator_rules():
    rows, scenes = rows_with_scenes(12)
    cf = counterfactual_rows(rows, scenes, seed=3)
    assert cf, "every row has a correct mention of its salient object"
    by_id = {r["pair_id"]: r for r in rows}
    for r in cf:
        old = by_id[r["pair_id"]]
        assert (r["cmi"], r["sc"]) != (old["cmi"], old["sc"])
        lab = S.label_sentences(scenes[r["pair_id"]], [s for b in r["text_blocks"] for s in b["sentences"]])
        assert (lab.cmi, lab.sc) == (r["cmi"], r["sc"])
        assert r["text_blocks"][0]["titles"] == ["T"] and r["image_path"] == old["image_path"]


def test_truth_rules_name_the_rule_of_each_label():
    rows, scenes = rows_with_scenes(4)
    rules = truth_rules(rows + [{"pair_id": "c", "source": "coco", "text_blocks": []}], scenes)
    assert rules["p0"]["sc_rule"] == "salient correct"
    assert rules["c"] == {"cmi_rule": "coco caption", "sc_rule": "coco caption"}


def test_paper2017_preset_is_the_2017_recipe_and_valid():
    from cmisc_model.training.autoencoder import AutoencoderParams
    from cmisc_model.training.classifier import ClassifierParams

    params = apply(load_params("params.yaml"), "paper2017")
    ae = from_mapping(AutoencoderParams, params["autoencoder"], "autoencoder")
    cl = from_mapping(ClassifierParams, params["classifier"], "classifier")
    assert (ae.train.optimizer, ae.train.lr, ae.train.schedule) == ("sgd", 0.1, "epoch")
    assert (ae.model.fusion, ae.model.matching_weight, ae.model.thumb_channels) == ("late", 0.0, 1)
    assert not ae.data.hflip and cl.train.optimizer == "sgd" and not cl.train.freeze_features
    args = set_args("paper2017")
    assert args[0] == "-S" and "autoencoder.train.optimizer=sgd" in args and len(args) == 2 * len(PRESETS["paper2017"])
    # as the README uses it, `dvc exp run $(cmisc preset paper2017)`: the shell splits the
    # printed line at spaces, and every word must still be one -S or one key=value
    printed = subprocess.run([sys.executable, "-m", "cmisc_model", "preset", "paper2017"], capture_output=True,
                             text=True, check=True).stdout
    assert printed.split() == args
    assert "autoencoder.model.decoder_maps=[32,8,3]" in args


def test_paired_t_over_repeats():
    t = paired_t([0.8, 0.82, 0.79], [0.6, 0.65, 0.61])
    assert t["mean_diff"] == pytest.approx((0.2 + 0.17 + 0.18) / 3) and t["p"] < 0.01
    assert paired_t([0.5], [0.4])["p"] is None


def test_scarcity_takes_the_first_k_repeats_of_a_classifier_stage(tmp_path):
    """Fraction 1 of the curve is the classifier stage's run on the curve's K splits, when it has them."""
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"per_repeat": [{"repeat": k, "test": {"cmi_accuracy": 0.5 + k / 10,
                                                                      "sc_accuracy": 0.6}} for k in range(5)]}))
    assert [round(a, 2) for a in per_repeat(stage_metrics(path, 3), "cmi", 3)] == [0.5, 0.6, 0.7]
    assert stage_metrics(path, 6) is None  # fewer repeats than the curve needs: retrained
    assert stage_metrics(tmp_path / "missing.json", 3) is None
