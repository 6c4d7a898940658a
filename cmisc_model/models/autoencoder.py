"""The autoencoder of paper Fig. 4a: encoder -> article embedding -> text and image decoders.

Loss = text cross-entropy (mean over real tokens) + image_loss_weight x image
MSE against the un-jittered target image + matching_weight x image-text
matching (ITM) binary cross-entropy.

ITM (departure from 2017): reconstruction alone does not teach the
encoder to relate what a sentence says to what the image shows. So every text
is also encoded with another item's image of the batch (the batch rolled by
one; pairs that share an image file are left out) and a linear head on the
article embedding tells the own image from the other. Under cross-attention
fusion every text is also scored against *every* image of the batch by its
sentences' summed agreement with what that sentence looks at (InfoNCE, 15
negatives per text at batch 16): with one negative per text and a head on
the article only, matching stayed at chance for 500 steps. The
encoder parts are computed once; only the fusion runs twice. The encoder is its own module
(``self.encoder``), so the classifier can take it, and its state dict lives
under the ``encoder.`` prefix of the autoencoder's.

Region word prediction (departure from 2017; ``region_words_weight``):
each sentence's words are predicted from the region it looks at. Matching is won
by colour and place, so the regions never had to say more; told by the texts
which words belong to a region, they must. Only sentences that look at one
region (mentions) count; filler looks everywhere and predicts nothing about it.
The prediction is a product of two experts (``ArticleEncoder.word_log_probs``):
the region (a linear map to the vocabulary) and the word before and after each
word. The neighbours explain the sentence's form ("is shown in the"), so the
region's gradient comes from the words only the image can tell (which colour,
which shape); with the region alone, function words' residuals led the CNN's
gradient and shapes were never learnt on the sample world.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from cmisc_model.models.config import ModelConfig
from cmisc_model.models.decoders import ImageDecoder, TextDecoder
from cmisc_model.models.encoders import ArticleEncoder


class AEOutput(NamedTuple):
    loss: torch.Tensor  # text_loss + image_loss_weight * image_loss
    text_loss: torch.Tensor  # mean CE per real token (perplexity = exp)
    image_loss: torch.Tensor  # mean squared error per pixel value
    n_tokens: int  # real tokens behind text_loss, to weight batch means
    recon: torch.Tensor  # (B, 3, H, W) reconstructed image in [-1, 1]
    match_loss: torch.Tensor  # ITM BCE (0 when matching_weight is 0 or no negative exists)
    match_accuracy: torch.Tensor  # share of ITM decisions (own and other image) that are right
    region_words_loss: torch.Tensor  # mean -log P(word | its sentence's region) (0 when off)


class Autoencoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = ArticleEncoder(cfg)
        self.text_decoder = TextDecoder(cfg)
        self.image_decoder = ImageDecoder(cfg)
        self.match_head = self.sentence_match_head = None
        if cfg.matching_weight > 0:
            self.match_head = nn.Linear(cfg.article_dim, 1)
            if cfg.fusion == "cross_attention":
                # starts as the plain dot product what(s) . seen (a random init's
                # weighted sum hid the signal at first)
                # (no bias: a text's scores are compared across images, where a bias cancels)
                self.sentence_match_head = nn.Linear(cfg.image_dim, 1, bias=False)
                nn.init.ones_(self.sentence_match_head.weight)

    def encode(self, images: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """images (B, 3, H, W), tokens (B, S, T) -> article embedding (B, article_dim)."""
        return self.encoder(images, tokens)

    def forward(
        self,
        images: torch.Tensor,
        tokens: torch.Tensor,
        target_images: torch.Tensor | None = None,
        image_keys: list | None = None,
    ) -> AEOutput:
        """``target_images``: the images to reconstruct (default: ``images``);
        ``image_keys``: one id per image file, so that ITM never takes a pair
        that shares its image as a negative (default: all images differ)."""
        target = images if target_images is None else target_images  # (B, 3, H, W)

        parts = self.encoder.encode_parts(images, tokens, with_fit=False)
        article, agreement = self.encoder.fuse_parts(parts, with_agreement=True)  # (B, A), (B, S, D_i) | None

        # text: word vectors vs the shared embedding table
        text_loss, n_tokens = self.text_decoder(article, tokens, self.encoder.embed.weight)

        # image: thumbnail -> upsampled reconstruction
        recon = self.image_decoder(article)  # (B, 3, H, W)
        image_loss = F.mse_loss(recon.float(), target.float())

        # image-text matching: own image (1) vs the previous item's image (0)
        match_loss, match_acc = self.match(article, agreement, parts, image_keys)

        # region word prediction: each mention's words from the region it looks at
        region_words_loss = self.region_words(parts, tokens)

        loss = (text_loss + self.cfg.image_loss_weight * image_loss + self.cfg.matching_weight * match_loss
                + self.cfg.region_words_weight * region_words_loss)
        return AEOutput(loss, text_loss, image_loss, n_tokens, recon, match_loss, match_acc, region_words_loss)

    def region_words(self, parts, tokens: torch.Tensor) -> torch.Tensor:
        """Mean -log P(word | the words beside it, the region its sentence looks at) over the known
        words of the sentences that look at one region (attention peak > 0.3; the uniform look is 1/9)."""
        if self.encoder.region_words is None:
            return parts.image.new_zeros((), dtype=torch.float32)
        looking = parts.look.detach().amax(dim=2) > 0.3  # (B, S)
        pick = looking.clone()
        pick[0, 0] = True  # at least one sentence, so that both experts always get a gradient (DDP)
        seen = (parts.look @ parts.regions.to(parts.look.dtype))[pick]  # (N, D_i)
        tok = tokens[pick]  # (N, T)
        logp = self.encoder.word_log_probs(tok, seen)  # (N, T)
        counted = (tok > 1) & looking[pick].unsqueeze(1)  # not pad, not unknown, a looking sentence
        return -(logp * counted).sum() / counted.sum().clamp(min=1)

    def match(self, article: torch.Tensor, agreement: torch.Tensor | None, parts,
              image_keys: list | None) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (ITM loss: article-head BCE, plus the sentence-level InfoNCE under cross-attention;
        accuracy of the sentence-level choice among the batch's images (chance 1/B), or of the
        article head (late fusion))."""
        zero = article.new_zeros((), dtype=torch.float32)
        B = article.shape[0]
        if self.match_head is None or B < 2:
            return zero, zero
        keys = list(range(B)) if image_keys is None else list(image_keys)
        valid = torch.tensor([keys[b] != keys[b - 1] for b in range(B)], device=article.device)  # (B,)
        if not valid.any():
            return zero, zero
        negative = self.encoder.fuse_parts(parts.roll(1))  # (B, A) text b with image b - 1

        def bce(pos: torch.Tensor, neg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            logits = torch.cat([pos, neg]).float()
            labels = torch.cat([torch.ones_like(pos), torch.zeros_like(neg)]).float()
            return F.binary_cross_entropy_with_logits(logits, labels), ((logits > 0).float() == labels).float().mean()

        loss, accuracy = bce(self.match_head(article).squeeze(1), self.match_head(negative)[valid].squeeze(1))
        if self.sentence_match_head is not None:
            sentence_loss, accuracy = self.contrast(parts, keys)
            loss = loss + sentence_loss
        return loss, accuracy

    def contrast(self, parts, keys: list) -> tuple[torch.Tensor, torch.Tensor]:
        """Sentence-level matching against every image of the batch (InfoNCE).

        Text i's score for image j is the sum over its sentences of each one's agreement
        with what that sentence looks at in image j (the place a sentence looks at depends on its
        words only, so all B x B scores cost one einsum). Each text must pick its
        own image among the batch's; images of the same file are masked out.
        Returns (cross-entropy, share of texts whose own image scores highest).
        """
        sentences = parts.sentences  # (B, S, D_s)
        has_text = parts.sentence_mask.any(dim=1)  # (B,) an empty text agrees with nothing
        if not has_text.any():
            z = sentences.new_zeros((), dtype=torch.float32)
            return z, z
        # head(claim * (look @ regions_j)) = sum over cells of look x (head-weighted claim . region):
        # (B, B, S, G*G) instead of (B, B, S, D_i), so a batch of 128 fits
        weighted = parts.claim * self.sentence_match_head.weight.to(parts.claim.dtype)  # (B, S, D_i)
        per_cell = torch.einsum("bsd,jld->bjsl", weighted, parts.regions.to(weighted.dtype))  # (B, B, S, G*G)
        scores = (per_cell * parts.look.unsqueeze(1)).sum(dim=3).float()  # (B, B, S)
        # summed over the text's sentences: with the best sentence only (max) a text's
        # non-visual sentences never learned to score 0, and matching stayed weak
        scores = (scores * parts.sentence_mask.unsqueeze(1)).sum(dim=2)  # (B, B) text x image
        B = scores.shape[0]
        same = torch.tensor([[keys[i] == keys[j] and i != j for j in range(B)] for i in range(B)],
                            device=scores.device)
        scores = scores.masked_fill(same, -1e4)
        target = torch.arange(B, device=scores.device)
        loss = F.cross_entropy(scores[has_text], target[has_text])
        accuracy = (scores[has_text].argmax(dim=1) == target[has_text]).float().mean()
        return loss, accuracy


def encoder_state_from_autoencoder(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An autoencoder state dict -> the ``ArticleEncoder`` part (``encoder.`` prefix stripped)."""
    prefix = "encoder."
    state = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
    if not state:
        raise ValueError("no 'encoder.' keys: not an autoencoder state dict")
    return state
