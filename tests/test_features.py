"""The frozen encoder's parts: scoring from the memo gives the figures of a full forward pass,
and each distinct (image, text) input is encoded once however many models read it."""

from __future__ import annotations

import pytest
import torch

from cmisc_model import schemas as S
from cmisc_model.evaluation.ablations import ablated_rows
from cmisc_model.models.config import ClassifierConfig
from cmisc_model.text.normalise import TextNormaliser
from cmisc_model.training import classifier as TC
from cmisc_model.training.features import PartsMemo, ScoringMemo, cached_probs, freeze_feature_parts
from tests.test_train_classifier import make_world


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    labelled, ae_dir = make_world(tmp_path_factory.mktemp("features"), n=30)
    ae = TC.read_autoencoder(ae_dir)
    rows = S.read_table(labelled, S.LABELLED).to_pylist()
    torch.manual_seed(0)
    model = TC.build_classifier(ae, ClassifierConfig(hidden_dim=8), "autoencoder").eval()
    freeze_feature_parts(model)
    return ae, rows, model


def dataset(ae, rows):
    return TC.LabelledDataset(rows, ae.vocab, TextNormaliser(ae.text_cfg), ae.cfg.image_size, False,
                              ae.resize_factor)


def test_scores_from_the_memo_equal_a_full_forward_pass(setup):
    ae, rows, model = setup
    ds = dataset(ae, rows)
    full, failed = TC.predict_probs(model, ds, 7, torch.device("cpu"))
    cached = cached_probs(model, PartsMemo().cache(model.encoder, ds, 5, torch.device("cpu")), ds, 5)
    assert not failed and full.keys() == cached.keys() == set(ds.pair_ids)
    for p in full:
        for a, b in zip(full[p], cached[p]):
            assert a == pytest.approx(b, abs=1e-5)


def count_encoder_work(model, monkeypatch) -> tuple[list, list]:
    """Images through the CNN and sentences through the sentence LSTM, call by call."""
    cnn_images, lstm_rows = [], []
    real_cnn, real_lstm = model.encoder.image.forward, model.encoder.sentence_lstm.forward
    monkeypatch.setattr(model.encoder.image, "forward", lambda x: cnn_images.append(x.shape[0]) or real_cnn(x))
    monkeypatch.setattr(model.encoder.sentence_lstm, "forward",
                        lambda x, *a: lstm_rows.append(x.shape[0]) or real_lstm(x, *a))
    return cnn_images, lstm_rows


def test_each_distinct_input_is_encoded_once(setup, monkeypatch, tmp_path):
    ae, rows, model = setup
    cnn_images, lstm_rows = count_encoder_work(model, monkeypatch)
    memo, dev = PartsMemo(), torch.device("cpu")
    first = memo.cache(model.encoder, dataset(ae, rows), 8, dev)
    n_images, n_sentences = sum(cnn_images), sum(lstm_rows)
    assert n_images == len({r["image_path"] for r in rows})
    assert n_sentences == len([k for k in memo.seen.sentences if k])
    # a second model on the same autoencoder, the same items in another order: nothing is encoded again
    again = memo.cache(model.encoder, dataset(ae, rows[::-1]), 8, dev)
    assert all(a is b for a, b in zip(first, again[::-1]))
    # images shuffled among the items: new (image, text) inputs, but no image or sentence is new
    shuffled = ablated_rows(rows, "images_shuffled", 3, tmp_path / "unused.png")
    memo.cache(model.encoder, dataset(ae, shuffled + shuffled), 8, dev)
    assert (sum(cnn_images), sum(lstm_rows)) == (n_images, n_sentences)
    assert len(memo.parts) == 2 * len(rows)


def test_a_trainable_encoder_reuses_its_encoded_images_and_sentences(setup, monkeypatch, tmp_path):
    """The no-AE model scores the shuffled and counterfactual sets with the intact set's encoded
    images and sentences: the same figures, and no CNN or sentence LSTM run for what it has seen."""
    ae, rows, model = setup
    dev = torch.device("cpu")
    full, _ = TC.predict_probs(model, dataset(ae, rows), 7, dev)
    shuffled = ablated_rows(rows, "images_shuffled", 3, tmp_path / "unused.png")
    full_shuffled, _ = TC.predict_probs(model, dataset(ae, shuffled), 7, dev)
    cnn_images, lstm_rows = count_encoder_work(model, monkeypatch)
    memo = ScoringMemo()
    reused, _ = TC.predict_probs(model, dataset(ae, rows), 7, dev, memo=memo)
    seen = sum(lstm_rows)
    reused_shuffled, _ = TC.predict_probs(model, dataset(ae, shuffled), 7, dev, memo=memo)
    assert sum(cnn_images) == len({r["image_path"] for r in rows})  # the second set ran no CNN
    assert seen > 0 and sum(lstm_rows) == seen  # nor the sentence LSTM
    assert seen == len([k for k in memo.sentences if k])  # each distinct sentence encoded once
    for want, got in ((full, reused), (full_shuffled, reused_shuffled)):
        assert want.keys() == got.keys()
        for p in want:
            for a, b in zip(want[p], got[p]):
                assert a == pytest.approx(b, abs=1e-5)
