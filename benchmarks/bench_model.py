"""Forward + backward speed of the autoencoder, and where the step time goes.

    .venv/bin/python benchmarks/bench_model.py                  # params.yaml sizes (small_cnn)
    .venv/bin/python benchmarks/bench_model.py --paper          # 2017 sizes, inception_v3 at 299
    .venv/bin/python benchmarks/bench_model.py --threads 2 --batch 16 --sentences 12 --tokens 20

Random images and texts (each sentence 40-100 % of --tokens long, each text
50-100 % of --sentences). Prints samples/s of a full training step (forward,
backward; no optimiser) and the time of its parts, each timed forward +
backward on its own: image CNN, text LSTMs (sentence + text), decoders (text +
image). Times are the best of --repeats runs after a warm-up; the parts are
compared by CPU time, which a busy machine disturbs less than wall time.
"""

from __future__ import annotations

import argparse
import time

import torch

from cmisc_model.config import from_mapping, load_params
from cmisc_model.models.autoencoder import Autoencoder
from cmisc_model.models.config import ModelConfig


def random_batch(cfg: ModelConfig, batch: int, sentences: int, tokens: int, gen: torch.Generator):
    images = torch.rand(batch, 3, cfg.image_size, cfg.image_size, generator=gen) * 2 - 1
    ids = torch.randint(1, cfg.vocab_size, (batch, sentences, tokens), generator=gen)
    t_len = torch.randint(int(0.4 * tokens), tokens + 1, (batch, sentences, 1), generator=gen)
    s_len = torch.randint(max(1, sentences // 2), sentences + 1, (batch, 1, 1), generator=gen)
    keep = (torch.arange(tokens) < t_len) & (torch.arange(sentences).view(1, -1, 1) < s_len)
    return images, ids * keep


def timed(fn, repeats: int) -> tuple[float, float]:
    """Best wall and best CPU seconds of ``repeats`` runs after a warm-up.

    On a shared, busy machine the CPU time (all threads of this process) is the
    steadier figure: CPU seconds / threads is what the wall time would be alone.
    """
    fn()
    wall = cpu = float("inf")
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = min(wall, time.perf_counter() - w), min(cpu, time.process_time() - c)
    return wall, cpu


def bench(cfg: ModelConfig, args) -> None:
    gen = torch.Generator().manual_seed(0)
    model = Autoencoder(cfg).train()
    images, tokens = random_batch(cfg, args.batch, args.sentences, args.tokens, gen)
    enc = model.encoder

    def step():
        model.zero_grad(set_to_none=True)
        model(images, tokens).loss.backward()

    def image_part():
        enc.image(images).sum().backward()

    def text_part():
        image = torch.zeros(args.batch, cfg.image_dim, requires_grad=True)
        s = enc.encode_sentences(tokens)
        out, _ = enc.text_lstm(torch.cat([image.unsqueeze(1), s], dim=1))
        out.sum().backward()

    def decoder_part():
        article = torch.randn(args.batch, cfg.article_dim, requires_grad=True)
        text_loss, _ = model.text_decoder(article, tokens, enc.embed.weight)
        (text_loss + model.image_decoder(article).square().mean()).backward()

    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"{cfg.image_encoder} {cfg.image_size}px, sentence {cfg.sentence_dim}, text {cfg.text_dim}, "
        f"article {cfg.article_dim}, vocab {cfg.vocab_size}, {n_params / 1e6:.1f} M parameters; "
        f"batch {args.batch} x {args.sentences} sentences x {args.tokens} tokens "
        f"({int((tokens != 0).sum())} real tokens), {torch.get_num_threads()} threads"
    )
    wall, cpu = timed(step, args.repeats)
    threads = torch.get_num_threads()
    print(
        f"  step (fwd+bwd): wall {wall:.3f} s = {args.batch / wall:.1f} samples/s; "
        f"CPU {cpu:.3f} s = {cpu / threads:.3f} s over {threads} threads"
    )
    parts = {
        "image CNN": timed(image_part, args.repeats)[1],
        "text LSTMs": timed(text_part, args.repeats)[1],
        "decoders": timed(decoder_part, args.repeats)[1],
    }
    part_sum = sum(parts.values())
    for name, c in parts.items():
        print(f"  {name:<11} CPU {c:.3f} s  ({100 * c / part_sum:.0f} % of the parts)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--paper", action="store_true", help="2017 sizes: inception_v3 at 299 px")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--sentences", type=int, default=12)
    p.add_argument("--tokens", type=int, default=20)
    p.add_argument("--vocab", type=int, default=5000)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.paper:
        cfg = ModelConfig.paper(vocab_size=args.vocab)
    else:
        section = load_params(args.params).get("autoencoder", {}).get("model", {})
        cfg = from_mapping(ModelConfig, section, "autoencoder.model").replace(vocab_size=args.vocab)
    bench(cfg, args)


if __name__ == "__main__":
    main()
