"""``compare``: the same experiment for every (config x backbone x seed), as ordinary run folders, then one table.

Each cell is ``mistral-vision run CONFIG`` with ``model.backbone``, ``train.seed``, its name and
``runs_dir`` set (plus the user's ``--set``), so a cell is reused when complete and resumed when
interrupted, and ``--plan`` prints those commands for a cluster's scheduler to run in parallel
before ``compare`` collects them. The table has, per config and backbone: parameters, tokens per
sample (prompt + image tokens + answer, as read in training), forward FLOPs and KV-cache bytes
per sample (from the saved model's config), training and label-scored inference images/s, peak
memory, and validation accuracy as mean +- std over seeds with every seed's value. Backbones are
compared on the same validation images with an exact McNemar test on the seed-paired
predictions (pooled over seeds), Holm-corrected over the table's comparisons, and a verdict in
words. A compare spec (``configs/compare/*.yaml``: configs with their own ``--set`` each, backbones,
seeds, out) makes one command of a study whose configs need different keys for the same budget
(``train.epochs`` on the ASCII route, ``stages.N.epochs`` on LLaVA's). A spec's ``selection:`` block makes
it a data-selection study: cells get an :class:`Arm` (a method at a budget), and ``selection_study.py``
builds the arms and collects their table. Not for: the analytic 7B table (``analytic.py``) or training
itself (``pipeline.run``).
"""
from __future__ import annotations

import dataclasses
import json
import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError

VALID = "valid"


@dataclass(frozen=True)
class SpecConfig:
    path: str                         # a run config, relative to the spec file
    set: tuple[str, ...] = ()         # overrides for this config's cells only (its budget)


@dataclass(frozen=True)
class SelectionStudy:
    """A data-selection study (``selection_study.py``): every method at every budget against a baseline, each
    row x backbone also trained once on the whole pool (the reference run, which run-based methods read)."""
    budgets: tuple[int | float, ...] = ()      # counts (or fractions) of the pool; the whole pool is one more point
    # name -> data.select fields (method defaults to the name; from_run: reference, where optional)
    methods: dict[str, dict[str, str | int | float] | None] = field(default_factory=dict)
    baseline: str = "random"          # the method every other one is tested against
    baseline_seeds: int = 5           # its draws: selection seed = training seed = 0 .. N-1
    seeds: int = 1                    # training (and selection) seeds of every other method


@dataclass(frozen=True)
class CompareSpec:
    configs: dict[str, SpecConfig]    # row name -> config
    # ids, or id -> overrides for that backbone's cells (e.g. LLaMA-2's one KV head per head)
    backbones: tuple[str, ...] | dict[str, tuple[str, ...]] = ("mistral-tiny", "llama-tiny")
    seeds: int = 3                    # a selection study has its own (selection.baseline_seeds, .seeds)
    set: tuple[str, ...] = ()         # overrides for every cell (before each config's own)
    out: str | None = None            # default: runs/<spec file name>
    # the folder under out for the tables and plots: two specs sharing one out's cells keep their tables apart
    results: str = "compare"
    ceiling_epochs: int = 8           # the rendering-cost CNN's epochs per ASCII config
    selection: SelectionStudy | None = None   # a data-selection study of each row instead of seeds alone


def is_spec(path: str | Path) -> bool:
    """A compare spec is a YAML mapping with a top-level ``configs`` (run configs never have one); a file
    that does not read as YAML is left to the run config loader, whose error names the line."""
    from ..config import read_yaml_mapping

    path = Path(path)
    if path.suffix not in (".yaml", ".yml") or not path.is_file():
        return False
    try:
        return "configs" in read_yaml_mapping(path)
    except UserError:
        return False


def load_spec(path: str | Path) -> CompareSpec:
    """Typed spec with config paths made relative to the working directory (as ``--plan`` prints them)."""
    import os

    from ..config import from_dict, read_yaml_mapping

    path = Path(path)
    data = read_yaml_mapping(path)
    try:
        spec = from_dict(CompareSpec, data)
    except UserError as e:
        raise UserError(f"{path}: {e}") from None
    if not spec.configs:
        raise UserError(f"{path}: `configs` is empty")
    if spec.results in ("", ".", "..", "cells") or any(c in spec.results for c in "/\\"):
        raise UserError(f"{path}: results {spec.results!r}: one folder name under out, not cells (e.g. compare)")
    if spec.selection is not None:       # its arms are checked by selection_study.load_study, which builds on this
        if data.get("seeds", 1) != 1:
            raise UserError(f"{path}: `seeds` is for backbone studies; a selection study's seeds are "
                            "selection.baseline_seeds and selection.seeds")
        spec = dataclasses.replace(spec, seeds=1)
    configs = {}
    for label, entry in spec.configs.items():
        p = path.parent / entry.path
        if not p.is_file():
            raise UserError(f"{path}: configs.{label}.path {entry.path!r} not found (relative to the spec file)")
        configs[str(label)] = SpecConfig(os.path.relpath(p), tuple(entry.set))
    backbones = spec.backbones if isinstance(spec.backbones, dict) else {b: () for b in spec.backbones}
    return dataclasses.replace(spec, configs=configs, out=spec.out or f"runs/{path.stem}",
                               backbones={str(b): tuple(v or ()) for b, v in backbones.items()})


@dataclass(frozen=True)
class Arm:
    """One more axis of a study beside config x backbone x seed: what varies inside a row (e.g. a data
    selection at a budget), as overrides, with its own number of seeds."""
    method: str                       # in cell names; e.g. a selection method, or "full"
    budget: int | float | None = None  # in cell names after the method when set
    seeds: int = 1
    overrides: tuple[str, ...] = ()   # applied after the command line's (they define the cell)
    reads: str | None = None          # the name of an earlier arm of the same row and backbone whose seed-0 run
                                      # this one reads (given as data.select.from_run)

    @property
    def name(self) -> str:
        if self.budget is None:
            return self.method
        return f"{self.method}-{int(self.budget) if float(self.budget).is_integer() else self.budget}"


@dataclass(frozen=True)
class Cell:
    config: str                  # the config file as given
    label: str                   # its stem: the row name
    backbone: str
    seed: int
    overrides: tuple[str, ...]   # everything `run` needs besides the config
    arm: Arm | None = None       # None: a plain config x backbone x seed cell

    @property
    def name(self) -> str:
        return "-".join([self.label, self.backbone, *([self.arm.name] if self.arm else []), f"s{self.seed}"])


def plan(configs: list[str] | dict[str, SpecConfig], backbones: list[str] | dict[str, tuple[str, ...]], seeds: int,
         sets: list[str], out: str | Path, last: list[str] = (), match_families: bool = False,
         log=None, arms: list[Arm] | None = None) -> list[Cell]:
    """Every cell, each config checked to load with each backbone first (one line if one does not).
    ``configs``: paths (rows named by file stem) or a spec's rows with their own overrides; ``backbones``:
    ids, or id -> overrides of its cells. Order of overrides: ``sets`` (every cell), the row's own, the
    backbone's, ``last`` (the command line's, so they win). ``match_families``: a tiny LLaMA backbone
    without overrides of its own gets :func:`llama_matched_shape` of each config (the ad hoc compare),
    after ``last``, and ``log`` is told.
    Two tiny backbones of different families left with the same shape are refused: they would train
    the same function (see :func:`refuse_same_functions`). ``arms``: each config x backbone is run once per
    arm (its own seeds and overrides, after everything else; ``seeds`` is then unused), in the order given,
    so that an arm another one ``reads`` runs before it."""
    from ..config import load_config
    from ..models.backbones import get_backbone

    if seeds < 1 and not arms:
        raise UserError(f"--seeds {seeds}: need at least 1 seed")
    if not configs or not backbones:
        raise UserError("compare needs at least one config and one backbone")
    backbones = backbones if isinstance(backbones, dict) else {b: () for b in backbones}
    for b, own in backbones.items():
        get_backbone(backbone_id(b, own))
    if not isinstance(configs, dict):
        stems = [Path(c).stem for c in configs]
        if len(set(stems)) != len(stems):
            raise UserError(f"compare: two configs share the name {sorted(s for s in stems if stems.count(s) > 1)[0]!r}")
        configs = {stem: SpecConfig(c) for stem, c in zip(stems, configs)}
    cells, models = [], {}
    for label, entry in configs.items():
        for b, own in backbones.items():
            bid = backbone_id(b, own)
            spec, matched = get_backbone(bid), ()
            if match_families and not own and spec.is_tiny and spec.family == "llama":
                # derived from the shape every cell is given (--set included), so it comes after that
                matched = llama_matched_shape(load_config(entry.path, [*sets, *entry.set, *last]).model)
                if matched and log:
                    log(f"{label} / {b}: {' '.join(matched)} (Llama-2's one KV head per head, matched in parameters)")
            done: dict[str, Arm] = {}
            for arm in arms or [None]:
                extra = arm.overrides if arm else ()
                if arm and arm.reads:
                    if arm.reads not in done:       # a bug in whoever built the arms, not the user's input
                        raise AssertionError(f"arm {arm.name} reads {arm.reads}, which is not planned before it")
                    source = Cell(entry.path, label, b, 0, (), done[arm.reads])
                    extra += (f"data.select.from_run={run_dir(source, out)}",)
                for seed in range(arm.seeds if arm else seeds):
                    cell = Cell(entry.path, label, b, seed, (), arm)
                    over = (*sets, *entry.set, *own, *last, *matched, *extra, f"model.backbone={bid}",
                            f"train.seed={seed}", f"name={cell.name}", f"runs_dir={Path(out) / 'cells'}")
                    cfg = load_config(entry.path, list(over))  # fails now, in one line, not hours later
                    models.setdefault(label, {})[b] = cfg.model
                    cells.append(dataclasses.replace(cell, overrides=over))
                if arm:
                    done[arm.name] = arm
    refuse_same_functions(models)
    return cells


def backbone_id(label: str, own) -> str:
    """The backbone a spec's ``backbones`` entry trains: its own ``model.backbone=`` override (so a label such as
    ``mistral-tiny-pretrained`` can name ``hf:runs/pretrain-mistral-tiny/model``, and cell names stay paths'
    friends), else the label itself."""
    for o in own or ():
        key, sep, value = o.partition("=")
        if sep and key.strip() == "model.backbone":
            return value.strip()
    return label


def llama_matched_shape(mistral) -> tuple[str, ...]:
    """Overrides that give a tiny LLaMA Llama-2's one KV head per query head, matched in parameters to the
    Mistral shape ``mistral`` (its grouped-query attention): the extra K/V projections cost
    ``2 * hidden * head_dim * (heads - kv_heads)`` per layer, taken back from the 3-matrix MLP. For the
    CPU configs' 4 x 128 with 4 / 2 heads and MLP 256 that is MLP 213, as configs/compare/cpu.yaml says."""
    heads, kv = mistral.num_heads, mistral.num_kv_heads
    if kv == heads:
        return ()
    head_dim = mistral.hidden_size // heads
    mlp = mistral.intermediate_size - round(2 * head_dim * (heads - kv) / 3)
    if mlp < 1:
        raise UserError(f"compare: model.intermediate_size {mistral.intermediate_size} is too small to match a "
                        "LLaMA shape with one KV head per head in parameters; give the backbones their own overrides")
    return (f"model.num_kv_heads={heads}", f"model.intermediate_size={mlp}")


def refuse_same_functions(models: dict[str, dict]) -> None:
    """One line if two tiny backbones of different families give a row the same shape.

    mistral-tiny and llama-tiny then differ only in Mistral's sliding window; below it they compute the
    same function from the same seeded weights, and the study would report a tie (p = 1) that says
    nothing about the families."""
    from ..models.backbones import get_backbone

    for label, by_backbone in models.items():
        tiny = [(b, m) for b, m in by_backbone.items() if get_backbone(m.backbone).is_tiny]
        for i, (b1, m1) in enumerate(tiny):
            for b2, m2 in tiny[i + 1:]:
                if get_backbone(m1.backbone).family == get_backbone(m2.backbone).family:
                    continue
                same = dataclasses.replace(m1, backbone="", sliding_window=None) == \
                    dataclasses.replace(m2, backbone="", sliding_window=None)
                if same:
                    raise UserError(
                        f"compare: {b1} and {b2} give {label} the same shape ({m1.num_heads} heads / "
                        f"{m1.num_kv_heads} KV heads, MLP {m1.intermediate_size}), so below the sliding window they "
                        "train the same function and tie; give the LLaMA backbone Llama-2's one KV head per head "
                        "as configs/compare/cpu.yaml does (its `backbones` overrides)")


def command(cell: Cell) -> str:
    """The ordinary `run` command of one cell (what --plan prints)."""
    return shlex.join(["mistral-vision", "run", cell.config] + [a for o in cell.overrides for a in ("--set", o)])


def run_dir(cell: Cell, out: str | Path) -> Path:
    return Path(out) / "cells" / cell.name


def is_complete(cell: Cell, out: str | Path) -> bool:
    d = run_dir(cell, out)
    return (d / "train_summary.json").is_file() and any((d / "eval").glob(f"*-{VALID}/metrics.json"))


def run_cells(cells: list[Cell], out: str | Path, log=print,
              ceiling_epochs: int = CompareSpec.ceiling_epochs) -> None:
    """Run what is missing; complete cells are reused, interrupted ones resume. Each ASCII config's
    rendering cost (``ceiling.py``) is measured once and kept in ``compare/ceiling-<config>.json``."""
    from ..config import load_config
    from ..io import write_json
    from ..pipeline import run
    from ..train.checkpoints import config_difference
    from .ceiling import rendering_cost

    for cell in cells:           # a folder left by another spec or --set is never silently reused
        d = run_dir(cell, out)
        if (d / "config.json").is_file():
            diff = config_difference(load_config(cell.config, list(cell.overrides)), d)
            if diff:
                raise UserError(f"compare: {d} was run with {diff}; delete that folder or choose another --out")
    for i, cell in enumerate(cells, 1):
        if is_complete(cell, out):
            log(f"[{i}/{len(cells)}] {cell.name}: complete, reused")
            continue
        log(f"[{i}/{len(cells)}] {cell.name}")
        run(cell.config, list(cell.overrides), log=lambda line: log("      " + line))
    for cell in {c.label: c for c in cells}.values():
        cfg = load_config(cell.config, list(cell.overrides))
        path = Path(out) / "compare" / f"ceiling-{cell.label}.json"
        if cfg.route == "ascii" and not path.is_file():
            log(f"rendering cost of {cell.label}: a small CNN on its art and on raw pixels")
            write_json(path, rendering_cost(cfg, ceiling_epochs))


# -- collecting --------------------------------------------------------------------------
def mcnemar_p(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value for b and c discordant pairs (a binomial test at 1/2)."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def majority_answer(metrics: dict) -> dict | None:
    """What always giving each question type's most frequent true answer scores, as the evaluation wrote it in
    ``metrics.json`` (classification: the most frequent class, as type ``all``): ``{"overall": accuracy,
    "per_type": {type: accuracy}}``. A model at or below it has learned nothing a constant would not, and
    comparisons between such models only say which constant each collapsed to."""
    if "majority" in metrics:                                   # question sets (eval/questions.py)
        return {"overall": metrics["majority"],
                "per_type": {t: v["majority"] for t, v in sorted((metrics.get("per_type") or {}).items())}}
    if "majority_baseline" in metrics:                          # classification (eval/metrics.py)
        return {"overall": metrics["majority_baseline"], "per_type": {"all": metrics["majority_baseline"]}}
    return None


def _cell_facts(cell: Cell, out: str | Path) -> dict:
    from ..io import read_jsonl_tolerant
    from .analytic import arch_from_config, dense_flops, kv_bytes, prefill_attention_flops

    d = run_dir(cell, out)
    summary = json.loads((d / "train_summary.json").read_text())
    cfg = json.loads((d / "config.json").read_text())
    metrics_path = next((d / "eval").glob(f"*-{VALID}/metrics.json"))
    m = json.loads(metrics_path.read_text())
    # classification records hold pred and label; question records (VQA, LLaVA JSON) their own `correct`
    preds = {r["index"]: r["correct"] if "correct" in r else r["pred"] == r["label"]
             for r in read_jsonl_tolerant(Path(m["predictions"]))}
    timing = d / "selection" / "selection-timing.json"
    rates = sorted(r["images_per_s"] for r in read_jsonl_tolerant(d / "metrics.jsonl") if "images_per_s" in r)
    model_cfg = json.loads((d / "model" / "config.json").read_text()) if (d / "model" / "config.json").is_file() else {}
    text = model_cfg.get("text_config", model_cfg)
    tokens = summary.get("tokens_per_sample")
    facts = {"cell": cell.name, "config": cell.label, "backbone": cell.backbone, "seed": cell.seed,
             "method": cell.arm.method if cell.arm else None, "budget": cell.arm.budget if cell.arm else None,
             "route": cfg.get("route", "ascii"), "dataset": cfg["data"]["dataset"], "accuracy": m["accuracy"],
             "n": m["n"], "params": summary["params"], "tokens_per_sample": tokens,
             "train_images_per_s": rates[len(rates) // 2] if rates else None,
             "infer_images_per_s": m.get("predict_images_per_s"), "tta": m.get("tta", "none"),
             "peak_rss_mb": summary.get("peak_rss_mb"), "correct": preds, "majority": majority_answer(m),
             "epochs": summary.get("epochs"),
             "train_minutes": summary["wall_s"] / 60 if summary.get("wall_s") else None,
             "sliding_window": text.get("sliding_window"),
             "gqa": f"{text.get('num_attention_heads')}/{text.get('num_key_value_heads')}" if text else None,
             "per_type": {t: v["accuracy"] for t, v in (m.get("per_type") or {}).items()},
             "selection_s": json.loads(timing.read_text())["seconds"] if timing.is_file() else None}
    if text and tokens:
        arch = arch_from_config(text, str(d / "model" / "config.json"))
        t = int(round(tokens))
        facts["flops_per_sample"] = dense_flops(arch, t) + prefill_attention_flops(arch, t)
        facts["kv_bytes_per_sample"] = kv_bytes(arch, t, bytes_per_value=4)      # float32 on CPU
    return facts


def _mean_std(xs: list[float]) -> tuple[float, float]:
    mean = sum(xs) / len(xs)
    return mean, (math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0)


def spread(values: list[float]) -> dict:
    """Mean, sample std and the values themselves (one per seed)."""
    mean, std = _mean_std(values)
    return {"mean": mean, "std": std, "values": values}


def per_type_spread(facts: list[dict]) -> dict:
    """Question type -> :func:`spread` over the seeds that scored it (empty for classification runs)."""
    types = sorted({t for f in facts for t in f.get("per_type") or {}})
    return {t: spread([f["per_type"][t] for f in facts if t in (f.get("per_type") or {})]) for t in types}


def pm(x: dict | None) -> str:
    return "-" if not x or not x["values"] else f"{100 * x['mean']:.2f} +- {100 * x['std']:.2f}"


def collect(cells: list[Cell], out: str | Path, results: str = CompareSpec.results) -> dict:
    """Results of complete cells -> ``OUT/RESULTS/results.json``, ``results.md``, ``accuracy.png`` (``RESULTS``: the
    spec's ``results``, ``compare`` unless set); missing cells listed. Rendering costs stay in ``compare/``."""
    from ..io import write_json, write_text

    out = Path(out)
    missing = [c.name for c in cells if not is_complete(c, out)]
    facts = [_cell_facts(c, out) for c in cells if c.name not in missing]
    groups: dict[tuple[str, str], list[dict]] = {}
    for f in facts:
        groups.setdefault((f["config"], f["backbone"]), []).append(f)
    rows = []
    for (config, backbone), fs in groups.items():
        fs.sort(key=lambda f: f["seed"])
        mean, std = _mean_std([f["accuracy"] for f in fs])
        first = fs[0]
        rows.append({k: first.get(k) for k in ("config", "backbone", "route", "dataset", "params", "tokens_per_sample",
                                               "flops_per_sample", "kv_bytes_per_sample", "sliding_window", "gqa",
                                               "tta")}
                    | {"seeds": [f["seed"] for f in fs], "accuracy": [f["accuracy"] for f in fs],
                       "accuracy_mean": mean, "accuracy_std": std,
                       "train_images_per_s": _median([f["train_images_per_s"] for f in fs]),
                       "infer_images_per_s": _median([f["infer_images_per_s"] for f in fs]),
                       "peak_rss_mb": max((f["peak_rss_mb"] or 0) for f in fs) or None,
                       "epochs": first.get("epochs"),
                       "train_minutes": _median([f["train_minutes"] for f in fs]),
                       "per_type": per_type_spread(fs)})
    ceilings = {p.stem.removeprefix("ceiling-"): json.loads(p.read_text())
                for p in sorted((out / "compare").glob("ceiling-*.json"))}
    result = {"rows": rows, "paired": _paired(groups), "routes": _route_gaps(rows), "rendering": ceilings,
              "missing": missing}
    dest = out / results
    write_json(dest / "results.json", result)
    write_text(dest / "results.md", format_results(result))
    from ..eval.plots import plot_seed_accuracies

    plot_seed_accuracies(rows, dest / "accuracy.png")
    return result


def _median(xs):
    xs = sorted(x for x in xs if x is not None)
    return xs[len(xs) // 2] if xs else None


def _paired(groups) -> list[dict]:
    """Every pair of backbones on the same config: seed-paired predictions on the same validation images."""
    out = []
    configs = sorted({c for c, _ in groups})
    for config in configs:
        bbs = sorted(b for c, b in groups if c == config)
        for i, a in enumerate(bbs):
            for b in bbs[i + 1:]:
                fa = {f["seed"]: f for f in groups[(config, a)]}
                fb = {f["seed"]: f for f in groups[(config, b)]}
                seeds = sorted(set(fa) & set(fb))
                ma, sa = _mean_std([fa[s]["accuracy"] for s in seeds])
                mb, sb = _mean_std([fb[s]["accuracy"] for s in seeds])
                out.append({"config": config, "a": a, "b": b, "seeds": seeds}
                           | paired_counts(fa, fb, [(s, s) for s in seeds])
                           | {"difference": ma - mb, "seed_spread": max(sa, sb)})
    return apply_holm(out, lambda row, larger: "difference larger than seed spread" if larger else "within noise")


def paired_counts(a: dict[int, dict], b: dict[int, dict], pairs: list[tuple[int, int]]) -> dict:
    """Exact McNemar on the predictions of the same validation items, pooled over ``pairs`` of (a's seed, b's
    seed); ``a`` / ``b``: seed -> a cell's facts (``correct``: item -> right or wrong)."""
    n01 = n10 = n = 0
    for sa, sb in pairs:
        ca, cb = a[sa]["correct"], b[sb]["correct"]
        for idx in set(ca) & set(cb):
            n += 1
            n10 += ca[idx] and not cb[idx]
            n01 += cb[idx] and not ca[idx]
    return {"pairs": n, "a_only": n10, "b_only": n01, "p_value": mcnemar_p(n10, n01)}


def apply_holm(rows: list[dict], verdict) -> list[dict]:
    """Holm-correct the rows' ``p_value`` s and add ``verdict(row, larger)``, ``larger`` meaning Holm p < 0.05
    and ``|difference|`` above ``seed_spread``. One table asks the same question of several rows: Holm's
    correction keeps the chance of any false "larger" at 5% over all of them, and a difference must also
    exceed the seeds' own spread."""
    for row, p_holm in zip(rows, holm([r["p_value"] for r in rows])):
        larger = p_holm < 0.05 and abs(row["difference"]) > row["seed_spread"]
        row.update(p_holm=p_holm, verdict=verdict(row, larger))
    return rows


def holm(ps: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order."""
    order = sorted(range(len(ps)), key=lambda i: ps[i])
    adjusted, running = [0.0] * len(ps), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(ps) - rank) * ps[i]))
        adjusted[i] = running
    return adjusted


def _route_gaps(rows: list[dict]) -> list[dict]:
    """LLaVA minus ASCII accuracy per dataset and backbone, where both routes were run."""
    by = {(r["dataset"], r["backbone"], r["route"]): r for r in rows}
    gaps = []
    for (dataset, backbone, route), r in sorted(by.items()):
        other = by.get((dataset, backbone, "ascii"))
        if route == "llava" and other:
            gaps.append({"dataset": dataset, "backbone": backbone, "llava": r["accuracy_mean"],
                         "ascii": other["accuracy_mean"], "gap": r["accuracy_mean"] - other["accuracy_mean"]})
    return gaps


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _num(x, fmt="{:,.0f}") -> str:
    return "-" if x is None else fmt.format(x)


def format_results(result: dict) -> str:
    from .analytic import human_bytes, human_flops

    L = ["# compare", "", "Validation accuracy: mean +- std over seeds (each seed's value after the slash). Costs per sample "
         "as trained: tokens = prompt + image tokens + answer; FLOPs and KV cache from the saved model's config "
         "(language model only, float32).", "",
         "| config | backbone | params | sliding window | heads / KV heads | tokens/sample | FLOPs/sample | "
         "KV/sample | epochs | train min | train img/s | infer img/s (views) | peak RSS | accuracy | per seed |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        L.append(f"| {r['config']} | {r['backbone']} | {_num(r['params'])} | {r['sliding_window'] or 'none'} | "
                 f"{r['gqa'] or '-'} | {_num(r['tokens_per_sample'], '{:.1f}')} | "
                 f"{human_flops(r['flops_per_sample']) if r.get('flops_per_sample') else '-'} | "
                 f"{human_bytes(r['kv_bytes_per_sample']) if r.get('kv_bytes_per_sample') else '-'} | "
                 f"{_num(r.get('epochs'), '{:.3g}')} | {_num(r.get('train_minutes'), '{:.1f}')} | "
                 f"{_num(r['train_images_per_s'])} | {_num(r['infer_images_per_s'])} ({r['tta']}) | "
                 f"{_num(r['peak_rss_mb'], '{:,.0f} MB')} | **{_pct(r['accuracy_mean'])} +- "
                 f"{100 * r['accuracy_std']:.2f}** | {' / '.join(_pct(a) for a in r['accuracy'])} |")
    types = sorted({t for r in result["rows"] for t in r.get("per_type") or {}})
    if types:                               # question sets: where a difference comes from
        L += ["", "Per question type (accuracy %, mean +- std over seeds):", "",
              "| config | backbone | " + " | ".join(types) + " |", "|---|---|" + "---|" * len(types)]
        L += [f"| {r['config']} | {r['backbone']} | " + " | ".join(pm((r.get("per_type") or {}).get(t)) for t in types)
              + " |" for r in result["rows"]]
    matched = _param_match(result["rows"])
    if matched:
        L += ["", "Parameter counts across backbones of one config: " + "; ".join(matched) + "."]
    if result["paired"]:
        L += ["", "## Backbones on the same images", "",
              "| config | A | B | seeds | A right, B wrong | B right, A wrong | A - B | seed spread (std) | "
              "McNemar p | Holm p | verdict |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
        L += [f"| {p['config']} | {p['a']} | {p['b']} | {len(p['seeds'])} | {p['a_only']} | {p['b_only']} | "
              f"{100 * p['difference']:+.2f} pp | {100 * p['seed_spread']:.2f} pp | {p['p_value']:.3g} | "
              f"{p['p_holm']:.3g} | {p['verdict']} |" for p in result["paired"]]
        L += ["", "McNemar: exact, on seed-paired predictions of the same images, pooled over seeds. Holm: corrected "
              "for the table's comparisons. Verdict \"larger\" needs Holm p < 0.05 and a difference above both "
              "backbones' seed standard deviation."]
    if result["routes"]:
        L += ["", "## ASCII vs LLaVA", "", "| dataset | backbone | ASCII | LLaVA | LLaVA - ASCII |", "|---|---|---|---|---|"]
        L += [f"| {g['dataset']} | {g['backbone']} | {_pct(g['ascii'])} | {_pct(g['llava'])} | "
              f"{100 * g['gap']:+.2f} pp |" for g in result["routes"]]
    if result.get("rendering"):
        L += ["", "## What the ASCII rendering costs", "",
              "A small CNN (not an LLM) trained on each ASCII config's art turned back into pixels, and on the raw "
              "28x28 images, same validation split:", "",
              "| config | dataset | art | CNN on the art | CNN on raw pixels | cost of the rendering |",
              "|---|---|---|---|---|---|"]
        L += [f"| {name} | {c['dataset']} | {c['art']} | {_pct(c['cnn_on_art'])} | {_pct(c['cnn_on_pixels'])} | "
              f"{100 * c['cost']:+.2f} pp |" for name, c in result["rendering"].items()]
    if result["missing"]:
        L += ["", f"Not yet complete ({len(result['missing'])}): " + ", ".join(result["missing"])]
    L += ["", "![accuracy](accuracy.png)", ""]
    return "\n".join(L)


def _param_match(rows: list[dict]) -> list[str]:
    out = []
    for config in sorted({r["config"] for r in rows}):
        ps = {r["backbone"]: r["params"] for r in rows if r["config"] == config}
        if len(ps) > 1:
            lo, hi = min(ps.values()), max(ps.values())
            out.append(f"{config}: {', '.join(f'{b} {p:,}' for b, p in ps.items())} "
                       f"({'matched' if hi <= 1.05 * lo else 'NOT matched'} within 5%: {100 * (hi / lo - 1):.1f}% apart)")
    return out
