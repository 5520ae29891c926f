"""compare's data-selection study: the cells a `selection:` block plans, the seed pairing, the tests against
random with Holm and verdicts, per-type spread, costs, and every bad study refused in one line."""
import json
from pathlib import Path

import pytest

from mistral_vision.cli import main
from mistral_vision.compare.runner import _cell_facts, load_spec, plan, run_dir
from mistral_vision.compare.selection_study import check_budgets, collect, pairs_of_seeds, study_arms
from mistral_vision.config import load_config
from mistral_vision.errors import UserError
from tests.conftest import tiny_overrides

ROOT = Path(__file__).resolve().parents[2]
TINY_VQA = {"route": "llava", "vision.hidden_size": 32, "vision.num_layers": 1, "vision.num_heads": 2,
            "vision.intermediate_size": 32, "vision.image_size": 56, "data.dataset": "mnist-vqa",
            "data.valid_canvases": 2, "data.test_canvases": 2}


def _spec(tmp_path, data_dir, body: str) -> Path:
    """A study spec in tmp/specs/ over one tiny mnist-vqa LLaVA config in tmp/cfgs/."""
    for d in ("cfgs", "specs"):
        (tmp_path / d).mkdir(exist_ok=True)
    (tmp_path / "cfgs" / "v.yaml").write_text("name: v\n")
    sets = [o for o in tiny_overrides(data_dir, name="x", **TINY_VQA) if not o.startswith(("name=", "ascii."))]
    spec = tmp_path / "specs" / "prune.yaml"
    spec.write_text(f"# Run: mistral-vision compare specs/prune.yaml\nset: {json.dumps(sets)}\nout: runs/st\n"
                    "configs:\n  v: {path: ../cfgs/v.yaml, set: [data.train_canvases=3]}\n" + body)
    return spec


STUDY = ("backbones: [mistral-tiny]\nselection:\n  budgets: [4, 0.5]\n  baseline_seeds: 2\n"
         "  methods:\n    stratified: {field: type}\n    ccs: {method: loss, band: ccs}\n")


def test_a_study_plans_the_reference_first_then_every_method_at_every_budget(tmp_path, data_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = load_spec(_spec(tmp_path, data_dir, STUDY))
    cells = plan(spec.configs, spec.backbones, spec.seeds, list(spec.set), spec.out, arms=study_arms(spec.selection))
    assert [c.name for c in cells] == [
        "v-mistral-tiny-full-s0",
        "v-mistral-tiny-random-4-s0", "v-mistral-tiny-random-4-s1", "v-mistral-tiny-stratified-4-s0",
        "v-mistral-tiny-ccs-4-s0",
        "v-mistral-tiny-random-0.5-s0", "v-mistral-tiny-random-0.5-s1", "v-mistral-tiny-stratified-0.5-s0",
        "v-mistral-tiny-ccs-0.5-s0"]
    full, ccs = cells[0], cells[4]
    head = (*spec.set, "data.train_canvases=3")
    assert full.overrides == (*head, "model.backbone=mistral-tiny", "train.seed=0", "name=v-mistral-tiny-full-s0",
                              "runs_dir=runs/st/cells")
    assert ccs.overrides == (*head, "data.select.method=loss", "data.select.keep=4", "data.select.band=ccs",
                             "data.select.from_run=runs/st/cells/v-mistral-tiny-full-s0", "model.backbone=mistral-tiny",
                             "train.seed=0", "name=v-mistral-tiny-ccs-4-s0", "runs_dir=runs/st/cells")
    ref = load_config(full.config, list(full.overrides))
    assert ref.data.select is None and str(ref.run_dir) == str(run_dir(full, spec.out))
    sel = load_config(ccs.config, list(ccs.overrides)).data.select
    assert (sel.method, sel.keep, sel.band, sel.seed, sel.from_run) == ("loss", 4, "ccs", None, str(ref.run_dir))
    r1 = load_config(cells[6].config, list(cells[6].overrides))
    assert (r1.data.select.method, r1.data.select.keep, r1.data.select.from_run, r1.train.seed) == ("random", 0.5,
                                                                                                    None, 1)


def test_the_cli_plan_prints_each_cells_run_command_and_each_backbone_reads_its_own_reference(tmp_path, data_dir,
                                                                                             capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    body = STUDY.replace("backbones: [mistral-tiny]", "backbones:\n  mistral-tiny: []\n  llama-tiny: "
                         "[model.num_kv_heads=4]")
    assert main(["compare", str(_spec(tmp_path, data_dir, body)), "--plan"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 18 and all(line.startswith("mistral-vision run cfgs/v.yaml --set ") for line in lines)
    assert lines[0].endswith("--set name=v-mistral-tiny-full-s0 --set runs_dir=runs/st/cells")
    assert lines[9].endswith("--set name=v-llama-tiny-full-s0 --set runs_dir=runs/st/cells")
    reads = [line for line in lines if "from_run" in line]
    assert len(reads) == 4
    for line in reads:
        bb = "llama-tiny" if "model.backbone=llama-tiny" in line else "mistral-tiny"
        assert f"data.select.from_run=runs/st/cells/v-{bb}-full-s0 " in line


def test_seed_pairs_meet_every_baseline_draw_once():
    five = [0, 1, 2, 3, 4]
    assert pairs_of_seeds([0], five, 1) == [(0, 0), (0, 1), (0, 2), (0, 3), (0, 4)]
    assert pairs_of_seeds([0, 1], five, 2) == [(0, 0), (1, 1), (0, 2), (1, 3), (0, 4)]
    assert pairs_of_seeds([0], five, 2) == [(0, 0), (0, 2), (0, 4)]          # seed 1 of the method missing
    assert pairs_of_seeds([0, 1, 2], [0, 2], 3) == [(0, 0), (2, 2)]
    assert pairs_of_seeds([], five, 1) == []


# -- collect on hand-written cells ----------------------------------------------------------------------------
N = 10
TYPES = ["count"] * 5 + ["cell"] * 5        # questions 0-4 count, 5-9 cell


def _write_cell(cell, out, right, minutes=1.0, seconds=None, count=None):
    """A complete cell without training: the files collect reads, from the question indices it got right."""
    d = run_dir(cell, out)
    ev = d / "eval" / "mnist-vqa-valid"
    ev.mkdir(parents=True)
    (d / "train_summary.json").write_text(json.dumps({"params": 1000, "wall_s": 60 * minutes}))
    (d / "config.json").write_text(json.dumps({"route": "llava", "data": {"dataset": "mnist-vqa"}}))
    from mistral_vision.eval.questions import question_metrics

    truth = "abcde" * 2                      # each type's five questions have five different answers
    recs = [{"index": i, "type": TYPES[i], "pred": truth[i] if i in right else "z", "truth": truth[i],
             "correct": i in right, "has_image": True, "mode": "scored"} for i in range(N)]
    (ev / "answers.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    m = question_metrics(recs)               # what `evaluate` writes, the majority answer included
    assert (m["accuracy"], m["n"]) == (len(right) / N, N)
    (ev / "metrics.json").write_text(json.dumps(m | {"predictions": str(ev / "answers.jsonl")}))
    if seconds is not None:
        (d / "selection").mkdir()
        (d / "selection" / "selection-timing.json").write_text(json.dumps({"seconds": seconds}))
        (d / "selection" / "selection.json").write_text(json.dumps({"keep": {"count": count}, "source": {"pool": 6}}))


def test_collect_tests_each_method_against_random_with_exact_p_values_holm_and_verdicts(tmp_path, data_dir,
                                                                                       monkeypatch):
    monkeypatch.chdir(tmp_path)
    body = ("backbones: [mistral-tiny]\nselection:\n  budgets: [4]\n  baseline_seeds: 3\n  methods:\n"
            "    stratified: {field: type}\n    kcenter: {}\n    clusters: {}\n")
    spec = load_spec(_spec(tmp_path, data_dir, body))
    cells = plan(spec.configs, spec.backbones, 1, list(spec.set), spec.out, arms=study_arms(spec.selection))
    by = {c.name.removeprefix("v-mistral-tiny-"): c for c in cells}
    assert list(by) == ["full-s0", "random-4-s0", "random-4-s1", "random-4-s2", "stratified-4-s0", "kcenter-4-s0",
                        "clusters-4-s0"]
    out = spec.out
    _write_cell(by["full-s0"], out, range(8), minutes=10.0)
    for s, right, sec in ((0, range(6), 1.0), (1, range(5), 2.0), (2, range(7), 3.0)):   # 0.6 / 0.5 / 0.7
        _write_cell(by[f"random-4-s{s}"], out, right, seconds=sec, count=4)
    _write_cell(by["stratified-4-s0"], out, range(10), seconds=0.5, count=4)      # right everywhere
    _write_cell(by["kcenter-4-s0"], out, range(3), seconds=7.0, count=4)          # 0.3
    _write_cell(by["clusters-4-s0"], out, range(1, 7), seconds=8.0, count=4)      # 0.6, other questions
    res = collect(cells, out)
    assert not res["missing"]
    rows = {r["method"]: r for r in res["rows"]}
    assert [r["method"] for r in res["rows"]] == ["random", "stratified", "kcenter", "clusters", "full"]
    rnd = rows["random"]
    assert rnd["accuracy"] == [0.6, 0.5, 0.7] and rnd["accuracy_mean"] == pytest.approx(0.6)
    assert rnd["accuracy_std"] == pytest.approx(0.1)
    # per type: count right on every seed; cell 1/5, 0/5, 2/5
    assert rnd["per_type"]["count"] == {"mean": 1.0, "std": 0.0, "values": [1.0, 1.0, 1.0]}
    assert rnd["per_type"]["cell"]["values"] == [0.2, 0.0, 0.4]
    assert (rnd["per_type"]["cell"]["mean"], rnd["per_type"]["cell"]["std"]) == pytest.approx((0.2, 0.2))
    # costs: selection seconds (mean over seeds), and the reference run's minutes for run-based methods only
    assert (rnd["selection_s"], rnd["reads_reference"], rnd["reference_minutes"]) == (2.0, False, None)
    assert (rows["kcenter"]["selection_s"], rows["kcenter"]["reference_minutes"]) == (7.0, 10.0)
    assert rows["stratified"]["reference_minutes"] is None
    assert (rows["full"]["count"], rows["full"]["accuracy"], rows["full"]["train_minutes"]) == (6, [0.8], 10.0)
    strat, kc, cl = res["tests"]
    # stratified seed 0 meets random seeds 0, 1, 2: right where random was wrong on 4 + 5 + 3 questions
    assert [(t["method"], t["seed_pairs"], t["pairs"]) for t in (strat, kc, cl)] == [
        (m, [(0, 0), (0, 1), (0, 2)], 3 * N) for m in ("stratified", "kcenter", "clusters")]
    assert [(t["a_only"], t["b_only"]) for t in (strat, kc, cl)] == [(12, 0), (0, 3 + 2 + 4), (1 + 2 + 0, 1 + 1 + 1)]
    assert (strat["p_value"], kc["p_value"], cl["p_value"]) == (2 / 2**12, 2 / 2**9, 1.0)
    assert (strat["p_holm"], kc["p_holm"], cl["p_holm"]) == (3 * 2 / 2**12, 2 * 2 / 2**9, 1.0)
    assert strat["difference"] == pytest.approx(0.4) and kc["difference"] == pytest.approx(-0.3)
    assert cl["difference"] == pytest.approx(0.0) and strat["seed_spread"] == pytest.approx(0.1)
    assert [t["verdict"] for t in (strat, kc, cl)] == ["better than random", "worse than random", "within noise"]
    md = (Path(out) / "compare" / "results.md").read_text()
    assert "| 4 | kcenter | 1 | **30.00 +- 0.00** | 30.00% | 7.00 s | + 10.0 min |" in md
    assert "| all (6) | full | 1 | **80.00 +- 0.00** | 80.00% | - | this run: 10.0 min |" in md
    assert "| 4 | random | 100.00 +- 0.00 | 20.00 +- 20.00 |" not in md          # types are sorted: cell first
    assert "| 4 | random | 20.00 +- 20.00 | 100.00 +- 0.00 |" in md
    assert "| mnist-vqa" not in md and "| v | mistral-tiny | 4 | stratified | 0,0 0,1 0,2 | 12 | 0 |" in md
    assert (Path(out) / "compare" / "budget.png").stat().st_size > 5000
    assert json.loads((Path(out) / "compare" / "results.json").read_text())["tests"][0]["verdict"] == strat["verdict"]
    # the majority answer (each type's most frequent answer, always) scores 1/5 here, below every method
    assert res["majority"] == {"v": {"overall": 0.2, "per_type": {"cell": 0.2, "count": 0.2}}}
    assert "| - | majority answer | - | 20.00 | each type's most frequent answer, always | - | - |" in md
    assert "| - | majority answer | 20.00 | 20.00 |" in md
    # where neither side beats it, the models answer constants: no "better" or "worse", whatever p says
    from mistral_vision.compare.selection_study import _tests

    facts = {(r["config"], r["backbone"], r["method"], r["budget"]): {} for r in res["rows"]}
    for c in cells:
        facts[("v", "mistral-tiny", c.arm.method, c.arm.budget)][c.seed] = _cell_facts(c, out)
    floor = {"v": {"overall": 0.65}}
    strat, kc, cl = _tests(res["rows"], facts, "random", floor)
    assert [t["verdict"] for t in (strat, kc, cl)] == ["better than random", "neither above the majority answer",
                                                      "neither above the majority answer"]
    assert kc["p_holm"] < 0.05 and (kc["majority"], kc["collapsed"], strat["collapsed"]) == (0.65, True, False)
    # a cell not yet run is listed, and the tests use the seeds present
    (run_dir(by["random-4-s2"], out) / "train_summary.json").unlink()
    again = collect(cells, out)
    assert again["missing"] == ["v-mistral-tiny-random-4-s2"]
    assert again["tests"][0]["seed_pairs"] == [(0, 0), (0, 1)] and again["tests"][0]["a_only"] == 4 + 5


# -- refusals ------------------------------------------------------------------------------------------------
def _methods(m="    stratified: {}\n", head="  budgets: [4]\n"):
    return "backbones: [mistral-tiny]\nselection:\n" + head + "  methods:\n" + m


@pytest.mark.parametrize("body, message", [
    (_methods("    magic: {}\n"), "selection.methods.magic: unknown selection method 'magic'; known: random, "
                                   "stratified, handpicked, loss, kcenter, clusters"),
    (_methods("    best: {method: magic}\n"), "selection.methods.best: unknown selection method 'magic'"),
    (_methods(head="  budgets: [0]\n"), "selection.budgets[0] 0: a count of examples"),
    (_methods(head="  budgets: [100, -5]\n"), "selection.budgets[1] -5: a count of examples"),
    (_methods(head="  budgets: [2.5]\n"), "selection.budgets[0] 2.5: a count of examples"),
    (_methods(head="  budgets: [4, 4]\n"), "a budget appears twice"),
    (_methods(head="  budgets: []\n"), "selection.budgets is empty"),
    (_methods(head="  budgets: [4]\n  baseline: best\n"),
     "selection.baseline 'best': not among selection.methods (stratified) nor a selection method (random, "),
    (_methods(head="  budgets: [4]\n  baseline: stratified\n"), "nothing to test against the baseline 'stratified'"),
    (_methods(head="  budgets: [4]\n  baseline_seeds: 2\n  seeds: 3\n"), "selection.seeds 3 is more than"),
    (_methods("    stratified: {band: ccs}\n"),
     "selection.methods.stratified.band is not a parameter of selection method stratified"),
    (_methods("    stratified: {keep: 3}\n"), "selection.methods.stratified.keep: set by the study"),
    (_methods("    loss: {from_run: runs/x}\n"), "selection.methods.loss.from_run 'runs/x': only `reference`"),
    (_methods("    loss: {band: widest}\n"), "selection.methods.loss.band 'widest': known: high, middle, ccs"),
    (_methods("    loss: {colour: red}\n"), "unknown config key 'selection.methods.loss.colour'"),
    (_methods("    full: {method: random}\n"), "selection.methods.full: `full` names the reference run"),
    (_methods() + "  pool: 3\n", "unknown config key 'selection.pool'"),
    ("seeds: 3\n" + _methods(), "`seeds` is for backbone studies; a selection study's seeds are"),
])
def test_a_bad_study_is_one_line_and_exit_2(tmp_path, data_dir, capsys, monkeypatch, body, message):
    monkeypatch.chdir(tmp_path)
    assert main(["compare", str(_spec(tmp_path, data_dir, body)), "--plan"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


def test_seeds_on_the_command_line_are_refused_for_a_study(tmp_path, data_dir, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["compare", str(_spec(tmp_path, data_dir, _methods())), "--plan", "--seeds", "2"]) == 2
    assert "its seeds are selection.baseline_seeds and selection.seeds" in capsys.readouterr().err


def test_a_budget_the_pool_cannot_spare_is_refused_before_anything_trains(tmp_path, data_dir, monkeypatch):
    """3 canvases: a pool of 6 examples (a caption and a conversation each)."""
    monkeypatch.chdir(tmp_path)
    logged = []
    for budgets, message in (("[2, 0.5]", None), ("[2, 6]", "v: selection.budgets 6: keeps all 6 examples of the pool"),
                             ("[7]", "v: selection.budgets 7: larger than the pool, which has 6 examples")):
        spec = load_spec(_spec(tmp_path, data_dir, _methods(head=f"  budgets: {budgets}\n")))
        cells = plan(spec.configs, spec.backbones, 1, list(spec.set), spec.out, arms=study_arms(spec.selection))
        if message is None:
            check_budgets(cells, log=logged.append)
            continue
        with pytest.raises(UserError, match=message):
            check_budgets(cells, log=logged.append)
    assert logged == ["v: a pool of 6 examples"]
    assert not (tmp_path / "runs").exists()


def test_the_shipped_pruning_study_plans_82_cells_reference_first(monkeypatch):
    """configs/compare/prune.yaml: per backbone, the whole pool then 4 budgets x (5 random + 5 methods)."""
    monkeypatch.chdir(ROOT)
    spec = load_spec("configs/compare/prune.yaml")
    cells = plan(spec.configs, spec.backbones, spec.seeds, list(spec.set), spec.out, arms=study_arms(spec.selection))
    assert len(cells) == 82
    for bb in ("mistral-tiny", "llama-tiny"):
        mine = [c for c in cells if c.backbone == bb]
        assert mine[0].name == f"mnist-vqa-{bb}-full-s0" and len(mine) == 41
        assert sorted({c.arm.budget for c in mine[1:]}) == [125, 250, 500, 1000]
        assert {m: sum(c.arm.method == m for c in mine) for m in dict.fromkeys(c.arm.method for c in mine)} == {
            "full": 1, "random": 20, "stratified": 4, "handpicked": 4, "loss": 4, "kcenter": 4, "clusters": 4}
        ref = str(run_dir(mine[0], spec.out))
        for c in mine:
            cfg = load_config(c.config, list(c.overrides))
            assert cfg.data.train_canvases == 4000 and cfg.eval.splits == ("valid",) and cfg.model.backbone == bb
            # matched compute: the same steps for every subset and the whole pool, at the swept rate
            assert [(st.steps, set(st.trainable.values())) for st in cfg.stages] == [(16, {5e-4}), (400, {5e-4})]
            reads = c.arm.method in ("handpicked", "loss", "kcenter", "clusters")
            assert (cfg.data.select.from_run if c.arm.method != "full" else None) == (ref if reads else None)


def test_budgets_on_the_command_line_run_some_of_the_studys_budgets_with_the_same_cells(tmp_path, data_dir, capsys,
                                                                                        monkeypatch):
    """--budgets 0.5 plans the reference and budget 0.5's cells, named as in the whole study (a later full run
    reuses them); a budget the spec does not plan, or --budgets on a study without a selection: block, is one
    line and exit 2."""
    monkeypatch.chdir(tmp_path)
    spec = _spec(tmp_path, data_dir, STUDY)
    assert main(["compare", str(spec), "--plan"]) == 0
    every = capsys.readouterr().out.strip().splitlines()
    assert main(["compare", str(spec), "--plan", "--budgets", "0.5"]) == 0
    some = capsys.readouterr().out.strip().splitlines()
    assert some == [every[0]] + [line for line in every if "-0.5-s" in line] and len(some) == 5
    for bad, says in (("0.5,3", "compare --budgets 0.5,3: '3' is not among"), ("", "'' is not among")):
        assert main(["compare", str(spec), "--plan", "--budgets", bad]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and says in err, err
    plain = _spec(tmp_path, data_dir, "backbones: [mistral-tiny]\n")
    assert main(["compare", str(plain), "--plan", "--budgets", "4"]) == 2
    assert "is not a selection study" in capsys.readouterr().err


def test_a_confirming_spec_shares_the_studys_cells_and_keeps_its_own_tables(tmp_path, data_dir, capsys, monkeypatch):
    """Two specs with one `out`: the second (`results: confirm`, more seeds for one method) plans the first's cells
    under the same names and overrides, and its tables go to OUT/confirm/, leaving the first's compare/ alone."""
    from mistral_vision.compare import runner

    monkeypatch.chdir(tmp_path)
    first = load_spec(_spec(tmp_path, data_dir, STUDY.replace("[4, 0.5]", "[4]")))
    confirm = _spec(tmp_path, data_dir, "results: confirm\n" + STUDY.replace("[4, 0.5]", "[4]").replace(
        "    stratified: {field: type}\n", "").replace("  methods:", "  seeds: 2\n  methods:"))
    cells_a = plan(first.configs, first.backbones, 1, list(first.set), first.out, arms=study_arms(first.selection))
    spec_b = load_spec(confirm)
    assert spec_b.results == "confirm" and spec_b.out == first.out
    cells_b = plan(spec_b.configs, spec_b.backbones, 1, list(spec_b.set), spec_b.out, arms=study_arms(spec_b.selection))
    same = {c.name: c.overrides for c in cells_a}
    assert [c.name for c in cells_b] == ["v-mistral-tiny-full-s0", "v-mistral-tiny-random-4-s0",
                                         "v-mistral-tiny-random-4-s1", "v-mistral-tiny-ccs-4-s0",
                                         "v-mistral-tiny-ccs-4-s1"]
    assert all(same[c.name] == c.overrides for c in cells_b if c.name in same)
    for c, right in zip(cells_a + cells_b[-1:], (range(8), range(6), range(5), range(7), range(4), range(3))):
        _write_cell(c, first.out, right, seconds=1.0, count=4)
    monkeypatch.setattr(runner, "run_cells", lambda *a, **k: None)          # every cell is written above
    assert main(["compare", str(confirm)]) == 0
    assert "runs/st/confirm/results.md (3 rows, 0 cells missing)" in capsys.readouterr().out   # random, ccs, full
    md = (Path(first.out) / "confirm" / "results.md").read_text()
    assert "| 4 | ccs | 2 |" in md and "stratified" not in md and not (Path(first.out) / "compare").exists()
    assert (Path(first.out) / "confirm" / "budget.png").is_file()


@pytest.mark.parametrize("results", ["cells", "a/b", "''"])
def test_a_results_folder_outside_out_or_over_its_cells_is_refused(tmp_path, data_dir, capsys, monkeypatch, results):
    monkeypatch.chdir(tmp_path)
    assert main(["compare", str(_spec(tmp_path, data_dir, f"results: {results}\n" + _methods())), "--plan"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "one folder name under out, not cells" in err, err


def test_the_shipped_confirming_spec_reuses_the_pruning_studys_cells(monkeypatch):
    """configs/compare/prune-confirm.yaml: kcenter and clusters at 1,000 with 3 seeds; every cell prune.yaml also
    plans (reference, random's 5 draws, seed 0 of each) has its name and overrides, so it is reused, not redone."""
    monkeypatch.chdir(ROOT)
    specs = [load_spec(f"configs/compare/{n}.yaml") for n in ("prune", "prune-confirm")]
    (a, ca), (b, cb) = ((s, plan(s.configs, s.backbones, s.seeds, list(s.set), s.out, arms=study_arms(s.selection)))
                        for s in specs)
    assert (b.out, b.results, a.results) == (a.out, "compare-confirm", "compare")
    shared = {c.name: c.overrides for c in ca}
    new = [c.name for c in cb if c.name not in shared]
    assert sorted(new) == sorted(f"mnist-vqa-{bb}-{m}-1000-s{s}" for bb in ("mistral-tiny", "llama-tiny")
                                 for m in ("kcenter", "clusters") for s in (1, 2))
    assert len(cb) == 2 * (1 + 5 + 3 + 3)
    assert all(c.overrides == shared[c.name] for c in cb if c.name in shared)
