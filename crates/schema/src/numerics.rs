//! Reproducible numerics: how a torch stage pins the CPU kernels it runs so
//! that the same key, seed and thread count give the same bytes on other
//! machines, and the record of what a run computed with.
//!
//! libtorch picks kernels by the CPU's instruction set: oneDNN's
//! convolutions (`ONEDNN_MAX_CPU_ISA`), MKL's matrix products (`MKL_CBWR`,
//! Intel's conditional numerical reproducibility; `STRICT` also makes them
//! independent of memory alignment) and ATen's vectorised kernels
//! (`ATEN_CPU_CAPABILITY`). Training `train.trec.static` on an AVX-512 Intel
//! CPU, pinning oneDNN or MKL to AVX2 each changed the weights; ATen's AVX2
//! and AVX-512 kernels agreed, its scalar ones did not (BENCHMARKS.md,
//! "Reproducible numerics"). The reproducible mode caps all three at AVX2,
//! and the worker answers MKL's vendor check (MKL takes other kernels on
//! AMD CPUs at the same pin) as Intel's. Measured: the same bytes on this
//! AVX-512 Intel CPU and, under qemu, on an AVX2-only Intel Haswell and an
//! AMD EPYC-Rome. GPU kernels have no such pin, so a GPU run is always
//! `fast`.

use serde::{Deserialize, Serialize};

crate::named_enum! {
    /// How a torch stage computes.
    pub enum Numerics {
        /// CPU kernels capped at AVX2: the same bytes on x86-64 CPUs with
        /// AVX2 (AVX-512 ones included, Intel or AMD) for the same key,
        /// seed and thread count.
        Reproducible = "reproducible",
        /// Whatever the machine does fastest (its widest instructions, or a
        /// GPU): the same bytes only on the same machine.
        Fast = "fast",
    }
}

/// The environment a reproducible run starts its torch process with.
/// (libtorch reads these when it first dispatches, so they must be set
/// before the process starts: the worker re-executes itself with them.)
pub const REPRODUCIBLE_ENV: &[(&str, &str)] =
    &[("ATEN_CPU_CAPABILITY", "avx2"), ("ONEDNN_MAX_CPU_ISA", "AVX2"), ("MKL_CBWR", "AVX2,STRICT")];

/// The instruction-set level a reproducible run is capped at.
pub const REPRODUCIBLE_ISA: &str = "avx2";

impl Numerics {
    /// The environment variables this mode needs, and whether the current
    /// process has them.
    pub fn env(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Numerics::Reproducible => REPRODUCIBLE_ENV,
            Numerics::Fast => &[],
        }
    }

    /// True when this process's environment pins what the mode needs.
    pub fn env_is_set(self) -> bool {
        self.env().iter().all(|(k, v)| std::env::var(k).is_ok_and(|x| x == *v))
    }
}

/// What a torch run computed with: in a model's metadata, the train
/// summary and the run record. In `reproducible` mode every field is the
/// same on every machine (the torch install is pinned by the Makefile).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumericsRecord {
    pub mode: Numerics,
    /// The instruction set the CPU kernels were capped at (`avx2`), or the
    /// widest the machine had in `fast` mode (`avx512`, `avx2`, ...).
    pub isa: String,
    /// libtorch's version (`2.11.0+cu130`).
    pub torch: String,
    /// MKL's version string, as MKL reports it.
    pub mkl: String,
}

/// The widest vector instruction set this CPU has, as ATen names its levels.
pub fn native_isa() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bw") {
            return "avx512";
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return "avx2";
        }
        "default"
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::env::consts::ARCH
    }
}
