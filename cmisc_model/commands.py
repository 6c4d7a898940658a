"""How the commands parse their options.

``command_parser`` is the ArgumentParser the commands should use: its
description is the module docstring's first paragraph without reST markup,
it shows defaults, and it suggests the nearest option for a misspelt one.

The options of the commands that need torch (``train-ae``, ``train-cl``, ``embed``)
live here too: their modules import torch at module level (2-4 s), so with
their parsers here ``cmisc train-ae --help`` or a misspelt option answers at once, and the
command's module, with torch, is imported only once the arguments are parsed.
Each module's ``cli_main(argv)`` parses with the same parser and calls its
``run(args)``, so ``python -m cmisc_model.training.autoencoder`` (what torchrun
starts) and the tests that call ``cli_main`` behave as ``cmisc`` does.

The descriptions are the first paragraph of each module's docstring, read
from its source without importing it.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import importlib
import importlib.util
import re
from pathlib import Path


def plain(doc: str | None) -> str:
    """The first paragraph of a docstring as help text: reST ``literals`` and
    `roles` lose their backquotes, line breaks become spaces."""
    first = (doc or "").strip().split("\n\n")[0]
    first = re.sub(r":\w+:`([^`]*)`", r"\1", first)
    return " ".join(first.replace("``", "").replace("`", "").split())


def did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


class CommandParser(argparse.ArgumentParser):
    """argparse with a suggestion for a misspelt option (Python 3.11 has none)."""

    def parse_args(self, args=None, namespace=None):
        ns, extra = self.parse_known_args(args, namespace)
        if extra:
            options = [s for a in self._actions for s in a.option_strings]
            first = extra[0].split("=")[0]
            hint = did_you_mean(first, options) if first.startswith("-") else ""
            self.error(f"unrecognized arguments: {' '.join(extra)}{hint}")
        return ns


class _HelpFormatter(argparse.HelpFormatter):
    """Appends "(default: X)" where a default says something: not for flags,
    not for None, not where the help already names its default."""

    def _get_help_string(self, action):
        text = action.help or ""
        shown = action.default not in (None, False, argparse.SUPPRESS) and action.option_strings
        if shown and "default" not in text and not isinstance(action, argparse._HelpAction):
            text += " (default: %(default)s)"
        return text


def command_parser(prog: str, doc: str | None, **kwargs) -> CommandParser:
    kwargs.setdefault("formatter_class", _HelpFormatter)
    return CommandParser(prog=prog, description=plain(doc), **kwargs)


def module_doc(module: str) -> str | None:
    """A module's docstring, read from its source file without importing the module."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return None
    return ast.get_docstring(ast.parse(Path(spec.origin).read_text(encoding="utf-8")))


def train_ae_parser() -> argparse.ArgumentParser:
    ap = command_parser("cmisc train-ae", module_doc("cmisc_model.training.autoencoder"))
    ap.add_argument("--corpus", type=Path, required=True, help="corpus.parquet (CORPUS schema)")
    ap.add_argument("--vocab", type=Path, required=True, help="folder with vocab.parquet and word2vec.parquet")
    ap.add_argument("--out", type=Path, required=True, help="model folder (model.pt, last.pt, config.json)")
    ap.add_argument("--live-dir", type=Path, default=Path("reports/autoencoder"), help="DVCLive folder")
    ap.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (hyperparameters, seed, split)")
    ap.add_argument("--resume", action="store_true", help="continue from OUT/last.pt when it exists")
    ap.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when available)")
    ap.add_argument("--truth", default=None, help="the sample world's scenes.jsonl: probe the embedding for scene attributes")
    return ap


def train_cl_parser() -> argparse.ArgumentParser:
    ap = command_parser("cmisc train-cl", module_doc("cmisc_model.training.classifier"))
    ap.add_argument("--labelled", type=Path, required=True, help="labelled.parquet from the corpus stage")
    ap.add_argument("--autoencoder", type=Path, help="model folder from cmisc train-ae")
    ap.add_argument("--vocab", type=Path, help="with --no-ae instead of --autoencoder: the vocab stage's folder "
                    "(model settings from --params)")
    ap.add_argument("--out", type=Path, required=True, help="model folder to write")
    ap.add_argument("--no-ae", action="store_true", help="baseline: encoder from random init (Word2Vec words)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="evaluation repeats (default: classifier.train.repeats, else baselines.repeats)")
    ap.add_argument("--train-fraction", type=float, default=None, help="train on this share of the train split")
    ap.add_argument("--live-dir", type=Path, default=None, help="DVCLive folder (repeat 0)")
    ap.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (hyperparameters, seed, split)")
    ap.add_argument("--device", default=None, help="cpu, cuda (default: cuda when available)")
    ap.add_argument("--truth", default=None,
                    help="the sample world's scenes.jsonl: also score counterfactual texts")
    ap.add_argument("--no-ablations", action="store_true", help="score the intact test split only")
    ap.add_argument("--heldout", type=Path, default=None,
                    help="held-out labelled.parquet (split heldout): every repeat's model scores all of it")
    ap.add_argument("--heldout-truth", default=None,
                    help="the held-out world's scenes.jsonl: also score its counterfactual texts")
    return ap


def parse_train_cl(argv: list[str]) -> argparse.Namespace:
    ap = train_cl_parser()
    args = ap.parse_args(argv)
    if args.autoencoder is None and not (args.no_ae and args.vocab is not None):
        ap.error("give --autoencoder, or --no-ae with --vocab")
    return args


def embed_parser() -> argparse.ArgumentParser:
    ap = command_parser("cmisc embed", module_doc("cmisc_model.inference.embed"))
    ap.add_argument("--model", type=Path, required=True, help="model folder from cmisc train-ae")
    ap.add_argument("--pairs", type=Path, required=True, help="pairs, corpus or labelled Parquet file")
    ap.add_argument("--out", type=Path, required=True, help="embeddings.parquet to write")
    ap.add_argument("--batch-size", type=int, default=64, help="pairs per forward pass")
    ap.add_argument("--vocab", type=Path, default=None,
                    help="folder with vocab.parquet (default: the model folder); must match the model")
    ap.add_argument("--device", default=None, help="cpu, cuda (default: cuda when available)")
    return ap


def _run(module: str, args: argparse.Namespace) -> int:
    return int(importlib.import_module(module).run(args) or 0)


def train_ae(argv: list[str]) -> int:
    """``cmisc train-ae``."""
    return _run("cmisc_model.training.autoencoder", train_ae_parser().parse_args(argv))


def train_cl(argv: list[str]) -> int:
    """``cmisc train-cl``."""
    return _run("cmisc_model.training.classifier", parse_train_cl(argv))


def embed(argv: list[str]) -> int:
    """``cmisc embed``."""
    return _run("cmisc_model.inference.embed", embed_parser().parse_args(argv))
