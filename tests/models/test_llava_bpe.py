"""A checkpoint LLM + the run's learned BPE (``tokenizer: ascii-bpe``) + LoRA on the LLaVA route.

The learned pieces are new rows of the checkpoint's embedding matrix. Under LoRA the embedding is
frozen, so unless the pieces are PEFT trainable tokens (as on the ASCII route), they keep their
initial rows - the mean of the pieces' sub-tokens - for the whole run.
"""
import torch

from mistral_vision.config import load_config
from mistral_vision.data.run_data import label_names_for, load_questions
from mistral_vision.models.backbones import get_backbone, load_tokenizer
from mistral_vision.models.build import build_run_model, load_run_model, save_run_model
from mistral_vision.tasks import make_task
from mistral_vision.train.batches import answer_loss
from mistral_vision.train.source import training_source
from mistral_vision.train.stages import freeze_for_stage
from tests.conftest import tiny_overrides
from tests.models.test_backbones import _local_checkpoint
from tests.models.test_llava import SHAPE


def test_a_checkpoint_llm_trains_the_learned_pieces_under_lora(data_dir, tmp_path):
    ckpt = _local_checkpoint(tmp_path)
    over = tiny_overrides(data_dir, name="bpe", route="llava", **{
        "data.dataset": "mnist-vqa", "data.train_canvases": 24, "data.turns": 2, "vision.image_size": 56,
        "model.backbone": f"hf:{ckpt}", "model.lora.enabled": "true", "model.lora.r": 4, "model.lora.alpha": 8,
        "model.lora.dropout": 0.0, "tokenizer": "ascii-bpe", "tokenizer.split": "words",
        "tokenizer.vocab_size": 420})
    cfg = load_config(None, over + [s for s in SHAPE if s.startswith("vision.")])
    torch.manual_seed(0)
    model, proc = build_run_model(cfg, cfg.run_dir, log=lambda *_: None)
    task = make_task(cfg, proc, label_names_for(cfg.data))
    n_base = len(load_tokenizer(get_backbone(cfg.model.backbone)))
    instruct = cfg.stages[-1]
    assert "llm-lora" in instruct.trainable
    source = training_source(cfg, task, load_questions(cfg.data, "train", conversations=True), instruct)
    batch = source.epoch_examples(0).batch(list(range(8)), task.pad_id)
    image_id = model.config.image_token_id
    pieces = sorted({int(t) for t in batch["input_ids"].flatten() if t >= n_base and t != image_id})
    assert len(pieces) > 5                                   # the questions are read in learned pieces

    def rows():
        with torch.no_grad():
            return model.get_input_embeddings()(torch.tensor([pieces])).clone()

    before = rows()
    groups = freeze_for_stage(model, instruct, 0.0, log=lambda *_: None)
    opt = torch.optim.SGD([p for g in groups for p in g["params"]], lr=1.0)
    model.train()
    loss = answer_loss(model, batch).loss
    loss.backward()
    opt.step()
    model.eval()
    after = rows()
    moved = (after - before).abs().amax(-1)[0]
    assert (moved > 0).float().mean() > 0.5, moved           # the pieces' rows train (those in answers surely)

    save_run_model(model, proc, tmp_path / "m", cfg)         # and a reload keeps what they learned
    again, proc2, _ = load_run_model(tmp_path / "m", cfg=cfg)
    with torch.no_grad():
        assert torch.allclose(again.get_input_embeddings()(torch.tensor([pieces])), after, atol=1e-6)
