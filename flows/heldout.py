"""Flow: the held-out test world -> its labelled pairs, through the same readers.

``python -m flows.heldout --world data/heldout/world --out data/heldout``

The held-out world is a second sample world from its own seed (``cmisc sample
--seed ${heldout.seed} --size ${heldout.size}``). Its Wikipedia dump, BBC
folder and COCO captions go through the very flows the main world goes
through (as subflows of this one, so Prefect starts once), its images into
``OUT/images``; then every labelled pair becomes a row of
``OUT/labelled.parquet`` with split ``heldout``. No stage trains or selects on
it; the classifier and the baselines score all of it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from prefect import flow

from cmisc_model.config import load_section
from cmisc_model.sample_world.world import HeldoutConfig
from flows.common import run_cli, task_runner
from flows.corpus import bbc_flow, coco_flow, corpus_flow
from flows.simplewiki import simplewiki_pairs

DUMP = "simplewiki/simplewiki-sample-pages-articles.xml.bz2"


@flow(name="heldout-world", log_prints=True)
def heldout_flow(world: str, out: str, params: str = "params.yaml") -> dict:
    cfg = load_section(HeldoutConfig, "heldout", params)
    w, o = Path(world), Path(out)
    pairs = {name: str(o / "pairs" / f"{name}.parquet") for name in ("simplewiki", "bbc", "coco")}
    simplewiki_pairs(str(w / DUMP), pairs["simplewiki"], str(o / "images" / "simplewiki"),
                     image_roots=[str(w / "simplewiki" / "images")], params=params)
    bbc_flow(str(w / "bbc"), pairs["bbc"], str(o / "images" / "bbc"), params)
    coco_labelled, coco_annotations = str(o / "pairs" / "coco_labelled.parquet"), str(o / "pairs" / "coco_annotations.parquet")
    coco_flow(str(w / "coco" / "annotations" / "captions_train2017.json"), str(w / "coco" / "train2017"),
              pairs["coco"], coco_labelled, coco_annotations, str(o / "images" / "coco"), params,
              n_images=cfg.coco_labelled, seed=cfg.seed)
    return corpus_flow([pairs["simplewiki"], pairs["bbc"]], [str(w / "annotations.jsonl"), coco_annotations],
                       out, [coco_labelled], params, heldout=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.heldout", description=__doc__.split("\n\n")[0])
    parser.add_argument("--world", required=True, help="the held-out sample world (cmisc sample --out)")
    parser.add_argument("--out", required=True, help="folder for pairs/, images/ and labelled.parquet")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--workers", type=int, default=2, help="threads of the task runner")
    args = parser.parse_args(argv)
    s = heldout_flow.with_options(task_runner=task_runner(None, args.workers))(args.world, args.out, args.params)
    print(f"{args.out}/labelled.parquet: {s['labelled']} held-out labelled pairs")
    return 0


if __name__ == "__main__":
    run_cli(main)
