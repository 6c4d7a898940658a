"""prefect.yaml and flows.serve: distinct deployment names, and a clear error without CMISC_PROJECT_DIR."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml
from prefect.deployments.steps.core import StepExecutionError, run_steps

from flows import serve

REPO = Path(__file__).resolve().parents[1]
PREFECT_YAML = yaml.safe_load((REPO / "prefect.yaml").read_text(encoding="utf-8"))


def test_serve_and_prefect_yaml_do_not_share_a_deployment_name():
    declared = {d["name"] for d in PREFECT_YAML["deployments"]}
    assert declared and serve.NAME not in declared
    # both deploy the same flow, so a shared name would replace one with the other
    assert {d["entrypoint"] for d in PREFECT_YAML["deployments"]} == {"flows/refresh.py:simplewiki_refresh"}


def run_build_steps(monkeypatch, project_dir: str | None) -> None:
    if project_dir is None:
        monkeypatch.delenv("CMISC_PROJECT_DIR", raising=False)
    else:
        monkeypatch.setenv("CMISC_PROJECT_DIR", project_dir)
    asyncio.run(run_steps(PREFECT_YAML["build"], {}, print_function=lambda *a, **k: None))


@pytest.mark.parametrize("project_dir", [None, "", "/nonexistent/cmisc"])
def test_deploy_without_project_dir_fails_and_says_what_to_set(monkeypatch, project_dir, capfd):
    with pytest.raises(StepExecutionError) as e:
        run_build_steps(monkeypatch, project_dir)
    message = str(e.value.__cause__)
    assert "CMISC_PROJECT_DIR" in message and "is not a cmisc checkout" in message
    assert "CMISC_PROJECT_DIR=" in message and "prefect deploy --all" in message


def test_deploy_with_project_dir_passes_the_check(monkeypatch):
    run_build_steps(monkeypatch, str(REPO))  # no exception
    # and the pull step is where the checked variable ends up
    (pull,) = PREFECT_YAML["pull"]
    assert pull["prefect.deployments.steps.set_working_directory"]["directory"] == "{{ $CMISC_PROJECT_DIR }}"
