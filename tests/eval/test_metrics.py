import pytest

from mistral_vision.eval.metrics import compute_metrics, wilson


def rec(y, p, probs=None):
    return {"label": y, "pred": p, "probs": probs or [0.5, 0.5, 0.0]}


def test_hand_computed_example():
    records = [rec(0, 0), rec(0, 0), rec(0, 1), rec(1, 1), rec(2, 1), rec(2, None), {"label": None, "pred": 0}]
    m = compute_metrics(records, ("a", "b", "c"))
    assert m["n"] == 6 and m["correct"] == 3 and m["accuracy"] == 0.5
    assert m["unknown"] == 1 and m["unlabeled"] == 1
    assert m["majority_baseline"] == 0.5 and m["majority_class"] == "a"
    a, b, c = m["per_class"]
    assert (a["precision"], a["recall"]) == (1.0, pytest.approx(2 / 3))
    assert (b["precision"], b["recall"]) == (pytest.approx(1 / 3), 1.0)
    assert (c["precision"], c["recall"], c["f1"]) == (0.0, 0.0, 0.0)
    assert m["confusion"] == [[2, 1, 0], [0, 1, 0], [0, 1, 0]]        # the unparseable answer is not a class
    assert m["top_confusions"][0]["count"] == 1


def test_wilson_interval():
    lo, hi = wilson(990, 1000)
    assert lo < 0.99 < hi and hi - lo < 0.015
