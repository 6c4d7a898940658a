"""Prefect task: store the images of one shard of pair rows."""

from __future__ import annotations

from prefect import task

from cmisc_model.images import ImagesConfig, store_images_rows


@task(name="store-images", retries=2, retry_delay_seconds=[2, 10], task_run_name="store-images-{label}")
def store_images_shard(
    rows: list[dict], store: str, cfg: ImagesConfig, local_roots: list[str], fetch: bool, label: str = ""
) -> tuple[list[dict], dict]:
    """Content-addressed, so a retried or resumed shard only verifies what is stored."""
    return store_images_rows(rows, store, cfg, local_roots=local_roots, fetch=fetch, progress=False)
