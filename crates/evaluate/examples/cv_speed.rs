//! Cross-validated training speed, ours against PyTorch, in one run.
//!
//! `cargo run --release -p evaluate --example cv_speed -- [--python PATH] [--epochs N] [--only S] [--fashion CSV]`
//! (`bench/run.sh` finds PyTorch in the export check's venv, installing it there on first use, and runs this.)
//!
//! The workload is what a search evaluates: candidates × k = 5 folds, AdamW, batch 64. On the built-in 8×8
//! digits (an MLP and a small CNN): 2 candidates, `--epochs` (default 5). At image scale, 1 candidate and 1 epoch:
//! 10,000 28×28×1 images (`--fashion` fashion10k.csv.gz, else a generated set of that size) with the
//! reference CNN of fashion10k's README, a 5×5 variant, and one with batch norm and residual blocks; 4,000
//! generated 32×32×3 images with a CNN and a NAS-Bench-201 cell network; 8,000 texts (`--text` a CSV with
//! `text` and `novel` columns, e.g. austen, else generated ones) with TF-IDF bags of words and pairs and of
//! character grams into one 64-wide block, 2 epochs (our side's time includes each fold's tokenizing and
//! vocabularies; PyTorch reads the ids and weights encoded once). Both sides
//! build the network from the same architecture string (PyTorch through the module `nas export --format pytorch`
//! writes). PyTorch runs two ways: the folds one after another with all cores, and one single-thread process
//! per core (each a share of the folds; its training time is the slowest process's). Printed per workload, in
//! samples/second (training rows × epochs / wall time of the training): both PyTorch set-ups, ours one by one
//! (one training at a time) and parallel (one training per core), ours parallel against the faster PyTorch
//! set-up, and our achieved GFLOP/s against the matmul peak measured here. `--only S` runs the workloads whose
//! name contains S.

use anyhow::{bail, Context, Result};
use space::{CandidateFile, Entry, Experiment, Plan, SpaceFile};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Where a workload's rows come from.
#[derive(Clone, Copy, PartialEq)]
enum Data {
    /// The built-in 8×8 digits.
    Digits,
    /// 10,000 28×28×1 images: `--fashion CSV` (fashion10k) or a generated set ([`synthetic`]).
    Image28,
    /// 4,000 generated 32×32×3 images ([`synthetic`]).
    Image32,
    /// 8,000 texts: `--text CSV` (a `text` and a `label` column, e.g. austen) or a generated set
    /// ([`synthetic_text`]).
    Text,
}

struct Workload {
    name: &'static str,
    arch: &'static str,
    /// `[space]` lines that admit the architecture.
    space: &'static str,
    data: Data,
}

const CHAIN_CONV: &str = "family = \"chain\"\nblock = \"conv\"\ndepth = [1, 4]\nwidth = [8, 16, 32, 64]\nkernel = [3, 5]\nactivation = [\"relu\", \"silu\"]\npool = [\"none\", \"max\", \"avg\"]\nbatch_norm = [false, true]\ndropout = [0.0]\nresidual = [false, true]\n";

const MODELS: [Workload; 9] = [
    Workload {
        name: "digits MLP 64-128-128-10",
        arch: "fc128-relu/fc128-relu",
        space: "family = \"chain\"\nblock = \"dense\"\ndepth = [2, 2]\nwidth = [128]\nactivation = [\"relu\"]\nbatch_norm = [false]\ndropout = [0.0]\nresidual = [false]\n",
        data: Data::Digits,
    },
    Workload {
        name: "digits CNN c3(16)-c3(32)",
        arch: "conv16x3-relu/conv32x3-relu",
        space: CHAIN_CONV,
        data: Data::Digits,
    },
    Workload {
        name: "28×28 CNN c3(32)-pool-c3(32)-pool",
        arch: "conv32x3-relu-maxpool/conv32x3-relu-maxpool",
        space: CHAIN_CONV,
        data: Data::Image28,
    },
    Workload {
        name: "28×28 CNN 5×5 c5(32)-pool-c5(32)-pool",
        arch: "conv32x5-relu-maxpool/conv32x5-relu-maxpool",
        space: CHAIN_CONV,
        data: Data::Image28,
    },
    Workload {
        name: "28×28 CNN bn+res c3(32)-bn-res-pool ×2",
        arch: "conv32x3-relu-bn-maxpool-res/conv32x3-relu-bn-maxpool-res",
        space: CHAIN_CONV,
        data: Data::Image28,
    },
    Workload {
        name: "32×32×3 CNN c3(32)-pool-c3(64)-pool",
        arch: "conv32x3-relu-maxpool/conv64x3-relu-maxpool",
        space: CHAIN_CONV,
        data: Data::Image32,
    },
    Workload {
        name: "text: TF-IDF bags of words+pairs and char 3-4-grams → fc64 (2 × 20,000 tokens)",
        arch: "fc64-relu",
        space: "family = \"chain\"\nblock = \"dense\"\ndepth = [1, 1]\nwidth = [64]\nactivation = [\"relu\"]\nbatch_norm = [false]\ndropout = [0.0]\nresidual = [false]\n",
        data: Data::Text,
    },
    Workload {
        name: "text: words in order → conv64x3 → conv64x3 dilated 2, residual → max over words, beside the bags → fc64",
        arch: "conv64x3-relu/conv64x3-relu-res-d2/fc64-relu",
        space: "family = \"chain\"\nblock = \"dense\"\ndepth = [3, 3]\nwidth = [64]\nkernel = [3]\ndilation = [1, 2]\nactivation = [\"relu\"]\nbatch_norm = [false]\ndropout = [0.0]\nresidual = [false, true]\n",
        data: Data::Text,
    },
    Workload {
        name: "32×32×3 NB201 cell (8 ch, 3 stages)",
        arch: "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|",
        space: "family = \"cell\"\nchannels = 8\ncells_per_stage = 1\nstages = 3\n",
        data: Data::Image32,
    },
];

// The same allocator as the `nas` binary.
#[global_allocator]
static ALLOC: nn::mem::Counting<mimalloc::MiMalloc> = nn::mem::Counting(mimalloc::MiMalloc);

const FOLDS: usize = 5;

/// Best-of-5 GFLOP/s of a 512³ f32 matmul with `threads` threads (1: no parallelism).
fn matmul_gflops(threads: usize) -> f64 {
    let n = 512;
    let a = vec![1.0f32; n * n];
    let b = vec![0.5f32; n * n];
    let mut c = vec![0.0f32; n * n];
    let par = if threads == 1 {
        gemm::Parallelism::None
    } else {
        gemm::Parallelism::Rayon(threads)
    };
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t0 = Instant::now();
        // SAFETY: three n×n row-major buffers.
        unsafe {
            gemm::gemm(
                n,
                n,
                n,
                c.as_mut_ptr(),
                1,
                n as isize,
                false,
                a.as_ptr(),
                1,
                n as isize,
                b.as_ptr(),
                1,
                n as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                par,
            )
        };
        best = best.min(t0.elapsed().as_secs_f64());
    }
    assert!((c[0] - 0.5 * n as f32).abs() < 1e-3);
    2.0 * (n * n * n) as f64 / best / 1e9
}

/// The repository root.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `rows` generated images of `[c, h, w]` in 10 classes: each class a smooth random pattern, each image its
/// class's pattern plus noise, 0–255 (stream `(seed 1, "bench", [c, h, w])`). Written once as a CSV under
/// `dir`. (Training speed depends on the sizes, not on the pixels.)
fn synthetic(dir: &Path, [c, h, w]: [usize; 3], rows: usize) -> Result<PathBuf> {
    let path = dir.join(format!("synthetic{c}x{h}x{w}.csv"));
    if path.exists() {
        return Ok(path);
    }
    let mut rng = space::Rng::derive(1, "bench", &[c as u64, h as u64, w as u64]);
    let f = c * h * w;
    let patterns: Vec<Vec<f64>> = (0..10)
        .map(|_| {
            let (a, b, c) = (
                rng.uniform() * 6.0,
                rng.uniform() * 6.0,
                rng.uniform() * 6.0,
            );
            (0..f)
                .map(|j| {
                    let (ch, y, x) = ((j / (h * w)) as f64, ((j / w) % h) as f64, (j % w) as f64);
                    128.0 + 80.0 * ((a * x / w as f64 + b * y / h as f64 + c * ch).sin())
                })
                .collect()
        })
        .collect();
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
    let header: Vec<String> = (0..f).map(|j| format!("p{j}")).collect();
    writeln!(out, "{},label", header.join(","))?;
    for r in 0..rows {
        let class = r % 10;
        for v in &patterns[class] {
            write!(
                out,
                "{:.0},",
                (v + 90.0 * (rng.uniform() - 0.5)).clamp(0.0, 255.0)
            )?;
        }
        writeln!(out, "{class}")?;
    }
    Ok(path)
}

/// 8,000 generated texts of 40–80 words in 6 classes (stream `(seed 1, "bench", [6])`): words drawn from a
/// 5,000-word vocabulary, a third of them from a class's own 300, so that pairs and words both matter. Written
/// once as a CSV (`text`, `label`) under `dir`. (Training speed depends on the sizes, not on the words.)
fn synthetic_text(dir: &Path) -> Result<PathBuf> {
    let path = dir.join("synthetic-text.csv");
    if path.exists() {
        return Ok(path);
    }
    let mut rng = space::Rng::derive(1, "bench", &[6]);
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
    writeln!(out, "text,label")?;
    for r in 0..8000 {
        let class = r % 6;
        let n = 40 + rng.below(41);
        let words: Vec<String> = (0..n)
            .map(|_| match rng.uniform() < 1.0 / 3.0 {
                true => format!("w{}", 5000 + class * 300 + rng.below(300)),
                false => format!("w{}", rng.below(5000)),
            })
            .collect();
        writeln!(out, "{},c{class}", words.join(" "))?;
    }
    Ok(path)
}

/// The workload's experiment; `fashion`: the fashion10k CSV, `text`: a text CSV, when given.
fn experiment(
    w: &Workload,
    epochs: usize,
    dir: &Path,
    (fashion, text_csv): (Option<&Path>, Option<&Path>),
) -> Result<Experiment> {
    let section = |source: PathBuf, shape: [usize; 3]| {
        format!(
            "[data]\nsource = \"{}\"\nshape = {shape:?}\n",
            source.display()
        )
    };
    let data = match w.data {
        Data::Digits => String::new(),
        Data::Image28 => section(
            match fashion {
                Some(f) => f.to_path_buf(),
                None => synthetic(dir, [1, 28, 28], 10_000)?,
            },
            [1, 28, 28],
        ),
        Data::Image32 => section(synthetic(dir, [3, 32, 32], 4000)?, [3, 32, 32]),
        Data::Text => {
            let source = match text_csv {
                Some(t) => t.to_path_buf(),
                None => synthetic_text(dir)?,
            };
            let label = if text_csv.is_some() { "novel" } else { "label" };
            format!(
                "[data]\nsource = \"{}\"\nlabel = \"{label}\"\ntext = [\"text\"]\n",
                source.display()
            )
        }
    };
    let text = format!(
        "seed = 1\n{data}[space]\n{}[evaluate]\nfolds = {FOLDS}\nepochs = {epochs}\nbatch_size = 64\nweight_decay = 0.0001\n",
        w.space
    );
    Ok(toml::from_str(&text)?)
}

/// Our cross-validation of the workload with `threads` concurrent trainings: (wall s, fold scores).
fn ours(
    plan: &Plan,
    data: &data::Dataset,
    arch: &str,
    candidates: usize,
    threads: usize,
) -> Result<(f64, Vec<Vec<f64>>)> {
    let (sf, def) = (&plan.file, &plan.def);
    let parsed = def.parse(arch)?;
    let (params, flops) = def.cost(&parsed, &sf.input);
    let entries: Vec<Entry> = (1..=candidates as u64)
        .map(|id| Entry {
            candidate: CandidateFile {
                version: space::ARTIFACT_VERSION,
                kind: "nas.candidate".into(),
                id,
                batch: 0,
                batch_size: candidates as u64,
                arch: arch.into(),
                key: def.key(&parsed, &sf.input),
                origin: space::Origin::Other("bench".into()),
                params,
                flops,
                epochs: None,
            },
            arch: parsed.clone(),
            result: None,
        })
        .collect();
    let t0 = Instant::now();
    let devices = vec![candle_core::Device::Cpu; threads];
    let rs = evaluate::cross_validate(plan, data, &entries, &devices, &|_| {}, &|_| Ok(()))?;
    let wall = t0.elapsed().as_secs_f64();
    for r in &rs {
        if !r.ok() {
            bail!("{arch}: {}", r.error);
        }
    }
    Ok((wall, rs.into_iter().map(|r| r.fold_scores).collect()))
}

/// Writes fold, label and channel-first features for the PyTorch script (a text's token ids, encoded with a
/// vocabulary fitted on all rows).
fn write_csv(path: &std::path::Path, data: &data::Dataset, folds: &[usize]) -> Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let all: Vec<usize> = (0..data.rows()).collect();
    let (x, features) = match data.text_columns().is_empty() {
        true => (data.x.clone(), data.features),
        false => {
            let p = data::prep::Prep::fit(
                &data.x,
                &data.columns,
                &all,
                None,
                space::encoding::Standardize::Feature,
            );
            (p.apply(&data.x, &data.columns, &all), p.width())
        }
    };
    write!(f, "fold,label")?;
    for j in 0..features {
        write!(f, ",x{j}")?;
    }
    writeln!(f)?;
    for (r, row) in x.chunks(features).enumerate() {
        write!(f, "{},{}", folds[r], data.y[r])?;
        for v in row {
            write!(f, ",{v}")?;
        }
        writeln!(f)?;
    }
    Ok(())
}

/// A workload's PyTorch runs: the interpreter, and `bench/pytorch_cv.py`'s arguments (the same for every run).
struct Torch {
    python: String,
    args: Vec<String>,
}

impl Torch {
    fn new(
        python: &str,
        csv: &Path,
        w: &Workload,
        sf: &SpaceFile,
        def: &space::SpaceDef,
        epochs: usize,
        candidates: usize,
    ) -> Torch {
        let text: Vec<String> = (sf.input.text.iter())
            .map(|t| format!("{}/{}/{}/{}", t.len, t.vocab, u8::from(t.weighted), t.seq))
            .collect();
        let shape = match (sf.input.shape, text.is_empty()) {
            (Some([c, h, w]), _) => format!("{c},{h},{w}"),
            (None, false) => format!("text:{}", text.join(",")),
            (None, true) => sf.input.features.to_string(),
        };
        let cell = match def {
            space::SpaceDef::Cell(c) => {
                format!("{},{},{}", c.channels, c.cells_per_stage, c.stages)
            }
            space::SpaceDef::Chain(_) => "-".into(),
        };
        let mut args = vec![
            repo().join("bench/pytorch_cv.py").display().to_string(),
            csv.display().to_string(),
            w.arch.into(),
            sf.experiment.space.family.to_string(),
            shape,
            cell,
        ];
        args.extend([epochs, 64].map(|v| v.to_string()));
        let lr = sf.experiment.evaluate.lr.unwrap_or(0.003);
        args.extend([lr.to_string(), "0.0001".into()]);
        args.push(candidates.to_string());
        Torch {
            python: python.into(),
            args,
        }
    }

    /// Starts one process: all threads and every fold, or with `part` `(i, n)` one thread and the folds f
    /// with f % n == i.
    fn spawn(&self, part: Option<(usize, usize)>) -> Result<std::process::Child> {
        std::process::Command::new(&self.python)
            .args(&self.args)
            .args(part.map(|(i, n)| format!("{i}/{n}")))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .with_context(|| format!("{}: cannot run", self.python))
    }
}

/// What a PyTorch process printed: (training seconds, samples, threads, mean accuracy, torch version).
fn pytorch_result(child: std::process::Child) -> Result<(f64, f64, u64, f64, String)> {
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "bench/pytorch_cv.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let v: serde_json::Value =
        serde_json::from_str(&line).with_context(|| format!("PyTorch printed {line}"))?;
    Ok((
        v["wall_s"].as_f64().context("wall_s")?,
        v["samples"].as_f64().context("samples")?,
        v["threads"].as_u64().unwrap_or(0),
        v["mean_acc"].as_f64().unwrap_or(f64::NAN),
        v["torch"].as_str().unwrap_or("?").to_string(),
    ))
}

/// Samples/s of both PyTorch set-ups (all threads, folds in sequence; one single-thread process per core),
/// and a note.
fn pytorch(torch: &Torch, cores: usize) -> Result<(f64, f64, String)> {
    let seq = pytorch_result(torch.spawn(None)?)?;
    let children: Vec<_> = (0..cores)
        .map(|i| torch.spawn(Some((i, cores))))
        .collect::<Result<_>>()?;
    let parts: Vec<_> = children
        .into_iter()
        .map(pytorch_result)
        .collect::<Result<_>>()?;
    let slowest = parts.iter().map(|p| p.0).fold(0.0, f64::max);
    let samples: f64 = parts.iter().map(|p| p.1).sum();
    let note = format!(
        "torch {} ({} threads in sequence), mean fold accuracy {:.4}",
        seq.4, seq.2, seq.3
    );
    Ok((seq.1 / seq.0, samples / slowest, note))
}

fn main() -> Result<()> {
    let mut python: Option<String> = None;
    let mut epochs = 5usize;
    let mut only = String::new();
    let mut fashion: Option<PathBuf> = None;
    let mut text: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--python" => python = args.next(),
            "--epochs" => epochs = args.next().context("--epochs N")?.parse()?,
            "--only" => only = args.next().context("--only TEXT")?,
            "--fashion" => fashion = Some(args.next().context("--fashion CSV")?.into()),
            "--text" => text = Some(args.next().context("--text CSV")?.into()),
            other => bail!(
                "unknown argument {other} (expected --python PATH, --epochs N, --only TEXT, --fashion CSV, --text CSV)"
            ),
        }
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // The peak first: `init_threads` limits rayon's global pool, which gemm's parallel path uses.
    let peak1 = matmul_gflops(1);
    let peak = matmul_gflops(cores);
    evaluate::init_threads();
    println!("machine: {cores} cores; f32 matmul 512³ peak {peak1:.1} GFLOP/s on 1 core, {peak:.1} GFLOP/s on {cores}");
    println!("workloads: candidates × {FOLDS} folds, batch 64, AdamW (wd 1e-4, lr the data kind's default: 0.003, text 0.02); digits: 2 candidates × {epochs} epochs; image scale: 1 candidate × 1 epoch; text: 1 candidate × 2 epochs\n");
    println!(
        "| workload | PyTorch in sequence | PyTorch per-core processes | ours one-by-one | ours parallel | ours parallel / faster PyTorch | ours GFLOP/s (% of peak) |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let dir = std::env::temp_dir().join(format!("nas-cv-speed-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let csv = dir.join("folds.csv");
    let mut notes = Vec::new();
    for w in MODELS.iter().filter(|w| w.name.contains(only.as_str())) {
        let (candidates, epochs) = match w.data {
            Data::Digits => (2, epochs),
            Data::Text => (1, 2),
            _ => (1, 1),
        };
        let sources = (fashion.as_deref(), text.as_deref());
        // Each timing gets the data afresh, read (and its texts tokenized) outside the timing, as once per
        // data load in a run; the PyTorch script's timing excludes reading too.
        let load = || data::resolve(experiment(w, epochs, &dir, sources)?);
        let t0 = Instant::now();
        let (plan, data) = load()?;
        let read_s = t0.elapsed().as_secs_f64();
        let (sf, def) = (&plan.file, &plan.def);
        let folds = space::folds::stratified_folds(&data.y, FOLDS, sf.experiment.seed);
        let rows_trained: usize = (0..FOLDS)
            .map(|f| folds.iter().filter(|&&g| g != f).count())
            .sum();
        let samples = (candidates * rows_trained * epochs) as f64;
        let (t1, s1) = ours(&plan, &data, w.arch, candidates, 1)?;
        let (tp, sp) = ours(&plan, &load()?.1, w.arch, candidates, cores)?;
        if s1 != sp {
            bail!(
                "{}: scores differ between one-by-one and parallel: {s1:?} vs {sp:?}",
                w.name
            );
        }
        let (_, macs) = def.cost(&def.parse(w.arch)?, &sf.input);
        // A training step costs about 3× the forward pass (forward, input gradient, weight gradient).
        let gflops = 6.0 * macs as f64 * samples / tp / 1e9;
        let (torch, note) = match &python {
            Some(py) => {
                write_csv(&csv, &data, &folds)?;
                let torch = Torch::new(py, &csv, w, sf, def, epochs, candidates);
                let (seq, per_core, note) = pytorch(&torch, cores)?;
                (Some((seq, per_core)), note)
            }
            None => (None, "PyTorch not run (no --python)".into()),
        };
        let mean: f64 = sp.iter().flatten().sum::<f64>() / sp.iter().flatten().count() as f64;
        notes.push(format!(
            "{}: ours mean fold accuracy {mean:.4} (reading the data {read_s:.1} s, not timed); {note}",
            w.name
        ));
        let fmt = |x: Option<f64>| x.map_or("—".into(), |v| format!("{v:.0}"));
        let ratio = torch.map_or("—".into(), |(a, b)| {
            format!("{:.2}×", samples / tp / a.max(b))
        });
        println!(
            "| {} | {} | {} | {:.0} | {:.0} | {} | {:.2} ({:.0}%) |",
            w.name,
            fmt(torch.map(|t| t.0)),
            fmt(torch.map(|t| t.1)),
            samples / t1,
            samples / tp,
            ratio,
            gflops,
            100.0 * gflops / peak
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!();
    for n in notes {
        println!("{n}");
    }
    println!("one-by-one and parallel fold scores: identical");
    Ok(())
}
