"""The whole DVC pipeline end to end on the tiny sample world, in a copy of the repository.

What a user does: `dvc repro`; a second `dvc repro` changes nothing; `dvc repro --force`
gives the same `dvc.lock` byte for byte; `dvc push`
to a remote, lose the cache and the outputs, `dvc pull` brings every output
back; `dvc exp run -S key=value` records an experiment that `dvc exp show`
lists and `dvc metrics diff` compares.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

# Two pipeline runs (repro, repro --force) and an experiment of the vocab stage: ~4 min on 2 idle cores,
# more on a loaded machine, so this test has its own limit above the suite's 600 s.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

BIN = Path(sys.executable).parent


def sh(cmd: list[str], cwd: Path, env: dict, timeout: int = 900) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done.stdout + done.stderr


def outputs(repo: Path) -> dict[str, str]:
    """Every stage output named in dvc.lock -> its md5."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return {o["path"]: o["md5"] for stage in lock["stages"].values() for o in stage.get("outs", [])}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A fresh git + DVC project: the tracked files of this repository, the tiny world."""
    repo = tmp_path_factory.mktemp("project")
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        if f == "dvc.lock" or f.startswith(("data/", "reports/")):
            continue  # outputs are produced, not copied
        (repo / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / f, repo / f)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["sample"]["size"] = "tiny"
    params["heldout"].update(size="tiny", coco_labelled=3)
    # Training sized for a test: the same code paths, seconds instead of minutes.
    params["autoencoder"]["model"].update(sentence_dim=16, text_dim=16, image_dim=16, image_size=32,
                                          small_cnn_channels=[8, 8], thumb_size=8, decoder_maps=[4, 3])
    params["autoencoder"]["train"].update(epochs=1, checkpoint_every=1000)
    params["classifier"]["train"].update(epochs=1, no_ae_epochs=1)
    params["scarcity"].update(fractions=[0.5, 1.0], repeats=1)
    params["baselines"].update(repeats=1, cv_folds=2, svm_c_grid=[0.01, 1.0])
    params["evaluate"].update(bootstrap=200)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "GIT_AUTHOR_NAME": "cmisc test", "GIT_AUTHOR_EMAIL": "test@example.org",
        "GIT_COMMITTER_NAME": "cmisc test", "GIT_COMMITTER_EMAIL": "test@example.org",
        "DVC_NO_ANALYTICS": "1", "PYTHONHASHSEED": "0",
    }
    env.pop("PREFECT_API_URL", None)
    sh(["git", "init", "-q", "-b", "main"], repo, env)
    sh(["git", "add", "-A"], repo, env)
    sh(["git", "commit", "-qm", "project"], repo, env)
    return repo, env


def test_repro_push_pull_and_experiments(project, tmp_path):
    repo, env = project
    dvc = str(BIN / "dvc")

    sh([dvc, "repro"], repo, env, timeout=1500)
    outs = outputs(repo)
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    assert set(yaml.safe_load((repo / "dvc.lock").read_text())["stages"]) == set(stages)
    for path in outs:
        assert (repo / path).exists(), path
    summary = json.loads((repo / "data/corpus/summary.json").read_text())
    assert summary["labelled"] > 0 and summary["image_status"] == {"ok": summary["pairs"]}
    metrics = {f.stem: json.loads(f.read_text()) for f in (repo / "reports/evaluation/metrics").glob("*.json")}
    systems = ("classifier", "classifier_no_ae", "svm", "text_only", "image_only", "most_frequent")
    assert set(metrics) == set(systems)
    for system in systems:
        for task in ("cmi", "sc"):
            assert 0.0 <= metrics[system][task]["accuracy"] <= 1.0, (system, task)
    assert "Table 3" in (repo / "reports/evaluation/table3.md").read_text()
    # `dvc metrics show` fits a screen: Table 3 as systems x a few figures, the AE's key losses,
    # and the classifier stage's own test figures under Table 3's keys (for `dvc exp show`)
    shown = json.loads(sh([dvc, "metrics", "show", "--json"], repo, env))
    (files,) = (rev["data"] for rev in shown.values())  # one revision: the workspace
    assert set(files) == {"reports/autoencoder/metrics.json", "reports/classifier/test.json",
                          *(f"reports/evaluation/metrics/{s}.json" for s in systems)}
    table3 = files["reports/evaluation/metrics/classifier.json"]["data"]
    assert files["reports/classifier/test.json"]["data"]["sc"]["mean"] == table3["sc"]["mean"]

    def columns(d: dict, prefix: str = "") -> set[str]:
        return set().union(*(columns(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k}
                             for k, v in d.items()))

    assert len(set().union(*(columns(f["data"]) for f in files.values()))) <= 20
    # the ablations and the scarcity curve are part of every run
    details = json.loads((repo / "reports/evaluation/details.json").read_text())
    assert set(details["ablations"]["classifier"]) == {"images_shuffled", "images_blank", "texts_shuffled"}
    report = (repo / "reports/evaluation/report.md").read_text()
    assert "images shuffled" in report
    # the headline table: every system on the whole held-out world (20 + 3 labels here)
    assert "## Held-out world (23 labelled pairs)" in report and details["heldout"]["n"] == 23
    assert set(details["heldout"]["test"]) >= set(systems) | {"classifier:images_shuffled"}
    # the audit reads the model's input size from params: at this test's 32 px, shapes are blobs
    audit = details["decidability"]["heldout"]
    assert audit["view"]["image_size"] == 32 and audit["total"]["n"] == 20 and audit["total"]["reason tiny"] > 0
    curve = json.loads((repo / "reports/scarcity/scarcity.json").read_text())
    assert set(curve["fractions"]) == {"0.5", "1"} and (repo / "reports/scarcity/plots/scarcity.png").exists()

    # A second repro has nothing to do.
    again = sh([dvc, "repro"], repo, env)
    assert "Running stage" not in again
    assert "up to date" in sh([dvc, "status"], repo, env)

    # Every stage run again from scratch, at the same commit (report.md names it):
    # on one machine every output is the same byte for byte (word2vec.model and
    # the checkpoints included), so dvc.lock does not change.
    lock = (repo / "dvc.lock").read_text()
    sh([dvc, "repro", "--force"], repo, env, timeout=1500)
    changed = sorted(p for p, md5 in outputs(repo).items() if outs.get(p) != md5)
    assert not changed, f"outputs differ between two runs on one machine: {changed}"
    assert (repo / "dvc.lock").read_text() == lock

    sh(["git", "add", "-A"], repo, env)
    sh(["git", "commit", "-qm", "repro"], repo, env)

    # Push, lose cache and outputs, pull: every output comes back identical.
    remote = tmp_path / "remote"
    sh([dvc, "remote", "add", "-d", "local", str(remote)], repo, env)
    sh([dvc, "push"], repo, env)
    shutil.rmtree(repo / ".dvc" / "cache")
    in_git = set(sh(["git", "ls-files"], repo, env).split())
    for path in outs:
        if path in in_git or any(f.startswith(path + "/") for f in in_git):
            continue  # metrics kept in git (cache: false) travel with git, not with dvc push
        p = repo / path
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    sh([dvc, "pull"], repo, env)
    assert outputs(repo) == outs
    for path in outs:
        assert (repo / path).exists(), f"{path} not restored by dvc pull"
    assert "up to date" in sh([dvc, "status"], repo, env)

    # An experiment with one param changed is listed and compared.
    # Only the vocab stage is run (`dvc exp run` takes targets as `dvc repro` does): the
    # experiment is recorded and compared the same way, without a third training run.
    sh([dvc, "exp", "run", "-n", "mincount2", "-S", "vocab.min_count=2", "vocab"], repo, env, timeout=1500)
    shown = json.loads(subprocess.run([dvc, "exp", "show", "--json"], cwd=repo, env=env, capture_output=True,
                                      text=True, check=True).stdout)
    names = [e.get("name") for rev in shown for e in (rev.get("experiments") or []) for e in (e.get("revs") or [])]
    assert "mincount2" in names, names
    diff = json.loads(subprocess.run([dvc, "metrics", "diff", "main", "mincount2", "--json",
                                      "--targets", "data/vocab/metrics.json"], cwd=repo, env=env,
                                     capture_output=True, text=True, check=True).stdout)
    vocab_diff = diff["data/vocab/metrics.json"]["vocab_size"]
    assert vocab_diff["new"] > vocab_diff["old"]
