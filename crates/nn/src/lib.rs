//! `nn`: the small neural-network library every training in `nas` goes through.
//!
//! It builds a network from an architecture of the search space ([`model::Model`]), trains it with AdamW on
//! rows it is given ([`train::train`], or several folds as one grouped network, [`train::train_grouped`]),
//! and predicts. The differentiable ops are in [`ops`]; on the CPU they are hand-written candle custom ops:
//! the convolution, bias add and 3×3 average pool in [`conv_op`], batch norm + activation + 2×2 pooling as one
//! op in [`pointwise`]. [`device`] finds and opens CPUs and CUDA GPUs; [`mem`] measures a training's memory.
//!
//! Key design decisions:
//! - It knows nothing of runs: no run directory, candidates, results or leases. The evaluate stage (k-fold
//!   cross-validation) and the export crate (retraining the winner, prediction) call it with tensors and
//!   typed settings ([`train::Hyper`]), so it can be tested, benchmarked and replaced on its own.
//! - Parallel trainings, not parallel ops: the networks are small, so candle's own threading costs more than
//!   it gives. [`init_threads`] makes every op single-threaded; callers run trainings side by side. Every
//!   random stream is derived from (seed, purpose, stream name), so results do not depend on the schedule.
//! - Every op a training goes through has a finite-difference gradient check in its tests; candle ops known
//!   to be wrong (its pooling, `LayerNorm`, `softmax_last_dim`) are not used.
#![deny(missing_docs)]

/// The activations of the fused CPU ops.
mod act_fn;
/// AdamW, one pass per parameter on the CPU.
pub mod adamw;
/// Random shifts and mirror images of a mini-batch's images.
pub mod augment;
/// 3×3 average pooling as one CPU op.
pub mod avg_pool3;
/// The embedding bag as one CPU op.
pub mod bag;
/// A bias added along the last dimension as one CPU op.
pub mod bias;
/// Batch normalisation with running statistics.
pub mod bn;
/// A convolution and what follows it as one CPU op.
pub mod conv_block;
/// The hand-written CPU convolution.
pub mod conv_op;
/// What the CPU kernels share: element types, scratch buffers, dtype dispatch.
pub mod cpu;
/// CPU or CUDA devices.
pub mod device;
/// The direct 3×3 stride-1 convolution and its gradients.
mod direct3;
pub mod mem;
pub mod model;
pub mod ops;
/// One-pass CPU activation, pooling and batch norm.
pub mod pointwise;
pub mod proxy;
pub mod train;
pub mod word_conv;

pub use model::Model;
pub use train::{Hyper, Trained};

static THREADS: std::sync::Once = std::sync::Once::new();

/// Makes candle single-threaded inside each training (call before any candle op; the CLI does it first
/// thing). candle's matmul reads `RAYON_NUM_THREADS` and its elementwise ops `CANDLE_NUM_THREADS`.
pub fn init_threads() {
    THREADS.call_once(|| {
        std::env::set_var("RAYON_NUM_THREADS", "1");
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    });
}

/// Number of concurrent trainings: the setting, or one per core.
pub fn thread_count(setting: usize) -> usize {
    if setting > 0 {
        setting
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}
