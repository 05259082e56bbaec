"""How well a cheap score ranks architectures like full training does: the low rungs of a multi-fidelity
search (fewer epochs) and the zero-cost proxies, against the top-rung CV accuracy of the architectures that
full-training searches evaluated.

usage: python3 bench/rung_rank.py RUN... [--out DIR] [--epochs 1,3] [--proxies synflow,naswot,params]
                                  [--nas target/release/nas]
e.g.   python3 bench/rung_rank.py target/bench-fidelity-b16/full-seed*      # after bench/fidelity.sh

RUN... are run directories of `fidelity = "full"` searches on the same data and space (those of
bench/fidelity.sh, or a `--strategy random` run for a uniform sample). Every architecture they trained is
evaluated again, in DIR/rank-*/ (default: the first run's parent), at each epoch count (a run directory made
by hand: the first run's space.toml and one candidate file per architecture, with the candidate's `epochs`,
as a multi-fidelity search writes them) and by each proxy; finished results are kept, so an interrupted run
resumes. Prints, per cheap score: its Spearman rank correlation with the full-training score (the mean over
the runs that trained the architecture) and how many of the five best by full training are in the cheap
score's top third (what a rung of eta = 3 promotes). The full-training scores come from other seeds and fold
splits than the cheap ones, so a re-run at the full epochs (--epochs 8 with the default 8) measures the
ceiling that this noise leaves.
"""
import argparse
import glob
import os
import shutil
import subprocess
import tomllib

p = argparse.ArgumentParser()
p.add_argument("runs", nargs="+")
p.add_argument("--out")
p.add_argument("--epochs", default="1,3")
p.add_argument("--proxies", default="synflow,naswot,params")
p.add_argument("--nas", default="target/release/nas")
a = p.parse_args()
a.out = a.out or os.path.dirname(os.path.abspath(a.runs[0]))



def ok_results(run):
    """The ok result files of run directory `run`."""
    for path in glob.glob(os.path.join(run, "results", "c*.toml")):
        with open(path, "rb") as f:
            r = tomllib.load(f)
        if r["status"] == "ok":
            yield r


ref, size = {}, {}
for r in (r for run in a.runs for r in ok_results(run)):
    ref.setdefault(r["arch"], []).append(r["cv_mean"])
    size[r["arch"]] = (r["params"], r["flops"])
if not ref:
    raise SystemExit(f"{' '.join(a.runs)}: no ok results")
archs = sorted(ref)
ref = {k: sum(v) / len(v) for k, v in ref.items()}
space = open(os.path.join(a.runs[0], "space.toml")).read()
experiment = tomllib.loads(space)["experiment"]
if experiment["search"]["fidelity"] != "full":
    raise SystemExit(f"{a.runs[0]}: not a full-training search")


def run_dir(name, space_text, epochs):
    d = os.path.join(a.out, f"rank-{name}")
    if not os.path.exists(os.path.join(d, "space.toml")):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(os.path.join(d, "candidates"))
        for i, arch in enumerate(archs, 1):
            extra = f"epochs = {epochs}\n" if epochs else ""
            with open(os.path.join(d, "candidates", f"c{i:05d}.toml"), "w") as f:
                f.write(
                    f'version = 2\nkind = "nas.candidate"\nid = {i}\nbatch = 0\nbatch_size = {len(archs)}\n'
                    f'arch = "{arch}"\nkey = "{arch}"\norigin = "random"\nparams = {size[arch][0]}\n'
                    f"flops = {size[arch][1]}\n{extra}"
                )
        with open(os.path.join(d, "space.toml"), "w") as f:
            f.write(space_text)
    held = []
    for path in glob.glob(os.path.join(d, "candidates", "c*.toml")):
        with open(path, "rb") as f:
            held.append(tomllib.load(f)["arch"])
    if sorted(held) != archs:
        raise SystemExit(f"{d}: holds other architectures than these runs' (another --out?)")
    subprocess.run([a.nas, "evaluate", "--quiet", d], check=True, stdout=subprocess.DEVNULL)
    return {r["arch"]: r["cv_mean"] for r in ok_results(d)}


def ranks(xs):
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    r = [0.0] * len(xs)
    for k, i in enumerate(order):
        r[i] = float(k)
    return r


def spearman(xs, ys):
    rx, ry = ranks(xs), ranks(ys)
    m = (len(xs) - 1) / 2
    num = sum((u - m) * (v - m) for u, v in zip(rx, ry))
    return num / sum((u - m) ** 2 for u in rx)


full = experiment["evaluate"]["epochs"]
cheap = []
for e in [int(x) for x in a.epochs.split(",") if x]:
    cheap.append((f"{e} of {full} epochs", run_dir(f"e{e}", space, e)))
for proxy in [x for x in a.proxies.split(",") if x]:
    text = space.replace('evaluator = "train"', f'evaluator = "proxy"\nproxy = "{proxy}"')
    cheap.append((proxy, run_dir(proxy, text, None)))

# The lowest rung and each proxy together (the sum of their ranks): a capacity proxy may offset a short
# training's preference for networks that learn fast.
if cheap and cheap[0][0].endswith("epochs"):
    low_name, low = cheap[0]
    for name, s in list(cheap[1:]):
        if name.endswith("epochs"):
            continue
        ks = [k for k in archs if k in low and k in s]
        rl, rp = ranks([low[k] for k in ks]), ranks([s[k] for k in ks])
        cheap.append((f"{low_name.split()[0]}-epoch rung + {name}", {k: u + v for k, u, v in zip(ks, rl, rp)}))

best5 = set(sorted(archs, key=lambda k: -ref[k])[:5])
print(f"{len(archs)} architectures of {len(a.runs)} runs; full training's best {max(ref.values()):.4f}")
print(f"{'cheap score':<26} {'spearman':>9} {'best 5 in top third':>20} {'mean blocks of top third':>25}")
for name, s in cheap:
    ks = [k for k in archs if k in s]
    top = set(sorted(ks, key=lambda k: -s[k])[: len(ks) // 3])
    blocks = sum(k.count("/") + 1 for k in top) / max(len(top), 1)
    rho = spearman([s[k] for k in ks], [ref[k] for k in ks])
    print(f"{name:<26} {rho:>9.3f} {len(best5 & top):>18}/5 {blocks:>25.2f}")
print(f"(all {len(archs)}: mean blocks {sum(k.count('/') + 1 for k in archs) / len(archs):.2f})")
