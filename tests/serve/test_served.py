"""The demo's model side (no server): the same prompts and numbers as ``chat`` and ``evaluate``, clear errors."""
import json

import numpy as np
import pytest
from PIL import Image

from mistral_vision.cli import main
from mistral_vision.errors import UserError


@pytest.fixture(scope="module")
def served(runs):
    from mistral_vision.serve.served import ServedRun

    return {name: ServedRun(getattr(runs, name)) for name in ("ascii", "vqa")}


@pytest.mark.parametrize("name, picture", [("ascii", "digit.png"), ("vqa", "canvas.png")])
def test_a_first_chat_turn_is_what_the_chat_command_writes_and_answers(runs, served, name, picture, capsys):
    s = served[name]
    pixels = s.read_image(runs.root / picture)
    question = "What is in the top-left cell?"
    ids = s.task.question_ids(s.chat_turns([], question), pixels)
    assert ids == s.task.chat_inputs(pixels, question).ids[0]
    capsys.readouterr()
    assert main(["chat", str(getattr(runs, name)), "--image", str(runs.root / picture), question,
                 "--max-new-tokens", "6"]) == 0
    assert s.reply(pixels, [], question, max_new_tokens=6) == capsys.readouterr().out.strip()


def test_later_turns_carry_the_history_and_the_picture_once(runs, served):
    s = served["ascii"]
    pixels = s.read_image(runs.root / "digit.png")
    art = s.task.render(pixels[None])[0]
    ids = s.task.question_ids(s.chat_turns([("first <image> question", "an answer")], "and then?"), pixels)
    text = s.loaded.processor.decode(ids)
    assert text.index("first") < text.index("an answer") < text.index("and then?")
    assert text.count(art) == 1 and "<image>" not in text          # a typed placeholder is no second picture


def test_sampling_settings_reach_generation(runs, served, monkeypatch):
    s = served["ascii"]
    seen = []
    real = s.loaded.model.generate

    def spy(**kw):
        seen.append(kw["generation_config"])
        return real(**kw)

    monkeypatch.setattr(s.loaded.model, "generate", spy)
    pixels = s.read_image(runs.root / "digit.png")
    s.reply(pixels, [], "?", temperature=0.7, top_p=0.5, max_new_tokens=3)
    s.reply(pixels, [], "?", max_new_tokens=2)
    assert (seen[0].do_sample, seen[0].temperature, seen[0].top_p, seen[0].max_new_tokens) == (True, 0.7, 0.5, 3)
    assert (seen[1].do_sample, seen[1].max_new_tokens) == (False, 2)


def test_an_unreadable_upload_or_an_empty_drawing_is_one_clear_error(runs, served):
    s = served["ascii"]
    with pytest.raises(UserError, match=r"^notes\.txt: cannot decode image") as e:
        s.read_image(runs.root / "notes.txt")
    assert str(runs.root) not in str(e.value)                         # the server's folders are not the user's
    with pytest.raises(UserError, match="drawing is empty"):
        s.read_drawing(np.zeros((280, 280, 4), np.uint8))             # untouched canvas: transparent
    with pytest.raises(UserError, match="choose or type a question"):
        served["vqa"].read(served["vqa"].read_image(runs.root / "canvas.png"), "")


def test_a_drawing_dark_on_light_is_read_like_the_same_picture_in_a_file(runs, served, tmp_path):
    s = served["ascii"]
    drawing = np.zeros((280, 280, 4), np.uint8)                       # black strokes on a transparent canvas
    drawing[130:150, 60:220, 3] = 255
    paper = np.full((280, 280), 255, np.uint8)
    paper[130:150, 60:220] = 0
    Image.fromarray(paper).save(tmp_path / "paper.png")
    got = s.read_drawing(drawing)
    assert np.array_equal(got, s.read_image(tmp_path / "paper.png"))
    assert got.shape == (28, 28) and got[14, 14] > 200 and got[2, 2] < 50   # white ink on black, as MNIST


def test_question_sets_offer_each_trained_type_and_score_as_evaluate_does(runs, served, tmp_path):
    s = served["vqa"]
    types = [q.type for q in s.questions]
    assert types == ["cell", "count", "present", "caption"]
    cell = s.questions[0]
    assert cell.candidates == s.task.label_names + ("empty",)
    assert s.questions[-1].candidates is None                          # captions are free-form: generated
    pixels = s.read_image(runs.root / "canvas.png")
    reading = s.read(pixels, cell.text)
    assert abs(sum(reading.probs.values()) - 1) < 1e-5 and set(reading.probs) == set(cell.candidates)
    sample = {"id": "q", "image": "canvas.png", "type": "cell", "candidates": list(cell.candidates),
              "conversations": [{"from": "human", "value": "<image>\n" + cell.text}, {"from": "gpt", "value": "1"}]}
    (tmp_path / "q.json").write_text(json.dumps([sample]))
    assert main(["evaluate", str(runs.vqa), "--questions", str(tmp_path / "q.json"),
                 "--image-folder", str(runs.root)]) == 0
    rec = json.loads((runs.vqa / "eval" / "questions-q" / "answers.jsonl").read_text().splitlines()[0])
    assert reading.answer == rec["pred"] and abs(reading.probs[reading.answer] - rec["prob"]) < 1e-5
    free = s.read(pixels, s.questions[-1].text)
    assert free.probs is None and isinstance(free.answer, str)
    assert free.seen.text is None and free.seen.image.shape[:2] == (56, 56)   # the tower's input, no ASCII
    assert s.tower_sees_the_picture() and not served["ascii"].tower_sees_the_picture()   # so one panel, not two
