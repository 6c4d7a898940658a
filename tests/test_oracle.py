"""The oracle study (cmisc_model/diagnostics/oracle.py): perfect perception fed to the classifier head."""

from __future__ import annotations

import random

import pytest
import torch

from cmisc_model import schemas
from cmisc_model.corpus.annotations import LabelledSplitConfig, repeat_split
from cmisc_model.diagnostics.oracle import attribute_vector, oracle_item, transform
from cmisc_model.errors import CmiscError
from cmisc_model.sample_world import scenes as S
from cmisc_model.training import classifier as TC
from cmisc_model.training.data import DataConfig
from tests.test_train_classifier import make_world, tiny_params

SCENE = S.Scene((S.SceneObject("star", "red", "large", "upper left", 24),
                 S.SceneObject("circle", "blue", "small", "lower right", 12)), (240, 240, 240), "dots")
SENTENCES = ["a large red star is shown in the upper left .",   # correct
             "the town was founded in 1820 .",                  # filler
             "a small green circle is in the lower right ."]    # contradicting (colour)


def cached(n_sentences: int, L: int = 9, D: int = 32) -> tuple:
    torch.manual_seed(0)
    return (torch.randn(D), torch.randn(L, D), torch.randn(n_sentences, 16),
            torch.softmax(torch.randn(n_sentences, L), 1), torch.randn(n_sentences, D), torch.randn(n_sentences, 2))


def test_regions_hold_the_objects_and_mentions_look_at_their_region():
    _, regions, _, look, claim, _ = oracle_item(cached(3), SCENE, SENTENCES, "both")
    assert regions[0].sum() > 0 and regions[8].sum() > 0  # upper left, lower right
    assert regions[[1, 2, 3, 4, 5, 6, 7]].abs().sum() == 0
    assert look[0].argmax() == 0 and look[0].max() == 1 and look[2].argmax() == 8
    assert torch.allclose(look[1], torch.full((9,), 1 / 9)) and claim[1].abs().sum() == 0
    # what a mention claims agrees with its region on colour and shape exactly when it is right
    agree = (claim * (look @ regions))[:, 1:17].sum(1)
    assert agree[0] == 2 * 9.0 and agree[2] == 9.0  # shape only: the colour is contradicted


def test_image_mode_keeps_the_autoencoders_looks_and_claims():
    part = cached(3)
    _, regions, _, look, claim, fit = oracle_item(part, SCENE, SENTENCES, "image")
    assert torch.equal(look, part[3]) and torch.equal(claim, part[4])
    assert fit.shape == part[5].shape and fit.abs().sum() == 0  # the real regions' word fit: zeroed
    assert not torch.equal(regions, part[1])


def test_verdict_mode_changes_only_the_word_fit_to_the_true_verdict():
    part = cached(3)
    image, regions, sent, look, claim, fit = oracle_item(part, SCENE, SENTENCES, "verdict")
    assert all(torch.equal(a, b) for a, b in zip((image, regions, sent, look, claim), part[:5]))
    assert fit.tolist() == [[1.0, 1.0], [0.0, 0.0], [-1.0, -1.0]]  # correct, filler, contradicting
    _, regions, _, _, _, fit2 = oracle_item(part, SCENE, SENTENCES, "verdict_salient")
    assert torch.equal(fit2, fit) and torch.equal(regions[:, 1:], part[1][:, 1:])
    assert regions[:, 0].tolist() == [3.0] + [0.0] * 8  # the large red star, upper left
    # --flip turns verdicts of depicted objects round, never a sentence that is no mention
    *_, flipped = oracle_item(part, SCENE, SENTENCES, "verdict", 1.0, random.Random(0))
    assert flipped.tolist() == [[-1.0, -1.0], [0.0, 0.0], [1.0, 1.0]]
    *_, kept = oracle_item(part, SCENE, SENTENCES, "verdict", 0.0, random.Random(0))
    assert torch.equal(kept, fit)
    with pytest.raises(ValueError, match="word fit"):
        oracle_item(part[:5], SCENE, SENTENCES, "verdict")


def test_salient_mode_marks_the_largest_object_only():
    _, regions, _, _, _, _ = oracle_item(cached(3), SCENE, SENTENCES, "salient")
    assert regions[0, 19] > 0 and regions[8, 19] == 0
    assert attribute_vector(None, 32).abs().sum() == 0


def test_items_without_a_scene_keep_their_parts():
    class DS:
        def __init__(self):
            self.rows = [{"pair_id": "coco1", "source": "coco", "text_blocks": []}]

    cache = [cached(1)]
    out = transform({}, None, "both")(cache, DS())
    assert out[0] is cache[0]
    assert transform({}, None, "real")(cache, DS()) is cache


def test_parts_transform_needs_frozen_features(tmp_path):
    labelled, ae_dir = make_world(tmp_path)
    rows = schemas.read_table(labelled, schemas.LABELLED).to_pylist()
    split = repeat_split(rows, 7, 0, LabelledSplitConfig())
    with pytest.raises(CmiscError, match="freeze_features"):
        TC.train_repeat(TC.read_autoencoder(ae_dir), split, tiny_params(freeze_features=False), DataConfig(),
                        "autoencoder", 7, torch.device("cpu"), parts_transform=lambda c, ds: c)
