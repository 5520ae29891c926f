"""Each choice list is one constant: every choice it holds loads, and anything else is refused in one line
that names them all - so a choice added to the tuple is accepted and listed without another edit."""
import json

import pytest

from mistral_vision.config import CHOICES, VQA_GRIDS, VQA_TTA, load_config
from mistral_vision.errors import UserError

CONTEXT = {"data.format": ["data.path=train.json"]}       # llava-json needs its file (not read here)


@pytest.mark.parametrize("key", sorted(CHOICES))
def test_every_choice_loads_and_others_are_refused_naming_them(key):
    for choice in CHOICES[key]:
        cfg = load_config(None, [f"{key}={json.dumps(choice)}"] + CONTEXT.get(key, []))   # quoted: YAML reads no as False
        section, _, name = key.rpartition(".")
        assert getattr(getattr(cfg, section) if section else cfg, name) == choice
    with pytest.raises(UserError) as e:
        load_config(None, [f"{key}=bogus"] + CONTEXT.get(key, []))
    assert "\n" not in str(e.value) and all(str(c) in str(e.value) for c in CHOICES[key])


@pytest.mark.parametrize("key,choices", [("data.grid", VQA_GRIDS), ("eval.tta", VQA_TTA)])
def test_the_vqa_sets_choices_are_one_constant_too(key, choices):
    for choice in choices:
        load_config(None, ["data.dataset=mnist-vqa", f"{key}={choice}"])
    bad = "9" if key == "data.grid" else "flip"
    with pytest.raises(UserError, match="|".join(str(c) for c in choices)) as e:
        load_config(None, ["data.dataset=mnist-vqa", f"{key}={bad}"])
    assert all(str(c) in str(e.value) for c in choices)
