"""``mistral-vision compare``: a study of configs x backbones x seeds, or ``--analytic`` 7B costs from configs."""
from __future__ import annotations

import sys

from ..errors import UserError


def register(sub) -> None:
    p = sub.add_parser("compare", help="the same experiment per config x backbone x seed, one table with honest "
                                       "statistics; or --analytic: 7B backbones costed from their configs alone")
    p.add_argument("configs", nargs="*", metavar="CONFIG",
                   help="configs to run (ASCII or LLaVA route), or one compare spec (configs/compare/cpu.yaml: "
                        "each config with its own --set, backbones, seeds, out; configs/compare/prune.yaml: a "
                        "data-selection study, methods x budgets against random)")
    p.add_argument("--backbones",
                   help="comma-separated backbone ids (default: the spec's, else mistral-tiny,llama-tiny)")
    p.add_argument("--seeds", type=int, help="seeds 0 .. N-1 per config and backbone (default: the spec's, else 3)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="applied to every cell")
    p.add_argument("--budgets", metavar="N[,N...]",
                   help="a selection study: run only these of its budgets (and the reference run); a later full "
                        "run reuses their cells")
    p.add_argument("--plan", action="store_true", help="print one `mistral-vision run` command per cell and stop")
    p.add_argument("--analytic", nargs="+", metavar="ID",
                   help="backbones to cost from their configs alone: mistral-7b, mistral-7b-instruct, llama-2-7b, "
                        "vicuna-7b, hf:<folder or hub id>")
    p.add_argument("--out", metavar="DIR", help="cells and compare/ go here (with --analytic: analytic.md/.json)")
    p.set_defaults(func=compare)


def compare(args) -> int:
    if args.analytic:
        return analytic(args)
    from . import quiet_libraries
    from ..compare import runner, selection_study

    quiet_libraries()
    if not args.configs:
        raise UserError("compare needs CONFIG files, a compare spec (or --analytic IDS)")
    specs = [c for c in args.configs if runner.is_spec(c)]
    if specs and len(args.configs) > 1:
        raise UserError(f"compare: {specs[0]} is a compare spec; give it alone, not with other configs")
    study = arms = None
    results = runner.CompareSpec.results
    if specs:
        spec, arms = selection_study.load_study(specs[0], args.budgets)
        configs, sets, out, ceiling_epochs = spec.configs, list(spec.set), spec.out, spec.ceiling_epochs
        backbones, seeds, study, results = spec.backbones, spec.seeds, spec.selection, spec.results
        if study and args.seeds is not None:
            raise UserError(f"compare: {specs[0]} is a selection study; its seeds are selection.baseline_seeds "
                            "and selection.seeds in the spec, not --seeds")
    elif args.budgets is not None:
        from pathlib import Path

        from ..config import read_yaml_mapping

        read_yaml_mapping(Path(args.configs[0]))   # a spec that does not read as YAML: its own line says where
        raise UserError(f"compare --budgets: only for a selection study; {args.configs[0]} is not a compare spec")
    else:                                   # configs as they are, with a spec's defaults
        defaults = runner.CompareSpec(configs={})
        configs, sets, ceiling_epochs = args.configs, [], defaults.ceiling_epochs
        backbones, seeds = defaults.backbones, defaults.seeds
        out = f"runs/compare-{'-'.join(c.rsplit('/', 1)[-1].removesuffix('.yaml') for c in args.configs)}"
    if args.backbones is not None:          # the spec's overrides still apply to the backbones it names
        own = backbones if isinstance(backbones, dict) else {}
        backbones = {b.strip(): own.get(b.strip(), ()) for b in args.backbones.split(",") if b.strip()}
    seeds = args.seeds if args.seeds is not None else seeds
    out = args.out or out
    # Without a spec nothing says how the families differ: the LLaMA cells get Llama-2's shape, matched.
    cells = runner.plan(configs, backbones, seeds, sets, out, last=args.set, match_families=not specs,
                        log=lambda line: print(line, file=sys.stderr), arms=arms)
    if args.plan:
        for cell in cells:
            print(runner.command(cell))
        return 0
    if study:
        selection_study.check_budgets(cells)
    runner.run_cells(cells, out, ceiling_epochs=ceiling_epochs)
    res = (selection_study.collect(cells, out, study.baseline, results) if study
           else runner.collect(cells, out, results))
    print(f"{out}/{results}/results.md ({len(res['rows'])} rows, {len(res['missing'])} cells missing)")
    return 0


def analytic(args) -> int:
    from pathlib import Path

    from ..compare.analytic import analytic_table, format_markdown, to_json
    from ..io import write_json, write_text

    rows = analytic_table(args.analytic)
    md = format_markdown(rows)
    print(md, end="")
    if args.out:
        write_text(Path(args.out) / "analytic.md", md)
        write_json(Path(args.out) / "analytic.json", to_json(rows))
        print(f"wrote {Path(args.out) / 'analytic.md'} and {Path(args.out) / 'analytic.json'}")
    return 0
