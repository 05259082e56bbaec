"""PyTorch reference for `cargo run --release -p evaluate --example cv_speed`.

Builds the same network as the Rust side from its architecture string (with the module that
`nas export --format pytorch` writes, crates/export/src/model.py), trains it on the k folds with AdamW, and prints
one JSON line: samples/s and the mean held-out accuracy.

Input: a CSV written by the Rust side: columns fold, label, then the features (channel-first image pixels).
Arguments: CSV ARCH FAMILY SHAPE CELL EPOCHS BATCH LR WD REPEATS [PART/PARTS]
  SHAPE: C,H,W or F, or text:LEN/VOCAB/WEIGHTED/SEQ,... (the features are a text's token ids, their weights
  where WEIGHTED is 1, and SEQ word ids in order, per text input; not standardised);
  CELL: channels,cells_per_stage,stages or -.
  PART/PARTS (e.g. 0/2): train only the folds f with f % PARTS == PART, on one thread (the per-core set-up);
  without it, every fold one after another with torch's default threads.
"""
import csv
import json
import os
import sys
import time

import torch
import torch.nn as nn

MODEL_PY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "export", "src", "model.py")


def load(path):
    with open(path) as f:
        rows = list(csv.reader(f))[1:]
    fold = torch.tensor([int(r[0]) for r in rows])
    y = torch.tensor([int(r[1]) for r in rows])
    x = torch.tensor([[float(v) for v in r[2:]] for r in rows], dtype=torch.float32)
    return fold, y, x


def model_py(text=()):
    """The namespace of `model.py` for a network over `text` inputs (its `Net`, `text_width`, …)."""
    ns = {"ARCH": "", "FAMILY": "chain", "INPUT_SHAPE": (1,), "CLASSES": [], "CELL": None, "TEXT": list(text),
          "MEMBERS": []}
    with open(MODEL_PY) as f:
        exec(compile(f.read(), MODEL_PY, "exec"), ns)
    return ns


def init_like_nas(m):
    """Text embeddings initialised as nas does (torch's N(0, 1) trains another network): a bag's table
    uniform in ±1/width, the words' embedding in ±1."""
    with torch.no_grad():
        for mod in m.modules():
            for emb in getattr(mod, "text", []):
                emb.weight.uniform_(-1.0 / emb.weight.shape[1], 1.0 / emb.weight.shape[1])
            if hasattr(mod, "embed"):
                mod.embed.weight.uniform_(-1.0, 1.0)


def main():
    path, arch, family, shape, cell, epochs, batch, lr, wd, repeats = sys.argv[1:11]
    part = sys.argv[11] if len(sys.argv) > 11 else None
    text = ()
    if shape.startswith("text:"):
        text = tuple(
            {"column": "text", "len": int(n), "vocab": int(v), "weighted": w == "1", "seq": int(q)}
            for n, v, w, q in (t.split("/") for t in shape[len("text:"):].split(","))
        )
    ns = model_py(text)
    if text:
        shape = (sum(ns["text_width"](t) for t in text),)
    else:
        shape = tuple(int(v) for v in shape.split(","))
    cell = None if cell == "-" else dict(zip(["channels", "cells_per_stage", "stages"], map(int, cell.split(","))))
    epochs, batch, lr, wd, repeats = int(epochs), int(batch), float(lr), float(wd), int(repeats)
    if part is not None:
        torch.set_num_threads(1)
        me, parts = map(int, part.split("/"))
    Net = ns["Net"]
    fold, y, x = load(path)
    k = int(fold.max()) + 1
    classes = int(y.max()) + 1
    torch.manual_seed(0)
    samples, accs = 0, []
    t0 = time.perf_counter()
    for rep in range(repeats):
        for f in range(k):
            if part is not None and f % parts != me:
                continue
            tr, va = fold != f, fold == f
            xt, yt, xv, yv = x[tr], y[tr], x[va], y[va]
            mu, sd = xt.mean(0), xt.std(0, unbiased=False)
            sd[sd < 1e-6] = 1.0
            if text:
                mu, sd = torch.zeros_like(mu), torch.ones_like(sd)
            xt, xv = ((xt - mu) / sd).reshape(-1, *shape), ((xv - mu) / sd).reshape(-1, *shape)
            m = Net(arch, family, shape, classes, cell)
            if text:
                init_like_nas(m)
            opt = torch.optim.AdamW(m.parameters(), lr=lr, weight_decay=wd)
            loss_fn = nn.CrossEntropyLoss()
            n = xt.shape[0]
            m.train()
            for _ in range(epochs):
                perm = torch.randperm(n)
                for i in range(0, n, batch):
                    idx = perm[i:i + batch]
                    opt.zero_grad()
                    loss_fn(m(xt[idx]), yt[idx]).backward()
                    opt.step()
                samples += n
            m.eval()
            with torch.no_grad():
                accs.append(float((m(xv).argmax(1) == yv).float().mean()))
    wall = time.perf_counter() - t0
    print(json.dumps({
        "torch": torch.__version__, "threads": torch.get_num_threads(), "wall_s": wall, "samples": samples,
        "samples_per_s": samples / wall, "mean_acc": sum(accs) / max(len(accs), 1), "folds": len(accs),
    }))


if __name__ == "__main__":
    main()
