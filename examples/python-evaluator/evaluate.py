#!/usr/bin/env python3
"""A stand-in for the `evaluate` stage, written in Python: it shows the file contract, nothing more.

It reads every candidate file of a run directory that has no result yet and writes a result file for it.
Its "score" is a zero-cost size proxy, params / (params + 10000): no training happens. Replace `score()`
with real training (PyTorch, scikit-learn, ...) and the rest of the pipeline (nas generate, nas select)
works unchanged.

usage: evaluate.py RUN_DIR
"""
import json
import os
import sys
import tempfile
import tomllib


def score(candidate):
    p = candidate["params"]
    return p / (p + 10000.0)


def write_atomic(path, text):
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".py-tmp-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main(run):
    cand_dir = os.path.join(run, "candidates")
    res_dir = os.path.join(run, "results")
    os.makedirs(res_dir, exist_ok=True)
    for name in sorted(os.listdir(cand_dir)):
        if not (name.startswith("c") and name.endswith(".toml")):
            continue
        out = os.path.join(res_dir, name)
        if os.path.exists(out):
            continue
        with open(os.path.join(cand_dir, name), "rb") as f:
            c = tomllib.load(f)
        assert c["kind"] == "nas.candidate" and c["version"] in (1, 2, 3), name
        s = score(c)
        write_atomic(out, "\n".join([
            "version = 3",
            'kind = "nas.result"',
            f"id = {c['id']}",
            f"arch = {json.dumps(c['arch'])}",
            'status = "ok"',
            f"fold_scores = [{s!r}]",
            f"cv_mean = {s!r}",
            "cv_std = 0.0",
            f"params = {c['params']}",
            f"flops = {c['flops']}",
            "wall_s = 0.0",
            'evaluator = "python-size-proxy"',
            "",
        ]))
        print(f"{name}: {s:.4f}")


if __name__ == "__main__":
    main(sys.argv[1])
