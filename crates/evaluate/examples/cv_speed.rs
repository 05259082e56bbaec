//! Cross-validated training speed on the built-in digits, ours against PyTorch, in one run.
//!
//! `cargo run --release -p evaluate --example cv_speed -- [--python bench/.venv/bin/python] [--epochs N]`
//! (`bench/run.sh` installs PyTorch into that venv and runs this.)
//!
//! For an MLP 64-128-128-10 and a small CNN conv3×3(16)-relu-conv3×3(32)-relu-linear, the workload is what a
//! search evaluates: a batch of candidates (here the same architecture twice, as candidates 1 and 2) × k = 5
//! folds, AdamW, batch 64. Printed per model, in samples/second (training rows × epochs / wall time):
//! PyTorch (trainings one after another, all cores), ours one by one (one training at a time), ours parallel
//! (one training per core), the ratios, and our achieved GFLOP/s against the matmul peak measured here.

use anyhow::{bail, Context, Result};
use space::{CandidateFile, Entry, Experiment, SpaceFile};
use std::io::Write;
use std::time::Instant;

struct Workload {
    name: &'static str,
    arch: &'static str,
    space: &'static str,
    torch: &'static str,
}

const MODELS: [Workload; 2] = [
    Workload {
        name: "MLP 64-128-128-10",
        arch: "fc128-relu/fc128-relu",
        space: "family = \"chain\"\nblock = \"dense\"\ndepth = [2, 2]\nwidth = [128]\nactivation = [\"relu\"]\nbatch_norm = [false]\ndropout = [0.0]\nresidual = [false]\n",
        torch: "mlp",
    },
    Workload {
        name: "CNN c3x3(16)-c3x3(32)-fc",
        arch: "conv16x3-relu/conv32x3-relu",
        space: "family = \"chain\"\nblock = \"conv\"\ndepth = [2, 2]\nwidth = [16, 32]\nkernel = [3]\nactivation = [\"relu\"]\npool = [\"none\"]\nbatch_norm = [false]\ndropout = [0.0]\nresidual = [false]\n",
        torch: "cnn",
    },
];

// The same allocator as the `nas` binary.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const FOLDS: usize = 5;
const CANDIDATES: usize = 2;

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

fn experiment(w: &Workload, epochs: usize) -> Result<Experiment> {
    let text = format!(
        "seed = 1\n[space]\n{}[evaluate]\nfolds = {FOLDS}\nepochs = {epochs}\nbatch_size = 64\nlr = 0.003\nweight_decay = 0.0001\n",
        w.space
    );
    Ok(toml::from_str(&text)?)
}

/// Our cross-validation of the workload with `threads` concurrent trainings: (wall s, fold scores).
fn ours(
    sf: &SpaceFile,
    def: &space::SpaceDef,
    data: &space::Dataset,
    arch: &str,
    threads: usize,
) -> Result<(f64, Vec<Vec<f64>>)> {
    let parsed = def.parse(arch)?;
    let (params, flops) = def.cost(&parsed, &sf.input);
    let entries: Vec<Entry> = (1..=CANDIDATES as u64)
        .map(|id| Entry {
            candidate: CandidateFile {
                version: space::ARTIFACT_VERSION,
                kind: "nas.candidate".into(),
                id,
                batch: 0,
                batch_size: CANDIDATES as u64,
                arch: arch.into(),
                key: def.key(&parsed, &sf.input),
                origin: space::Origin::Other("bench".into()),
                params,
                flops,
            },
            arch: parsed.clone(),
            result: None,
        })
        .collect();
    let t0 = Instant::now();
    let devices = vec![candle_core::Device::Cpu; threads];
    let rs = evaluate::cross_validate(sf, def, data, &entries, &devices, &|_| {}, &|_| Ok(()))?;
    let wall = t0.elapsed().as_secs_f64();
    for r in &rs {
        if !r.ok() {
            bail!("{arch}: {}", r.error);
        }
    }
    Ok((wall, rs.into_iter().map(|r| r.fold_scores).collect()))
}

/// Writes fold, label and channel-first features for the PyTorch script.
fn write_csv(path: &std::path::Path, data: &space::Dataset, folds: &[usize]) -> Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    write!(f, "fold,label")?;
    for j in 0..data.features {
        write!(f, ",x{j}")?;
    }
    writeln!(f)?;
    for (r, row) in data.x.chunks(data.features).enumerate() {
        write!(f, "{},{}", folds[r], data.y[r])?;
        for v in row {
            write!(f, ",{v}")?;
        }
        writeln!(f)?;
    }
    Ok(())
}

fn pytorch(
    python: &str,
    csv: &std::path::Path,
    w: &Workload,
    epochs: usize,
) -> Result<(f64, String)> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench/pytorch_cv.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(csv)
        .args([
            w.torch,
            &epochs.to_string(),
            "64",
            "0.003",
            "0.0001",
            &CANDIDATES.to_string(),
        ])
        .output()
        .with_context(|| format!("{python}: cannot run"))?;
    if !out.status.success() {
        bail!("{script}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let v: serde_json::Value =
        serde_json::from_str(&line).with_context(|| format!("PyTorch printed {line}"))?;
    let sps = v["samples_per_s"].as_f64().context("samples_per_s")?;
    let note = format!(
        "torch {} with {} threads, mean fold accuracy {:.4}",
        v["torch"].as_str().unwrap_or("?"),
        v["threads"],
        v["mean_acc"].as_f64().unwrap_or(f64::NAN)
    );
    Ok((sps, note))
}

fn main() -> Result<()> {
    let mut python: Option<String> = None;
    let mut epochs = 5usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--python" => python = args.next(),
            "--epochs" => epochs = args.next().context("--epochs N")?.parse()?,
            other => bail!("unknown argument {other} (expected --python PATH, --epochs N)"),
        }
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // The peak first: `init_threads` limits rayon's global pool, which gemm's parallel path uses.
    let peak1 = matmul_gflops(1);
    let peak = matmul_gflops(cores);
    evaluate::init_threads();
    println!("machine: {cores} cores; f32 matmul 512³ peak {peak1:.1} GFLOP/s on 1 core, {peak:.1} GFLOP/s on {cores}");
    println!("workload: {CANDIDATES} candidates × {FOLDS} folds, {epochs} epochs, batch 64, AdamW (lr 0.003, wd 1e-4)\n");
    println!(
        "| model | PyTorch (samples/s) | ours one-by-one | ours parallel | parallel / PyTorch | one-by-one / PyTorch | ours GFLOP/s (% of peak) |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let tmp = std::env::temp_dir().join(format!("nas-cv-speed-{}.csv", std::process::id()));
    let mut notes = Vec::new();
    for w in &MODELS {
        let (sf, def, data) = SpaceFile::resolve(experiment(w, epochs)?)?;
        let folds = nn::train::stratified_folds(&data.y, FOLDS, sf.experiment.seed);
        let rows_trained: usize = (0..FOLDS)
            .map(|f| folds.iter().filter(|&&g| g != f).count())
            .sum();
        let samples = (CANDIDATES * rows_trained * epochs) as f64;
        let (t1, s1) = ours(&sf, &def, &data, w.arch, 1)?;
        let (tp, sp) = ours(&sf, &def, &data, w.arch, cores)?;
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
                write_csv(&tmp, &data, &folds)?;
                let (sps, note) = pytorch(py, &tmp, w, epochs)?;
                (Some(sps), note)
            }
            None => (None, "PyTorch not run (no --python)".into()),
        };
        let mean: f64 = sp.iter().flatten().sum::<f64>() / sp.iter().flatten().count() as f64;
        notes.push(format!(
            "{}: ours mean fold accuracy {mean:.4}; {note}",
            w.name
        ));
        let fmt = |x: Option<f64>| x.map_or("—".into(), |v| format!("{v:.0}"));
        let ratio = |ours: f64| torch.map_or("—".into(), |t| format!("{:.2}×", ours / t));
        println!(
            "| {} | {} | {:.0} | {:.0} | {} | {} | {:.2} ({:.0}%) |",
            w.name,
            fmt(torch),
            samples / t1,
            samples / tp,
            ratio(samples / tp),
            ratio(samples / t1),
            gflops,
            100.0 * gflops / peak
        );
    }
    let _ = std::fs::remove_file(&tmp);
    println!();
    for n in notes {
        println!("{n}");
    }
    println!("one-by-one and parallel fold scores: identical");
    Ok(())
}
