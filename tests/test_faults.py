"""Survival under faults: what a user's run meets in real life.

- the scrape flow killed with SIGKILL mid-run and started again ends with the
  same pairs as a clean run;
- a stored image corrupted on disk is detected by its hash and stored again;
- an output folder that cannot be written gets a clear error and the previous
  artifact stays intact;
- a malformed annotation file loses no valid row.
(Training killed mid-epoch: tests/test_train_autoencoder.py and below.)
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from cmisc_model import schemas as S
from tests.conftest import REPO
from tests.fake_mediawiki import Fault
from tests.test_refresh import UA, fake_world, write_params

BIN = Path(sys.executable).parent


def _env(prefect_home: Path) -> dict:
    env = {**os.environ, "PREFECT_HOME": str(prefect_home), "PYTHONPATH": str(REPO)}
    env.pop("PREFECT_API_URL", None)
    return env


def _refresh_cmd(out: Path, store: Path, endpoint: str, params: Path) -> list[str]:
    return [sys.executable, "-m", "flows.refresh", "--all", "--out", str(out), "--store", str(store),
            "--endpoint", endpoint, "--user-agent", UA, "--params", str(params), "--workers", "1"]


@pytest.mark.slow
def test_scrape_killed_mid_run_and_restarted_equals_clean_run(tiny_world, tmp_path):
    params = write_params(tmp_path)
    spec = yaml.safe_load(params.read_text())
    spec["scrape"]["batch_size"] = 2  # several shards, so the kill lands between them
    params.write_text(yaml.safe_dump(spec))

    wiki = fake_world(tiny_world)
    with wiki:
        clean = tmp_path / "clean.parquet"
        subprocess.run(_refresh_cmd(clean, tmp_path / "s1", wiki.endpoint, params), cwd=REPO,
                       env=_env(tmp_path / "home-clean"), check=True, capture_output=True, timeout=300)

        out, env = tmp_path / "killed.parquet", _env(tmp_path / "home-killed")
        wiki.reset_log()
        # Only for the run that is killed: every content request answers after 1.5 s, slow
        # enough to kill the run in the middle (the clean run and the restart go at full speed).
        wiki.add_fault(Fault("timeout", match="content", count=None))
        proc = subprocess.Popen(_refresh_cmd(out, tmp_path / "s2", wiki.endpoint, params), cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 120
        while time.time() < deadline and sum("content" in r.params.get("rvprop", "") and r.status == 200
                                             for r in wiki.api_requests()) < 2:
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not out.exists(), "killed before the end: nothing may have been written"
        wiki.clear_faults()
        subprocess.run(_refresh_cmd(out, tmp_path / "s2", wiki.endpoint, params), cwd=REPO, env=env,
                       check=True, capture_output=True, timeout=300)

    a = sorted(S.read_table(clean, S.PAIRS).to_pylist(), key=lambda r: r["pair_id"])
    b = sorted(S.read_table(out, S.PAIRS).to_pylist(), key=lambda r: r["pair_id"])
    assert [r["pair_id"] for r in a] == [r["pair_id"] for r in b]  # none missing, no duplicates
    drop = {"retrieved_at", "image_path"}
    assert [{k: v for k, v in r.items() if k not in drop} for r in a] == \
           [{k: v for k, v in r.items() if k not in drop} for r in b]


@pytest.mark.usefixtures("prefect")
def test_corrupted_stored_image_is_detected_and_stored_again(tiny_world, tmp_path):
    from flows.simplewiki import simplewiki_pairs

    dump = str(tiny_world / "simplewiki" / "simplewiki-sample-pages-articles.xml.bz2")
    roots = [str(tiny_world / "simplewiki" / "images")]
    out, store = tmp_path / "p.parquet", tmp_path / "store"
    simplewiki_pairs(dump, str(out), str(store), roots)
    row = S.read_table(out, S.PAIRS).to_pylist()[0]
    victim = Path(row["image_path"])
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    assert hashlib.sha256(victim.read_bytes()).hexdigest() != row["image_sha256"]

    summary = simplewiki_pairs(dump, str(out), str(store), roots)
    assert summary["images"]["written"] >= 1
    assert hashlib.sha256(victim.read_bytes()).hexdigest() == row["image_sha256"]


def test_unwritable_output_folder_keeps_previous_artifact(realdata):
    if os.geteuid() != 0 and not os.access("/", os.W_OK):
        as_other = []  # not root: a read-only folder is read-only for us too
    else:
        as_other = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]  # root writes anywhere
    base = Path(tempfile.mkdtemp(prefix="cmisc-ro-"))
    try:
        os.chmod(base, 0o755)
        dump = base / "dump.xml.bz2"
        dump.write_bytes((realdata / "wiki" / "simplewiki-2019-7pages.xml.bz2").read_bytes())
        os.chmod(dump, 0o644)
        folder = base / "out"
        folder.mkdir()
        out = folder / "pairs.parquet"
        cmd = [str(BIN / "cmisc"), "wiki-pairs", "--dump", str(dump), "--out", str(out), "--no-progress"]
        subprocess.run(cmd, check=True, capture_output=True, cwd=base)
        before = out.read_bytes()
        os.chmod(folder, 0o555)
        env = {**os.environ, "HOME": str(base)}
        done = subprocess.run(as_other + cmd, capture_output=True, text=True, cwd=base, env=env, check=False)
        assert done.returncode == 2
        err = done.stderr.strip().splitlines()
        assert len(err) == 1 and f"cannot write to {folder}" in err[0], done.stderr
        assert out.read_bytes() == before
        assert sorted(p.name for p in folder.iterdir()) == ["pairs.parquet"]
    finally:
        os.chmod(base / "out", 0o755)
        import shutil

        shutil.rmtree(base)


def test_malformed_annotation_file_loses_no_valid_row(tmp_path):
    from cmisc_model.corpus.assemble import CorpusConfig, run

    rows = [{"pair_id": f"p{i}", "source": "bbc", "doc_id": str(i), "position": "lead", "section_path": [],
             "text_blocks": [{"titles": [], "sentences": ["x"]}], "image_status": "ok"} for i in range(30)]
    S.write_table(S.from_rows(rows, S.PAIRS), tmp_path / "pairs.parquet", S.PAIRS)
    lines = []
    for i in range(30):
        lines.append(json.dumps({"pair_id": f"p{i}", "cmi": [0, 0.5, 1][i % 3], "sc": [0, 0.5, 1][i % 3]}))
        if i % 7 == 0:
            lines += ["{broken", json.dumps({"pair_id": "x", "cmi": 3, "sc": 0}), "[1, 2]"]
    lines.append('{"pair_id": "p30", "cmi": 0.5')  # the file ends mid-record
    ann = tmp_path / "ann.jsonl"
    ann.write_text("\n".join(lines))
    summary = run([tmp_path / "pairs.parquet"], [ann], tmp_path / "out", 1, CorpusConfig())
    assert summary["labelled"] == 30
    assert len(summary["annotation_problems"]) == 3 * 5 + 1
    assert all(str(ann) in p for p in summary["annotation_problems"])


@pytest.mark.slow
def test_training_killed_mid_epoch_resumes_from_last_checkpoint(tmp_path):
    import torch

    from tests.test_train_autoencoder import TINY_MODEL, make_world

    corpus, vocab_dir = make_world(tmp_path / "w", n=64, n_val=4)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["autoencoder"]["model"].update(TINY_MODEL)
    params["autoencoder"]["train"].update(batch_size=4, epochs=2, log_every=1, checkpoint_every=3)
    params["autoencoder"]["data"].update(num_workers=0)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / "model"
    cmd = [sys.executable, "-m", "cmisc_model.training.autoencoder", "--corpus", str(corpus), "--vocab",
           str(vocab_dir), "--out", str(out), "--live-dir", str(tmp_path / "live"), "--params",
           str(tmp_path / "params.yaml"), "--device", "cpu"]
    steps_per_epoch = 60 // 4
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, killed_at = time.time() + 180, None
    while time.time() < deadline and proc.poll() is None:
        last = out / "last.pt"
        if last.exists():
            try:
                step = torch.load(last, weights_only=True)["step"]
            except Exception:  # noqa: BLE001 - caught between write and rename is impossible; a partial read is not
                step = 0
            if 3 <= step < steps_per_epoch:  # mid-epoch 1
                proc.send_signal(signal.SIGKILL)
                killed_at = step
                break
        time.sleep(0.05)
    proc.wait()
    assert killed_at is not None, "training finished or stalled before it could be killed mid-epoch"
    killed_at = torch.load(out / "last.pt", weights_only=True)["step"]  # a later one may have landed meanwhile
    assert killed_at < steps_per_epoch
    assert not (out / "model.pt").exists() or torch.load(out / "model.pt", weights_only=True)["step"] <= killed_at

    done = subprocess.run(cmd + ["--resume"], cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"resuming from {out / 'last.pt'}: step {killed_at}" in done.stderr
    final = torch.load(out / "last.pt", weights_only=True)
    assert final["step"] == 2 * steps_per_epoch
