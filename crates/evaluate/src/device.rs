//! Devices: the CPU, or CUDA GPUs found through cudarc (build with `--features cuda`).
//!
//! On the CPU, trainings run one per core (see [`crate::cross_validate`]). With GPUs, each GPU gets its own
//! trainings — as many at once as its free memory allows, up to [`MAX_PER_GPU`] — taking (candidate, fold) jobs
//! from the same queue; a training that fails on the GPU (out of memory included) is recorded as a failed
//! candidate like any other error, and the search goes on.

use anyhow::{anyhow, bail, Result};
use candle_core::Device;

/// At most this many concurrent trainings on one GPU.
pub const MAX_PER_GPU: usize = 8;

/// Memory assumed per concurrent training when sizing a GPU's share (small networks, batch 64).
const BYTES_PER_TRAINING: usize = 1 << 30;

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

/// Concurrent trainings for a GPU with `free` bytes free.
pub fn trainings_per_gpu(free: usize) -> usize {
    (free / BYTES_PER_TRAINING).clamp(1, MAX_PER_GPU)
}

/// The devices to train on for a `device` setting (`cpu`, `cuda`, `cuda:N`, `auto`), each repeated as many
/// times as trainings run on it at once; `cpu_threads` trainings on the CPU.
pub fn resolve(setting: &str, cpu_threads: usize) -> Result<Vec<Device>> {
    let cpu = || vec![Device::Cpu; cpu_threads.max(1)];
    let on = |gs: &[Gpu]| -> Result<Vec<Device>> {
        let mut out = Vec::new();
        for g in gs {
            let dev = Device::new_cuda(g.ordinal)
                .map_err(|e| anyhow!("GPU {} ({}): {e}", g.ordinal, g.name))?;
            out.extend(std::iter::repeat_n(dev, trainings_per_gpu(g.free)));
        }
        Ok(out)
    };
    match setting {
        "cpu" => Ok(cpu()),
        "auto" => {
            let gs = gpus()?;
            if gs.is_empty() {
                Ok(cpu())
            } else {
                on(&gs)
            }
        }
        s if s.starts_with("cuda") => {
            if !cuda_built() {
                bail!("device \"{setting}\": this nas was built without CUDA (build with `cargo build --release --features cuda`)");
            }
            let gs = gpus()?;
            if gs.is_empty() {
                bail!("device \"{setting}\": no CUDA GPU found");
            }
            match setting.strip_prefix("cuda:") {
                None => on(&gs),
                Some(n) => {
                    let n: usize = n
                        .parse()
                        .map_err(|_| anyhow!("device \"{setting}\": expected cuda:N"))?;
                    let g = gs.iter().find(|g| g.ordinal == n).ok_or_else(|| {
                        anyhow!(
                            "device \"{setting}\": there are {} GPUs (0..{})",
                            gs.len(),
                            gs.len()
                        )
                    })?;
                    on(std::slice::from_ref(g))
                }
            }
        }
        other => bail!("device \"{other}\": expected cpu, cuda, cuda:N or auto"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_auto_without_gpus_train_on_the_cpu() {
        assert_eq!(resolve("cpu", 3).unwrap().len(), 3);
        if gpus().unwrap().is_empty() {
            assert!(resolve("auto", 2).unwrap().iter().all(|d| d.is_cpu()));
            let e = resolve("cuda:0", 1).unwrap_err().to_string();
            assert!(
                e.contains("without CUDA") || e.contains("no CUDA GPU"),
                "{e}"
            );
        } else {
            eprintln!("GPUs present: the no-GPU checks are skipped");
        }
        assert!(resolve("tpu", 1).is_err());
        assert_eq!(trainings_per_gpu(0), 1);
        assert_eq!(trainings_per_gpu(80 << 30), MAX_PER_GPU);
    }
}
