"""The ``cmisc`` command line.

Each sub-command lives in the module of its concept and exposes
``cli_main(argv) -> int``; this file only dispatches, importing the module
lazily so that ``cmisc text`` does not pay for importing torch. The commands
whose modules import torch (``train-ae``, ``train-cl``, ``embed``) are
dispatched to ``cmisc_model/commands.py`` (``module:function``), which
parses their options first and imports the module only to run, so their
``--help`` is instant too. Errors that come from bad input (``CmiscError``
and its kin) print one line and exit 2.

Why not click or typer (both installed with Prefect and DVC): every command
already parses its own options with argparse in its own module, where the
tests call ``cli_main(argv)`` directly. A click group over them would only
pass the arguments through, so it would add an import and a second parsing
library without parsing anything; what click would give us (``--version``,
"did you mean", help from docstrings) is the few lines below.

"""

from __future__ import annotations

import importlib
import sys

from cmisc_model.commands import did_you_mean
from cmisc_model.errors import USER_ERRORS

# name -> (module or module:function taking argv, one-line help); function defaults to cli_main
COMMANDS: dict[str, tuple[str, str]] = {
    "sample": ("cmisc_model.sample_world.world", "write the generated sample world"),
    "audit": ("cmisc_model.sample_world.audit", "which labels of the sample world the model's input can decide"),
    "wiki-pairs": ("cmisc_model.sources.wiki_dump", "MediaWiki XML dump -> pairs Parquet"),
    "wiki-scrape": ("cmisc_model.sources.mediawiki_api", "MediaWiki Action API -> pairs Parquet"),
    "images": ("cmisc_model.corpus.images", "fetch, check and store the images of a pairs file"),
    "bbc-pairs": ("cmisc_model.sources.bbc", "BBC News corpus folder -> pairs Parquet"),
    "coco-pairs": ("cmisc_model.sources.coco", "COCO captions file -> pairs Parquet"),
    "text": ("cmisc_model.text.normalise", "show the tokens the model sees for text on stdin"),
    "annotations": ("cmisc_model.corpus.annotations", "import and validate CMI/SC annotations"),
    "annotate": ("cmisc_model.corpus.label_studio", "Label Studio round trip: tasks out, CMI/SC labels and kappa back"),
    "corpus": ("cmisc_model.corpus.assemble", "union the sources and split by document"),
    "vocab": ("cmisc_model.corpus.vocab", "vocabulary and Word2Vec from the training split"),
    "train-ae": ("cmisc_model.commands:train_ae", "train the autoencoder (DVCLive, checkpoints, resume)"),
    "embed": ("cmisc_model.commands:embed", "2400-d article embeddings of a pairs file"),
    "train-cl": ("cmisc_model.commands:train_cl", "train the CMI/SC classifier (K repeats) -> predictions"),
    "baselines": ("cmisc_model.evaluation.baselines", "most-frequent and SVM baselines -> predictions"),
    "predict": ("cmisc_model.inference.predict", "CMI/SC of an image + text, or of a pairs file"),
    "evaluate": ("cmisc_model.evaluation.report", "evaluation report: Table 3, confusion matrices, label statistics"),
    "scarcity": ("cmisc_model.training.scarcity", "label-scarcity curve: AE-initialised vs no-AE classifier"),
    "ablate": ("cmisc_model.evaluation.ablations", "a test split with images shuffled/blank or texts shuffled, for predict"),
    "preset": ("cmisc_model.presets", "print a named params preset (e.g. paper2017) for dvc exp run"),
    "inspect": ("cmisc_model.inspect", "summarise any Parquet artifact"),
}


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("cmisc")
    except PackageNotFoundError:  # run from a checkout that is not installed
        from cmisc_model import __version__

        return __version__


def _usage() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = ["usage: cmisc [--version] [--help] COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {n.ljust(width)}  {h}" for n, (_, h) in COMMANDS.items()]
    lines += ["", "cmisc COMMAND --help shows a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:  # a script that forgot its command must not look successful
        print(f"{_usage()}\n\ncmisc: error: no command given", file=sys.stderr)
        return 2
    if argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] == "--version":
        print(f"cmisc {version()}")
        return 0
    if argv[0] == "help":  # `cmisc help train-ae` = `cmisc train-ae --help`
        if len(argv) == 1:
            print(_usage())
            return 0
        argv = [argv[1], "--help"]
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        what = "option" if name.startswith("-") else "command"
        print(f"cmisc: unknown {what} {name!r}{did_you_mean(name, list(COMMANDS))} "
              "(cmisc --help lists the commands)", file=sys.stderr)
        return 2
    module, _, function = COMMANDS[name][0].partition(":")
    command = getattr(importlib.import_module(module), function or "cli_main")
    try:
        return int(command(rest) or 0)
    except USER_ERRORS as e:
        print(f"cmisc {name}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
