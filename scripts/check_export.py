"""Checks `nas export --format onnx|pytorch` against `nas predict --logits` (run by scripts/check-export.sh).

For a set of architectures that together use every op the spaces can produce, it runs a one-candidate search
whose space allows only that architecture's choices, exports the retrained winner in both formats, and checks
that on 100 rows the ONNX model (onnxruntime, after onnx.checker) and the PyTorch module (strict
load_state_dict) give nas's logits within 1e-4 and the same classes; one case exports an ensemble (the graph
averages its members' probabilities). A table with gaps and categories, and one with a text column, are fed
to both as model.py's encode() makes them from the raw rows that nas predict reads.
Usage: python check_export.py NAS WORKDIR
"""
import csv
import os
import shutil
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime
import safetensors.torch
import torch

NAS, WORK = sys.argv[1], sys.argv[2]
TOL = 1e-4
ROWS = 100

# (name, data, shape, [space] lines). Each space allows one choice per attribute, so the search's only
# architecture shape is fixed (cells: the ops drawn from the allowed ones are checked for coverage below).
CASES = [
    ("dense-gelu-bn-res-drop", "table", None,
     'block = "dense"\ndepth = [3, 3]\nwidth = [16]\nactivation = ["gelu"]\nbatch_norm = [true]\n'
     'residual = [true]\ndropout = [0.1]'),
    ("dense-tanh-silu", "table", None,
     'block = "dense"\ndepth = [2, 2]\nwidth = [8]\nactivation = ["tanh"]\nbatch_norm = [false]\n'
     'residual = [false]\ndropout = [0.0]'),
    # Raw rows with gaps and categories (one unknown to the model), encoded by model.py's encode().
    ("dense-mixed-table", "mixed", None,
     'block = "dense"\ndepth = [2, 2]\nwidth = [8]\nactivation = ["relu"]\nbatch_norm = [true]\n'
     'residual = [false]\ndropout = [0.0]'),
    # A text column (an embedding bag in the first block) beside a number column with gaps.
    ("dense-text-bag", "text", None,
     'block = "dense"\ndepth = [2, 2]\nwidth = [8]\nkernel = []\nactivation = ["relu"]\nbatch_norm = [true]\n'
     'residual = [true]\ndropout = [0.0]'),
    # Text alone: the first block is its embedding bag and a bias.
    ("dense-text-only", "textonly", None,
     'block = "dense"\ndepth = [1, 1]\nwidth = [8]\nkernel = []\nactivation = ["silu"]\nbatch_norm = [false]\n'
     'residual = [false]\ndropout = [0.0]'),
    # The linear model (no block): the text bags and the other inputs straight to the classes; and over
    # text alone, the bags and a bias.
    ("dense-text-linear", "text", None, 'block = "dense"\ndepth = [0, 0]'),
    ("dense-text-only-linear", "textonly", None, 'block = "dense"\ndepth = [0, 0]'),
    # 1-D convolutions over the words (embedding, dilated, residual with a projection) entering the first
    # dense block beside the bags; and over text alone, without a dense block, entering the head.
    ("dense-text-words", "text", None,
     'block = "dense"\ndepth = [3, 3]\nwidth = [6, 8]\nkernel = [3, 5]\ndilation = [1, 2]\n'
     'activation = ["relu", "gelu"]\nbatch_norm = [true]\nresidual = [true]\ndropout = [0.0]'),
    ("dense-text-only-words", "textonly", None,
     'block = "dense"\ndepth = [1, 2]\nwidth = [5]\nkernel = [3]\nactivation = ["silu"]\n'
     'batch_norm = [false]\nresidual = [false]\ndropout = [0.0]'),
    # The linear model on a table and on an image's values (read in height, width, channel order).
    ("dense-table-linear", "table", None, 'block = "dense"\ndepth = [0, 0]'),
    ("dense-linear-on-image", "image", "3,7,7", 'block = "dense"\ndepth = [0, 0]'),
    # An ensemble (a search of six, its ensemble made the model): the graph averages the members' probabilities.
    ("ensemble-dense", "table", None,
     'block = "dense"\ndepth = [1, 2]\nwidth = [8, 16]\nactivation = ["relu", "tanh"]\nbatch_norm = [true, false]\n'
     'residual = [false]\ndropout = [0.0]'),
    ("dense-silu-on-image", "image", "3,7,7",
     'block = "dense"\ndepth = [2, 2]\nwidth = [12]\nactivation = ["silu"]\nbatch_norm = [true]\n'
     'residual = [true]\ndropout = [0.0]'),
    ("conv3-relu-bn-maxpool-res", "image", "3,7,7",
     'block = "conv"\ndepth = [2, 2]\nwidth = [8]\nkernel = [3]\nactivation = ["relu"]\npool = ["max"]\n'
     'batch_norm = [true]\nresidual = [true]\ndropout = [0.1]'),
    ("conv5-silu-avgpool", "image", "3,7,7",
     'block = "conv"\ndepth = [3, 3]\nwidth = [6]\nkernel = [5]\nactivation = ["silu"]\npool = ["avg"]\n'
     'batch_norm = [false]\nresidual = [false]\ndropout = [0.0]'),
    ("conv1-tanh-gelu-res", "image", "3,7,7",
     'block = "conv"\ndepth = [2, 2]\nwidth = [4]\nkernel = [1]\nactivation = ["gelu"]\npool = ["none"]\n'
     'batch_norm = [true]\nresidual = [true]\ndropout = [0.0]'),
    ("cell-conv-pool", "image", "3,7,7",
     'family = "cell"\nops = ["nor_conv_3x3", "avg_pool_3x3", "nor_conv_1x1"]\nchannels = 4\n'
     'cells_per_stage = 1\nstages = 2'),
    ("cell-skip-none", "image", "3,7,7",
     'family = "cell"\nops = ["none", "skip_connect", "nor_conv_1x1"]\nchannels = 4\n'
     'cells_per_stage = 1\nstages = 2'),
    # Seeds are tried until the cell's output node is unreachable (the network outputs zeros before the head).
    ("cell-unreachable-output", "image", "3,7,7",
     'family = "cell"\nops = ["none", "skip_connect"]\nchannels = 4\ncells_per_stage = 1\nstages = 2'),
]


def word_convs_and_dense(arch):
    """Two convolutions over words or more, one dilated, of two widths, and a dense block."""
    blocks = arch.split("/")
    convs = [b for b in blocks if b.startswith("conv")]
    return len(convs) >= 2 and any("-d2" in b for b in convs) and len(convs) < len(blocks) \
        and len({b.split("x")[0] for b in convs}) == 2


# Cases whose seeds are tried until the chosen architecture is of the kind the case checks.
WANT = {
    "cell-unreachable-output": lambda arch: unreachable(arch),
    "dense-text-words": word_convs_and_dense,
    "dense-text-only-words": lambda arch: "fc" not in arch,
}


def unreachable(arch):
    """Whether no path of ops other than `none` leads from a cell's input to its output."""
    vals = [True]
    for node in arch.split("+"):
        edges = [t.split("~") for t in node.strip("|").split("|")]
        vals.append(any(op != "none" and vals[int(j)] for op, j in edges))
    return not vals[-1]


def make_data():
    """A table (12 numeric features, 3 classes) and 3×7×7 images (4 classes), with learnable labels."""
    rng = np.random.default_rng(7)
    paths = {}
    for kind, n, f, k in [("table", 150, 12, 3), ("image", 160, 3 * 7 * 7, 4)]:
        x = rng.normal(size=(n, f)).astype(np.float32) * 3 + 1
        y = (x[:, :k].argmax(1) + (x[:, -1] > 1)) % k
        path = os.path.join(WORK, f"{kind}.csv")
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow([f"f{j}" for j in range(f)] + ["label"])
            for row, lab in zip(x, y):
                w.writerow([f"{v:.4f}" for v in row] + [f"class{lab}"])
        paths[kind] = (path, x[:ROWS])
    # A table with gaps in a number column and a text column (gaps too), as raw CSV cells.
    n = 150
    x = rng.normal(size=(n, 3)).astype(np.float32)
    colour = rng.choice(["red", "green", "blue"], size=n)
    y = (x[:, 0] > 0).astype(int) + (colour == "red")
    cells = [[f"{v:.4f}" for v in row] + [c] for row, c in zip(x, colour)]
    for i in range(0, n, 7):
        cells[i][1] = ""
    for i in range(3, n, 11):
        cells[i][3] = ""
    cells[5][3] = "violet"  # a level the model never saw in training (predict rows only)
    path = os.path.join(WORK, "mixed.csv")
    head = ["a", "b", "c", "colour"]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(head + ["label"])
        w.writerows(row + [f"class{lab}"] for row, lab in zip(cells[6:], y[6:]))
    paths["mixed"] = (path, [dict(zip(head, row)) for row in cells[:ROWS]])
    # Reviews of two kinds, with punctuation, quotes, capitals, an accent and an empty one; and a number.
    good = ["Lovely", "great", "superb,", "charming", "\"warm\"", "café"]
    bad = ["dull", "awful", "tedious!", "clumsy", "boring", "cold"]
    filler = ["the", "story", "was", "and", "a", "film", "with", "cast", "ending"]
    cells, y = [], []
    for i in range(n):
        words = good if i % 2 == 0 else bad
        k = int(rng.integers(3, 12))
        text = " ".join(f"{filler[int(rng.integers(9))]} {words[int(rng.integers(6))]}" for _ in range(k))
        cells.append([text if i % 17 else "", "" if i % 5 == 0 else f"{rng.normal():.4f}"])
        y.append(i % 2)
    path = os.path.join(WORK, "text.csv")
    head = ["review", "n"]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(head + ["label"])
        w.writerows(row + [f"class{lab}"] for row, lab in zip(cells[6:], y[6:]))
    rows = [dict(zip(head, row)) for row in cells[:ROWS]]
    rows[1]["review"] = "words never seen, and the story"
    paths["text"] = (path, rows)
    path = os.path.join(WORK, "textonly.csv")
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["review", "label"])
        w.writerows([row[0], f"class{lab}"] for row, lab in zip(cells[6:], y[6:]))
    paths["textonly"] = (path, [{"review": r["review"]} for r in rows])
    return paths


def nas(*args):
    r = subprocess.run([NAS, *args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"nas {' '.join(args)} failed:\n{r.stderr}")
    return r.stdout


def main():
    os.makedirs(WORK, exist_ok=True)
    data = make_data()
    seen_ops, failures = set(), []
    for name, kind, shape, space in CASES:
        path, x = data[kind]
        d = os.path.join(WORK, name)
        cfg = os.path.join(WORK, f"{name}.toml")
        with open(cfg, "w") as fh:
            fh.write(f"[space]\n{space}\n\n[evaluate]\nfolds = 2\n")
        extra = ["--shape", shape] if shape else []
        ensemble = name.startswith("ensemble")
        for seed in range(1, 100):
            nas("run", "-c", cfg, "--data", path, "--budget", "6" if ensemble else "1", "--epochs", "2",
                "--seed", str(seed), "-q", "--no-retrain", "-o", f"{d}/run", *extra)
            if ensemble:
                nas("select", f"{d}/run", "--ensemble", "always")
            with open(f"{d}/run/selection.toml") as fh:
                text = fh.read()
            chosen = next(line for line in text.splitlines() if line.startswith("arch"))
            # Seeds are tried until the greedy selection picks two candidates or more.
            if ensemble and "used = true" not in text:
                pass
            elif name not in WANT or WANT[name](chosen.split('"')[1]):
                break
            shutil.rmtree(f"{d}/run")
        nas("export", f"{d}/run", "--format", "onnx", "--out", f"{d}/onnx")
        nas("export", f"{d}/run", "--format", "pytorch", "--out", f"{d}/torch")
        nas("export", f"{d}/run", "--out", f"{d}/native")
        rows = os.path.join(d, "rows.csv")
        if kind in ("mixed", "text", "textonly"):
            with open(rows, "w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=list(x[0]))
                w.writeheader()
                w.writerows(x)
        else:
            head = ",".join([f"f{j}" for j in range(x.shape[1])])
            np.savetxt(rows, x, delimiter=",", header=head, comments="", fmt="%.4f")
        out = list(csv.reader(nas("predict", "--model", f"{d}/native", "--data", rows, "--logits").splitlines()))
        ours = np.array([[float(v) for v in r[2:]] for r in out[1:]], dtype=np.float32)
        classes = [c[len("logit:"):] for c in out[0][2:]]
        our_class = [r[1] for r in out[1:]]
        sys.path.insert(0, f"{d}/torch")
        import model as torch_model  # noqa: E402  (each case's own model.py)
        if kind in ("mixed", "text", "textonly"):
            xs = torch_model.encode(x).numpy()
        else:
            xs = np.loadtxt(rows, delimiter=",", skiprows=1, dtype=np.float32)
        if shape:
            xs = xs.reshape(-1, *map(int, shape.split(",")))

        model = onnx.load(f"{d}/onnx/model.onnx")
        onnx.checker.check_model(model, full_check=True)
        meta = {p.key: p.value for p in model.metadata_props}
        arch = meta["arch"]
        if not shape and meta["features"].split("\n") != torch_model.FEATURES:
            failures.append(f"{name} onnx: metadata features {meta['features']!r} are not FEATURES")
        seen_ops.update(n.op_type for n in model.graph.node)
        if "|" in arch:
            seen_ops.update(t.split("~")[0] for t in arch.replace("+", "|").split("|") if t)
        sess = onnxruntime.InferenceSession(f"{d}/onnx/model.onnx", providers=["CPUExecutionProvider"])
        got_onnx = sess.run(["logits"], {"input": xs})[0]

        net = torch_model.Ensemble() if torch_model.MEMBERS else torch_model.Net()
        if ensemble and len(torch_model.MEMBERS or []) < 2:
            failures.append(f"{name}: the exported model is not an ensemble")
        net.load_state_dict(safetensors.torch.load_file(f"{d}/torch/weights.safetensors"), strict=True)
        net.eval()
        with torch.no_grad():
            got_torch = net(torch.from_numpy(xs)).numpy()
        sys.path.pop(0)
        del sys.modules["model"]

        for fmt, got in [("onnx", got_onnx), ("pytorch", got_torch)]:
            diff = float(np.abs(got - ours).max())
            same = [classes[i] for i in got.argmax(1)] == our_class
            ok = diff <= TOL and same
            print(f"{name:28} {fmt:8} max |logit diff| {diff:.2e}  same classes: {same}  {arch}")
            if not ok:
                failures.append(f"{name} {fmt}")
    needed = {"Conv", "Gemm", "MatMul", "BatchNormalization", "Relu", "Tanh", "Sigmoid", "MaxPool",
              "AveragePool", "Add", "GlobalAveragePool", "ConstantOfShape", "Transpose", "Gather", "Einsum",
              "ReduceMax",
              "Softmax", "Sum", "Log", "none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"}
    if needed - seen_ops:
        failures.append(f"ops never exercised: {sorted(needed - seen_ops)}")
    if failures:
        sys.exit("FAILED: " + "; ".join(failures))
    print(f"export check: {len(CASES)} architectures, ONNX and PyTorch equal to nas within {TOL}")


main()
