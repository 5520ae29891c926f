import numpy as np
import pytest

from mistral_vision import ascii_to_image, render_ascii
from mistral_vision.ascii.render import DEFAULT_RAMP
from mistral_vision.errors import UserError


def naive_render(img: np.ndarray, width: int, height: int, ramp: str) -> str:
    """Per-pixel reference: box-average each cell (integer factors), then bin exactly."""
    fy, fx = img.shape[0] // height, img.shape[1] // width
    lines = []
    for r in range(height):
        line = ""
        for c in range(width):
            total = sum(int(img[y, x]) for y in range(r * fy, (r + 1) * fy) for x in range(c * fx, (c + 1) * fx))
            line += ramp[total * len(ramp) // (256 * fy * fx)]
        lines.append(line)
    return "\n".join(lines)


def test_matches_per_pixel_reference():
    imgs = np.random.default_rng(0).integers(0, 256, (20, 28, 28), dtype=np.uint8)
    for w, h in [(28, 28), (14, 14), (7, 4)]:
        fast = render_ascii(imgs, w, h)
        assert fast == [naive_render(im, w, h, DEFAULT_RAMP) for im in imgs]


def test_uneven_sizes_match_area_average():
    """Non-dividing sizes use resampling matrices; compare with a float64 area average."""
    img = np.random.default_rng(2).integers(0, 256, (1, 28, 28), dtype=np.uint8)
    from mistral_vision.ascii.render import quantize
    idx = quantize(img, 10, 9, 10)[0]                     # 2.8 x 3.11 pixels per cell
    up = np.kron(img[0].astype(np.float64), np.ones((9, 10)))   # 252 x 280: cells align
    ref = up.reshape(9, 28, 10, 28).mean(axis=(1, 3))
    expect = np.minimum((ref * 10 / 256).astype(int), 9)
    assert (np.abs(idx.astype(int) - expect) <= 1).all() and (idx == expect).mean() > 0.95


def test_shape_background_and_every_ramp_char():
    grad = np.tile(np.arange(256, dtype=np.uint8), (4, 1))[None]     # 0..255 left to right
    art = render_ascii(grad, width=256, height=4)[0]
    lines = art.split("\n")
    assert len(lines) == 4 and all(len(line) == 256 for line in lines)
    assert set(art.replace("\n", "")) == set(DEFAULT_RAMP)          # all 10 characters used
    assert render_ascii(np.zeros((1, 28, 28), np.uint8), 5, 3)[0] == "\n".join([" " * 5] * 3)


def test_original_100x50_format():
    art = render_ascii(np.full((2, 28, 28), 255, np.uint8), 100, 50)
    assert art[0].count("\n") == 49 and set(art[0]) == {"@", "\n"}


def test_round_trip_ascii_image_ascii():
    imgs = np.random.default_rng(1).integers(0, 256, (10, 28, 28), dtype=np.uint8)
    for art in render_ascii(imgs, 14, 14):
        assert render_ascii(ascii_to_image(art)[None], 14, 14)[0] == art


def test_invert_and_crop():
    img = np.zeros((1, 28, 28), np.uint8)
    img[0, 4:24, 4:24] = 255
    assert set(render_ascii(img, 10, 10, crop=4)[0]) == {"@", "\n"}
    assert set(render_ascii(img, 10, 10, crop=4, invert=True)[0]) == {" ", "\n"}


@pytest.mark.parametrize("ramp,msg", [("@", "at least 2"), (".@", "must start with a space"),
                                      (" .é", "non-printable-ASCII"), (" ..", "repeats")])
def test_bad_ramps(ramp, msg):
    with pytest.raises(UserError, match=msg):
        render_ascii(np.zeros((1, 4, 4), np.uint8), 2, 2, ramp=ramp)


def test_bad_input_array():
    with pytest.raises(UserError, match="uint8 array"):
        render_ascii(np.zeros((1, 4, 4), np.float32), 2, 2)


def test_ascii_to_image_rejects_unknown_chars():
    with pytest.raises(UserError, match="'x' at line 2, column 1 is not in the ramp"):
        ascii_to_image(" .\nx@")
