"""The misclassified gallery: ASCII text in square cells, and one panel where the model saw the original."""
import numpy as np
import pytest

from mistral_vision.ascii.render import ascii_to_image, render_ascii
from mistral_vision.eval import plots
from mistral_vision.eval.plots import art_image, plot_gallery


def test_art_is_drawn_in_square_cells_with_ink_where_the_characters_are():
    pic = art_image("@ \n :", cell=20)
    assert pic.shape == (40, 40)                      # 2 lines x 2 characters: square, as the image was
    ink = pic < 128
    assert ink[:20, :20].sum() > 40 and ink[20:, 20:].sum() > 5      # '@' and ':'
    assert not ink[:20, 20:].any() and not ink[20:, :20].any()        # the spaces stay blank
    wide = art_image("ab\ncd\nef", cell=10)
    assert wide.shape == (30, 20)


@pytest.fixture
def captured(monkeypatch):
    """The figure plot_gallery would save: {title, panels per item (axes holding a picture)}."""
    got = {}

    def save(fig, path):
        got["title"] = fig._suptitle.get_text()
        got["pictures"] = [ax for ax in fig.axes if ax.images]
        got["shapes"] = [ax.images[0].get_array().shape for ax in got["pictures"]]

    monkeypatch.setattr(plots, "_save", save)
    return got


def _digit():
    img = np.zeros((28, 28), np.uint8)
    img[6:22, 12:16] = 255
    return img


def test_a_tower_that_saw_the_original_gets_one_panel(tmp_path, captured):
    items = [{"image": _digit(), "seen": _digit(), "seen_title": "tower input", "art": None, "caption": f"#{i}"}
             for i in range(3)]
    assert plot_gallery(items, tmp_path / "g.png", "errors")
    assert len(captured["pictures"]) == 3
    assert captured["title"] == "errors (original = tower input)"


def test_a_resized_tower_input_is_shown_beside_the_original(tmp_path, captured):
    items = [{"image": _digit(), "seen": np.zeros((56, 56), np.uint8), "seen_title": "tower input", "art": None,
              "caption": "#0"}]
    assert plot_gallery(items, tmp_path / "g.png", "errors")
    assert len(captured["pictures"]) == 2 and captured["title"] == "errors (original | tower input)"


def test_ascii_items_show_the_text_read_at_the_image_s_aspect(tmp_path, captured):
    art = render_ascii(_digit()[None], 10, 10)[0]
    items = [{"image": _digit(), "seen": ascii_to_image(art), "seen_title": "from ASCII", "art": art, "caption": "#0"}]
    assert plot_gallery(items, tmp_path / "g.png", "errors")
    assert captured["title"] == "errors (original | from ASCII | text read)"
    h, w = captured["shapes"][2]
    assert h == w == 10 * 24                           # 10 x 10 characters, square cells
