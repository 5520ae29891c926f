"""compare: cells are ordinary runs, reused when complete, with seed statistics and a paired test."""
import json

import pytest

from mistral_vision.cli import main
from mistral_vision.compare.runner import collect, mcnemar_p, plan
from mistral_vision.errors import UserError
from mistral_vision.io import read_jsonl_tolerant
from tests.conftest import tiny_overrides


def _config(tmp_path, data_dir, name="tinyascii"):
    path = tmp_path / f"{name}.yaml"
    path.write_text("# Run: mistral-vision run x.yaml\nname: x\n")
    sets = [o for o in tiny_overrides(data_dir, name="x", **{"data.train_limit": 320, "data.valid_limit": 60,
                                                             "eval.splits": "[valid]"}) if not o.startswith("name=")]
    return str(path), sets


def test_mcnemar_matches_the_binomial_by_hand():
    assert mcnemar_p(0, 5) == pytest.approx(2 / 32)
    assert mcnemar_p(1, 9) == pytest.approx(2 * (1 + 10) / 1024)
    assert mcnemar_p(4, 4) == 1.0 and mcnemar_p(0, 0) == 1.0


def test_holm_adjusts_in_input_order_and_stays_monotone():
    from mistral_vision.compare.runner import holm

    assert holm([0.0227, 0.287, 0.232, 0.0318]) == pytest.approx([0.0908, 0.464, 0.464, 0.0954])
    assert holm([0.5]) == [0.5] and holm([0.01, 0.9]) == pytest.approx([0.02, 0.9])


def _seeds(right_per_seed, n=20):
    """A cell's facts per seed, from the images (0..n-1) it got right."""
    return [{"seed": s, "accuracy": len(set(r)) / n, "correct": {i: i in set(r) for i in range(n)}}
            for s, r in enumerate(right_per_seed)]


def test_paired_counts_p_values_and_verdicts_of_constructed_cells():
    from mistral_vision.compare.runner import _paired

    every = range(20)
    groups = {
        # a right everywhere, b wrong on 5 / 6 / 7 images: 18 images for a alone, none for b
        ("c", "a"): _seeds([every, every, every]), ("c", "b"): _seeds([range(5, 20), range(6, 20), range(7, 20)]),
        # a few images each way: a alone on {0, 1}, {0}, {0}; b alone on {3}, {1}, none
        ("d", "a"): _seeds([[0, 1, *range(4, 20)], [0, *range(2, 20)], every]),
        ("d", "b"): _seeds([range(3, 20), range(1, 20), range(1, 20)]),
        # a far ahead on two seeds and far behind on the third: significant, but not beyond the seeds' spread
        ("e", "a"): _seeds([every, every, range(10, 15)]), ("e", "b"): _seeds([range(10)] * 3),
    }
    c, d, e = _paired(groups)
    assert [(r["config"], r["a"], r["b"], r["seeds"], r["pairs"]) for r in (c, d, e)] == [
        (x, "a", "b", [0, 1, 2], 60) for x in "cde"]
    assert [(r["a_only"], r["b_only"]) for r in (c, d, e)] == [(18, 0), (4, 2), (10 + 10 + 5, 10)]
    assert c["p_value"] == 2 / 2**18 and d["p_value"] == 2 * (1 + 6 + 15) / 2**6
    assert e["p_value"] == pytest.approx(0.016674, abs=1e-6)        # 2 * P(X <= 10), X ~ Bin(35, 1/2)
    # Holm over the three: smallest p x 3, next x 2, last x 1 (kept monotone)
    assert (c["p_holm"], e["p_holm"], d["p_holm"]) == (3 * c["p_value"], 2 * e["p_value"], d["p_value"])
    assert c["difference"] == pytest.approx(1 - 0.7) and c["seed_spread"] == pytest.approx(0.05)   # b's std
    assert e["difference"] == pytest.approx(0.75 - 0.5) and e["seed_spread"] == pytest.approx(0.4330127)
    assert [r["verdict"] for r in (c, d, e)] == ["difference larger than seed spread", "within noise",
                                                 "within noise"]


def test_bad_input_is_refused_before_any_cell_runs(tmp_path, data_dir, capsys):
    cfg, sets = _config(tmp_path, data_dir)
    with pytest.raises(UserError, match="unknown backbone 'gpt2'"):
        plan([cfg], ["mistral-tiny", "gpt2"], 2, sets, tmp_path / "out")
    with pytest.raises(UserError, match="--seeds 0: need at least 1 seed"):
        plan([cfg], ["mistral-tiny"], 0, sets, tmp_path / "out")
    with pytest.raises(UserError, match="unknown config key 'train.nope'"):
        plan([cfg], ["mistral-tiny"], 1, sets + ["train.nope=1"], tmp_path / "out")
    for args in (["compare", cfg, "--backbones", "mistral-tiny,gpt2"], ["compare", cfg, "--seeds", "0"],
                 ["compare", str(tmp_path / "missing.yaml")]):
        assert main(args + sum((["--set", s] for s in sets), [])) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_plan_prints_one_ordinary_run_command_per_cell(tmp_path, data_dir, capsys):
    cfg, sets = _config(tmp_path, data_dir)
    assert main(["compare", cfg, "--seeds", "2", "--plan", "--out", str(tmp_path / "o")]
                + sum((["--set", s] for s in sets), [])) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and all(line.startswith(f"mistral-vision run {cfg} ") for line in lines)
    assert sum("model.backbone=llama-tiny" in line and "train.seed=1" in line and
               "name=tinyascii-llama-tiny-s1" in line for line in lines) == 1


@pytest.mark.slow
def test_compare_runs_collects_and_reuses_cells_deterministically(tmp_path, data_dir):
    from mistral_vision.compare.runner import run_cells

    cfg, sets = _config(tmp_path, data_dir)
    out = tmp_path / "cmp"
    cells = plan([cfg], ["mistral-tiny", "llama-tiny"], 2, sets, out, match_families=True)
    run_cells(cells, out, log=lambda *_: None, ceiling_epochs=1)
    res = collect(cells, out)
    ceiling = res["rendering"]["tinyascii"]
    # the CNN ceiling of this config's art, 1 epoch as asked, scored on its 60 validation images
    from mistral_vision.compare.ceiling import rendering_cost
    from mistral_vision.config import load_config

    again = rendering_cost(load_config(cells[0].config, list(cells[0].overrides)), 1)
    assert {k: v for k, v in ceiling.items() if k != "seconds"} == {k: v for k, v in again.items() if k != "seconds"}
    assert (ceiling["dataset"], ceiling["epochs"]) == ("mnist", 1) and ceiling["art"].startswith("10x10, crop 4")
    for k in ("cnn_on_art", "cnn_on_pixels"):                         # float32 accuracies of 60 images
        assert 60 * ceiling[k] == pytest.approx(round(60 * ceiling[k]), abs=1e-4)
    assert ceiling["cost"] == ceiling["cnn_on_pixels"] - ceiling["cnn_on_art"]
    assert not res["missing"] and len(res["rows"]) == 2
    for row in res["rows"]:
        assert row["seeds"] == [0, 1] and len(row["accuracy"]) == 2
        accs = [json.loads((out / "cells" / f"tinyascii-{row['backbone']}-s{s}" / "eval" / "mnist-valid" /
                            "metrics.json").read_text())["accuracy"] for s in (0, 1)]
        assert row["accuracy"] == accs
        assert row["accuracy_mean"] == pytest.approx(sum(accs) / 2)
    mistral, llama = sorted(res["rows"], key=lambda r: r["backbone"], reverse=True)
    assert mistral["sliding_window"] and not llama["sliding_window"]
    # matched presets: llama-tiny's 2 extra KV heads (2 x 32 x 8 x 2 = 1,024 per layer) against an MLP 11 smaller
    # (3 x 32 x 11 = 1,056 per layer), over 2 layers
    assert llama["params"] - mistral["params"] == 2 * (1024 - 1056)
    (pair,) = res["paired"]
    assert pair["pairs"] == 2 * 60 and pair["p_holm"] == pair["p_value"]   # one comparison: nothing to correct
    # the discordant pairs counted image by image from the cells' prediction files, seed by seed
    def right(backbone, seed):
        m = json.loads((out / "cells" / f"tinyascii-{backbone}-s{seed}" / "eval" / "mnist-valid" /
                        "metrics.json").read_text())
        return {r["index"]: r["pred"] == r["label"] for r in read_jsonl_tolerant(m["predictions"])}
    a_only = b_only = 0
    for seed in (0, 1):
        ra, rb = right(pair["a"], seed), right(pair["b"], seed)
        assert ra.keys() == rb.keys() and len(ra) == 60
        a_only += sum(ra[i] and not rb[i] for i in ra)
        b_only += sum(rb[i] and not ra[i] for i in ra)
    assert (pair["a_only"], pair["b_only"]) == (a_only, b_only)
    assert pair["p_value"] == mcnemar_p(a_only, b_only)
    by = {r["backbone"]: r for r in res["rows"]}
    assert pair["difference"] == pytest.approx(by[pair["a"]]["accuracy_mean"] - by[pair["b"]]["accuracy_mean"])
    assert pair["seed_spread"] == pytest.approx(max(by[pair["a"]]["accuracy_std"], by[pair["b"]]["accuracy_std"]))
    larger = pair["p_holm"] < 0.05 and abs(pair["difference"]) > pair["seed_spread"]
    assert pair["verdict"] == ("difference larger than seed spread" if larger else "within noise")
    md = (out / "compare" / "results.md").read_text()
    assert "| tinyascii | mistral-tiny |" in md and "McNemar" in md and (out / "compare" / "accuracy.png").is_file()
    # a second compare reuses every finished cell and gives the same table
    stamps = {c.name: (out / "cells" / c.name / "train_summary.json").stat().st_mtime_ns for c in cells}
    run_cells(cells, out, log=lambda *_: None, ceiling_epochs=1)
    again = collect(cells, out)
    assert [r["accuracy"] for r in again["rows"]] == [r["accuracy"] for r in res["rows"]]
    assert stamps == {c.name: (out / "cells" / c.name / "train_summary.json").stat().st_mtime_ns for c in cells}
    # and retraining the same cells from scratch elsewhere gives identical accuracies (deterministic on CPU)
    other = plan([cfg], ["mistral-tiny", "llama-tiny"], 2, sets, tmp_path / "cmp2", match_families=True)
    run_cells(other, tmp_path / "cmp2", log=lambda *_: None, ceiling_epochs=1)
    assert [r["accuracy"] for r in collect(other, tmp_path / "cmp2")["rows"]] == [r["accuracy"] for r in res["rows"]]


def _spec(tmp_path, data_dir, body: str):
    """A compare spec in tmp/specs/ over two tiny configs in tmp/cfgs/ (paths relative to the spec)."""
    (tmp_path / "cfgs").mkdir(exist_ok=True)
    (tmp_path / "specs").mkdir(exist_ok=True)
    (tmp_path / "cfgs" / "a.yaml").write_text("name: a\n")
    (tmp_path / "cfgs" / "b.yaml").write_text("name: b\nroute: llava\nstages:\n  - {name: align, trainable: "
                                              "{projector: 0.001}}\n  - {name: instruct, trainable: {llm: 0.001}}\n")
    sets = [o for o in tiny_overrides(data_dir, name="x") if not o.startswith(("name=", "ascii."))]
    spec = tmp_path / "specs" / "study.yaml"
    spec.write_text(f"set: {json.dumps(sets)}\n" + body)
    return spec


def test_a_spec_gives_each_config_its_own_budget_keys_and_the_command_line_wins(tmp_path, data_dir, capsys,
                                                                              monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = _spec(tmp_path, data_dir, "seeds: 2\nbackbones: [llama-tiny]\nconfigs:\n"
                 "  asc: {path: ../cfgs/a.yaml, set: [train.epochs=0.5]}\n"
                 "  lla: {path: ../cfgs/b.yaml, set: [stages.1.epochs=0.25]}\n")
    assert main(["compare", str(spec), "--plan"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4                                          # 2 configs x 1 backbone x 2 seeds
    asc = [line for line in lines if "name=asc-llama-tiny-s" in line]
    lla = [line for line in lines if "name=lla-llama-tiny-s" in line]
    assert len(asc) == len(lla) == 2
    assert all(line.startswith("mistral-vision run cfgs/a.yaml ") and "train.epochs=0.5" in line
               and "stages.1" not in line and "runs_dir=runs/study/cells" in line for line in asc)
    assert all(line.startswith("mistral-vision run cfgs/b.yaml ") and "stages.1.epochs=0.25" in line for line in lla)
    # command-line flags override the spec's: seeds, backbones, out, and --set after the row's own
    assert main(["compare", str(spec), "--plan", "--seeds", "1", "--backbones", "mistral-tiny",
                 "--out", "elsewhere", "--set", "train.epochs=0.75"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all("model.backbone=mistral-tiny" in x and "runs_dir=elsewhere/cells" in x
                                   for x in lines)
    asc_line = next(x for x in lines if "cfgs/a.yaml" in x)
    assert asc_line.index("train.epochs=0.5") < asc_line.index("train.epochs=0.75")
    from mistral_vision.compare.runner import load_spec
    from mistral_vision.config import load_config

    cells = plan(load_spec(spec).configs, ["mistral-tiny"], 1, [], "o", last=["train.epochs=0.75"])
    assert load_config(cells[0].config, list(cells[0].overrides)).train.epochs == 0.75


@pytest.mark.parametrize("body, message", [
    ("configs: {}\n", "`configs` is empty"),
    ("configs: {a: [\n", "line 3 invalid YAML"),
    ("configs:\n  a: {path: ../cfgs/missing.yaml}\n", "configs.a.path '../cfgs/missing.yaml' not found"),
    ("configs:\n  a: {path: ../cfgs/a.yaml, budget: 2}\n", "unknown config key 'configs.a.budget'"),
    ("seeds: many\nconfigs:\n  a: {path: ../cfgs/a.yaml}\n", "expected an integer"),
    ("configs:\n  a: {path: ../cfgs/a.yaml, set: [train.nope=1]}\n", "unknown config key 'train.nope'"),
])
def test_a_bad_spec_is_one_line_and_exit_2(tmp_path, data_dir, capsys, monkeypatch, body, message):
    monkeypatch.chdir(tmp_path)
    spec = _spec(tmp_path, data_dir, body)
    assert main(["compare", str(spec), "--plan"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    # a spec is given alone
    good = _spec(tmp_path, data_dir, "configs:\n  a: {path: ../cfgs/a.yaml}\n")
    assert main(["compare", str(good), str(tmp_path / "cfgs" / "a.yaml"), "--plan"]) == 2
    assert "give it alone" in capsys.readouterr().err


def test_the_shipped_study_plans_24_cells_with_each_routes_budget_key(capsys, monkeypatch):
    """configs/compare/cpu.yaml (the README table): 2 backbones x 2 routes x 2 datasets x 3 seeds, every
    cell one epoch of its training set, scored single-view."""
    from pathlib import Path

    from mistral_vision.compare.runner import load_spec
    from mistral_vision.config import load_config, resolve_stages

    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    spec = load_spec("configs/compare/cpu.yaml")
    cells = plan(spec.configs, spec.backbones, spec.seeds, list(spec.set), spec.out)
    assert len(cells) == 24 and {c.backbone for c in cells} == {"mistral-tiny", "llama-tiny"}
    routes, models = set(), {}
    for cell in cells:
        cfg = load_config(cell.config, list(cell.overrides))
        routes.add((cfg.route, cfg.data.dataset))
        assert sum(st.epochs for st in resolve_stages(cfg)) == pytest.approx(1.0) and cfg.eval.tta == "none"
        models[(cell.label, cell.backbone)] = cfg.model
    assert routes == {(r, d) for r in ("ascii", "llava") for d in ("mnist", "fashion-mnist")}
    for label in spec.configs:            # GQA + window against one KV head per head, matched in LLM parameters
        m, ll = models[(label, "mistral-tiny")], models[(label, "llama-tiny")]
        assert (m.num_heads // m.num_kv_heads, ll.num_heads // ll.num_kv_heads) == (2, 1)
        per_layer = [4 * h * h - 2 * h * (h - x.hidden_size * x.num_kv_heads // x.num_heads) + 3 * h * x.intermediate_size
                     for x in (m, ll) for h in [x.hidden_size]]
        assert abs(per_layer[1] / per_layer[0] - 1) < 0.01


def test_a_spec_can_give_a_backbone_its_own_shape_and_the_study_stays_parameter_matched(tmp_path, data_dir, capsys,
                                                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = _spec(tmp_path, data_dir, "seeds: 1\nbackbones:\n  mistral-tiny: []\n  llama-tiny: [model.num_kv_heads=4]\n"
                 "configs:\n  asc: {path: ../cfgs/a.yaml}\n")
    assert main(["compare", str(spec), "--plan"]) == 0
    mistral, llama = capsys.readouterr().out.strip().splitlines()
    assert "num_kv_heads=4" in llama and "num_kv_heads=4" not in mistral
    # naming one backbone on the command line keeps the spec's overrides for it
    assert main(["compare", str(spec), "--plan", "--backbones", "llama-tiny"]) == 0
    (line,) = capsys.readouterr().out.strip().splitlines()
    assert "model.backbone=llama-tiny" in line and "model.num_kv_heads=4" in line


def test_a_folder_left_by_another_setting_is_refused_not_reused(tmp_path, data_dir, capsys, monkeypatch):
    from mistral_vision.compare.runner import load_spec, run_dir, run_cells
    from mistral_vision.config import dump_config, load_config

    monkeypatch.chdir(tmp_path)
    spec = _spec(tmp_path, data_dir, "seeds: 1\nbackbones: [mistral-tiny]\nconfigs:\n  asc: {path: ../cfgs/a.yaml}\n")
    s = load_spec(spec)
    (cell,) = plan(s.configs, s.backbones, 1, list(s.set), s.out)
    d = run_dir(cell, s.out)
    dump_config(load_config(cell.config, list(cell.overrides) + ["train.epochs=3"]), d)
    (d / "train_summary.json").write_text("{}")
    with pytest.raises(UserError, match=r"was run with stages.0.epochs=3.0 but the config now says 1.0; delete"):
        run_cells([cell], s.out, log=lambda *_: None)
    assert not (d / "model").exists()


def test_llama_matched_shape_is_cpu_yaml_for_the_cpu_configs_and_exact_in_parameters():
    from mistral_vision.compare.runner import llama_matched_shape
    from mistral_vision.config import ModelConfig

    cpu = ModelConfig(hidden_size=128, num_layers=4, num_heads=4, num_kv_heads=2, intermediate_size=256)
    assert llama_matched_shape(cpu) == ("model.num_kv_heads=4", "model.intermediate_size=213")
    assert llama_matched_shape(ModelConfig(num_heads=4, num_kv_heads=4)) == ()       # no GQA: nothing to match


def test_two_families_with_one_shape_are_refused_and_the_ad_hoc_compare_matches_them(tmp_path, data_dir, capsys):
    cfg, sets = _config(tmp_path, data_dir)
    with pytest.raises(UserError, match="mistral-tiny and llama-tiny give tinyascii the same shape"):
        plan([cfg], ["mistral-tiny", "llama-tiny"], 1, sets, tmp_path / "out")
    assert main(["compare", str(cfg), "--plan", "--seeds", "1", "--out", str(tmp_path / "o")]
                + sum((["--set", o] for o in sets), [])) == 0
    out, err = capsys.readouterr()
    llama_cmd = [line for line in out.splitlines() if "llama-tiny" in line]
    assert len(llama_cmd) == 1 and "model.num_kv_heads=4 --set model.intermediate_size=53" in llama_cmd[0]
    assert err.strip() == ("tinyascii / llama-tiny: model.num_kv_heads=4 model.intermediate_size=53 "
                           "(Llama-2's one KV head per head, matched in parameters)")


def test_a_backbone_label_can_name_a_pretrained_checkpoint_and_its_cells_train_it(capsys, monkeypatch):
    """configs/compare/vqa.yaml: each family's own pretrained tiny LLM (an hf: folder built by `pretrain`)
    under a label; the label names the cells, the checkpoint is what model.backbone trains, and the LLaMA
    entry keeps Llama-2's shape so the two stay parameter-matched."""
    from pathlib import Path

    from mistral_vision.compare.runner import backbone_id, load_spec
    from mistral_vision.config import load_config

    assert backbone_id("x", ["model.backbone = hf:runs/p/model"]) == "hf:runs/p/model"
    assert backbone_id("mistral-tiny", ["model.num_kv_heads=4"]) == "mistral-tiny"
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    spec = load_spec("configs/compare/vqa.yaml")
    cells = plan(spec.configs, spec.backbones, spec.seeds, list(spec.set), spec.out)
    assert [c.name for c in cells] == [f"mnist-vqa-{b}-tiny-pretrained-s{s}" for b in ("mistral", "llama")
                                       for s in range(3)]
    for cell in cells:
        cfg = load_config(cell.config, list(cell.overrides))
        family = cell.backbone.split("-")[0]
        assert cfg.model.backbone == f"hf:runs/pretrain-{family}-tiny/model"
        assert cfg.model.pretrain == f"configs/pretrain/{family}-tiny.yaml"
        assert (cfg.model.num_kv_heads, cfg.model.intermediate_size) == ((2, 256) if family == "mistral" else (4, 213))
        pre = load_config(cfg.model.pretrain)           # the checkpoint the cell loads has the cell's shape
        assert (pre.model.num_kv_heads, pre.model.intermediate_size) == (cfg.model.num_kv_heads,
                                                                         cfg.model.intermediate_size)
        assert cfg.eval.splits == ("valid",) and cfg.stages[0].trainable.get("llm") is None


def test_question_rows_get_a_per_type_table_of_mean_and_std_over_seeds():
    """A question-set compare (configs/compare/vqa.yaml) says which types a difference comes from."""
    from mistral_vision.compare.runner import format_results, per_type_spread

    facts = [{"per_type": {"present": 0.5, "cell": 0.9}}, {"per_type": {"present": 0.7, "cell": 0.9}},
             {"per_type": {"present": 0.6}}]
    pt = per_type_spread(facts)
    assert list(pt) == ["cell", "present"] and pt["cell"] == {"mean": 0.9, "std": 0.0, "values": [0.9, 0.9]}
    assert pt["present"]["mean"] == pytest.approx(0.6) and pt["present"]["std"] == pytest.approx(0.1)
    assert per_type_spread([{"per_type": {}}, {}]) == {}
    row = {"config": "mnist-vqa", "backbone": "m", "params": 1, "accuracy_mean": 0.7, "accuracy_std": 0.0,
           "accuracy": [0.7], "tta": "none", "per_type": pt} | dict.fromkeys(
        ["route", "dataset", "tokens_per_sample", "sliding_window", "gqa", "train_images_per_s",
         "infer_images_per_s", "peak_rss_mb"])
    md = format_results({"rows": [row], "paired": [], "routes": [], "rendering": {}, "missing": []})
    assert "| config | backbone | cell | present |" in md and "| mnist-vqa | m | 90.00 +- 0.00 | 60.00 +- 10.00 |" in md
    classification = format_results({"rows": [row | {"per_type": {}}], "paired": [], "routes": [], "rendering": {},
                                     "missing": []})
    assert "Per question type" not in classification


def test_the_majority_answer_is_each_types_most_frequent_truth_always():
    """compare reads it from what the evaluation wrote (eval/questions.py, eval/metrics.py), never again."""
    from mistral_vision.compare.runner import majority_answer
    from mistral_vision.eval.questions import question_metrics

    recs = [{"type": "present", "truth": t} for t in ("yes", "no", "no", "no")] + \
        [{"type": "cell", "truth": t} for t in ("1", "2", "2", "empty", "empty", "empty")]
    recs = [r | {"pred": r["truth"], "correct": True, "has_image": True, "mode": "scored"} for r in recs]
    got = majority_answer(question_metrics(recs))
    assert got["overall"] == pytest.approx((3 + 3) / 10) and got["per_type"] == {"cell": 0.5, "present": 0.75}
    assert majority_answer({"majority_baseline": 2 / 3}) == {"overall": 2 / 3, "per_type": {"all": 2 / 3}}
    assert majority_answer({}) is None
