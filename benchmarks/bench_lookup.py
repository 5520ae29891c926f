"""Steps-to-learn of the clean lookup probe: is the shipped learning rate an optimisation plateau?

The probe is text only and one question type: mnist-vqa's own question generator (data/vqa.py,
its phrasings and its balance) asks about a 2x2 canvas whose cells are written out as text,

    Cells: top-left: 7, top-right: empty, bottom-left: 3, bottom-right: 1. Is there a 7 in the image? -> yes

and the loss is on the answer only. The model is the VQA configs' LLM (4 layers x 128, 4 heads /
2 KV heads, MLP 256; llama-tiny with its parameter-matched shape, 4 KV heads and MLP 213 as in
configs/compare/cpu.yaml), trained from random init with AdamW (betas 0.9/0.98, weight decay 0.05,
grad clip 1.0), batch 32, 300 linear warm-up steps then a constant rate. Words are tokens
(the VQA BPE splits this text into words too). Every ``--eval-every`` steps the whole validation
set (fresh canvases, a disjoint seed) is scored by comparing the candidate answers' logits; the
steps-to-learn is the first step at >= 95%. Each cell of the sweep is one line of
``results.jsonl``, so a killed sweep continues where it stopped.

    python benchmarks/bench_lookup.py [--lrs 2e-3,1e-3,5e-4,2.5e-4] [--widths 128,256]
        [--backbones mistral-tiny,llama-tiny] [--type present] [--max-steps 4000] [--out runs/bench-lookup]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from common import ROOT, table  # noqa: E402

TARGET = 0.95
WORD = re.compile(r"[A-Za-z_-]+|\d|[^\sA-Za-z\d]")


def probe(n: int, seed: int, kind: str, dataset: str = "mnist-vqa", fill: float = 0.75):
    """``n`` (text, answer, candidates) of one question type about random 2x2 canvases, drawn as
    mnist-vqa draws them (each cell holds a uniform class with probability ``fill``, never all empty)."""
    import numpy as np

    from mistral_vision.data.datasets import get_dataset
    from mistral_vision.data.vqa import QuestionMaker, get_vqa

    spec = get_vqa(dataset)
    names = get_dataset(spec.base).label_names
    maker = QuestionMaker(spec, names, 2)
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        cells = np.where(rng.random(4) < fill, rng.integers(len(names), size=4), -1)
        if (cells < 0).all():
            continue
        if kind == "mc":
            got = maker.multiple_choice(rng, str(rng.choice(["cell", "count", "count_class", "sum"])), cells)
            if got is None:
                continue
            q, a, cands = got
        else:
            got = maker.ask(rng, kind, cells)
            if got is None:
                continue
            q, a = got
            cands = maker.candidates[kind]
        out.append(("Cells: " + maker.caption(cells) + " " + q, a, tuple(cands)))
    return out


def encode(rows, vocab: dict[str, int]):
    """Token ids of every text and its answer (a single word: the candidates' are all single tokens here)."""
    return [([vocab[w] for w in WORD.findall(t)], vocab[a], [vocab[c] for c in c_]) for t, a, c_ in rows]


def build(backbone: str, width: int, vocab_size: int, seed: int):
    """The VQA configs' LLM shape at ``width`` (heads of 32 dims, MLP 2x width; llama-tiny parameter-matched)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

    torch.manual_seed(seed)
    heads = width // 32
    kw = dict(vocab_size=vocab_size, hidden_size=width, num_hidden_layers=4, num_attention_heads=heads,
              max_position_embeddings=128, pad_token_id=0, bos_token_id=1, eos_token_id=2, tie_word_embeddings=True)
    if backbone == "mistral-tiny":
        return MistralForCausalLM(MistralConfig(num_key_value_heads=heads // 2, intermediate_size=2 * width,
                                                sliding_window=512, **kw))
    # same parameters without grouped-query attention: the attention's extra K/V comes out of the MLP
    mlp = int((3 * 2 * width * width - 2 * width * width // 2) / (3 * width))
    return LlamaForCausalLM(LlamaConfig(num_key_value_heads=heads, intermediate_size=mlp, **kw))


def accuracy(model, data, batch: int = 250) -> float:
    import torch

    model.eval()
    right = 0
    with torch.no_grad():
        for i in range(0, len(data), batch):
            ids, lens, answers, cands = collate(data[i:i + batch])
            logits = model(input_ids=ids, attention_mask=(ids != 0).long()).logits
            last = logits[torch.arange(len(lens)), lens - 1]                 # predicts the answer
            picked = torch.gather(last, 1, cands).argmax(1)
            right += int((torch.gather(cands, 1, picked[:, None])[:, 0] == answers).sum())
    model.train()
    return right / len(data)


def collate(rows):
    import torch

    n = max(len(r[0]) for r in rows)
    ids = torch.zeros(len(rows), n, dtype=torch.long)
    for j, (t, _, _) in enumerate(rows):
        ids[j, :len(t)] = torch.tensor(t)
    lens = torch.tensor([len(r[0]) for r in rows])
    answers = torch.tensor([r[1] for r in rows])
    width = max(len(r[2]) for r in rows)
    cands = torch.tensor([r[2] + [r[2][0]] * (width - len(r[2])) for r in rows])
    return ids, lens, answers, cands


def run_cell(backbone, width, lr, train, valid, vocab_size, args) -> dict:
    import numpy as np
    import torch

    model = build(backbone, width, vocab_size, args.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.05)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / args.warmup))
    rng = np.random.default_rng(args.seed)
    curve, learned, t0 = [], None, time.time()
    model.train()
    for step in range(1, args.max_steps + 1):
        ids, lens, answers, _ = collate([train[k] for k in rng.integers(len(train), size=args.batch)])
        logits = model(input_ids=ids, attention_mask=(ids != 0).long()).logits
        loss = torch.nn.functional.cross_entropy(logits[torch.arange(len(lens)), lens - 1], answers)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        if step % args.eval_every == 0:
            acc = accuracy(model, valid)
            curve.append([step, round(acc, 4), round(float(loss.detach()), 4)])
            if args.verbose:
                print(f"  step {step}: valid {acc:.1%} loss {float(loss.detach()):.4f}", flush=True)
            if acc >= TARGET and learned is None:
                learned = step
                if not args.full_curve:
                    break
    return {"backbone": backbone, "width": width, "lr": lr, "type": args.type, "steps_to_95": learned,
            "final_acc": curve[-1][1], "best_acc": max(c[1] for c in curve), "steps_run": curve[-1][0],
            "params": sum(p.numel() for p in model.parameters()), "wall_s": round(time.time() - t0, 1),
            "curve": curve}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lrs", default="2e-3,1e-3,5e-4,2.5e-4")
    ap.add_argument("--widths", default="128,256")
    ap.add_argument("--backbones", default="mistral-tiny,llama-tiny")
    ap.add_argument("--type", default="present", help="mnist-vqa question type (present, count_class, cell, mc, ...)")
    ap.add_argument("--max-steps", type=int, default=4000)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-size", type=int, default=20000)
    ap.add_argument("--verbose", action="store_true", help="print every evaluation")
    ap.add_argument("--full-curve", action="store_true", help="keep training after 95%% (curves for plots)")
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench-lookup"))
    args = ap.parse_args(argv)
    import torch

    # one thread unless told: this model is too small for two to help, and a second thread on a shared
    # machine spin-waits (measured: 1.3 steps/s with 2 threads under load against ~10 alone)
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    train_rows = probe(args.train_size, 1000 + args.seed, args.type)
    valid_rows = probe(1000, 2, args.type)
    words = sorted({w for t, a, c in train_rows + valid_rows for w in WORD.findall(t) + [a, *c]})
    vocab = {w: i + 3 for i, w in enumerate(words)}                    # 0 pad, 1 bos, 2 eos
    train, valid = encode(train_rows, vocab), encode(valid_rows, vocab)
    majority = max(sum(a == x for _, a, _ in valid_rows) for x in {a for _, a, _ in valid_rows}) / len(valid_rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"results-{args.type}.jsonl"
    done = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    key = lambda r: (r["backbone"], r["width"], r["lr"], r["max_steps"])  # noqa: E731
    have = {key(r) for r in done}
    print(f"probe {args.type}: {len(train)} train / {len(valid)} valid texts, {len(vocab) + 3} tokens, "
          f"majority {majority:.1%}", flush=True)
    for backbone in args.backbones.split(","):
        for width in (int(w) for w in args.widths.split(",")):
            for lr in (float(x) for x in args.lrs.split(",")):
                if (backbone, width, lr, args.max_steps) in have:
                    continue
                r = run_cell(backbone, width, lr, train, valid, len(vocab) + 3, args)
                r.update(max_steps=args.max_steps, majority=round(majority, 4))
                done.append(r)
                with path.open("a") as f:
                    f.write(json.dumps(r) + "\n")
                print(f"{backbone} w{width} lr {lr:g}: 95% at step {r['steps_to_95']}, best {r['best_acc']:.1%} "
                      f"({r['wall_s']:.0f} s)", flush=True)
    rows = [[r["backbone"], r["width"], f"{r['lr']:g}", r["steps_to_95"] or f"> {r['steps_run']}",
             f"{r['best_acc']:.1%}", f"{r['params']:,}", f"{r['steps_run'] / max(r['wall_s'], 1e-9):.0f}"]
            for r in done if r["max_steps"] == args.max_steps]
    text = table(["backbone", "width", "lr", "steps to 95%", "best valid", "params", "steps/s"], rows)
    print(text)
    (out / f"table-{args.type}.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
