"""The LLaVA route's model: transformers' Llava classes with our towers and backbones."""
import numpy as np
import pytest
import torch

from mistral_vision.config import load_config
from mistral_vision.errors import UserError
from mistral_vision.models.build import build_run_model, load_run_model, save_run_model
from mistral_vision.tasks import make_task
from tests.models.test_backbones import _local_checkpoint

DIGITS = tuple(str(d) for d in range(10))
SHAPE = ["model.hidden_size=32", "model.num_layers=2", "model.num_heads=4", "model.num_kv_heads=2",
         "model.intermediate_size=64", "vision.hidden_size=32", "vision.num_layers=2", "vision.num_heads=4",
         "vision.intermediate_size=64"]


def llava_cfg(*extra):
    return load_config(None, ["route=llava", "name=l"] + SHAPE + list(extra))


def built(*extra):
    torch.manual_seed(0)
    cfg = llava_cfg(*extra)
    model, proc = build_run_model(cfg, cfg.run_dir, log=lambda *_: None)
    return cfg, model.eval(), proc, make_task(cfg, proc, DIGITS)


@pytest.mark.parametrize("extra,n", [(["vision.patch_size=7"], 16), (["vision.patch_size=4"], 49),
                                     (["vision.tower=siglip-tiny", "vision.patch_size=7"], 16),
                                     (["vision.select_strategy=full", "vision.patch_size=7"], 17)])
def test_one_image_token_per_projected_feature(extra, n):
    cfg, model, proc, task = built(*extra)
    image_id = model.config.image_token_id
    assert task.prompt_ids.count(image_id) == n
    assert model.config.image_seq_length == n              # the exported config says what the processor writes
    imgs = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    enc = task.encode(imgs)
    feats = model.model.get_image_features(pixel_values=enc.extras["pixel_values"]).pooler_output
    assert all(f.shape[0] == n for f in feats)
    assert enc.extras["pixel_values"].shape == (3, 1, 28, 28)
    # the model accepts the batch (a count mismatch raises inside transformers)
    with torch.no_grad():
        model(input_ids=torch.tensor(enc.ids), pixel_values=enc.extras["pixel_values"])


def test_image_tokens_are_never_in_the_loss_and_labels_are_the_answer():
    cfg, model, proc, task = built()
    ex = task.examples(np.zeros((2, 28, 28), np.uint8), [3, 7])
    batch = ex.batch([0, 1], task.pad_id)
    labelled = batch["input_ids"][batch["labels"] != -100]
    assert (labelled != model.config.image_token_id).all()
    assert proc.tokenizer.decode(batch["labels"][0][batch["labels"][0] != -100]) == "3</s>"


def test_label_scores_equal_a_full_forward_with_pixels():
    cfg, model, proc, task = built()
    from mistral_vision.infer.scorer import LabelScorer

    imgs = np.random.default_rng(1).integers(0, 256, (2, 28, 28), dtype=np.uint8)
    enc = task.encode(imgs)
    s = LabelScorer(model, task.label_ids, task.pad_id, task.eos_id, score_eos=True).score(enc.ids, enc.extras)
    for i in range(2):
        for k in (0, 5):
            ids = torch.tensor([enc.ids[i] + task.label_ids[k]])
            with torch.no_grad():
                lp = torch.log_softmax(model(input_ids=ids, pixel_values=enc.extras["pixel_values"][i:i + 1])
                                       .logits[0], -1)
            p = len(enc.ids[i])
            ref = sum(lp[p - 1 + j, t].item() for j, t in enumerate(task.label_ids[k]))
            assert s[i, k].item() == pytest.approx(ref, abs=1e-4)


def test_save_and_reload_give_identical_scores(tmp_path):
    cfg, model, proc, task = built()
    save_run_model(model, proc, tmp_path / "m", cfg)
    again, proc2, manifest = load_run_model(tmp_path / "m")
    assert set(manifest["parts"]) >= {"llm", "vision_tower", "projector", "processor"}
    assert manifest["parts"]["processor"]["image_tokens"] == 16
    import json

    assert json.loads((tmp_path / "m" / "config.json").read_text())["image_seq_length"] == 16   # not LlavaConfig's 576
    task2 = make_task(cfg, proc2, DIGITS)
    imgs = np.random.default_rng(2).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    a, b = task.encode(imgs), task2.encode(imgs)
    assert a.ids == b.ids and torch.equal(a.extras["pixel_values"], b.extras["pixel_values"])
    with torch.no_grad():
        x = model(input_ids=torch.tensor(a.ids), pixel_values=a.extras["pixel_values"]).logits
        y = again(input_ids=torch.tensor(b.ids), pixel_values=b.extras["pixel_values"]).logits
    assert torch.equal(x, y)


def test_lora_stays_out_of_the_tower_and_the_projector_is_saved_with_the_adapter(tmp_path):
    ckpt = _local_checkpoint(tmp_path)
    cfg, model, proc, task = built(f"model.backbone=hf:{ckpt}", "model.lora.enabled=true", "model.lora.r=4",
                                   "model.lora.alpha=8", "model.lora.dropout=0.0")
    lora = [n for n, _ in model.named_modules() if n.endswith("lora_A")]
    assert lora and not any("vision_tower" in n for n in lora)
    assert all("language_model" in n for n in lora)
    assert "<image>" in proc.tokenizer.get_vocab() and model.config.text_config.vocab_size >= len(proc.tokenizer)
    with torch.no_grad():                                   # "train" the projector and the adapter
        for n, p in model.named_parameters():
            if "modules_to_save" in n or "lora_B" in n:
                p.add_(0.05)
    save_run_model(model, proc, tmp_path / "m", cfg)
    from safetensors.torch import load_file

    saved = load_file(tmp_path / "m" / "adapter_model.safetensors")
    assert any("multi_modal_projector" in k for k in saved)
    assert any("vision_tower" in k for k in saved)        # random-init: nothing else could rebuild it
    with pytest.raises(UserError, match="a LoRA run's model loads with its run config"):
        load_run_model(tmp_path / "m")
    again, proc2, _ = load_run_model(tmp_path / "m", cfg=cfg)
    mine = {n: p for n, p in model.named_parameters() if "modules_to_save" in n}
    theirs = dict(again.named_parameters())
    assert mine and all(torch.equal(p, theirs[n]) for n, p in mine.items())
    imgs = np.random.default_rng(3).integers(0, 256, (2, 28, 28), dtype=np.uint8)
    enc = task.encode(imgs)
    with torch.no_grad():
        x = model(input_ids=torch.tensor(enc.ids), pixel_values=enc.extras["pixel_values"]).logits
        y = again(input_ids=torch.tensor(enc.ids), pixel_values=enc.extras["pixel_values"]).logits
    assert torch.allclose(x, y, atol=1e-5)


@pytest.mark.filterwarnings("error::FutureWarning")        # the deprecated gradient_checkpointing_enable warns
def test_gradient_checkpointing_with_a_frozen_tower_still_trains_the_projector():
    cfg, model, proc, task = built()
    from mistral_vision.train.batches import answer_loss
    from mistral_vision.train.precision import enable_activation_checkpointing
    from mistral_vision.train.stages import freeze_for_stage

    model.train()
    enable_activation_checkpointing(model)
    assert any(getattr(m, "gradient_checkpointing", False) for m in model.modules())
    freeze_for_stage(model, cfg.stages[0], 0.0, log=lambda *_: None)     # align: projector only
    batch = task.examples(np.full((2, 28, 28), 200, np.uint8), [1, 2]).batch([0, 1], task.pad_id)
    loss = answer_loss(model, batch).loss
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert any(g is not None and g.abs().sum() > 0 for n, g in grads.items() if "multi_modal_projector" in n)
    assert all(g is None for n, g in grads.items() if "vision_tower" in n or "language_model" in n)


@pytest.mark.parametrize("extra,msg", [
    (["vision.tower=vit-huge"], "unknown vision tower 'vit-huge'; known: clip-tiny, clip-vit-l-14-336"),
    (["vision.projector=linear"], "unknown projector 'linear'; known: mlp2x-gelu"),
    (["vision.patch_size=5"], "must divide 28"),
    (["vision.tower=siglip-tiny", "vision.select_strategy=default"], "SigLIP does not have"),
    (["stages=[{name: a, trainable: {decoder: 0.001}}]"], "unknown part 'decoder'; known parts: projector, vision"),
    (["train.train_file=x.jsonl"], "train.train_file .* is for route: ascii"),
])
def test_bad_llava_configs_are_one_line(extra, msg):
    with pytest.raises(UserError, match=msg):
        llava_cfg(*extra)


def test_unknown_route_and_vision_on_ascii_are_refused():
    with pytest.raises(UserError, match="unknown route 'pixels'; known: ascii, llava"):
        load_config(None, ["route=pixels"])
    with pytest.raises(UserError, match="a `vision` section is for route: llava"):
        load_config(None, ["vision.patch_size=4"])


def local_tower(tmp_path, kind="clip"):
    """A 3-channel, 32-px CLIP or SigLIP vision checkpoint with its image processor, saved like a hub one."""
    import transformers

    shape = dict(image_size=32, patch_size=8, num_channels=3, hidden_size=32, intermediate_size=64,
                 num_hidden_layers=2, num_attention_heads=4)
    if kind == "clip":
        tower = transformers.CLIPVisionModel(transformers.CLIPVisionConfig(**shape))
        ip = transformers.CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    else:
        tower = transformers.SiglipVisionModel(transformers.SiglipVisionConfig(vision_use_head=False, **shape))
        ip = transformers.SiglipImageProcessorPil(size={"height": 32, "width": 32})
    path = tmp_path / f"tower-{kind}"                      # the kind comes from its config.json, not its name
    tower.save_pretrained(path)
    ip.save_pretrained(path)
    return path, tower


@pytest.mark.parametrize("kind", ["clip", "siglip"])
def test_a_pretrained_rgb_tower_gets_grayscale_digits_converted_and_resized(kind, tmp_path):
    """A local 3-channel 32-px checkpoint stands in for clip-vit-l-14-336 / siglip-so400m: same code path."""
    path, tower = local_tower(tmp_path, kind)
    n = 16                                             # (32 / 8)^2: CLIP's CLS dropped, SigLIP has none
    cfg, model, proc, task = built(f"vision.tower=hf:{path}")
    assert model.config.vision_feature_select_strategy == ("default" if kind == "clip" else "full")
    imgs = np.zeros((2, 28, 28), np.uint8)
    imgs[:, 10:18, 12:16] = 255
    enc = task.encode(imgs)
    assert enc.extras["pixel_values"].shape == (2, 3, 32, 32)
    assert task.prompt_ids.count(model.config.image_token_id) == n == model.config.image_seq_length
    seen = task.seen(imgs)[0].image
    assert seen.shape == (32, 32, 3) and seen.max() > 200 and seen.min() < 30   # the digit, resized, in RGB
    assert torch.equal(model.model.vision_tower.embeddings.patch_embedding.weight,
                       tower.embeddings.patch_embedding.weight)               # the checkpoint's weights, not random
    with torch.no_grad():
        model(input_ids=torch.tensor(enc.ids), pixel_values=enc.extras["pixel_values"])


def test_a_processor_the_tower_cannot_take_is_one_line(tmp_path):
    import transformers

    path, _ = local_tower(tmp_path)                                    # a 32-px tower ...
    transformers.CLIPImageProcessorPil(size={"shortest_edge": 48}, crop_size={"height": 48, "width": 48}).save_pretrained(
        path)                                                          # ... with a 48-px processor
    with pytest.raises(UserError, match="give 36 image tokens, but the tower takes 32x32 px"):
        built(f"vision.tower=hf:{path}")
