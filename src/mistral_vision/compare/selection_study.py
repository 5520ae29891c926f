"""The data-selection study of ``compare``: a spec's ``selection:`` block turned into cells, tests and a table.

For each config row x backbone, one **reference** cell trains on the whole pool (``<row>-<backbone>-full-s0``),
then every method of ``selection.methods`` trains at every budget (``<row>-<backbone>-<method>-<budget>-s<seed>``)
with ``data.select`` set: the baseline (``random``) over ``baseline_seeds`` seeds, the others over ``seeds``;
selection seed = training seed. Run-based methods (``loss``, ``kcenter``, ``clusters``, and ``handpicked`` given
``from_run: reference``) read the reference cell's run, which therefore comes first. ``collect`` writes
``compare/results.md`` / ``results.json`` / ``budget.png``: accuracy overall and per question type as mean +-
std over seeds, what each selection cost, and each method against the baseline at the same budget (an exact
McNemar test on seed-paired predictions, Holm-corrected over the table, and a verdict).
Not for: the cells' plan and run (``runner.plan`` / ``run_cells`` with arms) or the methods (``select/``).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from ..errors import UserError
from .runner import (VALID, Arm, Cell, CompareSpec, SelectionStudy, _cell_facts, _mean_std, _median, _pct,
                     apply_holm, is_complete, load_spec, paired_counts, per_type_spread, pm, run_dir)

FULL = "full"               # the reference arm: the whole pool


def _check_budget(b, where: str) -> None:
    if isinstance(b, bool) or not (b >= 1 and float(b).is_integer() or 0 < b < 1):
        raise UserError(f"{where} {b}: a count of examples (1 or more, whole) or a fraction of the pool "
                        "(between 0 and 1)")


def study_arms(study: SelectionStudy) -> list[Arm]:
    """The reference arm, then per budget the baseline and every other method (one line for a bad study)."""
    from ..config import SELECT_METHODS, SELECT_NEEDS_RUN, SelectConfig, check_select, from_dict

    if not study.budgets:
        raise UserError("selection.budgets is empty: give the counts (or fractions) of the pool to keep")
    for i, b in enumerate(study.budgets):
        _check_budget(b, f"selection.budgets[{i}]")
    if len(set(study.budgets)) != len(study.budgets):
        raise UserError(f"selection.budgets {list(study.budgets)}: a budget appears twice")
    if study.baseline_seeds < 1 or study.seeds < 1:
        raise UserError("selection.baseline_seeds and selection.seeds: need at least 1 seed each")
    if study.seeds > study.baseline_seeds:
        raise UserError(f"selection.seeds {study.seeds} is more than selection.baseline_seeds "
                        f"{study.baseline_seeds}: every seed of a method is paired with one of the baseline's")
    known = ", ".join(SELECT_METHODS)
    methods = {}                    # name -> (method, fields, reads the reference run)
    for name, fields in study.methods.items():
        where = f"selection.methods.{name}"
        fields = dict(fields or {})
        if name == FULL:
            raise UserError(f"{where}: `{FULL}` names the reference run (the whole pool); call the method otherwise")
        for k in ("keep", "seed"):
            if k in fields:
                raise UserError(f"{where}.{k}: set by the study (selection.budgets, the seeds)")
        method = fields.pop("method", name)
        if method not in SELECT_METHODS:
            raise UserError(f"{where}: unknown selection method {method!r}; known: {known}")
        source = fields.pop("from_run", None)
        if source not in (None, "reference"):
            raise UserError(f"{where}.from_run {source!r}: only `reference` (this row and backbone's run on the "
                            "whole pool, which the study makes)")
        reads = method in SELECT_NEEDS_RUN or source == "reference"
        spec = from_dict(SelectConfig, {"method": method, "keep": study.budgets[0], **fields,
                                        **({"from_run": "reference"} if reads else {})}, where)
        check_select(spec, f"{where}.", given=set(fields) | ({"from_run"} if reads else set()))
        methods[name] = (method, fields, reads)
    if study.baseline not in methods:
        if study.baseline not in SELECT_METHODS:
            raise UserError(f"selection.baseline {study.baseline!r}: not among selection.methods "
                            f"({', '.join(methods) or 'none'}) nor a selection method ({known})")
        methods[study.baseline] = (study.baseline, {}, study.baseline in SELECT_NEEDS_RUN)
    if len(methods) < 2:
        raise UserError(f"selection.methods: nothing to test against the baseline {study.baseline!r}")
    order = [study.baseline, *(m for m in methods if m != study.baseline)]
    arms = [Arm(FULL)]
    for budget in study.budgets:
        for name in order:
            method, fields, reads = methods[name]
            over = (f"data.select.method={method}", f"data.select.keep={budget}",
                    *(f"data.select.{k}={v}" for k, v in fields.items()))
            seeds = study.baseline_seeds if name == study.baseline else study.seeds
            arms.append(Arm(name, budget, seeds, over, FULL if reads else None))
    return arms


def load_study(path: str | Path, budgets: str | None = None) -> tuple[CompareSpec, list[Arm] | None]:
    """``runner.load_spec`` plus, for a spec with a ``selection:`` block, its arms (a bad study is one line naming
    the spec file); ``None`` arms for a backbone study. ``budgets`` ("1000" or "250,1000", the CLI's
    ``--budgets``) runs some of the study's budgets: the same cells, so a later full run reuses them."""
    spec = load_spec(path)
    if budgets is not None:
        if spec.selection is None:
            raise UserError(f"compare --budgets: {path} is not a selection study (it has no selection: block)")
        spec = dataclasses.replace(spec, selection=dataclasses.replace(
            spec.selection, budgets=_some_budgets(budgets, spec.selection.budgets, path)))
    if spec.selection is None:
        return spec, None
    try:
        return spec, study_arms(spec.selection)
    except UserError as e:
        raise UserError(f"{path}: {e}") from None


def _some_budgets(text: str, planned: tuple, path) -> tuple:
    """The budgets named in ``text`` (comma-separated), each one of the study's ``planned`` budgets."""
    import yaml

    chosen = []
    for item in (t.strip() for t in text.split(",")):
        value = yaml.safe_load(item) if item else None
        if value not in planned or isinstance(value, bool):
            raise UserError(f"compare --budgets {text}: {item!r} is not among {path}'s selection.budgets "
                            f"{list(planned)}")
        if value not in chosen:
            chosen.append(value)
    return tuple(b for b in planned if b in chosen)


def check_budgets(cells: list[Cell], log=print) -> None:
    """Before anything trains: every budget of a row keeps fewer examples than its pool (the whole pool is the
    reference run). Builds each row's pool once (seconds), so ``--plan`` does not."""
    from ..config import load_config
    from ..data.selection import config_pool, resolve_keep

    for label in dict.fromkeys(c.label for c in cells):
        ref = next(c for c in cells if c.label == label)
        size = len(config_pool(load_config(ref.config, list(ref.overrides)).data))
        for b in sorted({c.arm.budget for c in cells if c.label == label and c.arm and c.arm.budget is not None}):
            n = resolve_keep(b, size, f"{label}: selection.budgets")
            if n >= size:
                raise UserError(f"{label}: selection.budgets {b}: keeps all {size} examples of the pool; the whole "
                                "pool is the reference run, so a budget must be smaller")
        log(f"{label}: a pool of {size:,} examples")


def pairs_of_seeds(method_seeds: list[int], baseline_seeds: list[int], planned: int) -> list[tuple[int, int]]:
    """(method seed, baseline seed) pairs: each baseline seed r with the method's seed r mod ``planned`` (its
    planned number of seeds), among the seeds present. Equal seeds pair one to one (the same training seed);
    a method with one seed (a deterministic rule) meets every baseline draw, so the test sees the baseline's
    spread over draws rather than one lucky or unlucky subset."""
    return [(r % planned, r) for r in sorted(baseline_seeds) if r % planned in method_seeds]


def _manifest(cell: Cell, out) -> dict | None:
    p = run_dir(cell, out) / "selection" / "selection.json"
    return json.loads(p.read_text()) if p.is_file() else None


def collect(cells: list[Cell], out: str | Path, baseline: str = "random", results: str = "compare") -> dict:
    """Results of complete cells -> ``OUT/RESULTS/results.json``, ``results.md``, ``budget.png`` (``RESULTS``: the
    spec's ``results``); missing cells listed."""
    from ..io import write_json, write_text

    out = Path(out)
    missing = [c.name for c in cells if not is_complete(c, out)]
    groups: dict[tuple, list[tuple[Cell, dict]]] = {}
    for c in cells:
        if c.name not in missing:
            groups.setdefault((c.label, c.backbone, c.arm.method, c.arm.budget), []).append((c, _cell_facts(c, out)))
    manifests = {key: _manifest(got[0][0], out) for key, got in groups.items()}
    pools = {}                  # the pool's size, as a selection of the same row and backbone read it
    for (label, backbone, _, _), m in manifests.items():
        if m:
            pools[(label, backbone)] = m["source"]["pool"]
    reference = {k[:2]: [f for _, f in got] for k, got in groups.items() if k[2] == FULL}
    rows, facts = [], {}
    for (label, backbone, method, budget), got in groups.items():
        got.sort(key=lambda cf: cf[0].seed)
        fs = [f for _, f in got]
        facts[(label, backbone, method, budget)] = {f["seed"]: f for f in fs}
        arm = got[0][0].arm
        m = manifests[(label, backbone, method, budget)]
        ref = reference.get((label, backbone))
        seconds = [f["selection_s"] for f in fs if f["selection_s"] is not None]
        rows.append({"config": label, "backbone": backbone, "method": method, "budget": budget,
                     "count": m["keep"]["count"] if m else (pools.get((label, backbone)) if method == FULL else None),
                     "planned_seeds": arm.seeds, "seeds": [f["seed"] for f in fs],
                     "accuracy": [f["accuracy"] for f in fs],
                     **dict(zip(("accuracy_mean", "accuracy_std"), _mean_std([f["accuracy"] for f in fs]))),
                     "per_type": per_type_spread(fs),
                     "selection_s": sum(seconds) / len(seconds) if seconds else None,
                     "reads_reference": arm.reads == FULL,
                     "reference_minutes": ref[0]["train_minutes"] if ref and arm.reads == FULL else None,
                     "train_minutes": _median([f["train_minutes"] for f in fs])})
    rows.sort(key=lambda r: (r["config"], r["backbone"], r["method"] == FULL, r["count"] or 0, str(r["budget"]),
                             r["method"] != baseline))
    majority = {}                 # the validation questions are the row's: any cell of it says
    for (label, _, _, _), got in groups.items():
        if got[0][1].get("majority") and label not in majority:
            majority[label] = got[0][1]["majority"]
    result = {"baseline": baseline, "rows": rows, "majority": majority,
              "tests": _tests(rows, facts, baseline, majority), "missing": missing}
    dest = out / results
    write_json(dest / "results.json", result)
    write_text(dest / "results.md", format_results(result))
    from ..eval.plots import plot_budget_curves

    plot_budget_curves(rows, baseline, FULL, dest / "budget.png",
                       majority={k: v["overall"] for k, v in majority.items()})
    return result


def _tests(rows: list[dict], facts: dict, baseline: str, majority: dict | None = None) -> list[dict]:
    """Each method against the baseline at the same (config, backbone, budget), Holm over the whole table. Where
    neither the method nor the baseline beats always giving each type's most frequent answer (``majority``,
    per config), the verdict says so instead of "better" / "worse": collapsed models differ only in which
    constant they answer, and a test on them, however small its p, says nothing about the data."""
    out = []
    for r in rows:
        if r["method"] in (baseline, FULL):
            continue
        key = (r["config"], r["backbone"], r["method"], r["budget"])
        base = facts.get((r["config"], r["backbone"], baseline, r["budget"]))
        if not base:
            continue
        pairs = pairs_of_seeds(list(facts[key]), list(base), r["planned_seeds"])
        if not pairs:
            continue
        mean_m, _ = _mean_std([facts[key][s]["accuracy"] for s in sorted({m for m, _ in pairs})])
        mean_b, std_b = _mean_std([base[s]["accuracy"] for s in sorted({b for _, b in pairs})])
        out.append({"config": r["config"], "backbone": r["backbone"], "budget": r["budget"], "count": r["count"],
                    "method": r["method"], "baseline": baseline, "seed_pairs": pairs}
                   | paired_counts(facts[key], base, pairs) | {"difference": mean_m - mean_b, "seed_spread": std_b,
                                                              "method_mean": mean_m, "baseline_mean": mean_b})
    for row in out:
        floor = ((majority or {}).get(row["config"]) or {}).get("overall")
        row["majority"] = floor
        row["collapsed"] = floor is not None and max(row["method_mean"], row["baseline_mean"]) <= floor

    def verdict(row, larger):
        if row["collapsed"]:
            return "neither above the majority answer"
        return f"{'better' if row['difference'] > 0 else 'worse'} than {baseline}" if larger else "within noise"

    return apply_holm(out, verdict)


def _budget(r: dict) -> str:
    if r["method"] == FULL:
        return f"all ({r['count']:,})" if r["count"] else "all"
    b = r["budget"]
    return f"{b}" + (f" ({r['count']:,})" if r["count"] is not None and r["count"] != b else "")


def _cost(r: dict) -> tuple[str, str]:
    sel = "-" if r["selection_s"] is None else f"{r['selection_s']:.2f} s"
    if r["method"] == FULL:
        return sel, "-" if r["train_minutes"] is None else f"this run: {r['train_minutes']:.1f} min"
    return sel, ("-" if not r["reads_reference"] else
                 "not yet run" if r["reference_minutes"] is None else f"+ {r['reference_minutes']:.1f} min")


def format_results(result: dict) -> str:
    base = result["baseline"]
    L = ["# compare: data selection", "",
         f"Validation accuracy (%) as mean +- std over seeds, each seed's value after the slash. `{FULL}`: the "
         "whole pool (the reference run, seed 0). Cost: the selection's own seconds (`selection-timing.json`, "
         "mean over seeds; embeddings and losses are computed once per reference run and cached, so the first "
         "method to need them pays for them), and for methods that read the reference run, its training "
         "minutes, stated apart."]
    for panel in dict.fromkeys((r["config"], r["backbone"]) for r in result["rows"]):
        rows = [r for r in result["rows"] if (r["config"], r["backbone"]) == panel]
        L += ["", f"## {panel[0]} / {panel[1]}", "",
              "| budget | method | seeds | accuracy | per seed | selection | reference run |",
              "|---|---|---|---|---|---|---|"]
        floor = result.get("majority", {}).get(panel[0])
        for r in rows:
            L.append(f"| {_budget(r)} | {r['method']} | {len(r['seeds'])} | **{100 * r['accuracy_mean']:.2f} +- "
                     f"{100 * r['accuracy_std']:.2f}** | {' / '.join(_pct(a) for a in r['accuracy'])} | "
                     + " | ".join(_cost(r)) + " |")
        if floor:
            L.append(f"| - | majority answer | - | {100 * floor['overall']:.2f} | each type's most frequent answer, "
                     "always | - | - |")
        types = sorted({t for r in rows for t in r["per_type"]})
        if types:
            L += ["", "Per question type (accuracy %, mean +- std over seeds):", "",
                  "| budget | method | " + " | ".join(types) + " |", "|---|---|" + "---|" * len(types)]
            L += [f"| {_budget(r)} | {r['method']} | " + " | ".join(pm(r["per_type"].get(t)) for t in types) + " |"
                  for r in rows]
            if floor:
                L.append("| - | majority answer | " + " | ".join(
                    "-" if t not in floor["per_type"] else f"{100 * floor['per_type'][t]:.2f}" for t in types) + " |")
    if result["tests"]:
        L += ["", f"## Each method against {base} at the same budget", "",
              f"| config | backbone | budget | method | seed pairs (method, {base}) | method right, {base} wrong | "
              f"{base} right, method wrong | method - {base} | {base}'s seed std | McNemar p | Holm p | verdict |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        L += [f"| {t['config']} | {t['backbone']} | {t['budget']} | {t['method']} | "
              f"{' '.join(f'{a},{b}' for a, b in t['seed_pairs'])} | {t['a_only']} | {t['b_only']} | "
              f"{100 * t['difference']:+.2f} pp | {100 * t['seed_spread']:.2f} pp | {t['p_value']:.3g} | "
              f"{t['p_holm']:.3g} | {t['verdict']} |" for t in result["tests"]]
        L += ["", f"McNemar: exact, on the same {VALID} questions, pooled over seed pairs: {base}'s seed r meets the "
              f"method's seed r mod (its seeds), so a method run once meets every {base} draw. Holm: corrected over "
              f"every comparison of this table. A verdict other than \"within noise\" needs Holm p < 0.05 and a "
              f"difference above {base}'s seed standard deviation, and the method or {base} above the majority "
              f"answer (always each type's most frequent answer): below it both have collapsed to constants and "
              f"the verdict is \"neither above the majority answer\", whatever p says."]
    if result["missing"]:
        L += ["", f"Not yet complete ({len(result['missing'])}): " + ", ".join(result["missing"])]
    L += ["", "![accuracy against budget](budget.png)", ""]
    return "\n".join(L)
