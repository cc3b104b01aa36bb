//! Where the tests find the tools `make test` installs into the per-user cache.

use std::path::PathBuf;

/// `$env` if set, else `~/.cache/kimcnn/<rel>` (`$XDG_CACHE_HOME` first); it must exist.
pub fn cached_tool(env: &str, rel: &str) -> PathBuf {
    let exe = std::env::var_os(env).map(PathBuf::from).unwrap_or_else(|| {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache"));
        cache.join("kimcnn").join(rel)
    });
    assert!(exe.is_file(), "{} missing: `make test` installs it (or set {env})", exe.display());
    exe
}
