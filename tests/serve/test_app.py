"""The web demo through its HTTP API (gradio_client), as a page in this process; and the ``serve`` command's errors."""
import json
import sys

import pytest

from mistral_vision.cli import main

pytest.importorskip("gradio_client", reason="the web demo needs the serve extra: pip install -e '.[serve]'")


def client(pages, name):
    from gradio_client import Client

    return Client(pages[name][0], verbose=False)


def upload(path):
    from gradio_client import handle_file

    return handle_file(str(path))


def test_predict_gives_the_probabilities_and_class_that_the_predict_command_gives(runs, pages, tmp_path, capsys):
    label, yours, seen, art, status, chat = client(pages, "ascii").predict(
        upload(runs.root / "digit.png"), None, api_name="/predict")
    probs = {c["label"]: c["confidence"] for c in label["confidences"]}
    assert len(probs) == 10 and abs(sum(probs.values()) - 1) < 1e-4
    out = tmp_path / "p.jsonl"
    assert main(["predict", str(runs.ascii), "--images", str(runs.root / "digit.png"), "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert label["label"] == rec["pred_name"] and abs(probs[rec["pred_name"]] - rec["prob"]) < 1e-5
    assert status == f"Predicted: {rec['pred_name']} (p = {rec['prob']:.3f})"
    served = pages["ascii"][1].served
    assert art == served.task.render(served.read_image(runs.root / "digit.png")[None])[0]
    assert yours and seen and chat == []


def test_chat_keeps_the_history_and_answers_as_the_chat_command(runs, pages, capsys):
    c = client(pages, "ascii")
    c.predict(upload(runs.root / "digit.png"), None, api_name="/predict")
    history, box, _ = c.predict("Which digit?", 0.0, 1.0, 6, api_name="/chat")
    capsys.readouterr()
    assert main(["chat", str(runs.ascii), "--image", str(runs.root / "digit.png"), "Which digit?",
                 "--max-new-tokens", "6"]) == 0
    said = capsys.readouterr().out.strip()
    assert [m["role"] for m in history] == ["user", "assistant"] and box == ""
    assert history[1]["content"][0]["text"] == (said or "(empty: the model ended its answer at once)")
    history, _, _ = c.predict("And now?", 0.8, 0.9, 4, api_name="/chat")
    assert [m["content"][0]["text"] for m in history[::2]] == ["Which digit?", "And now?"]


def test_an_upload_that_is_no_picture_is_a_message_in_the_page(runs, pages):
    c = client(pages, "ascii")
    label, yours, seen, art, status, _ = c.predict(upload(runs.root / "notes.txt"), None, api_name="/predict")
    assert status.startswith("Error: notes.txt: cannot decode image") and "use PNG or JPEG" in status
    assert not label and yours is None and seen is None
    history, _, status = c.predict("What is it?", 0.0, 1.0, 4, api_name="/chat")
    assert history == [] and status == "Error: upload or draw a picture first"   # no picture to talk about


def test_a_question_set_page_answers_its_question_types_with_candidate_probabilities(runs, pages):
    c = client(pages, "vqa")
    served = pages["vqa"][1].served
    present = next(q for q in served.questions if q.type == "present")
    label, _, seen, art, status, _ = c.predict(upload(runs.root / "canvas.png"), present.text, api_name="/predict")
    probs = {x["label"]: x["confidence"] for x in label["confidences"]}
    assert set(probs) == {"yes", "no"} and abs(sum(probs.values()) - 1) < 1e-4
    assert status.startswith(f"Answer: {label['label']} (p = ") and art == "" and seen
    info = c.view_api(print_info=False, return_format="dict")["named_endpoints"]["/predict"]
    choices = info["parameters"][1]["type"]["enum"]
    assert {"How many digits are in the image?", present.text} <= set(choices) or len(choices) == 4


def test_serve_errors_are_one_line_exit_2(runs, pages, monkeypatch, capsys):
    busy = int(pages["ascii"][0].rsplit(":", 1)[1].strip("/"))
    assert main(["serve", str(runs.ascii), "--port", str(busy)]) == 2
    assert "cannot listen on 127.0.0.1:" in capsys.readouterr().err
    assert main(["serve", str(runs.root / "nowhere")]) == 2
    assert "not a run directory" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "gradio", None)                 # as if the extra were not installed
    assert main(["serve", str(runs.ascii)]) == 2
    assert "pip install 'mistral-vision[serve]'" in capsys.readouterr().err


def test_the_serve_command_serves_the_page_until_stopped(runs, monkeypatch, capsys):
    import urllib.request

    import gradio as gr

    from tests.serve.conftest import free_port

    got = {}

    def stop_at_once(demo):                                          # instead of waiting for Ctrl-C
        got["page"] = urllib.request.urlopen(demo.local_url, timeout=30).read().decode()
        demo.close()

    monkeypatch.setattr(gr.Blocks, "block_thread", stop_at_once)
    port = free_port()
    assert main(["serve", str(runs.ascii), "--port", str(port)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"serving {runs.ascii} at http://127.0.0.1:{port}/ (Ctrl-C stops)"
    assert "mistral-vision: ascii" in got["page"]
