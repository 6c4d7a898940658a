"""The autoencoder of paper Fig. 4a: encoder -> article embedding -> text and image decoders.

Loss = text cross-entropy (mean over real tokens) + image_loss_weight x image
MSE against the un-jittered target image. The encoder is its own module
(``self.encoder``), so the classifier can take it, and its state dict lives
under the ``encoder.`` prefix of the autoencoder's.
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


class Autoencoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = ArticleEncoder(cfg)
        self.text_decoder = TextDecoder(cfg)
        self.image_decoder = ImageDecoder(cfg)

    def encode(self, images: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """images (B, 3, H, W), tokens (B, S, T) -> article embedding (B, article_dim)."""
        return self.encoder(images, tokens)

    def forward(
        self,
        images: torch.Tensor,
        tokens: torch.Tensor,
        target_images: torch.Tensor | None = None,
    ) -> AEOutput:
        """``target_images``: the un-augmented images to reconstruct (default: ``images``)."""
        target = images if target_images is None else target_images  # (B, 3, H, W)

        article = self.encoder(images, tokens)  # (B, A)

        # text: word vectors vs the shared embedding table
        text_loss, n_tokens = self.text_decoder(article, tokens, self.encoder.embed.weight)

        # image: thumbnail -> upsampled reconstruction
        recon = self.image_decoder(article)  # (B, 3, H, W)
        image_loss = F.mse_loss(recon.float(), target.float())

        loss = text_loss + self.cfg.image_loss_weight * image_loss
        return AEOutput(loss, text_loss, image_loss, n_tokens, recon)


def encoder_state_from_autoencoder(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An autoencoder state dict -> the ``ArticleEncoder`` part (``encoder.`` prefix stripped)."""
    prefix = "encoder."
    state = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
    if not state:
        raise ValueError("no 'encoder.' keys: not an autoencoder state dict")
    return state
