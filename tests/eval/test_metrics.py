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


# Wilson score intervals at z = 1.96, to 4 decimals: the roots p of (p - k/n)^2 = z^2 p (1 - p) / n,
# worked out by hand (and in Newcombe 1998's tables, e.g. 0/10 -> 0 to 0.2775).
@pytest.mark.parametrize("k,n,lo,hi", [
    (8, 10, 0.4902, 0.9433),       # centre (k + z^2/2) / (n + z^2) = 0.7167, not k/n = 0.8
    (0, 10, 0.0, 0.2775),          # Wald: 0 +- 0, an interval of width zero
    (1, 10, 0.0179, 0.4042),       # Wald: 0.1 +- 0.186 = (-0.086, 0.286), clipped to (0, 0.286)
    (10, 10, 0.7225, 1.0),
    (990, 1000, 0.9817, 0.9946),   # large n: Wald (0.9838, 0.9962) is close, still off in the 3rd decimal
])
def test_wilson_interval_matches_hand_computed_values(k, n, lo, hi):
    got = wilson(k, n)
    assert got == pytest.approx((lo, hi), abs=5e-5)
    wald = 1.96 * (k / n * (1 - k / n) / n) ** 0.5
    if k in (0, 1):                                     # where a normal approximation is far off
        assert abs(got[1] - min(1.0, k / n + wald)) > 0.1


def test_wilson_of_nothing_is_undefined():
    lo, hi = wilson(0, 0)
    assert lo != lo and hi != hi
