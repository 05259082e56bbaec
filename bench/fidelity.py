"""Summary of bench/fidelity.sh: best top-rung CV accuracy against wall time per schedule and seed."""
import os
import statistics
import sys
import tomllib

out, seeds = sys.argv[1], int(sys.argv[2])


def load(run):
    """(wall seconds, [(seconds after start, best top-rung cv so far)], final best) of one run."""
    start = float(open(os.path.join(run, "started")).read())
    end = float(open(os.path.join(run, "ended")).read())
    with open(os.path.join(run, "space.toml"), "rb") as f:
        full = tomllib.load(f)["experiment"]["evaluate"]["epochs"]
    events = []
    for name in os.listdir(os.path.join(run, "results")):
        if not (name.startswith("c") and name.endswith(".toml")):
            continue
        path = os.path.join(run, "results", name)
        with open(path, "rb") as f:
            r = tomllib.load(f)
        with open(os.path.join(run, "candidates", name), "rb") as f:
            c = tomllib.load(f)
        if r["status"] == "ok" and c.get("epochs", full) == full:
            events.append((os.path.getmtime(path) - start, r["cv_mean"]))
    events.sort()
    trace, best = [], 0.0
    for t, s in events:
        best = max(best, s)
        trace.append((t, best))
    return end - start, trace, best


runs = {(f, s): load(os.path.join(out, f"{f}-seed{s}")) for f in ("full", "halving", "hyperband")
        for s in range(1, seeds + 1)}
finals = [runs[("full", s)][2] for s in range(1, seeds + 1)]
mean = statistics.mean(finals)
spread = statistics.stdev(finals) if len(finals) > 1 else 0.0
target = mean - spread
print(f"full searches' final best: {mean:.4f} ± {spread:.4f} (mean ± std over {seeds} seeds); target {target:.4f}")
print(f"{'schedule':<10} {'seed':>4} {'wall s':>8} {'final best':>10} {'reached target at':>18} {'of full wall':>12}")
fractions = {"halving": [], "hyperband": []}
for (f, s), (wall, trace, best) in runs.items():
    hit = next((t for t, b in trace if b >= target), None)
    full_wall = runs[("full", s)][0]
    frac = hit / full_wall if hit is not None else None
    if f in fractions:
        fractions[f].append(frac)
    print(f"{f:<10} {s:>4} {wall:>8.0f} {best:>10.4f} {'never' if hit is None else f'{hit:.0f} s':>18} "
          f"{'-' if frac is None else f'{frac:.2f}':>12}")
for f, fr in fractions.items():
    got = [x for x in fr if x is not None]
    walls = [runs[(f, s)][0] / runs[("full", s)][0] for s in range(1, seeds + 1)]
    print(f"{f}: reached the target in {len(got)}/{seeds} seeds"
          + (f", at {statistics.mean(got):.2f} of full's wall time on average" if got else "")
          + f"; whole search {statistics.mean(walls):.2f} of full's wall time")
