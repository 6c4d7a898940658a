"""Model shapes: the autoencoder's ``ModelConfig`` and the classifier head's ``ClassifierConfig``.

They are filled from params.yaml (``autoencoder.model``, ``classifier.model``)
and the defaults below equal those values. The defaults are a CPU-sized
version of the paper's network, so that the default ``dvc repro`` on the
sample world trains in minutes on two cores; ``ModelConfig.paper()`` returns
the 2017 sizes (InceptionV3 at 299 px, sentence 600, text 2400, image 600),
and params.yaml shows the same values in a comment.

Shape-critical fields are saved in every checkpoint, so a resumed or reused
model is rebuilt with the sizes it was trained with.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

# Sizes and structure of the 2017 network (original_impl.md §6), one call away.
PAPER_SIZES = {
    "fusion": "late",
    "thumb_size": 30,
    "thumb_channels": 1,
    "decoder_maps": (32, 8, 3),
    "image_loss_weight": 1.0,
    "matching_weight": 0.0,
    "region_words_weight": 0.0,
    "sentence_dim": 600,
    "text_dim": 2400,
    "image_dim": 600,
    "article_dim": 2400,
    "image_encoder": "inception_v3",
    "image_size": 299,
}


@dataclass
class ModelConfig:
    """Encoder and decoders of the autoencoder (the classifier reuses the encoder)."""

    # Rows of the embedding table: ids 0 = pad, 1 = unknown, then the vocabulary.
    # 0 here means "not known yet": the training code sets it from vocab.parquet.
    vocab_size: int = 0
    embed_dim: int = 300  # Word2Vec width (the WORD2VEC schema is 300-d)
    sentence_dim: int = 256  # paper 600: sentence LSTM width
    text_dim: int = 512  # paper 2400: text LSTM width
    image_dim: int = 256  # paper 600; must equal sentence_dim (first input of the text LSTM)
    article_dim: int = 2400  # the article embedding (EMBEDDINGS schema is 2400-d)
    dropout: float = 0.3  # on LSTM and FC outputs (2017: keep 0.7)
    image_encoder: Literal["small_cnn", "inception_v3"] = "small_cnn"
    image_size: int = 96  # input side in px; 299 for inception_v3 (2017 used 300)
    small_cnn_channels: tuple[int, ...] = (32, 64, 128, 128)  # one conv-bn-relu-pool block each
    inception_weights: str | None = None  # local ImageNet state dict; None = random init
    encoder_trainable: bool = True  # fine-tune the image CNN (2017: yes)
    freeze_bn: bool = True  # keep a *pretrained* Inception's batch norm in eval mode
    logit_scale_init: float = 10.0  # Departure from 2017: learnable scale on the cosine logits
    # Departure from 2017: "cross_attention" lets every sentence attend
    # over image regions (no global pool before fusion); "late" is the 2017 encoder.
    fusion: Literal["late", "cross_attention"] = "cross_attention"
    region_grid: int = 3  # cross_attention: the feature map pooled to G x G regions (the labels' 3 x 3 grid)
    thumb_size: int = 12  # paper 30: image decoder: article -> thumb_size x thumb_size x thumb_channels
    thumb_channels: int = 16  # paper 1: a one-channel thumbnail holds too little
    decoder_maps: tuple[int, ...] = (32, 16, 3)  # paper (32, 8, 3): maps of the (upsample, 5x5 conv) steps
    decoder_dropout: float = 0.1  # on the thumbnail (2017: keep 0.9)
    image_loss_weight: float = 30.0  # paper 1: loss = text CE + weight * image MSE; at 1 the
    # image term's gradient is 30-40x smaller than the text term's and the decoder learns nothing
    matching_weight: float = 1.0  # paper 0: + weight * image-text matching BCE (own vs another image)
    # Departure from 2017: + weight * region word prediction, each mention's words
    # predicted from the region it looks at and the words beside each word (two experts;
    # cross-attention only; 0 = off). Matching is won by colour and place, so the regions
    # need say no more; the texts tell them what stands there. On the held-out sample world
    # it adds 1.4 SC points over none (docs/experiments.md, "Which mechanisms earn their place").
    region_words_weight: float = 20.0
    init_range: float = 0.08  # uniform init of LSTM / linear weights (2017 value)

    def __post_init__(self) -> None:
        if self.image_dim != self.sentence_dim:
            raise ValueError(
                f"image_dim ({self.image_dim}) must equal sentence_dim ({self.sentence_dim}): "
                "the image embedding is the text LSTM's first input"
            )
        if self.image_encoder == "inception_v3" and self.image_size < 75:
            raise ValueError(f"image_size {self.image_size}: inception_v3 needs at least 75 px")
        if not self.decoder_maps or self.decoder_maps[-1] != 3:
            raise ValueError(f"decoder_maps {self.decoder_maps}: the last step must give 3 maps (RGB)")
        for name in ("dropout", "decoder_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} {getattr(self, name)} is not in [0, 1)")
        if self.fusion not in ("late", "cross_attention"):
            raise ValueError(f"fusion {self.fusion!r}: expected late or cross_attention")
        if self.region_words_weight < 0:
            raise ValueError(f"region_words_weight {self.region_words_weight} must be >= 0")
        if self.region_grid < 1:
            raise ValueError(f"region_grid {self.region_grid} must be >= 1")

    @classmethod
    def paper(cls, **overrides) -> ModelConfig:
        """The 2017 sizes (InceptionV3, 600/2400/600/2400), with ``overrides`` on top."""
        return cls(**{**PAPER_SIZES, **overrides})

    def replace(self, **changes) -> ModelConfig:
        return dataclasses.replace(self, **changes)


@dataclass
class ClassifierConfig:
    """The head on top of the article embedding (paper Fig. 4b)."""

    hidden_dim: int = 32  # linear article_dim -> 32, ReLU
    dropout: float = 0.1  # after the hidden layer (2017: keep 0.9)
    evidence_dim: int = 64  # cross-attention: per-sentence evidence MLP width, pooled into the head (0 = off, 2017)
    article_in_head: bool = False  # with evidence: also the article's hidden layer (2017's only input)
    n_cmi_classes: int = 5  # CMI {0, .25, .5, .75, 1}
    n_sc_classes: int = 5  # SC {-1, -.5, 0, .5, 1}
