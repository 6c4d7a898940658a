"""Prefect task: store the images of one shard of pair rows."""

from __future__ import annotations

from prefect import task

from cmisc_model.corpus.images import ImagesConfig, make_session, store_images_rows
from tasks.limits import prefect_rate_limiter
from tasks.scrape import retry_unless_handled


# Downloads are retried by the HTTP client and a failed image is a row with its
# reason, so task retries only cover a crash, never a configuration error.
@task(name="store-images", retries=2, retry_delay_seconds=[2, 10], task_run_name="store-images-{label}",
      retry_condition_fn=retry_unless_handled)
def store_images_shard(
    rows: list[dict], store: str, cfg: ImagesConfig, local_roots: list[str], fetch: bool, label: str = ""
) -> tuple[list[dict], dict]:
    """Content-addressed, so a retried or resumed shard only verifies what is stored."""
    # Downloads take the host's global rate-limit slot too (tasks/limits.py).
    session = make_session(cfg, before_request=prefect_rate_limiter()) if fetch else None
    try:
        return store_images_rows(rows, store, cfg, local_roots=local_roots, fetch=fetch, progress=False,
                                 session=session)
    finally:
        if session is not None:
            session.close()
