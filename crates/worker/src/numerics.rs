//! Reproducible numerics in the worker: the pinned environment (see
//! [`kimcnn_schema::Numerics`]), where a run may compute, and the record
//! of what it computed with.

use std::ffi::{c_char, c_int, CStr};

use kimcnn_schema::{native_isa, Numerics, NumericsRecord, REPRODUCIBLE_ISA};

extern "C" {
    /// MKL's version (libtorch links MKL statically and exports this).
    fn MKL_Get_Version_String(buf: *mut c_char, len: c_int);
}

/// MKL runs its Intel code paths only where this says the CPU is Intel's;
/// on an AMD CPU it takes other kernels even at `MKL_CBWR=AVX2`, and the
/// bytes differ (an emulated EPYC-Rome, and a Haswell emulated with AMD's
/// vendor string, gave other weights; with this answer they gave the Intel
/// ones). libtorch links MKL statically but calls this through its dynamic
/// symbol table, so this definition (exported by build.rs) takes its place.
/// In reproducible numerics every x86-64 CPU with AVX2 is taken for Intel's,
/// which MKL's AVX2 path needs nothing more than; in fast numerics the
/// answer is the truth, as MKL's own.
#[no_mangle]
pub extern "C" fn mkl_serv_intel_cpu_true() -> c_int {
    // Asked by MKL, possibly on every call: decided once per process.
    static ANSWER: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    c_int::from(*ANSWER.get_or_init(|| Numerics::Reproducible.env_is_set() || genuine_intel()))
}

fn genuine_intel() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let r = std::arch::x86_64::__cpuid(0);
        let mut v = Vec::with_capacity(12);
        for x in [r.ebx, r.edx, r.ecx] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        v == b"GenuineIntel"
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Makes this process compute in `mode`. libtorch reads its kernel pins
/// when it first dispatches, so a reproducible run whose environment lacks
/// them re-executes this binary with them set (same arguments, same pipes);
/// the caller needs to know nothing of them.
pub fn enter(mode: Numerics) -> Result<(), String> {
    if mode == Numerics::Fast || mode.env_is_set() {
        return Ok(());
    }
    if !matches!(native_isa(), "avx2" | "avx512") {
        return Err(format!(
            "reproducible numerics need an x86-64 CPU with AVX2 and FMA; this one has {}: set `numerics: fast`",
            native_isa()
        ));
    }
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the worker's own path: {e}"))?;
    let err = std::process::Command::new(exe).args(std::env::args_os().skip(1)).envs(mode.env().iter().copied()).exec();
    Err(format!("cannot restart the worker with reproducible numerics: {err}"))
}

/// The device a run computes on: `auto` is the CPU in reproducible numerics
/// (a GPU has no bit-stable kernels), a GPU where there is one in fast.
pub fn device(mode: Numerics, requested: &str) -> Result<&str, String> {
    match (mode, requested) {
        (Numerics::Reproducible, "auto") => Ok("cpu"),
        (Numerics::Reproducible, d) if d.starts_with("cuda") => {
            Err(format!("device `{d}` with reproducible numerics: GPU kernels are not bit-stable across cards; set `numerics: fast`"))
        }
        (_, d) => Ok(d),
    }
}

/// What this process computes with.
pub fn record(mode: Numerics) -> NumericsRecord {
    let isa = match mode {
        Numerics::Reproducible => REPRODUCIBLE_ISA,
        Numerics::Fast => native_isa(),
    };
    NumericsRecord { mode, isa: isa.into(), torch: env!("KIMCNN_TORCH_VERSION").into(), mkl: mkl_version() }
}

fn mkl_version() -> String {
    let mut buf = [0 as c_char; 256];
    // SAFETY: MKL writes at most `len` bytes, NUL-terminated, into the buffer.
    unsafe { MKL_Get_Version_String(buf.as_mut_ptr(), buf.len() as c_int) };
    buf[buf.len() - 1] = 0;
    // SAFETY: NUL-terminated above.
    unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().trim().to_string()
}
