"""PyTorch reference for `cargo run --release -p evaluate --example cv_speed`.

Trains the same model as the Rust side, fold after fold, with all cores (torch's default intra-op threads),
and prints one JSON line: samples/s and the mean held-out accuracy.

Input: a CSV written by the Rust side: columns fold, label, then the features (channel-first image pixels for
the CNN). Arguments: model (mlp|cnn), epochs, batch size, learning rate, weight decay, repeats of the k folds.
"""
import csv
import json
import sys
import time

import torch
import torch.nn as nn


def load(path):
    with open(path) as f:
        rows = list(csv.reader(f))[1:]
    fold = torch.tensor([int(r[0]) for r in rows])
    y = torch.tensor([int(r[1]) for r in rows])
    x = torch.tensor([[float(v) for v in r[2:]] for r in rows], dtype=torch.float32)
    return fold, y, x


def model(kind, classes):
    if kind == "mlp":
        return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, classes))
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(32 * 8 * 8, classes),
    )


def main():
    path, kind, epochs, batch, lr, wd, repeats = sys.argv[1:8]
    epochs, batch, lr, wd, repeats = int(epochs), int(batch), float(lr), float(wd), int(repeats)
    fold, y, x = load(path)
    k = int(fold.max()) + 1
    classes = int(y.max()) + 1
    torch.manual_seed(0)
    samples, accs = 0, []
    t0 = time.perf_counter()
    for rep in range(repeats):
        for f in range(k):
            tr, va = fold != f, fold == f
            xt, yt, xv, yv = x[tr], y[tr], x[va], y[va]
            mu, sd = xt.mean(0), xt.std(0, unbiased=False)
            sd[sd < 1e-8] = 1.0
            xt, xv = (xt - mu) / sd, (xv - mu) / sd
            m = model(kind, classes)
            opt = torch.optim.AdamW(m.parameters(), lr=lr, weight_decay=wd)
            loss_fn = nn.CrossEntropyLoss()
            n = xt.shape[0]
            for _ in range(epochs):
                perm = torch.randperm(n)
                for i in range(0, n, batch):
                    idx = perm[i:i + batch]
                    opt.zero_grad()
                    loss_fn(m(xt[idx]), yt[idx]).backward()
                    opt.step()
                samples += n
            with torch.no_grad():
                accs.append(float((m(xv).argmax(1) == yv).float().mean()))
    wall = time.perf_counter() - t0
    print(json.dumps({
        "torch": torch.__version__, "threads": torch.get_num_threads(), "wall_s": wall,
        "samples_per_s": samples / wall, "mean_acc": sum(accs) / len(accs),
    }))


if __name__ == "__main__":
    main()
