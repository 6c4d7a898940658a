"""The ``cmisc`` command line.

Each sub-command lives in the module of its concept and exposes
``cli_main(argv) -> int``; this file only dispatches, importing the module
lazily so that ``cmisc text`` does not pay for importing torch. Errors that
come from bad input (``CmiscError`` and its kin) print one line and exit 2.
"""

from __future__ import annotations

import importlib
import sys

from cmisc_model.errors import USER_ERRORS

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "sample": ("cmisc_model.sample_world", "write the generated sample world"),
    "wiki-pairs": ("cmisc_model.sources.wiki_dump", "MediaWiki XML dump -> pairs Parquet"),
    "wiki-scrape": ("cmisc_model.sources.mediawiki_api", "MediaWiki Action API -> pairs Parquet"),
    "images": ("cmisc_model.images", "fetch, check and store the images of a pairs file"),
    "bbc-pairs": ("cmisc_model.sources.bbc", "BBC News corpus folder -> pairs Parquet"),
    "coco-pairs": ("cmisc_model.sources.coco", "COCO captions file -> pairs Parquet"),
    "text": ("cmisc_model.text", "show the tokens the model sees for text on stdin"),
    "annotations": ("cmisc_model.annotations", "import and validate CMI/SC annotations"),
    "corpus": ("cmisc_model.corpus", "union the sources and split by document"),
    "vocab": ("cmisc_model.vocab", "vocabulary and Word2Vec from the training split"),
    "train-ae": ("cmisc_model.train_autoencoder", "train the autoencoder (DVCLive, checkpoints, resume)"),
    "embed": ("cmisc_model.embed", "2400-d article embeddings of a pairs file"),
    "train-cl": ("cmisc_model.train_classifier", "train the CMI/SC classifier (K repeats) -> predictions"),
    "baselines": ("cmisc_model.baselines", "most-frequent and SVM baselines -> predictions"),
    "predict": ("cmisc_model.predict", "CMI/SC of an image + text, or of a pairs file"),
    "evaluate": ("cmisc_model.evaluate", "evaluation report: Table 3, confusion matrices, label statistics"),
    "inspect": ("cmisc_model.inspect", "summarise any Parquet artifact"),
}


def _usage() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = ["usage: cmisc COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {n.ljust(width)}  {h}" for n, (_, h) in COMMANDS.items()]
    lines += ["", "cmisc COMMAND --help shows a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"cmisc: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    try:
        return int(module.cli_main(rest) or 0)
    except USER_ERRORS as e:
        print(f"cmisc {name}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
