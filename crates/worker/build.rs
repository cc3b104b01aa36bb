//! Links the `kimcnn-torch` binary against libtorch so that it runs without
//! LD_LIBRARY_PATH: an rpath to torch's lib dir (reported by torch-sys through
//! its `links` metadata), and libtorch_cuda linked explicitly where the torch
//! install has it, so `--as-needed` does not drop it and CUDA is found when
//! the machine has a GPU. Exports the worker's answer to MKL's vendor check
//! (see src/numerics.rs). Also records libtorch's version
//! (`KIMCNN_TORCH_VERSION`) for the numerics record of every run.
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let lib = std::env::var_os("DEP_TCH_LIBTORCH_LIB");
    let version = lib.as_deref().map(Path::new).and_then(torch_version).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=KIMCNN_TORCH_VERSION={version}");
    let Some(lib) = lib else {
        return;
    };
    let lib = Path::new(&lib);
    println!("cargo:rustc-link-arg-bin=kimcnn-torch=-Wl,-rpath,{}", lib.display());
    // MKL's vendor check, answered by the worker (src/numerics.rs): exported so libtorch's call binds to it.
    println!("cargo:rustc-link-arg-bin=kimcnn-torch=-Wl,--export-dynamic-symbol=mkl_serv_intel_cpu_true");
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg-bin=kimcnn-torch=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg-bin=kimcnn-torch=-ltorch_cuda");
        println!("cargo:rustc-link-arg-bin=kimcnn-torch=-Wl,--as-needed");
    }
}

/// The version beside torch's lib dir: `version.py` of a Python install
/// (`__version__ = '2.11.0+cu130'`), or `build-version` of a libtorch zip.
fn torch_version(lib: &Path) -> Option<String> {
    let root = lib.parent()?;
    if let Ok(py) = std::fs::read_to_string(root.join("version.py")) {
        println!("cargo:rerun-if-changed={}", root.join("version.py").display());
        let line = py.lines().find(|l| l.starts_with("__version__"))?;
        return Some(line.split(['\'', '"']).nth(1)?.to_string());
    }
    std::fs::read_to_string(root.join("build-version")).ok().map(|v| v.trim().to_string())
}
