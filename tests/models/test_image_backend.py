"""Pixel values must not depend on whether torchvision happens to be installed.

transformers 5.x picks an image processor's backend at load time: the torchvision class when
torchvision imports, else the PIL one, and the two resize and rescale differently. This package
pins PIL (its dependency; the reference LLaVA preprocessing is PIL's) when it builds a processor
and when it reloads a saved one. torchvision is absent here, so the tests stand a
torchvision-backed class in for it: a processor chosen by environment would pick it up.
"""
import numpy as np
import pytest
import torch
import transformers

from mistral_vision.models.build import build_run_model, load_run_model, load_run_processor, save_run_model
from mistral_vision.tasks import make_task
from tests.models.test_llava import DIGITS, llava_cfg, local_tower


class _Torchvision:
    """Marks a stand-in for a torchvision ("fast") processor: its pixels differ from PIL's by a little."""

    def preprocess(self, *args, **kwargs):
        out = super().preprocess(*args, **kwargs)
        pv = out["pixel_values"]
        out["pixel_values"] = [p + 0.01 for p in pv] if isinstance(pv, list) else pv + 0.01
        return out


@pytest.fixture
def torchvision_installed(monkeypatch):
    """What transformers sees on a machine with torchvision: the default backend becomes torchvision."""
    from transformers.models import clip, siglip
    from transformers.models.auto import image_processing_auto

    monkeypatch.setattr(image_processing_auto, "is_torchvision_available", lambda: True)
    for module, pil in ((clip, transformers.CLIPImageProcessorPil), (siglip, transformers.SiglipImageProcessorPil)):
        name = pil.__name__[:-len("Pil")]
        monkeypatch.setattr(module, name, type(name, (_Torchvision, pil), {}))


def pixels(task):
    imgs = np.random.default_rng(0).integers(0, 256, (2, 28, 28), dtype=np.uint8)
    return task.encode(imgs).extras["pixel_values"]


@pytest.mark.parametrize("kind", ["clip", "siglip"])
def test_a_checkpoint_towers_processor_is_the_pil_one_whatever_is_installed(kind, tmp_path, torchvision_installed):
    path, _ = local_tower(tmp_path, kind)
    want = {"clip": transformers.CLIPImageProcessorPil, "siglip": transformers.SiglipImageProcessorPil}[kind]
    assert type(transformers.AutoImageProcessor.from_pretrained(path)) is not want   # the stand-in is in effect
    cfg = llava_cfg(f"vision.tower=hf:{path}")
    model, proc = build_run_model(cfg, cfg.run_dir, log=lambda *_: None)
    assert type(proc.image_processor) is want
    reference = want.from_pretrained(path)
    imgs = [np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)]
    assert torch.equal(proc.image_processor(imgs, return_tensors="pt")["pixel_values"],
                       reference(imgs, return_tensors="pt")["pixel_values"])


@pytest.mark.parametrize("tower", ["tiny", "checkpoint"])
def test_a_saved_run_reloads_with_the_backend_it_trained_with(tower, tmp_path, torchvision_installed):
    extra = [f"vision.tower=hf:{local_tower(tmp_path)[0]}"] if tower == "checkpoint" else []
    cfg = llava_cfg(*extra)
    model, proc = build_run_model(cfg, cfg.run_dir, log=lambda *_: None)
    save_run_model(model, proc, tmp_path / "m", cfg)
    _, again, manifest = load_run_model(tmp_path / "m")
    for loaded in (again, load_run_processor(tmp_path / "m")):
        assert torch.equal(pixels(make_task(cfg, loaded, DIGITS)), pixels(make_task(cfg, proc, DIGITS)))
        assert type(loaded.image_processor) is type(proc.image_processor)
    assert manifest["parts"]["processor"]["image_backend"] == "pil"          # recorded, for the export too
    assert manifest["parts"]["processor"]["image_processor"] == type(proc.image_processor).__name__
