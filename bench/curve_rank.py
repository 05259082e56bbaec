"""How well scores read off the first epochs of a training rank architectures like their full CV accuracy:
computed from the learning curves that every result of a finished search already holds (no new training).

usage: python3 bench/curve_rank.py RUN... [--epochs 1,2,3]

For each run's candidates trained through every fold at full length (status ok), against their CV accuracy,
Spearman's rank correlation of:
- the training loss of the first K epochs (summed, lower is better), averaged over the folds;
- the held-out accuracy after epoch K on the curve's sample of held-out rows, averaged over the folds;
- the first fold's accuracy at full length, against the mean of the other folds (what racing decides on, so the
  target shares no training with the score).
The first epochs here are those of the full training's schedule (a learning rate still high), not of a
shorter training that ends there; bench/rung_rank.py measures those. "Best 5 in top third": of the five best by
CV, how many the score's top third holds. Cost: the share of a full CV's training the score needs.
"""
import argparse
import glob
import os
import tomllib

p = argparse.ArgumentParser()
p.add_argument("runs", nargs="+")
p.add_argument("--epochs", default="1,2,3")
a = p.parse_args()


def ranks(v):
    order = sorted(range(len(v)), key=lambda i: v[i])
    r = [0.0] * len(v)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2
        i = j + 1
    return r


def spearman(x, y):
    rx, ry = ranks(x), ranks(y)
    n = len(x)
    mx, my = sum(rx) / n, sum(ry) / n
    cov = sum((p - mx) * (q - my) for p, q in zip(rx, ry))
    vx = sum((p - mx) ** 2 for p in rx) ** 0.5
    vy = sum((q - my) ** 2 for q in ry) ** 0.5
    return cov / (vx * vy) if vx and vy else float("nan")


def top_third(score, target):
    n = len(score)
    best5 = set(sorted(range(n), key=lambda i: -target[i])[:5])
    third = set(sorted(range(n), key=lambda i: -score[i])[: max(1, round(n / 3))])
    return len(best5 & third)


for run in a.runs:
    rs = []
    for path in sorted(glob.glob(os.path.join(run, "results", "c*.toml"))):
        with open(path, "rb") as f:
            r = tomllib.load(f)
        if r["status"] == "ok" and r.get("curves") and len(r["fold_scores"]) > 1:
            rs.append(r)
    if len(rs) < 6:
        print(f"{run}: {len(rs)} ok results with curves, too few")
        continue
    epochs = len(rs[0]["curves"][0]["train_loss"])
    folds = len(rs[0]["fold_scores"])
    cv = [r["cv_mean"] for r in rs]
    rows = []
    for k in (int(e) for e in a.epochs.split(",")):
        loss = [-sum(sum(c["train_loss"][:k]) for c in r["curves"]) / len(r["curves"]) for r in rs]
        acc = [sum(c["heldout_accuracy"][k - 1] for c in r["curves"]) / len(r["curves"]) for r in rs]
        rows.append((f"training loss, first {k} epoch(s)", k / epochs, spearman(loss, cv), top_third(loss, cv)))
        rows.append((f"held-out sample accuracy after epoch {k}", k / epochs, spearman(acc, cv), top_third(acc, cv)))
    first = [r["fold_scores"][0] for r in rs]
    rest = [sum(r["fold_scores"][1:]) / (len(r["fold_scores"]) - 1) for r in rs]
    rows.append(("first fold at full length (against the other folds' mean)", 1 / folds, spearman(first, rest), top_third(first, rest)))
    size = [-r["params"] for r in rs]
    rows.append(("fewer parameters (a baseline)", 0.0, spearman(size, cv), top_third(size, cv)))
    print(f"{run}: {len(rs)} candidates trained in full, CV {min(cv):.4f}-{max(cv):.4f}")
    print("| score | cost | Spearman | best 5 in top third |")
    print("| --- | --- | --- | --- |")
    for name, cost, rho, kept in rows:
        print(f"| {name} | {cost:.3f} | {rho:.3f} | {kept} |")
