"""The frozen encoder's parts, computed once (``classifier.train.freeze_features``).

With ``freeze_features`` the autoencoder's image CNN, word table and sentence
LSTM stay fixed, and so does everything ``ArticleEncoder.encode_parts``
computes from them (nothing trains through a cached tensor). The classifier
then trains and scores from cached parts (``Classifier.from_parts``), and the
expensive pass through the CNN runs once per item.

``PartsMemo`` goes one step further: every repeat of a stage starts from the
same autoencoder, so an (image, text) pair has the same parts in every repeat,
in the scarcity study's runs, and in every ablated or counterfactual set that
reuses it. The memo keys parts by what the encoder reads (image file, token
ids), so each distinct input is encoded once per process; and since the CNN
reads one image and the sentence LSTM one sentence, a shuffled-image pair or a
counterfactual text costs only what is new in it (``ScoringMemo``, which the
no-AE model also uses while its selected weights score).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from cmisc_model.models.classifier import Classifier
from cmisc_model.models.encoders import ArticleEncoder, EncodedParts
from cmisc_model.training.data import AutoencoderDataset, eval_loader


@dataclass
class ScoringMemo:
    """An encoder's outputs while its weights stay fixed (eval mode): per image file
    (``encoded_images``) and per sentence (``encoded_sentences``). Its owner is one selected
    model while it scores, or ``PartsMemo`` for a frozen autoencoder. The image encoder, the
    sentence LSTM and the word bags read one image or one sentence each, so the shuffled-image
    set needs neither again, and a counterfactual text only its edited sentences."""

    images: dict = field(default_factory=dict)
    sentences: dict = field(default_factory=dict)


@torch.no_grad()
def encoded_sentences(encoder: ArticleEncoder, tokens: torch.Tensor, memo: dict, grounded: bool) -> tuple:
    """tokens (B, S, T) -> (sentences (B, S, D_s), look (B, S, G*G), claim (B, S, D_i)), as
    ``encode_sentences`` and ``ground`` give them (look and claim None unless ``grounded``),
    from ``memo`` (a sentence's token ids -> its encodings) where the sentence was seen."""
    B, S, T = tokens.shape
    keys = [tuple(t for t in row if t) for row in tokens.reshape(B * S, T).tolist()]  # pads: ()
    new = list(dict.fromkeys(k for k in keys if k not in memo))
    if new:
        x = tokens.new_zeros(len(new), 1, max(len(k) for k in new) or 1)  # (N, 1, T') one sentence each
        for n, k in enumerate(new):
            x[n, 0, : len(k)] = torch.tensor(k, dtype=tokens.dtype)
        sentences = encoder.encode_sentences(x)[:, 0]  # (N, D_s)
        look, claim = encoder.ground(x) if grounded else (None, None)  # (N, 1, G*G), (N, 1, D_i)
        for n, k in enumerate(new):
            memo[k] = (sentences[n], None if look is None else look[n, 0], None if claim is None else claim[n, 0])
    rows = [memo[k] for k in keys]

    def stacked(f: int) -> torch.Tensor | None:  # field f of every sentence -> (B, S, D)
        return None if rows[0][f] is None else torch.stack([r[f] for r in rows]).view(B, S, -1)

    return stacked(0), stacked(1), stacked(2)


@torch.no_grad()
def encoded_images(encoder: ArticleEncoder, batch: dict, memo: dict, device: torch.device) -> tuple:
    """The image encoder's output for a batch, ``(image (B, D_i), regions (B, G*G, D_i) | None)``,
    from ``memo`` (image file -> one image's output) where the file was seen, else encoded and
    added: a trainable encoder's memo lives as long as its weights do (one selected model), and
    saves the CNN on the ablated and counterfactual sets that reuse the intact set's images."""
    keys = batch["image_keys"]
    new = [b for b, key in enumerate(keys) if key not in memo]
    if new:
        image, regions = encoder.image(batch["images"][new].to(device))
        for j, b in enumerate(new):
            memo[keys[b]] = (image[j], None if regions is None else regions[j])
    image = torch.stack([memo[key][0] for key in keys])  # (B, D_i)
    regions = None if memo[keys[0]][1] is None else torch.stack([memo[key][1] for key in keys])  # (B, G*G, D_i)
    return image, regions


@torch.no_grad()
def memo_parts(encoder: ArticleEncoder, batch: dict, memo: ScoringMemo, device: torch.device) -> EncodedParts:
    """``encoder.encode_parts`` of a batch (eval mode), each image and sentence encoded once in ``memo``."""
    tokens = batch["tokens"].to(device)
    image, regions = encoded_images(encoder, batch, memo.images, device)
    texts = encoded_sentences(encoder, tokens, memo.sentences, regions is not None)
    return encoder.parts_with_image(image, regions, tokens, texts=texts)


@torch.no_grad()
def cache_parts(encoder: ArticleEncoder, ds: AutoencoderDataset, batch_size: int, device: torch.device,
                indices: list[int] | None = None, seen: ScoringMemo | None = None) -> list:
    """Each item's encoder parts (eval mode, centre crop), computed once:
    ``[(image, regions, sentences, look, claim, fit)]`` (the last three None for late fusion,
    fit None without region word prediction); None for an item whose image does not decode
    (and, with ``indices``, for the items not asked for). ``seen``: the images and sentences
    encoded before, reused and extended."""
    was_training = encoder.training
    encoder.eval()
    cache: list = [None] * len(ds)
    for batch in eval_loader(ds, batch_size, indices):
        if not batch["pair_ids"]:
            continue
        if seen is None:
            parts = encoder.encode_parts(batch["images"].to(device), batch["tokens"].to(device))
        else:
            parts = memo_parts(encoder, batch, seen, device)
        for b, i in enumerate(batch["indices"]):
            n = int(parts.sentence_mask[b].sum())
            regions = None if parts.regions is None else parts.regions[b]
            look = None if parts.look is None else parts.look[b, :n]
            claim = None if parts.claim is None else parts.claim[b, :n]
            fit = None if parts.fit is None else parts.fit[b, :n]
            cache[i] = (parts.image[b], regions, parts.sentences[b, :n], look, claim, fit)
    encoder.train(was_training)
    return cache


def cached_batch(cache: list, indices: list[int], drop: torch.nn.Module) -> EncodedParts:
    """Cached parts of ``indices`` -> one padded EncodedParts, with the encoder's dropout applied
    (to the real sentences only, before padding: pads are masked anyway, and dropout's random
    draws over a batch padded to its longest text cost more than the rest of a head step)."""
    items = [cache[i] for i in indices]
    lengths = [it[2].shape[0] for it in items]
    S = max(lengths + [1])
    mask = torch.arange(S, device=items[0][2].device) < torch.tensor(lengths, device=items[0][2].device).unsqueeze(1)

    def padded(k: int, dropped: bool) -> torch.Tensor | None:  # per-sentence field k, (B, S, D), zero pads
        if items[0][k] is None:
            return None
        real = torch.cat([it[k] for it in items])  # (sum of lengths, D) in batch order
        out = real.new_zeros(len(items), S, real.shape[1])
        out[mask] = drop(real) if dropped else real
        return out

    image = drop(torch.stack([it[0] for it in items]))  # (B, D_i)
    regions = None if items[0][1] is None else drop(torch.stack([it[1] for it in items]))  # (B, G*G, D_i)
    fit = padded(5, False) if len(items[0]) > 5 else None
    return EncodedParts(image, regions, padded(2, True), mask, padded(3, False), padded(4, True), fit)


def freeze_feature_parts(model: Classifier) -> None:
    """``freeze_features``: the image encoder, the word table and the sentence LSTM stop training."""
    for part in (model.encoder.image, model.encoder.embed, model.encoder.sentence_lstm):
        part.requires_grad_(False)


@torch.no_grad()
def cached_probs(model: Classifier, cache: list, ds: AutoencoderDataset, batch_size: int) -> dict:
    """Eval-mode probabilities per pair from cached parts, ``{pair_id: (cmi_prob[5], sc_prob[5])}``:
    the figures of a full forward pass without re-running the fixed CNN and sentence LSTM."""
    was_training = model.training
    model.eval()
    kept = [i for i, c in enumerate(cache) if c is not None]
    out = {}
    for k in range(0, len(kept), batch_size):
        idx = kept[k : k + batch_size]
        res = model.from_parts(cached_batch(cache, idx, model.encoder.drop))
        cmi, sc = torch.softmax(res.cmi_logits.float(), 1).cpu(), torch.softmax(res.sc_logits.float(), 1).cpu()
        for b, i in enumerate(idx):
            out[ds.pair_ids[i]] = (cmi[b].tolist(), sc[b].tolist())
    model.train(was_training)
    return out


def input_key(ds: AutoencoderDataset, i: int) -> tuple:
    """What the encoder reads of item i: its image file and its token ids."""
    return ds.paths[i], tuple(map(tuple, ds.ids[i]))


class PartsMemo:
    """Encoder parts per distinct input, shared by every model built on one frozen autoencoder;
    a new input (an image with another text) reuses the images and sentences encoded before."""

    def __init__(self) -> None:
        self.parts: dict[tuple, tuple | None] = {}
        self.seen = ScoringMemo()

    def cache(self, encoder: ArticleEncoder, ds: AutoencoderDataset, batch_size: int, device: torch.device) -> list:
        """``cache_parts(encoder, ds, ...)``, encoding only the items not seen before. ``ds`` must
        read centre crops (``train=False``), as ``cache_parts`` does: one entry serves every reading."""
        keys = [input_key(ds, i) for i in range(len(ds))]
        first = {}
        for i, k in enumerate(keys):
            if k not in self.parts:
                first.setdefault(k, i)
        if first:
            todo = sorted(first.values())
            fresh = cache_parts(encoder, ds, batch_size, device, todo, self.seen)
            self.parts.update((keys[i], fresh[i]) for i in todo)
        return [self.parts[k] for k in keys]
