"""The scheduled refresh: the flow against a fake MediaWiki API serving the
sample world, and (slow) a real Prefect server with the served deployment."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from cmisc_model import schemas as S
from cmisc_model.sources.wiki_dump import is_article, iter_pages
from tests.conftest import REPO
from tests.fake_mediawiki import FakePage, FakeWiki, Fault

UA = "cmisc-tests/0.1 (https://example.org/cmisc; tests@example.org)"


def fake_world(world: Path) -> FakeWiki:
    """The sample world's articles and image files behind a fake api.php."""
    dump = world / "simplewiki" / "simplewiki-sample-pages-articles.xml.bz2"
    pages = [FakePage(p.title, p.text, page_id=p.page_id, revision_id=p.revision_id)
             for p in iter_pages(dump) if is_article(p)]
    images = {f.name: f.read_bytes() for f in (world / "simplewiki" / "images").rglob("*") if f.is_file()}
    return FakeWiki(pages, images=images)


def write_params(tmp: Path, **scrape) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["scrape"].update({"rate_per_s": 100.0, "allowed_hosts": ["127.0.0.1"], "user_agent": UA, **scrape})
    params["images"].update(allowed_hosts=["127.0.0.1"], rate_per_s=100.0)
    path = tmp / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def content_requests(wiki: FakeWiki) -> list[str]:
    """Page ids or titles whose wikitext was fetched."""
    out = []
    for r in wiki.api_requests():
        if "content" in r.params.get("rvprop", ""):
            out += (r.params.get("pageids") or r.params.get("titles") or "").split("|")
    return out


@pytest.mark.usefixtures("prefect")
def test_refresh_fetches_only_changed_pages(tiny_world, tmp_path):
    from flows.refresh import simplewiki_refresh

    params = write_params(tmp_path)
    out, store = tmp_path / "pairs.parquet", tmp_path / "store"
    wiki = fake_world(tiny_world)
    with wiki:
        first = simplewiki_refresh(str(out), str(store), all_pages=True, endpoint=wiki.endpoint, params=str(params))
        n_pages = first["pages_listed"]
        assert first["pages_fetched"] == n_pages and first["pairs"] > 0
        assert first["images"]["ok"] == first["pairs"]
        before = S.read_table(out, S.PAIRS).to_pylist()

        page = next(p for p in wiki.pages if "[[File:" in p.wikitext)
        head, sep, rest = page.wikitext.partition("\n==")  # a new last sentence of the lead
        wiki.edit(page.title, head + "\nA new closing sentence about the article.\n" + sep + rest)
        wiki.reset_log()
        second = simplewiki_refresh(str(out), str(store), all_pages=True, endpoint=wiki.endpoint, params=str(params))
        assert second["pages_fetched"] == 1 and second["pages_unchanged"] == n_pages - 1
        assert content_requests(wiki) == [str(page.page_id)]
    after = S.read_table(out, S.PAIRS).to_pylist()
    assert len(after) == len(before)
    changed = [r for r in after if r["doc_id"] == str(page.page_id)]
    leads = [r for r in changed if r["position"] == "lead"]
    assert leads and all("A new closing sentence about the article." in
                         [s for b in r["text_blocks"] for s in b["sentences"]] for r in leads)
    untouched = {r["pair_id"]: r for r in before if r["doc_id"] != str(page.page_id)}
    assert all(untouched[r["pair_id"]] == r for r in after if r["pair_id"] in untouched)


@pytest.mark.usefixtures("prefect")
def test_refresh_retries_pages_that_failed_in_the_previous_run(tiny_world, tmp_path):
    """Content requests fail on the first run; the next run recovers every
    pair, none duplicated (before: the failures were cached as the shard's
    result, and the second run fetched nothing)."""
    from cmisc_model.sources.wiki_dump import pages_to_pairs, read_siteinfo
    from flows.refresh import simplewiki_refresh

    params = write_params(tmp_path, max_retries=0)
    out, store = tmp_path / "pairs.parquet", tmp_path / "store"
    dump = tiny_world / "simplewiki" / "simplewiki-sample-pages-articles.xml.bz2"
    expected, _ = pages_to_pairs([p for p in iter_pages(dump) if is_article(p)], site=read_siteinfo(dump))
    wiki = fake_world(tiny_world)
    with wiki:
        wiki.add_fault(Fault("500", match="rvprop=ids|timestamp|content", count=None))
        first = simplewiki_refresh(str(out), str(store), all_pages=True, endpoint=wiki.endpoint,
                                   params=str(params), fetch_images=False)
        assert first["pages_failed"] == first["pages_listed"] > 0 and first["pairs"] == 0
        wiki.clear_faults()
        wiki.reset_log()
        second = simplewiki_refresh(str(out), str(store), all_pages=True, endpoint=wiki.endpoint,
                                    params=str(params), fetch_images=False)
        assert content_requests(wiki), "the failed pages were not asked again"
    assert second["pages_failed"] == 0 and second["pages_fetched"] == first["pages_listed"]
    ids = [r["pair_id"] for r in S.read_table(out, S.PAIRS).to_pylist()]
    assert len(ids) == len(set(ids)) == len(expected)
    assert set(ids) == {r["pair_id"] for r in expected}


@pytest.mark.usefixtures("prefect")
def test_refresh_keeps_one_rate_per_endpoint_across_workers(tiny_world, tmp_path):
    """rate_per_s holds for the endpoint, not per task: four worker threads,
    shards of 2 pages, 5 requests a second at most."""
    from prefect.task_runners import ThreadPoolTaskRunner

    from flows.refresh import simplewiki_refresh

    params = write_params(tmp_path, rate_per_s=5.0, batch_size=2)
    wiki = fake_world(tiny_world)
    run = simplewiki_refresh.with_options(task_runner=ThreadPoolTaskRunner(max_workers=4))
    with wiki:
        summary = run(str(tmp_path / "p.parquet"), str(tmp_path / "store"), all_pages=True,
                      endpoint=wiki.endpoint, params=str(params), fetch_images=False)
        times = sorted(r.at for r in wiki.api_requests())
    assert summary["pages_failed"] == 0 and len(times) > 8
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) > 0.9 * 0.2, sorted(gaps)[:5]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float) -> None:
    import requests

    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            if requests.get(url + "/health", timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise TimeoutError(f"prefect server at {url} not healthy after {timeout} s")


def _run_deployment(env: dict) -> str:
    # The serve process registers the deployment a few seconds after it starts.
    code = (
        "import time\n"
        "from prefect.client.orchestration import get_client\n"
        "from prefect.deployments import run_deployment\n"
        "from prefect.exceptions import ObjectNotFound\n"
        "name = 'simplewiki-refresh/weekly-test'\n"
        "with get_client(sync_client=True) as c:\n"
        "    for _ in range(120):\n"
        "        try:\n"
        "            c.read_deployment_by_name(name); break\n"
        "        except ObjectNotFound:\n"
        "            time.sleep(1)\n"
        "r = run_deployment(name, timeout=300)\n"
        "print(r.state.type.value)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], check=False, env=env, capture_output=True, text=True, timeout=360)
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-2000:]


@pytest.mark.slow
def test_served_deployment_on_a_real_prefect_server(tiny_world, tmp_path):
    """prefect server start -> python -m flows.serve -> two triggered runs."""
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_API_URL": api,
           "PREFECT_RUNNER_POLL_FREQUENCY": "2", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_UI_ENABLED": "false", "PYTHONPATH": str(REPO)}
    server_env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
    params = write_params(tmp_path)
    out, store = tmp_path / "pairs.parquet", tmp_path / "store"
    prefect_bin = str(Path(sys.executable).parent / "prefect")
    server = subprocess.Popen([prefect_bin, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                              env=server_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    served = None
    wiki = fake_world(tiny_world)
    try:
        _wait_healthy(api, server, 240)
        with wiki:
            served = subprocess.Popen(
                [sys.executable, "-m", "flows.serve", "--name", "weekly-test", "--out", str(out), "--store", str(store),
                 "--endpoint", wiki.endpoint, "--user-agent", UA, "--params", str(params)],
                cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            state = _run_deployment(env)
            assert state == "COMPLETED", state
            first = S.read_table(out, S.PAIRS)
            assert first.num_rows > 0 and set(first.column("image_status").to_pylist()) == {"ok"}

            page = next(p for p in wiki.pages if "[[File:" in p.wikitext)
            wiki.edit(page.title, page.wikitext + "\n\nOne more sentence.")
            wiki.reset_log()
            state = _run_deployment(env)
            assert state == "COMPLETED", state
            assert content_requests(wiki) == [str(page.page_id)]
            assert S.read_table(out, S.PAIRS).num_rows == first.num_rows
    finally:
        for proc in (served, server):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()


def test_prefect_yaml_declares_the_weekly_deployment():
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    (dep,) = spec["deployments"]
    assert dep["entrypoint"] == "flows/refresh.py:simplewiki_refresh"
    assert dep["schedules"][0]["cron"] == "0 3 * * 1"
    from prefect.flows import load_flow_from_entrypoint

    flow = load_flow_from_entrypoint(str(REPO / dep["entrypoint"]))
    assert flow.name == "simplewiki-refresh"
    assert set(dep["parameters"]) <= set(flow.parameters.properties)


def _flow_env(**extra) -> dict:
    """The environment of a user's shell: no test-only logging level, the
    session's Prefect API (so no second server has to start)."""
    from prefect.settings import PREFECT_API_URL

    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_LOGGING")}
    env.update(PREFECT_API_URL=PREFECT_API_URL.value() or "", PYTHONPATH=str(REPO), **extra)
    return env


def test_missing_user_agent_fails_at_once_in_one_line(tmp_path):
    """Before: retried 3 times as a task, 209 s, tracebacks."""
    env = {k: v for k, v in os.environ.items() if k != "CMISC_USER_AGENT"}
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["scrape"]["user_agent"] = ""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    t = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "flows.refresh", "--all", "--out", str(tmp_path / "p.parquet"), "--store",
         str(tmp_path / "s"), "--params", str(tmp_path / "params.yaml")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "User-Agent" in done.stderr, done.stderr
    assert time.monotonic() - t < 60


@pytest.mark.usefixtures("prefect")
def test_api_outage_is_retried_by_one_layer_and_ends_in_one_line(tiny_world, tmp_path):
    """The listing fails for good: the HTTP client's retries only (no task
    retries on top), no traceback on the console, one final error line."""
    params = write_params(tmp_path, max_retries=2)
    wiki = fake_world(tiny_world)
    with wiki:
        wiki.add_fault(Fault("500", match="list=allpages", count=None))
        done = subprocess.run(
            [sys.executable, "-m", "flows.refresh", "--all", "--out", str(tmp_path / "p.parquet"), "--store",
             str(tmp_path / "s"), "--endpoint", wiki.endpoint, "--params", str(params)],
            cwd=REPO, env=_flow_env(), capture_output=True, text=True, timeout=300, check=False,
        )
        listing = [r for r in wiki.api_requests() if r.params.get("list") == "allpages"]
    assert done.returncode == 2, done.stderr
    assert len(listing) == 3  # 1 try + max_retries, once
    assert "Traceback" not in done.stderr, done.stderr
    assert "HTTP 500; retry 1 of 2" in done.stderr and "retry 2 of 2" in done.stderr  # never silent
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "HTTP 500" in last and "allpages" in last
    assert not (tmp_path / "p.parquet").exists()


@pytest.mark.usefixtures("prefect")
def test_info_logs_reach_the_prefect_api_while_the_console_stays_quiet(tiny_world, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, LogFilter, LogFilterFlowRunId
    from prefect.client.schemas.sorting import FlowRunSort

    params = write_params(tmp_path)
    wiki = fake_world(tiny_world)
    with wiki:
        done = subprocess.run(
            [sys.executable, "-m", "flows.refresh", "--all", "--out", str(tmp_path / "p.parquet"), "--store",
             str(tmp_path / "s"), "--endpoint", wiki.endpoint, "--params", str(params), "--no-images"],
            cwd=REPO, env=_flow_env(), capture_output=True, text=True, timeout=300, check=False,
        )
    assert done.returncode == 0, done.stderr
    assert "INFO" not in done.stderr and len(done.stdout.strip().splitlines()) == 1, (done.stdout, done.stderr)
    with get_client(sync_client=True) as client:
        run = client.read_flow_runs(flow_run_filter=FlowRunFilter(), sort=FlowRunSort.START_TIME_DESC, limit=1)[0]
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
    messages = [log.message for log in logs if log.level == 20]
    assert any("pages fetched" in m for m in messages), messages


@pytest.mark.usefixtures("prefect")
def test_refresh_keeps_one_rate_across_dask_worker_processes(tiny_world, tmp_path):
    """Two Dask worker processes share no memory: only the Prefect global rate
    limit keeps the endpoint at rate_per_s."""
    pytest.importorskip("prefect_dask")
    from distributed import LocalCluster

    from flows.common import task_runner
    from flows.refresh import simplewiki_refresh

    params = write_params(tmp_path, rate_per_s=4.0, batch_size=2)
    wiki = fake_world(tiny_world)
    with wiki, LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        run = simplewiki_refresh.with_options(task_runner=task_runner(cluster.scheduler_address))
        summary = run(str(tmp_path / "p.parquet"), str(tmp_path / "store"), all_pages=True,
                      endpoint=wiki.endpoint, params=str(params), fetch_images=False)
        times = sorted(r.at for r in wiki.api_requests())
    assert summary["pages_failed"] == 0 and len(times) > 8
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) > 0.9 * 0.25, sorted(gaps)[:5]


@pytest.mark.usefixtures("prefect")
def test_refresh_cli_is_non_zero_when_every_page_failed(tiny_world, tmp_path, capsys):
    from flows.refresh import main

    params = write_params(tmp_path, max_retries=0)
    wiki = fake_world(tiny_world)
    with wiki:
        wiki.add_fault(Fault("500", match="rvprop=ids|timestamp|content", count=None))
        code = main(["--all", "--out", str(tmp_path / "p.parquet"), "--store", str(tmp_path / "s"), "--endpoint",
                     wiki.endpoint, "--user-agent", UA, "--params", str(params), "--no-images"])
    assert code == 1
    assert "pages fetched 0" in capsys.readouterr().out
