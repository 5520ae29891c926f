import json
import re

import numpy as np
import pytest
from PIL import Image

from mistral_vision.data.llava_json import (IMAGE_PLACEHOLDER, Sample, load_image, load_llava_json,
                                            read_llava_json, sample_problems, validate_llava_json,
                                            write_llava_json)
from mistral_vision.errors import UserError


def turn(role, text):
    return {"from": role, "value": text}


def good(i="a", image="a.png", **extra):
    conv = [turn("human", f"{IMAGE_PLACEHOLDER}\nWhat digit is this?" if image else "Say hi."), turn("gpt", "Seven.")]
    raw = {"id": i, "conversations": conv, **extra}
    if image:
        raw["image"] = image
    return raw


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(np.full((6, 4), 200, np.uint8)).save(folder / "a.png")
    Image.fromarray(np.zeros((5, 7, 4), np.uint8), "RGBA").save(folder / "sub" / "b.png")
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    return folder


def write(tmp_path, data, name="d.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


# --- reading the file ----------------------------------------------------------------------

def test_read_missing_file(tmp_path):
    with pytest.raises(UserError, match="nope.json: no such file"):
        read_llava_json(tmp_path / "nope.json")


def test_read_not_json_says_line_and_column(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('[\n  {"id": "a",\n   oops}\n]')
    with pytest.raises(UserError, match="not valid JSON at line 3, column 4"):
        read_llava_json(path)


def test_read_jsonl_gets_a_hint(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(good()) + "\n" + json.dumps(good("b")) + "\n")
    with pytest.raises(UserError, match="looks like JSON Lines"):
        read_llava_json(path)


@pytest.mark.parametrize("data, message", [
    ({"id": "a"}, "expected a JSON list of samples, found a JSON object"),
    ([good(), good("b"), "text"], "sample 2 is a JSON string, not an object"),
])
def test_read_not_a_list_of_objects(tmp_path, data, message):
    with pytest.raises(UserError, match=message):
        read_llava_json(write(tmp_path, data))


# --- one sample's problems -----------------------------------------------------------------

BAD = [
    ([1, 2], 'sample 4: is a JSON list, not an object'),
    ({"id": "x"}, 'sample 4 (id "x"): has no "conversations"'),
    ({"id": "x", "conversations": "hi"}, '"conversations" must be a list, found a JSON string'),
    ({"id": "x", "conversations": []}, '"conversations" is empty'),
    ({"id": "x", "conversations": [turn("human", "q"), {"from": "gpt", "value": 3}]},
     'conversation turn 2 is not {"from": "...", "value": "..."} with string values'),
    ({"id": "x", "conversations": [turn("human", "q"), {"value": "a"}]}, "conversation turn 2 is not"),
    ({"id": "x", "conversations": [turn("user", "q"), turn("gpt", "a")]},
     'conversation turn 1 has role "user"; expected "human" or "gpt" ("system" only as turn 1)'),
    ({"id": "x", "conversations": [turn("human", "q"), turn("system", "s"), turn("gpt", "a")]},
     'conversation turn 2 has role "system"'),
    ({"id": "x", "conversations": [turn("human", "q"), turn("gpt", "a"), turn("gpt", "b")]},
     'sample 4 (id "x"): conversation turn 3 is "gpt" where "human" was expected'),
    ({"id": "x", "conversations": [turn("gpt", "a"), turn("human", "q")]},
     'conversation turn 1 is "gpt" where "human" was expected'),
    ({"id": "x", "conversations": [turn("human", "q"), turn("gpt", "a"), turn("human", "q2")]},
     'conversation ends with a "human" turn; the last turn must be "gpt"'),
    ({"id": "x", "conversations": [turn("system", "s")]}, "has only a system turn"),
    ({"id": "x", "conversations": [turn("human", "q"), turn("gpt", " \n ")]}, 'conversation turn 2 ("gpt") is empty'),
    ({"id": "x", "image": "a.png", "conversations": [turn("human", "q"), turn("gpt", "a")]},
     'has 1 image but 0 "<image>" placeholders in its human turns'),
    ({"id": "x", "conversations": [turn("human", "<image>\nq"), turn("gpt", "a")]},
     'has 0 images but 1 "<image>" placeholder in its human turns'),
    ({"id": "x", "image": "a.png", "conversations": [turn("human", "<image>\nq"), turn("gpt", "a"),
                                                     turn("human", "<image> again?"), turn("gpt", "b")]},
     'has 1 image but 2 "<image>" placeholders'),
    ({"id": "x", "image": ["a.png", "sub/b.png"], "conversations": [turn("human", "<image><image>q"), turn("gpt", "a")]},
     "has 2 images; only one image per sample is supported"),
    ({"id": "x", "image": 5, "conversations": [turn("human", "q"), turn("gpt", "a")]},
     '"image" must be a non-empty path string'),
    ({"id": "x", "image": "a.png", "conversations": [turn("human", "<image>\nq"), turn("gpt", "see <image>")]},
     'conversation turn 2 ("gpt") contains "<image>"'),
    ({"id": "x", "image": "gone.png", "conversations": [turn("human", "<image>\nq"), turn("gpt", "a")]},
     'sample 4 (id "x"): image "gone.png" not found in'),
    ({"id": "x", "image": "broken.png", "conversations": [turn("human", "<image>\nq"), turn("gpt", "a")]},
     'sample 4 (id "x"): image "broken.png" cannot be decoded'),
]


@pytest.mark.parametrize("raw, message", BAD)
def test_every_bad_sample_kind(images, raw, message):
    problems = sample_problems(raw, 4, images, check_images=True)
    assert len(problems) == 1, problems
    assert problems[0].startswith("sample 4")
    assert message in problems[0]


def test_image_lists_are_counted(images):
    raw = {"id": "x", "image": ["a.png", "sub/b.png"], "conversations": [turn("human", "<image>\nq"), turn("gpt", "a")]}
    assert sample_problems(raw, 2, images, check_images=True) == [
        'sample 2 (id "x"): has 2 images but 1 "<image>" placeholder in its human turns',
        'sample 2 (id "x"): has 2 images; only one image per sample is supported']
    one = dict(raw, image=["sub/b.png"])
    assert sample_problems(one, 2, images, check_images=True) == []


def test_several_problems_of_one_sample_are_all_listed(images):
    raw = {"id": "x", "image": "gone.png", "conversations": [turn("human", " "), turn("gpt", "a <image>")]}
    problems = sample_problems(raw, 0, images, check_images=True)
    assert [p.split(": ", 1)[1] for p in problems] == [
        'conversation turn 1 ("human") is empty',
        'conversation turn 2 ("gpt") contains "<image>"; images go in human turns only',
        'has 1 image but 0 "<image>" placeholders in its human turns',
        f'image "gone.png" not found in {images}',
    ]


def test_good_samples_have_no_problems(images):
    system_first = {"id": "s", "conversations": [turn("system", "Be brief."), turn("human", "q"), turn("gpt", "a")]}
    for raw in (good(), good(image="sub/b.png"), good(image=None), system_first):
        assert sample_problems(raw, 0, images, check_images=True) == []


def test_images_checked_only_when_asked(images):
    missing = good(image="gone.png")
    assert sample_problems(missing, 0, images, check_images=False) == []
    assert sample_problems(missing, 0, None, check_images=False) == []
    assert sample_problems(missing, 3, None, check_images=True) == [
        'sample 3 (id "a"): has an image but no --image-folder given']


# --- whole files ---------------------------------------------------------------------------

def test_validate_lists_every_problem_with_its_index(tmp_path, images):
    data = [good(), good("b", image="gone.png"), good("c", image=None),
            {"id": "d", "conversations": [turn("human", "q"), turn("human", "q")]}, good("a", image=None)]
    n, problems = validate_llava_json(write(tmp_path, data), images)
    assert n == 5
    assert problems == [
        f'sample 1 (id "b"): image "gone.png" not found in {images}',
        'sample 3 (id "d"): conversation turn 2 is "human" where "gpt" was expected',
        'sample 4 (id "a"): id already used by sample 0',
    ]


def test_no_image_folder_is_said_once_for_the_whole_file(tmp_path, capsys):
    from mistral_vision.cli import main

    path = write(tmp_path, [good(str(i)) for i in range(400)] + [good("t", image=None)])
    n, problems = validate_llava_json(path)
    assert n == 401 and problems == ["400 of 401 samples have an image but no --image-folder was given: "
                                     "pass --image-folder DIR, the folder their image paths are relative to"]
    assert main(["validate", str(path)]) == 2
    assert len(capsys.readouterr().out.splitlines()) == 1


def test_an_image_folder_one_level_too_high_gets_a_hint(tmp_path, images):
    data = [good(), good("b", image="sub/b.png"), {"id": "d", "conversations": [turn("human", "q")]}]
    n, problems = validate_llava_json(write(tmp_path, data), tmp_path)
    assert problems == ['sample 2 (id "d"): conversation ends with a "human" turn; the last turn must be "gpt" '
                        '(the answer)',
                        f"2 images not found in {tmp_path}, but all are in {images}: pass --image-folder {images}"]
    # a folder that holds only some of the images is not a hint: each missing one is listed
    n, problems = validate_llava_json(write(tmp_path, [good(), good("g", image="gone.png")]), tmp_path)
    assert problems == [f'sample {i} (id "{k}"): image "{rel}" not found in {tmp_path}'
                        for i, k, rel in ((0, "a", "a.png"), (1, "g", "gone.png"))]


def test_validate_missing_image_folder(tmp_path):
    with pytest.raises(UserError, match=re.escape(f"image folder {tmp_path / 'nope'} does not exist")):
        validate_llava_json(write(tmp_path, [good()]), tmp_path / "nope")


def test_load_names_the_first_bad_sample_and_counts_the_rest(tmp_path, images):
    data = [good(), good("b", image="gone.png"), good("c", image="broken.png"), good("d", image="gone.png")]
    path = write(tmp_path, data)
    with pytest.raises(UserError) as e:
        load_llava_json(path, images)
    assert str(e.value) == (f'{path}: sample 1 (id "b"): image "gone.png" not found in {images} '
                            f"(2 more bad samples); run `mistral-vision validate {path} --image-folder {images}` "
                            f"for all of them")
    assert "\n" not in str(e.value)


def test_load_joins_the_problems_of_the_first_bad_sample(tmp_path):
    data = [{"id": "x: y", "conversations": [turn("human", ""), turn("gpt", "")]}]
    with pytest.raises(UserError, match=r'sample 0 \(id "x: y"\): conversation turn 1 \("human"\) is empty; '
                                        r'conversation turn 2 \("gpt"\) is empty; run `mistral-vision validate .* '
                                        r"--image-folder DIR`"):
        load_llava_json(write(tmp_path, data))


def test_load_multi_turn_and_text_only(tmp_path, images):
    multi = {"id": 17, "image": "sub/b.png", "conversations": [
        turn("human", "<image>\nWhat is in the picture?"), turn("gpt", "A black square."),
        turn("human", "What colour is it?"), turn("gpt", "Black.")]}
    sqa_style = {"id": "7", "image": "a.png", "conversations": [
        turn("human", "Which is north?\nOptions: (A) x (B) y\n<image>"), turn("gpt", "The answer is A.")]}
    samples = load_llava_json(write(tmp_path, [multi, good("t", image=None), sqa_style]), images)
    s = samples[0]
    assert (s.index, s.id, s.image, len(s.turns)) == (0, "17", "sub/b.png", 4)
    assert s.turns[2] == ("human", "What colour is it?")
    assert (s.question, s.answer) == ("What colour is it?", "Black.")
    t = samples[1]
    assert (t.index, t.id, t.image, t.question, t.answer) == (1, "t", None, "Say hi.", "Seven.")
    assert samples[2].question == "Which is north?\nOptions: (A) x (B) y"
    assert Sample(0, "q", "a.png", [("human", "<image>\nWhat?"), ("gpt", "It.")]).question == "What?"


def test_round_trip_keeps_extra_keys(tmp_path, images):
    data = [good("a", type="vqa", candidates=["3", "7"], meta={"source": "mnist"}),
            good("b", image=None, type="chat")]
    samples = load_llava_json(write(tmp_path, data), images)
    assert samples[0].extra == {"type": "vqa", "candidates": ["3", "7"], "meta": {"source": "mnist"}}
    out = tmp_path / "out" / "again.json"
    write_llava_json(out, samples)
    assert json.loads(out.read_text()) == data
    assert list(json.loads(out.read_text())[0]) == ["id", "image", "conversations", "type", "candidates", "meta"]
    assert [s.to_json() for s in load_llava_json(out, images)] == data
    assert [p.name for p in out.parent.iterdir()] == ["again.json"]   # no temporary file left


def test_write_accepts_raw_dicts(tmp_path):
    out = tmp_path / "w.json"
    write_llava_json(out, [good(image=None), Sample(1, "s", None, [("human", "é?"), ("gpt", "ü")])])
    assert json.loads(out.read_text()) == [good(image=None), {"id": "s", "conversations": [turn("human", "é?"),
                                                                                             turn("gpt", "ü")]}]
    assert "é" in out.read_text(encoding="utf-8")


# --- images --------------------------------------------------------------------------------

def test_load_image_gray_and_rgb(tmp_path):
    Image.fromarray(np.full((3, 5), 77, np.uint8)).save(tmp_path / "g.png")
    Image.fromarray(np.array([[0, 1], [1, 0]], bool)).save(tmp_path / "bw.png")
    Image.fromarray(np.array([[0, 256, 65535]], np.uint16)).save(tmp_path / "g16.png")
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 10
    Image.fromarray(rgba, "RGBA").save(tmp_path / "c.png")
    Image.fromarray(np.full((4, 4, 3), (10, 20, 30), np.uint8)).save(tmp_path / "c.jpg", quality=100)

    gray = load_image(tmp_path, "g.png")
    assert gray.shape == (3, 5) and gray.dtype == np.uint8 and gray[0, 0] == 77
    assert load_image(tmp_path, "bw.png").tolist() == [[0, 255], [255, 0]]
    assert load_image(tmp_path, "g16.png").tolist() == [[0, 1, 255]]      # scaled, not clipped
    rgb = load_image(tmp_path, "c.png")
    assert rgb.shape == (2, 3, 3) and rgb[0, 0].tolist() == [200, 0, 0]    # alpha dropped
    jpg = load_image(tmp_path, "c.jpg")
    assert jpg.shape == (4, 4, 3) and abs(int(jpg[0, 0, 2]) - 30) <= 2


def test_load_image_errors(tmp_path, images):
    with pytest.raises(UserError, match=re.escape(f'image "gone.png" not found in {images}')):
        load_image(images, "gone.png")
    with pytest.raises(UserError, match="broken.png: cannot decode image"):
        load_image(images, "broken.png")
