//! Links the `kimcnn-torch` binary against libtorch so that it runs without
//! LD_LIBRARY_PATH: an rpath to torch's lib dir (reported by torch-sys through
//! its `links` metadata), and libtorch_cuda linked explicitly where the torch
//! install has it, so `--as-needed` does not drop it and CUDA is found when
//! the machine has a GPU.
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Some(lib) = std::env::var_os("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    let lib = Path::new(&lib);
    println!("cargo:rustc-link-arg-bin=kimcnn-torch=-Wl,-rpath,{}", lib.display());
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg-bin=kimcnn-torch=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg-bin=kimcnn-torch=-ltorch_cuda");
        println!("cargo:rustc-link-arg-bin=kimcnn-torch=-Wl,--as-needed");
    }
}
