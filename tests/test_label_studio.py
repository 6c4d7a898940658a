"""The Label Studio round trip: tasks out, labels back, κ.

The unit tests need nothing; the round trip runs against a real Label Studio
server started here on loopback, with a throwaway data dir and no telemetry
(no mock of its API). The server comes from its own virtual environment
(label-studio pins numpy and pyarrow below cmisc's): ``$CMISC_LABEL_STUDIO``,
else ``.venv-label-studio/bin/label-studio`` (what .ci/run installs), else
``label-studio`` on PATH; the round trip is skipped only when none exists.

A fresh data dir needs Django's migrations (~50 s on two busy cores), so the
first run keeps a migrated, empty data dir (``label-studio init``) in
pytest's cache and every run starts from a copy of it (~10 s).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import requests
from PIL import Image

from cmisc_model import schemas as S
from cmisc_model.corpus import agreement as A
from cmisc_model.corpus import label_studio as LS
from cmisc_model.errors import CmiscError
from cmisc_model.text.normalise import TextConfig
from tests.conftest import REPO, SHARED

USER, PASSWORD, TOKEN = "cmisc@example.com", "cmisc-test-pw", "cmisc0test0token0123"


# --------------------------------------------------------------------------- data


def write_pairs(root: Path, per_source: dict[str, int]) -> Path:
    """A pairs file with one small JPEG per pair under ``root/images``."""
    rows = []
    for s, n in per_source.items():
        for i in range(n):
            img = root / "images" / s / f"{i}.jpg"
            img.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (40, 30), (40 * i % 255, 90, 160)).save(img)
            rows.append({
                "pair_id": S.make_pair_id(s, f"doc{i}", f"{i}.jpg"), "source": s, "doc_id": f"doc{i}",
                "doc_title": f"Article {i}", "position": "section", "section_path": ["History"],
                "text_blocks": [{"titles": ["History"], "sentences": [f"A red apple number {i}.", "It fell."]}],
                "image_path": str(img), "image_status": "ok",
            })
    rows.append({**rows[0], "pair_id": "no-image", "image_path": None, "image_status": "missing"})
    return S.write_table(S.from_rows(rows, S.PAIRS), root / "pairs.parquet", S.PAIRS)


def export_file(path: Path, records) -> Path:
    path.write_text(records if isinstance(records, str) else json.dumps(records))
    return path


def choices(cmi: str | None, sc: str | None) -> list[dict]:
    return [{"from_name": m, "to_name": "image", "type": "choices", "value": {"choices": [v]}}
            for m, v in (("cmi", cmi), ("sc", sc)) if v is not None]


# --------------------------------------------------------------------------- without a server


def test_sample_is_stratified_by_source_and_seeded():
    assert LS._allocate({"a": 90, "b": 9, "c": 1}, 10) == {"a": 8, "b": 1, "c": 1}
    assert LS._allocate({"a": 5, "b": 5}, 20) == {"a": 5, "b": 5}
    assert sum(LS._allocate({"a": 3, "b": 3, "c": 3, "d": 3}, 3).values()) == 3
    rows = [{"pair_id": f"{s}{i}", "source": s} for s, n in (("wiki", 30), ("bbc", 10)) for i in range(n)]
    one, again, other = (LS.sample_pairs(rows, 8, seed) for seed in (1, 1, 2))
    assert [r["pair_id"] for r in one] == [r["pair_id"] for r in again] != [r["pair_id"] for r in other]
    assert sorted(r["source"] for r in one) == ["bbc"] * 2 + ["wiki"] * 6


def test_text_is_what_the_model_reads():
    blocks = [{"titles": ["Apples"], "sentences": ["One two three four five six.", "  "]},
              {"titles": ["Later"], "sentences": ["Second block.", "Never read."]}]
    text = LS.model_text(blocks, TextConfig(max_sentences=4, max_tokens=4))
    assert text.splitlines() == ["## Apples", "One two three four …", "## Later", "Second block."]
    assert LS.model_text(blocks, TextConfig(include_titles=False)).splitlines()[0].startswith("One two")


def _paper_texts() -> list[str]:
    """The paper as one line, its line-end hyphens kept ("inter-relation") and dropped ("contradicting")."""
    paper = SHARED / "paper" / "henning-ewerth-icmr2017.txt"
    if not paper.exists():
        pytest.skip(f"{paper} is not present")
    text = paper.read_text(encoding="utf-8").replace("ł", '"').replace("ž", '"')  # the PDF's quotes
    return [" ".join(re.sub(r"-\s*\n\s*", join, text).split()) for join in ("-", "")]


def test_config_has_two_required_five_level_choices_quoting_the_paper():
    view = ET.fromstring(LS.labelling_config())
    choices_ = {c.get("name"): c for c in view.iter("Choices")}
    assert [c.get("value") for c in choices_["cmi"]] == ["0", "0.25", "0.5", "0.75", "1"]
    assert [c.get("value") for c in choices_["sc"]] == ["-1", "-0.5", "0", "0.5", "1"]
    assert all(c.get("required") == "true" and c.get("choice") == "single-radio" for c in choices_.values())
    papers = _paper_texts()
    quoted = [q for t in [LS.CMI_DEFINITION, LS.SC_DEFINITION, *LS.CMI_HINTS.values(), *LS.SC_HINTS.values()]
              for q in re.findall(r'"([^"]{12,})"', t)]
    assert len(quoted) >= 10
    for q in quoted:  # every quotation is the paper's wording
        assert any(" ".join(q.replace("'", '"').split()) in p for p in papers), q


def test_fleiss_and_cohen_on_textbook_numbers():
    # Fleiss (1971) as worked on Wikipedia: 10 items, 14 raters, 5 categories -> 0.210
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    assert round(A.fleiss_kappa(table), 3) == 0.210
    ratings = [{"pair_id": f"p{i}", "annotator": who, "cmi": c, "sc": 0.0}
               for who, labels in (("a", [0, 0.25, 0.5, 1]), ("b", [0, 0.5, 0.5, 1])) for i, c in enumerate(labels)]
    cohen = A.cohen_pairs(ratings, "cmi")[0]
    assert cohen["n"] == 4 and cohen["agreement"] == 0.75 and cohen["kappa"] == 0.6667  # (3/4 - 1/4) / (3/4)
    assert A.cohen_pairs(ratings, "sc")[0]["kappa"] is None  # one label throughout: undefined, not 1


def test_bad_exports_name_the_task_and_lose_nothing(tmp_path):
    pairs = write_pairs(tmp_path, {"wiki": 2})
    ids = [r["pair_id"] for r in S.read_table(pairs, S.PAIRS).to_pylist()][:2]
    out = tmp_path / "out"
    good = [{"id": 1, "pair_id": ids[0], "cmi": "0.5", "sc": "1", "annotator": 1, "annotation_id": 10},
            {"id": 2, "pair_id": ids[1], "cmi": "0", "sc": "-0.5", "annotator": 1, "annotation_id": 11}]
    assert LS.cli_main(["import", str(export_file(tmp_path / "a.json", good)), "--pairs", str(pairs),
                        "--out", str(out)]) == 0
    before = (out / "ratings.parquet").read_bytes()
    for bad, msg in [("{not json", "not a JSON file"), ({"tasks": []}, "found a JSON dict"),
                     ([{"data": {}}], "record 0 is not a Label Studio task")]:
        with pytest.raises(CmiscError, match=msg):
            LS.cli_main(["import", str(export_file(tmp_path / "bad.json", bad)), "--pairs", str(pairs),
                         "--out", str(out)])
    assert (out / "ratings.parquet").read_bytes() == before  # a bad export writes nothing
    problems = [{"id": 7, "pair_id": "elsewhere", "cmi": "1", "sc": "1", "annotator": 2, "annotation_id": 12},
                {"id": 8, "pair_id": ids[0], "cmi": "0.5", "annotator": 2, "annotation_id": 13},
                {"id": 9, "pair_id": ids[1], "cmi": "0.6", "sc": "0", "annotator": 2, "annotation_id": 14},
                {"id": 10, "pair_id": ids[1]},
                {"id": 11, "pair_id": ids[1], "cmi": "0.25", "sc": "0.5", "annotator": 3, "annotation_id": 15}]
    report, found = LS.import_export(export_file(tmp_path / "b.json", problems), [pairs], out)
    assert [str(p) for p in found] == [
        "task 7: pair elsewhere is not in the given pairs files",
        "task 8: annotation 13 by label-studio:2 has no SC label (half-filled)",
        "task 9: CMI '0.6' is not on the scale [0.0, 0.25, 0.5, 0.75, 1.0]",
        "task 10: not annotated yet",
    ]
    assert report["merge"] == {"new": 1, "changed": 0, "unchanged": 0, "kept": 2}  # the first import stays
    assert before != (out / "ratings.parquet").read_bytes()
    assert len(LS.read_ratings(out / "ratings.parquet")) == 3


# --------------------------------------------------------------------------- the real server


def _binary() -> str | None:
    for candidate in (os.environ.get("CMISC_LABEL_STUDIO"), REPO / ".venv-label-studio" / "bin" / "label-studio"):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    return shutil.which("label-studio")


def _template(binary: str, cache, env: dict) -> Path | None:
    """A migrated, empty data dir with our user and token, made once per label-studio install."""
    if cache is None:
        return None
    key = hashlib.sha1(f"{os.path.realpath(binary)}:{os.stat(binary).st_mtime_ns}".encode()).hexdigest()[:12]
    folder = cache.mkdir("label-studio")
    template = folder / f"data-{key}"
    if not (template / "label_studio.sqlite3").exists():
        work = folder / f".init-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        subprocess.run([binary, "init", "--username", USER, "--password", PASSWORD, "--user-token", TOKEN,
                        "--enable-legacy-api-token"], env={**env, "LABEL_STUDIO_BASE_DATA_DIR": str(work)},
                       check=True, capture_output=True, timeout=300)
        shutil.rmtree(template, ignore_errors=True)
        os.replace(work, template)
    return template


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, request):
    """A real Label Studio on loopback; yields (url, document root); SIGTERM at the end."""
    binary = _binary()
    if binary is None:
        pytest.skip("label-studio is not installed (.ci/run installs it in .venv-label-studio)")
    tmp = tmp_path_factory.mktemp("label-studio")
    root, data, home = tmp / "root", tmp / "data", tmp / "home"
    root.mkdir(), home.mkdir()
    env = {**os.environ, **LS.server_env(data, root), "HOME": str(home)}
    template = _template(binary, request.config.cache, env)
    if template is not None:
        shutil.copytree(template, data)
    url = f"http://127.0.0.1:{_free_port()}"
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 (open while the server runs)
    proc = subprocess.Popen(
        [binary, "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", url.rsplit(":", 1)[1],
         "--username", USER, "--password", PASSWORD, "--user-token", TOKEN, "--enable-legacy-api-token"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                if requests.get(f"{url}/health", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"label-studio did not answer /health:\n{(tmp / 'server.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield url, root
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _api(url: str):
    s = requests.Session()
    s.headers["Authorization"] = f"Token {TOKEN}"

    def call(method: str, path: str, **kw):
        r = s.request(method, url + path, timeout=30, **kw)
        assert r.ok, (method, path, r.status_code, r.text[:500])
        return r.json() if r.content else None

    return call, s


@pytest.mark.slow
def test_round_trip_through_a_real_label_studio(server, tmp_path, capsys):
    url, root = server
    api, session = _api(url)
    with pytest.raises(CmiscError, match="401"):
        LS.LabelStudio(url, "not-the-token").create_project("refused", 1)
    pairs = write_pairs(root, {"simplewiki": 3, "bbc": 3})
    out = tmp_path / "tasks"
    assert LS.cli_main(["export", str(pairs), "--out", str(out), "--n", "5", "--seed", "3", "--document-root",
                        str(root), "--url", url, "--token", TOKEN, "--annotators", "2",
                        "--params", str(tmp_path / "none.yaml")]) == 0
    project = json.loads((out / "project.json").read_text())["project"]
    assert json.loads((out / "tasks.json").read_text()) and (out / "config.xml").exists()

    tasks = sorted(api("GET", f"/api/tasks/?project={project}")["tasks"], key=lambda t: t["id"])
    assert len(tasks) == 5 and {t["data"]["source"] for t in tasks} == {"simplewiki", "bbc"}
    assert tasks[0]["data"]["text"].splitlines()[0] == "## History"
    image = session.get(url + tasks[0]["data"]["image"], timeout=30)  # served: the storage is attached
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"

    a = api("GET", "/api/current-user/whoami")["id"]
    b = api("POST", "/api/users/", json={"email": "b@example.com", "username": "b"})["id"]
    c = api("POST", "/api/users/", json={"email": "c@example.com", "username": "c"})["id"]
    a_labels = [("0", "0"), ("0.25", "0.5"), ("0.5", "0.5"), ("1", "1"), ("0.75", "-0.5")]
    b_labels = [("0", "0"), ("0.5", "0.5"), ("0.5", "1"), ("1", "1")]
    first_a = None
    for t, (cmi, sc) in zip(tasks, a_labels):  # annotator A: the admin, every task
        made = api("POST", f"/api/tasks/{t['id']}/annotations/", json={"result": choices(cmi, sc)})
        first_a = first_a or made["id"]
    for t, (cmi, sc) in zip(tasks, b_labels):  # annotator B: four tasks, skips the fifth
        api("POST", f"/api/tasks/{t['id']}/annotations/", json={"result": choices(cmi, sc), "completed_by": b})
    api("POST", f"/api/tasks/{tasks[4]['id']}/annotations/", json={"result": [], "was_cancelled": True,
                                                                   "completed_by": b})
    api("POST", f"/api/tasks/{tasks[0]['id']}/annotations/", json={"result": choices("1", None), "completed_by": c})

    full = export_file(tmp_path / "export.json", api("GET", f"/api/projects/{project}/export",
                                                     params={"exportType": "JSON"}))
    flat = export_file(tmp_path / "export-min.json", api("GET", f"/api/projects/{project}/export",
                                                         params={"exportType": "JSON_MIN"}))
    imported = {}
    for name, export in (("json", full), ("json_min", flat)):
        dest = tmp_path / name
        assert LS.cli_main(["import", str(export), "--pairs", str(pairs), "--out", str(dest)]) == 3  # C's half
        imported[name] = sorted((r["task_id"], r["annotator"], r["cmi"], r["sc"])
                                for r in LS.read_ratings(dest / "ratings.parquet"))
    assert imported["json"] == imported["json_min"]
    want = sorted([(t["id"], f"label-studio:{a}", float(c), float(s)) for t, (c, s) in zip(tasks, a_labels)]
                  + [(t["id"], f"label-studio:{b}", float(c), float(s)) for t, (c, s) in zip(tasks, b_labels)])
    assert imported["json"] == want

    dest = tmp_path / "json"
    report = json.loads((dest / "agreement.json").read_text())
    from sklearn.metrics import cohen_kappa_score

    for m, k in (("cmi", 0), ("sc", 1)):
        ya = [LS.LEVELS[m].index(float(x[k])) for x in a_labels[:4]]
        yb = [LS.LEVELS[m].index(float(x[k])) for x in b_labels]
        assert report[m]["cohen"][0]["n"] == 4
        assert report[m]["cohen"][0]["kappa"] == round(cohen_kappa_score(ya, yb, labels=list(range(5))), 4)
        assert report[m]["fleiss"]["n"] == 4 and report[m]["fleiss"]["raters"] == 2
    annotations = S.read_table(dest / "annotations.parquet", S.ANNOTATIONS).to_pylist()
    assert len(annotations) == 5  # one per pair: the lower median of A and B, or A alone
    by_task = {t["id"]: t["data"]["pair_id"] for t in tasks}
    got = {r["pair_id"]: (r["cmi"], r["sc"]) for r in annotations}
    assert got[by_task[tasks[1]["id"]]] == (0.25, 0.5) and got[by_task[tasks[4]["id"]]] == (0.75, -0.5)
    assert (dest / "disagreements.csv").read_text().count("\n") == 1 + 2  # header + tasks 2 and 3

    # A changes a label; pulling the project again updates it and keeps everything else
    api("PATCH", f"/api/annotations/{first_a}/", json={"result": choices("0.25", "0")})
    capsys.readouterr()
    assert LS.cli_main(["import", "--url", url, "--token", TOKEN, "--project", str(project),
                        "--pairs", str(pairs), "--out", str(dest)]) == 3
    rows = LS.read_ratings(dest / "ratings.parquet")
    assert len(rows) == 9 and (dest / "export.json").exists()
    assert json.loads((dest / "agreement.json").read_text())["merge"] == {"new": 0, "changed": 1, "unchanged": 8,
                                                                          "kept": 0}
    assert [r["cmi"] for r in rows if r["annotation_id"] == first_a] == [0.25]
    assert f"task {tasks[0]['id']}: annotation" in capsys.readouterr().err  # C's half-filled one, by task


@pytest.mark.slow
def test_inline_images_need_no_storage(server, tmp_path):
    url, root = server
    api, _ = _api(url)
    pairs = write_pairs(root / "inline", {"coco": 2})
    out = tmp_path / "tasks"
    assert LS.cli_main(["export", str(pairs), "--out", str(out), "--n", "1", "--images", "inline", "--url", url,
                        "--token", TOKEN, "--title", "inline images", "--params", str(tmp_path / "none.yaml")]) == 0
    project = json.loads((out / "project.json").read_text())["project"]
    [task] = api("GET", f"/api/tasks/?project={project}")["tasks"]
    assert task["data"]["image"].startswith("data:image/jpeg;base64,/9j/")  # a JPEG, inline
    assert api("GET", f"/api/storages/localfiles/?project={project}") == []
