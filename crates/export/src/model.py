import math
import re

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": lambda: nn.GELU(approximate="tanh"),  # nas trains with the tanh approximation
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
}
POOLS = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}  # 2×2, stride 2


def text_width(t):
    """The network inputs of a text input: its `len` ids, as many weights when it is weighted, then `seq`
    word ids in text order."""
    return t["len"] * (2 if t.get("weighted") else 1) + t.get("seq", 0)


def conv_size(first):
    """A conv block's width and kernel from its notation's first token, e.g. `conv64x3` -> (64, 3)."""
    out, k = (int(v) for v in first[len("conv"):].split("x"))
    return out, k


class WordConvs(nn.Module):
    """1-D convolutions over one text input's words (`specs`: blocks such as `conv64x3-relu-d2-res` of a
    dense network over text): an embedding as wide as the first, then each convolution (same length,
    dilated) and its activation, padding slots (id 0) set to zero, the residual add (with a linear
    projection when the width changes); then each channel's maximum over the text's words (zeros for a
    text without words). Channel-last between the convolutions, as nas computes them."""

    def __init__(self, specs, vocab):
        super().__init__()
        c = conv_size(specs[0].split("-")[0])[0]
        self.embed = nn.Embedding(vocab, c)
        self.convs, self.projs, self.steps = nn.ModuleList(), nn.ModuleDict(), []
        for j, spec in enumerate(specs):
            first, act, *flags = spec.split("-")
            out, k = conv_size(first)
            d = ([int(f[1:]) for f in flags if re.fullmatch(r"d\d+", f)] or [1])[0]
            self.convs.append(nn.Conv1d(c, out, k, padding=(k // 2) * d, dilation=d))
            res = "res" in flags
            if res and c != out:
                self.projs[str(j)] = nn.Linear(c, out, bias=False)
            self.steps.append((ACTIVATIONS[act](), res))
            c = out
        self.out = c

    def forward(self, ids):
        mask = (ids > 0.5).to(self.embed.weight.dtype).unsqueeze(2)
        h = self.embed(ids.long()) * mask
        for j, (conv, (act, res)) in enumerate(zip(self.convs, self.steps)):
            y = act(conv(h.transpose(1, 2)).transpose(1, 2)) * mask
            if res:
                y = y + (self.projs[str(j)](h) if str(j) in self.projs else h)
            h = y
        return (h + (mask - 1.0) * 1e9).amax(1) * mask.amax(1)


class TextLayer(nn.Module):
    """A linear layer whose inputs may end in text inputs (the first dense block's, or the linear model's
    head): the other inputs through `fc` (without them, the bias alone), plus per text input an embedding
    table whose rows named by a text's token ids are added in, each times its weight (the input's next `len`
    values), or averaged when the input has no weights (ids 0 and 1, padding and unknown, left out); and,
    with convolutions over words (`words`: their specs), per text input with words in order what they give
    (`WordConvs`) through `words_fc`."""

    def linear(self, cin, out, text, words=()):
        dense = cin - sum(text_width(t) for t in text)
        self.fc = nn.Linear(dense, out) if dense or not text else None
        if self.fc is None:
            self.bias = nn.Parameter(torch.zeros(out))
        self.text = nn.ModuleList(nn.Embedding(t["vocab"], out) for t in text)
        self.text_inputs = [(t["len"], bool(t.get("weighted")), t.get("seq", 0), text_width(t)) for t in text]
        seqs = [(str(i), t) for i, t in enumerate(text) if t.get("seq") and words]
        self.words = nn.ModuleDict({i: WordConvs(words, t["vocab"]) for i, t in seqs})
        self.words_fc = nn.ModuleDict({i: nn.Linear(self.words[i].out, out, bias=False) for i, _ in seqs})

    def linear_forward(self, x):
        at = x.shape[1] - sum(width for *_, width in self.text_inputs)
        y = self.fc(x[:, :at]) if self.fc is not None else self.bias.expand(x.shape[0], -1)
        for i, (emb, (n, weighted, seq, width)) in enumerate(zip(self.text, self.text_inputs)):
            ids = x[:, at:at + n].long()
            known = (ids >= 2).to(y.dtype)
            if weighted:
                weights = known * x[:, at + n:at + 2 * n]
            else:
                weights = known / known.sum(1, keepdim=True).clamp(min=1.0)
            y = y + torch.einsum("nl,nlw->nw", weights, emb(ids))
            if str(i) in self.words:
                words = x[:, at + width - seq:at + width]
                y = y + self.words_fc[str(i)](self.words[str(i)](words))
            at += width
        return y


class TextHead(TextLayer):
    """The linear model's head over text (the architecture `linear`): one output per class."""

    def __init__(self, cin, classes, text, words=()):
        super().__init__()
        self.linear(cin, classes, text, words)

    def forward(self, x):
        return self.linear_forward(x)


class Block(TextLayer):
    """One chain block, e.g. `conv16x3-relu-bn-maxpool-drop0.1-res` or `fc64-gelu-bn`: a k×k convolution
    (same padding) or a linear layer (over text inputs too, the first block only: `TextLayer`), batch norm,
    activation, residual add (with a 1×1 convolution or linear projection when the width changes; none over
    text), 2×2 pooling (when the input is at least 2×2), dropout."""

    def __init__(self, spec, cin, height, width, text=(), words=()):
        super().__init__()
        first, act, *flags = spec.split("-")
        self.is_conv = first.startswith("conv")
        if self.is_conv:
            out, k = conv_size(first)
            self.conv = nn.Conv2d(cin, out, k, padding=k // 2)
        else:
            out = int(first[len("fc"):])
            self.linear(cin, out, text, words)
        self.out = out
        self.bn = None
        if "bn" in flags:
            self.bn = nn.BatchNorm2d(out) if self.is_conv else nn.BatchNorm1d(out)
        self.act = ACTIVATIONS[act]()
        self.res = "res" in flags and not text
        self.proj = None
        if self.res and cin != out:
            self.proj = nn.Conv2d(cin, out, 1, bias=False) if self.is_conv else nn.Linear(cin, out, bias=False)
        pools = [f[: -len("pool")] for f in flags if f.endswith("pool")]
        self.pool = None
        if pools and height >= 2 and width >= 2:
            self.pool = POOLS[pools[0]](2)
        drops = [float(f[len("drop"):]) for f in flags if f.startswith("drop")]
        self.drop = nn.Dropout(drops[0]) if drops else None

    def forward(self, x):
        y = self.conv(x) if self.is_conv else self.linear_forward(x)
        if self.bn is not None:
            y = self.bn(y)
        y = self.act(y)
        if self.res:
            y = y + (x if self.proj is None else self.proj(x))
        if self.pool is not None:
            y = self.pool(y)
        if self.drop is not None:
            y = self.drop(y)
        return y


def tokens(text):
    """nas's tokens of a text: the words of the lower-cased text (runs of letters and digits), each followed by
    its pair with the next word."""
    words = re.findall(r"[^\W_]+", text.lower())
    out = []
    for i, w in enumerate(words):
        out.append(w)
        if i + 1 < len(words):
            out.append(w + " " + words[i + 1])
    return out


def char_grams(text):
    """nas's character tokens of a text: the 3- and 4-grams of each whitespace-separated lower-cased word
    padded with a space on both sides (a padded word shorter than a gram is itself one token)."""
    out = []
    for w in text.lower().split():
        w = " " + w + " "
        for n in (3, 4):
            if len(w) <= n:
                out.append(w)
                break
            out.extend(w[i:i + n] for i in range(len(w) - n + 1))
    return out


_INDEX = {}


def text_ids(col, text):
    """A text's inputs for one of its encodings: the ids of its tokens of the encoding's kind in the
    vocabulary (token i is id i + 2), in order, cut at `len`, then zeros; with `idf`, each known token once,
    followed by `len` weights: their idf scaled to unit length, then zeros."""
    key = (col["name"], col.get("tokens", "words"))
    index = _INDEX.setdefault(key, {t: i + 2 for i, t in enumerate(col["vocab"])})
    toks = char_grams(text) if key[1] == "chars" else tokens(text)
    ids = [index[t] for t in toks if t in index]
    if col.get("idf"):
        ids = list(dict.fromkeys(ids))
    ids = ids[: col["len"]]
    pad = [0.0] * (col["len"] - len(ids))
    if not col.get("idf"):
        return [float(i) for i in ids] + pad
    w = [col["idf"][i - 2] for i in ids]
    norm = math.sqrt(sum(v * v for v in w)) or 1.0
    seq = col.get("seq", 0)
    words = [float(index.get(t, 1)) for t in re.findall(r"[^\W_]+", text.lower())[:seq]]
    return [float(i) for i in ids] + pad + [v / norm for v in w] + pad + words + [0.0] * (seq - len(words))


def encode(rows):
    """A table's raw rows as the network's input [N, len(FEATURES)], encoded as nas encodes them: `rows` is a
    list of dicts, column name -> the cell as in the CSV (text or a number; None, "" or NaN when missing).
    A number fills a missing cell with the training mean, followed by an "is missing" input when the column
    had gaps in training; a category is one-hot over the training levels (a missing cell counts as the most
    frequent level, a level never seen in training is all zeros); a text column is, per kind of token, its
    token ids and their weights (see text_ids; a missing text is all zeros), after every other column."""
    out = []
    order = [c for c in COLUMNS if c["kind"] != "text"] + [c for c in COLUMNS if c["kind"] == "text"]
    for row in rows:
        f = []
        for col in order:
            v = row[col["name"]]
            if isinstance(v, str):
                v = v.strip()
            missing = v is None or v == "" or (isinstance(v, float) and math.isnan(v))
            if col["kind"] == "text":
                f.extend(text_ids(col, "" if missing else str(v)))
            elif col["kind"] == "numeric":
                f.append(col["fill"] if missing else float(v))
                if col["indicator"]:
                    f.append(1.0 if missing else 0.0)
            else:
                level = col["fill"] if missing else str(v)
                f.extend(1.0 if level == known else 0.0 for known in col["levels"])
        out.append(f)
    return torch.tensor(out, dtype=torch.float32).reshape(len(rows), len(FEATURES))


class ReLUConvBN(nn.Module):
    """(ReLU,) a k×k convolution without bias (padding k/2), batch norm."""

    def __init__(self, cin, cout, k, stride=1, relu=True):
        super().__init__()
        self.relu = relu
        self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return self.bn(self.conv(F.relu(x) if self.relu else x))


class Reduction(nn.Module):
    """Halves the size and doubles the channels: two convolutions plus a 1×1 stride-2 shortcut."""

    def __init__(self, cin):
        super().__init__()
        self.a = ReLUConvBN(cin, 2 * cin, 3, 2)
        self.b = ReLUConvBN(2 * cin, 2 * cin, 3)
        self.short = nn.Conv2d(cin, 2 * cin, 1, 2, bias=False)

    def forward(self, x):
        return self.b(self.a(x)) + self.short(x)


EDGE_OPS = {
    "none": lambda ch: nn.Identity(),  # contributes nothing: skipped in Cell.forward
    "skip_connect": lambda ch: nn.Identity(),
    "nor_conv_1x1": lambda ch: ReLUConvBN(ch, ch, 1),
    "nor_conv_3x3": lambda ch: ReLUConvBN(ch, ch, 3),
    "avg_pool_3x3": lambda ch: nn.AvgPool2d(3, 1, 1, count_include_pad=False),
}


class Cell(nn.Module):
    """A NAS-Bench-201 cell, e.g. `|nor_conv_3x3~0|+|skip_connect~0|none~1|+|…|`: node i is the sum of its
    edges' ops on the nodes before it (edge i, j is number i·(i-1)/2 + j); the last node is the output."""

    def __init__(self, notation, ch):
        super().__init__()
        nodes = notation.split("+")
        self.nodes = len(nodes) + 1
        self.ops = [None] * (self.nodes * (self.nodes - 1) // 2)
        for to, node in enumerate(nodes, start=1):
            for token in node.strip("|").split("|"):
                op, frm = token.split("~")
                self.ops[to * (to - 1) // 2 + int(frm)] = op
        self.edges = nn.ModuleList(EDGE_OPS[op](ch) for op in self.ops)

    def forward(self, x):
        vals = [x]
        for to in range(1, self.nodes):
            acc = None
            for frm in range(to):
                e = to * (to - 1) // 2 + frm
                if vals[frm] is None or self.ops[e] == "none":
                    continue
                out = self.edges[e](vals[frm])
                acc = out if acc is None else acc + out
            vals.append(acc)
        return vals[-1] if vals[-1] is not None else torch.zeros_like(x)


class Net(nn.Module):
    """The exported network: input normalisation (the buffers `mean` and `std`), then the architecture."""

    def __init__(self, arch=ARCH, family=FAMILY, input_shape=INPUT_SHAPE, classes=len(CLASSES), cell=CELL):
        super().__init__()
        self.register_buffer("mean", torch.zeros(input_shape))
        self.register_buffer("std", torch.ones(input_shape))
        self.family = family
        if family == "cell":
            ch = cell["channels"]
            self.stem = ReLUConvBN(input_shape[0], ch, 3, relu=False)
            stages = []
            for s in range(cell["stages"]):
                if s > 0:
                    stages.append(Reduction(ch))
                    ch *= 2
                stages.extend(Cell(arch, ch) for _ in range(cell["cells_per_stage"]))
            self.stages = nn.ModuleList(stages)
            self.head_bn = nn.BatchNorm2d(ch)
            self.head = nn.Linear(ch, classes)
        else:
            # `linear`: no block, the inputs straight to the classes (a dense space only).
            specs = [] if arch == "linear" else arch.split("/")
            # Over text a block with a kernel is a 1-D convolution over words, run first, whatever its place.
            words = [s for s in specs if s.startswith("conv")] if TEXT else []
            specs = [s for s in specs if s not in words]
            self.conv = bool(specs) and specs[0].startswith("conv")
            self.image = len(input_shape) == 3
            c, h, w = input_shape if self.conv else (math.prod(input_shape), 1, 1)
            blocks = []
            for i, spec in enumerate(specs):
                blocks.append(Block(spec, c, h, w, TEXT if i == 0 else (), words if i == 0 else ()))
                if blocks[-1].pool is not None:
                    h, w = h // 2, w // 2
                c = blocks[-1].out
            self.blocks = nn.ModuleList(blocks)
            if TEXT and not specs:
                self.head = TextHead(c, classes, TEXT, words)
            else:
                self.head = nn.Linear(c * h * w, classes)

    def forward(self, x):
        x = (x - self.mean) / self.std
        if self.family == "cell":
            x = self.stem(x)
            for stage in self.stages:
                x = stage(x)
            return self.head(F.relu(self.head_bn(x)).mean((2, 3)))
        if self.image and not self.conv:
            # A dense network reads an image's values in (height, width, channel) order.
            x = x.permute(0, 2, 3, 1).flatten(1)
        for block in self.blocks:
            x = block(x)
        return self.head(x.flatten(1))


class Ensemble(nn.Module):
    """The exported ensemble: its networks (`members.I`) give class probabilities, averaged with the weights
    of MEMBERS; the output is their logarithm, whose largest is the class."""

    def __init__(self, members=MEMBERS):
        super().__init__()
        self.members = nn.ModuleList(Net(arch) for arch, _ in members)
        self.weights = [w for _, w in members]

    def forward(self, x):
        return torch.log(sum(w * F.softmax(m(x), dim=1) for m, w in zip(self.members, self.weights)))
