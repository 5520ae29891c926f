"""How much of mnist-vqa is reasoning rather than seeing: the same questions with perfect perception.

Every canvas is replaced by its caption written as text ("Cells: top-left: 7, top-right: empty, ...")
in the first user turn, with no image, and the same LLM as configs/mnist-vqa-llava-cpu.yaml (a tiny
random-init Mistral, 4 x 128, the words BPE) is trained on the same question conversations for a
given number of epochs (the caption conversations are dropped: they would be copying). Its
per-type validation accuracy is a ceiling for what that LLM learns of counting, summing, comparing
and matching options in such a budget, whatever the vision side delivers.

    python benchmarks/bench_vqa_oracle.py [--epochs 3] [--lr 2e-3] [--backbone hf:runs/pretrain-mistral-tiny/model]
        [--dataset mnist-vqa] [--out runs/vqa-oracle]

``--backbone hf:PATH`` starts from a pretrained LLM (a finished ``mistral-vision pretrain`` run's
``model/``) with its own tokenizer: the reasoning ceiling of the faithful recipe.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from common import ROOT, data_dir  # noqa: E402


def oracle_samples(split) -> list[dict]:
    """LLaVA JSON samples of a VqaSplit with each canvas given as its caption text instead of an image."""
    from mistral_vision.data.questions import from_vqa
    from mistral_vision.data.vqa import QuestionMaker

    maker = QuestionMaker(split.spec, split.label_names, split.grid)
    qs = from_vqa(split, split.name.endswith("-train"))
    out = []
    for it in qs.items:
        if it.type == "caption":
            continue
        text = "Cells: " + maker.caption(split.cells[it.image])
        turns = [(r, t.replace("<image>", text)) for r, t in it.turns]
        s = {"id": it.id, "conversations": [{"from": r, "value": t} for r, t in turns], "type": it.type}
        if it.candidates:
            s["candidates"] = list(it.candidates)
        out.append(s)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=float, default=3.0)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--backbone", default=None, help="hf:PATH of a pretrained LLM (default: the config's tiny one)")
    ap.add_argument("--dataset", default="mnist-vqa", choices=["mnist-vqa", "fashion-vqa"])
    ap.add_argument("--out", default=str(ROOT / "runs" / "vqa-oracle"))
    args = ap.parse_args(argv)
    from mistral_vision.config import load_config
    from mistral_vision.data.llava_json import write_llava_json
    from mistral_vision.data.questions import vqa_split
    from mistral_vision.models.backbones import SHAPE_KEYS
    from mistral_vision.pipeline import run

    base = load_config(ROOT / "configs" / f"{args.dataset}-llava-cpu.yaml", [f"data.data_dir={data_dir()}",
                                                                             "data.offline=true"])
    out = Path(args.out)
    files = {}
    for split in ("train", "valid"):
        files[split] = out / "data" / f"{split}.json"
        write_llava_json(files[split], oracle_samples(vqa_split(base.data, split)))
    m = base.model
    shape = {ours: getattr(m, ours) for ours, _ in SHAPE_KEYS}
    if args.backbone:                   # a pretrained LLM keeps its own shape (llama-tiny: 4 KV heads, MLP 213)
        own = json.loads((Path(args.backbone.removeprefix("hf:")) / "config.json").read_text())
        shape = {ours: own[theirs] for ours, theirs in SHAPE_KEYS}
    cfg = out / "oracle.yaml"
    cfg.write_text(json.dumps({
        "name": "oracle", "runs_dir": str(out), "route": "ascii",
        "data": {"format": "llava-json", "path": str(files["train"]), "valid_path": str(files["valid"])},
        "tokenizer": ({"kind": "default"} if args.backbone else {"kind": "ascii-bpe", "split": "words", "vocab_size": 1024}),
        "model": {"backbone": args.backbone or m.backbone, **shape, "sliding_window": m.sliding_window},
        "train": {"epochs": args.epochs, "batch_size": 32, "lr": args.lr, "warmup_steps": 300,
                  "loss_reduction": "token", "eval_every": 1000, "eval_samples": 600},
        "eval": {"splits": ["valid"], "batch_size": 128}}))
    run(cfg)


if __name__ == "__main__":
    main()
