"""The held-out world in the evaluation report: the headline table.

The test split of the paper-sized labelled set holds ~95 items (one item is
~1 point, the 95% interval ±9 points). The held-out world (``flows/heldout.py``)
has 2,000 labelled pairs from another seed that nothing trains or selects on;
every system's K repeats score all of it (PREDICTIONS rows of split
``heldout``). This module checks those rows, scores them like Table 3 (bootstrap
intervals, mean ± sd over K) and writes the report's first table, with the
drop under shuffled images, the counterfactual texts and SC recall per class.
"""

from __future__ import annotations

from pathlib import Path

from cmisc_model import schemas as S
from cmisc_model.errors import CmiscError
from cmisc_model.evaluation.metrics import fmt as _f


def read_heldout(path: str | Path) -> list[dict]:
    """The held-out labelled rows (every one of split ``heldout``)."""
    rows = S.read_table(path, S.LABELLED).to_pylist()
    other = [r["pair_id"] for r in rows if r["split"] != "heldout"]
    if not rows or other:
        raise CmiscError(f"{path}: not a held-out set ({len(other)} of {len(rows)} rows of another split)")
    return rows


def expected_items(rows: list[dict], predictions: list[dict]) -> dict[int, dict[str, dict]]:
    """Every repeat that scored the held-out world must have scored all of it."""
    by_id = {r["pair_id"]: r for r in rows}
    return {k: by_id for k in sorted({r["repeat"] for r in predictions})}


def heldout_markdown(results: dict, ablations: dict, counterfactual: dict, n: int, cfg, systems: list[str],
                     names: dict[str, str]) -> str:
    """The headline table: each system on the held-out world."""
    pct = round(cfg.ci * 100)
    lines = [
        f"## Held-out world ({n} labelled pairs)",
        "",
        (f"A second sample world from its own seed, never trained or selected on. Accuracy of repeat 0 "
         f"[{pct}% percentile bootstrap interval], mean ± sd over the K repeats' models, the drop in points "
         "when each text gets another item's image, accuracy on counterfactual texts (one correct mention "
         "contradicted; labels from the rules) and SC recall per class (repeat 0)."),
        "",
        "| System | CMI acc [CI] | CMI mean ± sd (K) | SC acc [CI] | SC mean ± sd (K) | shuffled images: CMI / SC drop "
        "| counterfactual acc | SC recall " + " / ".join(f"{v:g}" for v in S.SC_LEVELS) + " |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for system in [s for s in systems if s in results]:
        m = results[system]
        cells = [names.get(system, system)]
        for t in ("cmi", "sc"):
            cells += [f"{_f(m[t]['accuracy'])} [{_f(m[t]['accuracy_ci_low'])}, {_f(m[t]['accuracy_ci_high'])}]",
                      f"{_f(m[t]['accuracy_mean'])} ± {_f(m[t]['accuracy_sd'])} ({m[t]['repeats']})"]
        shuffled = ablations.get(system, {}).get("images_shuffled")
        cells.append(f"{_f(shuffled['cmi']['drop'], 1)} / {_f(shuffled['sc']['drop'], 1)}" if shuffled else "—")
        cf = counterfactual.get(system)
        cells.append(f"{_f(cf['accuracy'])} ({cf['n']})" if cf else "—")
        pc = m["sc"]["per_class"]
        cells.append(" / ".join(_f(pc[f"{v:g}"]["recall"], 2) for v in S.SC_LEVELS))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines + [""]) + "\n"
