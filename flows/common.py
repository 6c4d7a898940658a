"""What every flow shares: the task runner choice, artifacts, the CLI wrapper.

Threads by default (parsing and image work release the GIL often enough, and
threads share one HTTP rate limit); a Dask cluster when the user gives a
scheduler address (``--dask tcp://host:8786``), through prefect-dask. The
choice is made at run time with ``flow.with_options(task_runner=...)``, so
task code never changes.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from typing import Any

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.task_runners import ThreadPoolTaskRunner

from cmisc_model.corpus.images import ImagesConfig, merge_summaries
from cmisc_model.errors import USER_ERRORS
from tasks.images import store_images_shard

SHARD_ROWS = 256  # pair rows per store-images task


def task_runner(dask_address: str | None = None, workers: int = 2):
    """ThreadPool by default; DaskTaskRunner on an existing scheduler when given."""
    if dask_address:
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError as e:  # the [dask] extra
            raise SystemExit("--dask needs prefect-dask: pip install -e '.[dask]'") from e
        return DaskTaskRunner(address=dask_address)
    return ThreadPoolTaskRunner(max_workers=workers)


class Progress:
    """A Prefect progress artifact (0–100) for long flows."""

    def __init__(self, description: str):
        self.id = create_progress_artifact(progress=0.0, description=description)

    def update(self, fraction: float) -> None:
        if self.id is not None:
            update_progress_artifact(artifact_id=self.id, progress=round(100.0 * min(max(fraction, 0.0), 1.0), 1))


def store_images(
    rows: list[dict],
    store: str,
    cfg: ImagesConfig,
    progress: Progress,
    *,
    local_roots: list[str] | None = None,
    fetch: bool = False,
    label: str = "images",
    start: float = 0.0,
) -> tuple[list[dict], dict]:
    """Map the store-images task over shards of rows; rows come back in order.

    The store is shared and content-addressed, so shards never clash. Progress
    moves from ``start`` to 1.0 as shards finish.
    """
    futures = [
        store_images_shard.submit(rows[i : i + SHARD_ROWS], store, cfg, list(local_roots or []), fetch,
                                  label=f"{label}-{i // SHARD_ROWS}")
        for i in range(0, len(rows), SHARD_ROWS)
    ]
    out, summaries = [], []
    for k, f in enumerate(futures):
        r, s = f.result()
        out += r
        summaries.append(s)
        progress.update(start + (1.0 - start) * (k + 1) / len(futures))
    return out, merge_summaries(summaries) if summaries else {}


def _flat(prefix: str, value: Any, out: list[dict]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, list) and value and isinstance(value[0], dict):
        out.append({"metric": prefix, "value": f"{len(value)} entries"})
    else:
        out.append({"metric": prefix, "value": value if isinstance(value, (int, float, str)) or value is None else json.dumps(value)})


def summary_table(key: str, summary: dict, description: str) -> None:
    """Publish a summary dict as a two-column table artifact (nested keys dotted)."""
    rows: list[dict] = []
    _flat("", summary, rows)
    create_table_artifact(table=rows, key=key, description=description)


def markdown(key: str, text: str, description: str) -> None:
    create_markdown_artifact(markdown=text, key=key, description=description)


class _NoUserErrorTracebacks(logging.Filter):
    """Console only: drop Prefect's records that carry a traceback of a known
    input or configuration error (the API still gets them, the UI shows them);
    ``run_cli`` ends with the one line that says what to fix."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, USER_ERRORS)


def quiet_console() -> None:
    from prefect.logging.handlers import PrefectConsoleHandler

    for logger in (logging.getLogger(), *(logging.getLogger(n) for n in logging.root.manager.loggerDict)):
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, PrefectConsoleHandler) and not any(
                isinstance(f, _NoUserErrorTracebacks) for f in handler.filters
            ):
                handler.addFilter(_NoUserErrorTracebacks())


def run_cli(main: Callable[[list[str]], int]) -> None:
    """``python -m flows.x``: bad input -> one line on stderr and exit 2."""
    quiet_console()
    try:
        code = main(sys.argv[1:])
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        code = getattr(e, "exit_code", 2)
    sys.exit(code)
