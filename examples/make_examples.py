"""Writes examples/<dataset>/<class>.png: the first validation-split image of each class.

These are the images `make demo` asks `chat` about and `serve` offers as examples. They come
from the validation split carved from the training files (never from t10k), so asking about
them says nothing about test accuracy. Rerun: `.venv/bin/python examples/make_examples.py`.
MNIST: Yann LeCun and Corinna Cortes (CC BY-SA 3.0); Fashion-MNIST: Zalando Research (MIT).
"""
from pathlib import Path

from PIL import Image

from mistral_vision.data.datasets import load_split


def main() -> None:
    here = Path(__file__).parent
    for name in ("mnist", "fashion-mnist"):
        valid = load_split(name, "valid", offline=True)
        out = here / name
        out.mkdir(exist_ok=True)
        for c, cls in enumerate(valid.label_names):
            i = int((valid.labels == c).nonzero()[0][0])
            Image.fromarray(valid.images[i]).save(out / f"{cls.replace(' ', '-').replace('/', '-')}.png")
        print(f"{out}: {len(valid.label_names)} images")


if __name__ == "__main__":
    main()
