//! The crate's own tests link libtorch: give them the rpath to torch's lib
//! dir (as crates/worker/build.rs does for `kimcnn-torch`).
fn main() {
    if let Some(lib) = std::env::var_os("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", std::path::Path::new(&lib).display());
    }
}
