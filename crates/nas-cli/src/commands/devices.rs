//! `nas devices`: what training can use — CPU cores, and CUDA GPUs with their free memory.

use anyhow::Result;

/// `nas devices`.
pub(crate) fn run() -> Result<()> {
    println!(
        "cpu: {} cores (one training per core)",
        evaluate::thread_count(0)
    );
    if !nn::device::cuda_built() {
        println!("cuda: not in this build (cargo build --release --features cuda)");
        return Ok(());
    }
    let gpus = nn::device::gpus()?;
    if gpus.is_empty() {
        println!("cuda: built in; no GPU found (device = \"auto\" trains on the CPU)");
    }
    for g in gpus {
        println!(
            "cuda:{}: {}, {:.1} of {:.1} GiB free (up to {} trainings at once on small data)",
            g.ordinal,
            g.name,
            g.free as f64 / (1u64 << 30) as f64,
            g.total as f64 / (1u64 << 30) as f64,
            nn::device::trainings_per_gpu(
                g.free,
                nn::device::bytes_per_training(0, 0, 0),
                evaluate::thread_count(0)
            )
        );
    }
    Ok(())
}
