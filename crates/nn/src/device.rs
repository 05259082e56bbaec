//! Devices: the CPU, or CUDA GPUs found through cudarc (build with `--features cuda`).
//!
//! On the CPU, trainings run one per core (see [`crate::cross_validate`]). On a GPU a job is one candidate
//! with its folds batched into one grouped network; each GPU runs as many jobs at once as its free memory
//! holds (from the data size, [`bytes_per_training`]), at most one per CPU core (each job's thread issues its
//! kernels, on its own CUDA stream) and at most [`MAX_PER_GPU`]. A training that fails on the GPU (out of
//! memory included) is recorded as a failed candidate like any other error, and the search goes on.
//! A process opens each GPU once ([`resolve`] keeps the handles): candle compiles its kernels per handle.

use anyhow::{anyhow, bail, Result};
use candle_core::Device;
use space::DeviceSetting;
use std::sync::Mutex;

/// At most this many concurrent trainings on one GPU: measured on an H200 with the default space on digits,
/// one process ran 4 trainings at once at 4.75 candidates/s, 8 at 3.84 and 16 at 3.65 (the driver serialises
/// kernel launches within a process; more worker processes, `nas evaluate --worker`, add throughput).
pub const MAX_PER_GPU: usize = 4;

/// Device memory one grouped training needs, estimated: its folds' training rows (uploaded once, `folds`
/// copies of about the whole data set) twice over for gathered batches and working space, and at least
/// 256 MiB for the network, its activations and the allocator's slack.
pub fn bytes_per_training(rows: usize, features: usize, folds: usize) -> usize {
    (2 * folds * rows * features * 4).max(256 << 20)
}

/// One GPU as cudarc reports it.
#[derive(Clone, Debug)]
pub struct Gpu {
    /// CUDA ordinal.
    pub ordinal: usize,
    /// Device name.
    pub name: String,
    /// Free memory, bytes.
    pub free: usize,
    /// Total memory, bytes.
    pub total: usize,
}

/// Whether this build has the CUDA backend.
pub fn cuda_built() -> bool {
    cfg!(feature = "cuda")
}

/// The GPUs of this machine (none without the `cuda` feature, or without a driver or device).
pub fn gpus() -> Result<Vec<Gpu>> {
    #[cfg(feature = "cuda")]
    {
        use cudarc::driver::CudaContext;
        let n = match CudaContext::device_count() {
            Ok(n) => n.max(0) as usize,
            Err(_) => return Ok(Vec::new()),
        };
        let mut out = Vec::new();
        for ordinal in 0..n {
            let ctx = CudaContext::new(ordinal)
                .map_err(|e| anyhow!("GPU {ordinal}: cannot open: {e}"))?;
            let name = ctx.name().unwrap_or_else(|_| "unknown".into());
            let (free, total) = ctx
                .mem_get_info()
                .map_err(|e| anyhow!("GPU {ordinal}: cannot read memory: {e}"))?;
            out.push(Gpu {
                ordinal,
                name,
                free,
                total,
            });
        }
        Ok(out)
    }
    #[cfg(not(feature = "cuda"))]
    {
        Ok(Vec::new())
    }
}

/// Concurrent trainings for a GPU with `free` bytes free, each needing `per_training` bytes, on a machine
/// with `cores` CPU cores: 90% of the free memory, at most one per core and [`MAX_PER_GPU`], at least one.
pub fn trainings_per_gpu(free: usize, per_training: usize, cores: usize) -> usize {
    (free / 10 * 9 / per_training.max(1)).clamp(1, MAX_PER_GPU.min(cores.max(1)))
}

/// GPUs opened by this process: each with its free memory when first opened and the training handles made so
/// far. Each handle has its own CUDA stream and cuBLAS handle (trainings sharing one handle serialised:
/// measured on an H200, 16 of them ran no faster than one).
static OPENED: Mutex<Vec<(Gpu, Vec<Device>)>> = Mutex::new(Vec::new());

/// The GPUs (all, or only `cuda:N`), and for each its first `n(gpu, number of GPUs)` training handles, opened
/// once per process.
fn handles(only: Option<usize>, n: impl Fn(&Gpu, usize) -> usize) -> Result<Vec<Device>> {
    let mut o = OPENED.lock().unwrap();
    if o.is_empty() {
        *o = gpus()?.into_iter().map(|g| (g, Vec::new())).collect();
    }
    if let Some(k) = only {
        if !o.is_empty() && !o.iter().any(|(g, _)| g.ordinal == k) {
            bail!("there are {} GPUs (0..{})", o.len(), o.len());
        }
    }
    let mut out = Vec::new();
    let count = o.len();
    for (g, hs) in o.iter_mut() {
        if only.is_some_and(|k| k != g.ordinal) {
            continue;
        }
        let want = n(g, count);
        while hs.len() < want {
            hs.push(open_handle(g)?);
        }
        out.extend(hs[..want].iter().cloned());
    }
    Ok(out)
}

fn open_handle(g: &Gpu) -> Result<Device> {
    #[cfg(feature = "cuda")]
    {
        let d = Device::new_cuda_with_stream(g.ordinal)
            .map_err(|e| anyhow!("GPU {} ({}): {e}", g.ordinal, g.name))?;
        if let Device::Cuda(c) = &d {
            // SAFETY: a training uses only tensors made on its own handle, so its stream never touches memory
            // another stream uses: cudarc's cross-stream event tracking (an event per tensor) is not needed.
            unsafe { c.cuda_stream().context().disable_event_tracking() };
        }
        Ok(d)
    }
    #[cfg(not(feature = "cuda"))]
    {
        bail!(
            "GPU {} ({}): this nas was built without CUDA",
            g.ordinal,
            g.name
        )
    }
}

/// The devices to train on for a `device` setting, one entry per training that runs at once: `cpu_threads`
/// on the CPU; on each GPU as many as [`trainings_per_gpu`] allows for trainings of `per_training` bytes
/// ([`bytes_per_training`]), at most `cap` when it is not 0.
pub fn resolve(
    setting: DeviceSetting,
    cpu_threads: usize,
    per_training: usize,
    cap: usize,
) -> Result<Vec<Device>> {
    let cpu = || vec![Device::Cpu; cpu_threads.max(1)];
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let on = |only: Option<usize>| -> Result<Vec<Device>> {
        handles(only, |g, count| {
            let n = trainings_per_gpu(g.free, per_training, (cores / count.max(1)).max(1));
            if cap > 0 {
                n.min(cap)
            } else {
                n
            }
        })
        .map_err(|e| anyhow!("device \"{setting}\": {e}"))
    };
    let only = match setting {
        DeviceSetting::Cpu => return Ok(cpu()),
        DeviceSetting::Auto => {
            let ds = on(None)?;
            return Ok(if ds.is_empty() { cpu() } else { ds });
        }
        DeviceSetting::Cuda => None,
        DeviceSetting::CudaN(n) => Some(n),
    };
    if !cuda_built() {
        bail!("device \"{setting}\": this nas was built without CUDA (build with `cargo build --release --features cuda`)");
    }
    let ds = on(only)?;
    if ds.is_empty() {
        bail!("device \"{setting}\": no CUDA GPU found");
    }
    Ok(ds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_auto_without_gpus_train_on_the_cpu() {
        let mb = 1 << 20;
        assert_eq!(resolve(DeviceSetting::Cpu, 3, mb, 0).unwrap().len(), 3);
        if gpus().unwrap().is_empty() {
            assert!(resolve(DeviceSetting::Auto, 2, mb, 0)
                .unwrap()
                .iter()
                .all(|d| d.is_cpu()));
            let e = resolve(DeviceSetting::CudaN(0), 1, mb, 0)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("without CUDA") || e.contains("no CUDA GPU"),
                "{e}"
            );
        } else {
            eprintln!("GPUs present: the no-GPU checks are skipped");
        }
        assert!("tpu".parse::<DeviceSetting>().is_err());
        let gb = 1 << 30;
        assert_eq!(trainings_per_gpu(0, gb, 16), 1, "at least one");
        assert_eq!(trainings_per_gpu(80 * gb, gb, 64), MAX_PER_GPU);
        assert_eq!(trainings_per_gpu(80 * gb, gb, 2), 2, "one per core");
        assert_eq!(
            trainings_per_gpu(10 * gb, 3 * gb, 64),
            3,
            "what memory holds"
        );
        // digits (1797 × 64) needs the floor; a 60000 × 784 data set with 5 folds about 1.75 GiB.
        assert_eq!(bytes_per_training(1797, 64, 5), 256 << 20);
        assert_eq!(bytes_per_training(60000, 784, 5), 1_881_600_000);
    }
}
