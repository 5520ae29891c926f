import numpy as np
import pytest
from PIL import Image

from mistral_vision.data.images import load_image, load_images
from mistral_vision.errors import UserError


def test_folder_with_class_subfolders(tmp_path):
    for cls in ("3", "7"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        img = np.zeros((40, 30), np.uint8)
        img[10:30, 10 + int(cls):20] = 255
        Image.fromarray(img).save(tmp_path / "imgs" / cls / "a.png")
    (tmp_path / "imgs" / "loose.jpg").write_bytes((tmp_path / "imgs" / "3" / "a.png").read_bytes())
    data = load_images(tmp_path / "imgs", tuple(str(d) for d in range(10)))
    assert data.images.shape == (3, 28, 28)
    assert data.labels.tolist() == [3, 7, -1]           # the loose image is kept, label unknown


def test_dark_on_light_is_inverted(tmp_path):
    img = np.full((28, 28), 255, np.uint8)
    img[10:18, 10:18] = 0
    Image.fromarray(img).save(tmp_path / "x.png")
    out = load_image(tmp_path / "x.png")
    assert out[0, 0] == 0 and out[14, 14] == 255


def test_undecodable_image(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(UserError, match="bad.png: cannot decode image"):
        load_images(tmp_path / "bad.png", ("a", "b"))


def test_empty_folder(tmp_path):
    (tmp_path / "e").mkdir()
    with pytest.raises(UserError, match="no images found"):
        load_images(tmp_path / "e", ("a",))
