"""The ``cmisc`` command line as a user meets it: version, errors, help, start-up time."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from cmisc_model import cli


def test_version(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"cmisc {cli.version()}"
    assert cli.version()[0].isdigit()


def test_no_command_fails_with_usage(capsys):
    assert cli.main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "usage: cmisc" in captured.err and "no command" in captured.err


def test_help_lists_every_command(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {name} " in out for name in cli.COMMANDS)


@pytest.mark.parametrize(("typed", "meant"), [("trian-ae", "train-ae"), ("inspcet", "inspect"), ("predcit", "predict")])
def test_unknown_command_suggests_the_nearest(typed, meant, capsys):
    assert cli.main([typed]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"unknown command {typed!r}" in err and f"did you mean {meant!r}" in err


def test_unknown_command_far_from_any_says_where_the_list_is(capsys):
    assert cli.main(["xyzzy"]) == 2
    err = capsys.readouterr().err
    assert "did you mean" not in err and "cmisc --help" in err


def test_misspelt_option_suggests_the_nearest(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["predict", "--imgae", "x.jpg", "--text", "a cat."])
    assert e.value.code == 2
    assert "did you mean '--image'" in capsys.readouterr().err


def test_help_command_shows_a_command_s_options(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["help", "inspect"])
    assert e.value.code == 0 and "usage: cmisc inspect" in capsys.readouterr().out


class _Parsed(Exception):
    pass


def command_parser_of(name: str, monkeypatch) -> argparse.ArgumentParser:
    """The ArgumentParser a command builds, caught when it parses ``--help``."""
    caught = []

    def catch(self, args=None, namespace=None):
        caught.append(self)
        raise _Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", catch)
    with pytest.raises(_Parsed):
        cli.main([name, "--help"])
    return caught[0]


def help_problems(parser: argparse.ArgumentParser) -> list[str]:
    problems = []
    if "`" in (parser.description or ""):
        problems.append(f"{parser.prog}: description has raw markup")
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = "/".join(action.option_strings) or action.dest
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                problems += help_problems(sub)
            continue
        if not action.help:
            problems.append(f"{parser.prog} {name}: no help")
        elif "`" in action.help:
            problems.append(f"{parser.prog} {name}: raw markup in help")
    return problems


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_every_option_has_plain_help(name, monkeypatch):
    assert help_problems(command_parser_of(name, monkeypatch)) == []


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_help_does_not_import_torch(name):
    """``--help`` must be instant: torch (~2-4 s to import) only when a command runs."""
    code = ("import sys; from cmisc_model.cli import main\n"
            "try:\n    main([sys.argv[1], '--help'])\nexcept SystemExit:\n    pass\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')")
    out = subprocess.run([sys.executable, "-c", code, name], capture_output=True, text=True, timeout=120,
                         check=False).stdout
    assert out.strip().splitlines()[-1] == "NO-TORCH"
