"""The selection methods on pools built in memory: each rule picks exactly the ids it states.

Run-derived features are replaced by fixed fakes (``features.run_features`` / ``run_losses``), so each test
knows the geometry or the scores and asserts the exact choice.
"""
from __future__ import annotations

import numpy as np
import pytest

from mistral_vision.config import SELECT_CHOICES, SELECT_METHODS, SelectConfig
from mistral_vision.data.questions import Item, QuestionSet
from mistral_vision.data.selection import Pool
from mistral_vision.errors import UserError
from mistral_vision.select import features
from mistral_vision.select.geometry import greedy_kcenter, kmeans
from mistral_vision.select.methods import METHODS, balanced, largest_remainder
from mistral_vision.select.selection import select


def make_pool(types=None, subjects=None, imaged=None, options=None) -> Pool:
    """A pool of len(types) one-turn items ``q0, q1, ...``; ``options[i]`` lettered options in item i's question."""
    n = len(types)
    imaged = imaged if imaged is not None else [True] * n
    options = options if options is not None else [2] * n
    items, samples = [], []
    for i in range(n):
        opts = " ".join(f"({L}) o{L}" for L in "ABCDE"[:options[i]])
        human = ("<image>\n" if imaged[i] else "") + f"Question {i}?\nOptions: {opts}"
        items.append(Item(f"q{i}", i if imaged[i] else -1, [("human", human), ("gpt", "A")], types[i]))
        s = {"id": f"q{i}", "conversations": [], "type": types[i]}
        if subjects is not None and subjects[i] is not None:
            s["subject"] = subjects[i]
        samples.append(s)
    return Pool("mem", QuestionSet("mem", [np.zeros((4, 4), np.uint8)] * n, items), samples, "0" * 64)


def run(pool, method, keep, seed=0, **params):
    return select(pool, SelectConfig(method=method, keep=keep, **params), seed, log=lambda *_: None)


@pytest.fixture
def fake_run(monkeypatch, tmp_path):
    """A reference run whose embeddings and losses the test sets: -> dict with "emb" and "loss"."""
    got = {"emb": None, "loss": None, "calls": []}
    (tmp_path / "ref").mkdir()
    monkeypatch.setattr(features, "check_run_fits", lambda run_dir, qset: got["calls"].append(("fits", run_dir)))
    monkeypatch.setattr(features, "run_features",
                        lambda run_dir, qset, kind, **kw: got["calls"].append(("features", kind)) or got["emb"])
    monkeypatch.setattr(features, "run_losses",
                        lambda run_dir, qset, measure="loss", **kw: got["calls"].append(("losses", measure))
                        or got["loss"])
    got["dir"] = str(tmp_path / "ref")
    return got


def test_the_registry_is_the_configs_list_of_methods_and_embeddings():
    assert list(METHODS) == list(SELECT_METHODS)
    assert {m.name for m in METHODS.values() if m.needs_run} == {"loss", "kcenter", "clusters"}
    assert SELECT_CHOICES["embedding"] == features.FEATURE_KINDS


def test_random_is_seeded_and_seeds_differ():
    pool = make_pool(["t"] * 50)
    a, b, c = (run(pool, "random", 10, seed=s)["ids"] for s in (0, 0, 1))
    assert a == b and a != c and len(set(a)) == 10
    assert a == [f"q{i}" for i in np.random.default_rng(0).permutation(50)[:10]]


def test_keep_as_a_fraction_rounds_half_up_and_is_recorded():
    m = run(make_pool(["t"] * 10), "random", 0.25)
    assert m["keep"] == {"asked": 0.25, "count": 3} and len(m["ids"]) == 3       # 2.5 -> 3


def test_largest_remainder_and_balanced_counts_are_exact():
    assert largest_remainder([7, 2, 1], 6) == [4, 1, 1]      # 4.2, 1.2, 0.6: the one left goes to 0.6
    assert largest_remainder([7, 2, 1], 5) == [4, 1, 0]      # 3.5, 1.0, 0.5: ties to the earlier group
    assert largest_remainder([3, 3, 3], 9) == [3, 3, 3]
    assert balanced([7, 2, 1], 6) == [3, 2, 1]               # the small strata give their share to the big one
    assert balanced([5, 5, 5], 7) == [3, 2, 2]
    assert balanced([1, 9], 10) == [1, 9]


@pytest.mark.parametrize("allocation,want", [("proportional", {"a": 4, "b": 1, "c": 1}),
                                             ("balanced", {"a": 3, "b": 2, "c": 1})])
def test_stratified_counts_per_stratum(allocation, want):
    pool = make_pool(["a"] * 7 + ["b"] * 2 + ["c"])
    m = run(pool, "stratified", 6, allocation=allocation)
    types = {f"q{i}": t for i, t in enumerate(["a"] * 7 + ["b"] * 2 + ["c"])}
    assert {t: sum(types[i] == t for i in m["ids"]) for t in want} == want
    assert m["groups"] == [types[i] for i in m["ids"]] and m["params"] == {"field": "type", "allocation": allocation}


def test_stratified_by_a_sample_key_and_a_field_no_sample_has():
    pool = make_pool(["t"] * 6, subjects=["bio", "bio", "bio", "bio", "chem", None])
    m = run(pool, "stratified", 3, field="subject")
    assert sorted(m["groups"], key=str) == ["bio", "bio", "chem"]           # 2, 0.5 -> 1, 0.5 (missing) -> 0
    with pytest.raises(UserError, match=r"^field 'grade': no sample of mem has it; fields present: type, subject$"):
        run(pool, "stratified", 3, field="grade")


def test_handpicked_covers_every_stratum_with_image_questions_hardest_first():
    subjects = ["bio", "bio", "chem", "chem", "phys", "phys", "geo", "bio"]
    imaged = [True, True, True, True, True, True, False, True]       # geo only has a text question: no stratum
    options = [2, 4, 3, 2, 2, 5, 5, 5]
    m = run(make_pool(["mc"] * 8, subjects, imaged, options), "handpicked", 5)
    # the hardest of each stratum (bio, chem, phys by name), then the hardest of the rest; ties by id
    assert m["ids"] == ["q7", "q2", "q5", "q1", "q0"]
    assert m["scores"] == [5.0, 3.0, 5.0, 4.0, 2.0] and m["groups"] == ["bio", "chem", "phys", "bio", "bio"]
    assert m["params"] == {"field": "subject", "from_run": None, "difficulty": "options"}
    with pytest.raises(UserError, match="covers every stratum of 'subject': 3 among the image questions, more "
                                        "than --keep 2"):
        run(make_pool(["mc"] * 8, subjects, imaged, options), "handpicked", 2)
    with pytest.raises(UserError, match="image questions only: 7 of the pool's 8 have an image"):
        run(make_pool(["mc"] * 8, subjects, imaged, options), "handpicked", 8)


def test_handpicked_ranks_by_a_runs_loss_when_given_one(fake_run):
    fake_run["loss"] = np.array([0.1, 0.9, 0.5, 0.2, 0.3, 0.8])
    m = run(make_pool(["a", "a", "b", "b", "a", "b"]), "handpicked", 3, from_run=fake_run["dir"])
    assert m["ids"] == ["q1", "q5", "q2"] and m["params"]["difficulty"] == "loss"
    assert ("losses", "loss") in fake_run["calls"] and ("fits", fake_run["dir"]) in fake_run["calls"]


SCORES = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 5.0, 10.0]
ORDER = [3, 9, 0, 6, 2, 8, 5, 1, 7, 4]          # pool position -> index into SCORES: the pool is shuffled


@pytest.mark.parametrize("band,keep,extra,want", [
    ("high", 3, {}, [9, 8, 7]),                              # the hardest, highest first
    ("middle", 4, {}, [3, 4, 5, 6]),                         # around the median
    ("ccs", 6, {"bins": 2}, "2 hard + 4 easy"),              # bins 0-5 (8 items) and 5-10 (2): both hard ones
    ("ccs", 4, {"bins": 2, "hard_cut": 0.2}, "no hard"),     # the two hardest dropped first
])
def test_loss_bands_select_the_expected_scores(fake_run, band, keep, extra, want):
    fake_run["loss"] = np.array([SCORES[j] for j in ORDER], dtype=np.float32)
    m = run(make_pool(["t"] * 10), "loss", keep, from_run=fake_run["dir"], band=band, **extra)
    chosen = sorted(SCORES.index(s) for s in m["scores"])
    assert [ORDER[int(i[1:])] for i in m["ids"]] == [SCORES.index(s) for s in m["scores"]]    # score of each id
    if want == "2 hard + 4 easy":
        assert chosen[-2:] == [8, 9] and len(chosen) == 6 and m["groups"].count(1) == 2
    elif want == "no hard":
        assert max(chosen) <= 7 and m["groups"].count(0) == 2 and m["groups"].count(1) == 2
    else:
        assert [SCORES.index(s) for s in m["scores"]] == want


def test_greedy_kcenter_picks_the_farthest_points_in_order():
    pts = np.array([[0, 0], [10, 0], [0, 10], [10, 10], [5, 5], [1, 1]], dtype=np.float32)
    rows, radius = greedy_kcenter(pts, 6, 0)
    assert rows == [0, 3, 1, 2, 4, 5]                # [10, 0] and [0, 10] tie at 10: the earlier first
    assert radius[0] is None and radius[1:] == pytest.approx([200 ** 0.5, 10, 10, 50 ** 0.5, 2 ** 0.5])


def test_kcenter_method_starts_where_the_seed_says_and_records_distances(fake_run):
    fake_run["emb"] = np.array([[0, 0], [10, 0], [0, 10], [10, 10], [5, 5], [1, 1]], dtype=np.float32)
    pool = make_pool(["t"] * 6)
    first = int(np.random.default_rng(3).integers(6))
    m = run(pool, "kcenter", 3, seed=3, from_run=fake_run["dir"], embedding="tower-pooled")
    assert m["ids"][0] == f"q{first}" and m["scores"][0] is None and ("features", "tower-pooled") in fake_run["calls"]
    far = {0: "q3", 3: "q0", 1: "q2", 2: "q1", 4: "q0", 5: "q3"}[first]      # the opposite corner
    assert m["ids"][1] == far


def test_clusters_covers_every_cluster_in_proportion(fake_run):
    rng = np.random.default_rng(0)
    blobs = [(np.array([0, 0]), 20), (np.array([100, 0]), 5), (np.array([0, 100]), 2)]
    fake_run["emb"] = np.concatenate([c + rng.normal(size=(n, 2)) for c, n in blobs]).astype(np.float32)
    blob_of = [0] * 20 + [1] * 5 + [2] * 2
    m = run(make_pool(["t"] * 27), "clusters", 6, from_run=fake_run["dir"], clusters=3)
    counts = [sum(blob_of[int(i[1:])] == b for i in m["ids"]) for b in range(3)]
    assert counts == [3, 2, 1]                        # 1 each, then 3 more by (19, 4, 1): 2.4, 0.5, 0.1
    assert len(set(m["groups"])) == 3 and m["params"]["clusters"] == 3


def test_kmeans_separates_blobs_the_same_way_every_time():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(size=(30, 8)), rng.normal(size=(30, 8)) + 50]).astype(np.float32)
    a, da = kmeans(x, 2, seed=7)
    b, db = kmeans(x, 2, seed=7)
    assert a.tolist() == b.tolist() and da.tolist() == db.tolist()
    assert len(set(a[:30].tolist())) == 1 and len(set(a[30:].tolist())) == 1 and a[0] != a[30]


def test_a_method_needing_a_run_refuses_a_run_that_does_not_fit(fake_run, monkeypatch):
    def misfit(run_dir, qset):
        raise UserError(f"{run_dir}: its tower reads 28 px images; this data's are 56 px")
    monkeypatch.setattr(features, "check_run_fits", misfit)
    with pytest.raises(UserError, match="its tower reads 28 px"):
        run(make_pool(["t"] * 5), "kcenter", 2, from_run=fake_run["dir"])


@pytest.mark.parametrize("n,dim,k,scale", [(2000, 16, 150, 1.0), (1500, 128, 100, 1.0), (2000, 4, 300, 1e4),
                                           (1000, 32, 100, 1e-3)])
def test_greedy_kcenter_chooses_as_the_plain_float64_algorithm_does(n, dim, k, scale):
    """The float32 pass only filters: every choice is the float64 algorithm's, at any scale of the data."""
    import torch

    from tests.select.test_kcenter import plain

    x = torch.randn(n, dim, generator=torch.Generator().manual_seed(n)) * scale + 3 * scale
    fast, ref = greedy_kcenter(x, k, 5), plain(x, k, 5)
    assert fast[0] == ref[0] and fast[1][1:] == pytest.approx(ref[1][1:], rel=1e-12)
