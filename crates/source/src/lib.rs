//! The `source` stage: brings one data file into the pipeline.
//!
//! A source names a local `path` or an http(s) `url`. A URL is first looked
//! up by its file name in the mirror directories (`KIMCNN_MIRROR`, and
//! `../shared` beside the project where it exists), so machines without
//! internet use the offline copy; otherwise it is downloaded, with progress
//! reported through a callback. An optional declared `sha256` or `blake3`
//! checksum is checked before the file is accepted.
//!
//! Archives: `member` names one file inside a downloaded `.zip` (GloVe ships
//! as `glove.6B.zip`); `mirror` names the file to look for in the mirrors
//! when it differs from the URL's (the mirror may hold that member alone,
//! gzipped: `glove.6B.50d.txt.gz`). A mirror copy is used as it is.

mod kind;

pub use kind::{SourceKind, SourceParams};

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::Digest;

/// Where to get the bytes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Location {
    Path(PathBuf),
    Url(String),
}

/// A `source` stage's params.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceSpec {
    pub location: Location,
    /// Expected SHA-256 (hex), if declared.
    pub sha256: Option<String>,
    /// Expected BLAKE3 (hex), if declared.
    pub blake3: Option<String>,
    /// A file inside the downloaded zip archive to keep (instead of the archive).
    pub member: Option<String>,
    /// The name to look for in the mirrors (default: the URL's file name).
    pub mirror_name: Option<String>,
}

/// Where the bytes came from and how many there were.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    pub from: String,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}: file not found")]
    NotFound(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: the file is empty")]
    Empty(String),
    #[error("cannot download {url}: {message} (no copy named `{name}` in the mirrors either: {mirrors})")]
    Download { url: String, name: String, message: String, mirrors: String },
    #[error("{from}: {algo} checksum mismatch: expected {expected}, got {actual}")]
    Checksum { from: String, algo: &'static str, expected: String, actual: String },
    #[error("{0}")]
    Spec(String),
}

pub type Result<T, E = SourceError> = std::result::Result<T, E>;

/// The mirror directories to search: those in `$KIMCNN_MIRROR`
/// (colon-separated), then `<project>/../shared` when it exists.
pub fn default_mirrors(project_dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::env::var_os("KIMCNN_MIRROR")
        .map(|v| std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()).collect())
        .unwrap_or_default();
    let shared = project_dir.join("..").join("shared");
    if shared.is_dir() {
        out.push(shared);
    }
    out
}

/// The last path segment of a URL (query and fragment dropped).
pub fn url_file_name(url: &str) -> Option<&str> {
    let path = url.split(['?', '#']).next()?;
    let name = path.rsplit('/').next()?;
    (!name.is_empty() && name != "." && name != "..").then_some(name)
}

/// Finds a file called `name` in the mirror directories (searched a few
/// levels deep, in order).
pub fn find_in_mirrors(name: &str, mirrors: &[PathBuf]) -> Option<PathBuf> {
    fn walk(dir: &Path, name: &str, depth: usize) -> Option<PathBuf> {
        let direct = dir.join(name);
        if direct.is_file() {
            return Some(direct);
        }
        if depth == 0 {
            return None;
        }
        let mut subdirs: Vec<PathBuf> =
            std::fs::read_dir(dir).ok()?.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect();
        subdirs.sort();
        subdirs.iter().find_map(|d| walk(d, name, depth - 1))
    }
    mirrors.iter().find_map(|m| walk(m, name, 3))
}

impl SourceSpec {
    /// Resolves a local path against the project directory.
    pub fn local_path(&self, project_dir: &Path) -> Option<PathBuf> {
        match &self.location {
            Location::Path(p) => Some(project_dir.join(p)),
            Location::Url(_) => None,
        }
    }
}

/// Copies or downloads the source's bytes to `dest`, checking any declared
/// checksum. `progress(done, total)` is called as bytes arrive.
pub fn fetch(
    spec: &SourceSpec,
    project_dir: &Path,
    mirrors: &[PathBuf],
    dest: &Path,
    progress: &dyn Fn(u64, Option<u64>),
) -> Result<Fetched> {
    let (from, mut reader, total, downloaded): (String, Box<dyn Read>, Option<u64>, bool) = match &spec.location {
        Location::Path(p) => {
            let p = project_dir.join(p);
            let f = File::open(&p).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => SourceError::NotFound(p.clone()),
                _ => SourceError::Io { path: p.clone(), source: e },
            })?;
            let len = f.metadata().ok().map(|m| m.len());
            (p.display().to_string(), Box::new(f), len, false)
        }
        Location::Url(url) => {
            let name = match &spec.mirror_name {
                Some(m) => m.as_str(),
                None => url_file_name(url).ok_or_else(|| SourceError::Spec(format!("{url}: the URL names no file")))?,
            };
            if let Some(p) = find_in_mirrors(name, mirrors) {
                let f = File::open(&p).map_err(|e| SourceError::Io { path: p.clone(), source: e })?;
                let len = f.metadata().ok().map(|m| m.len());
                (p.display().to_string(), Box::new(f), len, false)
            } else {
                let agent =
                    ureq::AgentBuilder::new().timeout_connect(Duration::from_secs(15)).timeout_read(Duration::from_secs(60)).build();
                let resp = agent.get(url).call().map_err(|e| SourceError::Download {
                    url: url.clone(),
                    name: name.to_string(),
                    message: e.to_string(),
                    mirrors: if mirrors.is_empty() {
                        "none configured; set KIMCNN_MIRROR".into()
                    } else {
                        mirrors.iter().map(|m| m.display().to_string()).collect::<Vec<_>>().join(", ")
                    },
                })?;
                let len = resp.header("Content-Length").and_then(|v| v.parse().ok());
                (url.clone(), Box::new(resp.into_reader()), len, true)
            }
        }
    };
    let from_archive = downloaded && spec.member.is_some();
    let archive = dest.with_extension("archive");
    let write_to: &Path = if from_archive { &archive } else { dest };
    let mut out = File::create(write_to).map_err(|e| SourceError::Io { path: write_to.into(), source: e })?;
    let mut sha = spec.sha256.as_ref().map(|_| sha2::Sha256::new());
    let mut b3 = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    loop {
        let n = reader.read(&mut buf).map_err(|e| SourceError::Io { path: PathBuf::from(&from), source: e })?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).map_err(|e| SourceError::Io { path: write_to.into(), source: e })?;
        if let Some(h) = sha.as_mut() {
            h.update(&buf[..n]);
        }
        b3.update(&buf[..n]);
        done += n as u64;
        progress(done, total);
    }
    out.flush().map_err(|e| SourceError::Io { path: write_to.into(), source: e })?;
    drop(out);
    if let Some(total) = total.filter(|&t| t != done) {
        return Err(SourceError::Spec(format!("{from}: truncated: got {done} of {total} bytes")));
    }
    if done == 0 {
        return Err(SourceError::Empty(from));
    }
    if let (Some(expected), Some(h)) = (&spec.sha256, sha) {
        let actual = format!("{:x}", h.finalize());
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(SourceError::Checksum { from, algo: "sha256", expected: expected.clone(), actual });
        }
    }
    if let Some(expected) = &spec.blake3 {
        let actual = b3.finalize().to_hex().to_string();
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(SourceError::Checksum { from, algo: "blake3", expected: expected.clone(), actual });
        }
    }
    if from_archive {
        let member = spec.member.as_deref().unwrap_or_default();
        let bytes = extract_member(&archive, member, dest).map_err(|m| SourceError::Spec(format!("{from}: {m}")))?;
        let _ = std::fs::remove_file(&archive);
        return Ok(Fetched { from: format!("{from}#{member}"), bytes });
    }
    Ok(Fetched { from, bytes: done })
}

/// Copies one member of a zip archive to `dest`.
fn extract_member(archive: &Path, member: &str, dest: &Path) -> std::result::Result<u64, String> {
    let f = File::open(archive).map_err(|e| e.to_string())?;
    let mut z = zip::ZipArchive::new(f).map_err(|e| format!("not a zip archive: {e}"))?;
    let mut m = z.by_name(member).map_err(|_| format!("no member `{member}` in the archive"))?;
    let mut out = File::create(dest).map_err(|e| e.to_string())?;
    std::io::copy(&mut m, &mut out).map_err(|e| format!("cannot extract `{member}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn spec(location: Location) -> SourceSpec {
        SourceSpec { location, sha256: None, blake3: None, member: None, mirror_name: None }
    }

    /// A one-request HTTP server on loopback.
    fn serve_once(status: &'static str, body: &'static [u8]) -> String {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = l.accept() {
                let mut req = [0u8; 4096];
                let _ = s.read(&mut req);
                let head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                let _ = s.write_all(head.as_bytes());
                let _ = s.write_all(body);
            }
        });
        format!("http://{addr}/data/file.txt")
    }

    #[test]
    fn local_path_with_checksums() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("in.txt"), b"hello\n").unwrap();
        let dest = d.path().join("out");
        let mut s = spec(Location::Path("in.txt".into()));
        s.sha256 = Some("5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03".into());
        s.blake3 = Some(blake3::hash(b"hello\n").to_hex().to_string());
        let got = fetch(&s, d.path(), &[], &dest, &|_, _| {}).unwrap();
        assert_eq!(got.bytes, 6);
        assert_eq!(std::fs::read(&dest).unwrap(), b"hello\n");
        s.sha256 = Some("00".repeat(32));
        let e = fetch(&s, d.path(), &[], &dest, &|_, _| {}).unwrap_err().to_string();
        assert!(e.contains("in.txt: sha256 checksum mismatch: expected 0000"), "{e}");
    }

    #[test]
    fn missing_and_empty_files() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("out");
        let e = fetch(&spec(Location::Path("nope.txt".into())), d.path(), &[], &dest, &|_, _| {}).unwrap_err();
        assert!(e.to_string().ends_with("nope.txt: file not found"), "{e}");
        std::fs::write(d.path().join("empty"), b"").unwrap();
        let e = fetch(&spec(Location::Path("empty".into())), d.path(), &[], &dest, &|_, _| {}).unwrap_err();
        assert!(e.to_string().ends_with("empty: the file is empty"), "{e}");
    }

    #[test]
    fn url_resolves_against_mirror_by_file_name() {
        let d = tempfile::tempdir().unwrap();
        let m = d.path().join("mirror/datasets/kim");
        std::fs::create_dir_all(&m).unwrap();
        std::fs::write(m.join("rt-polarity.pos"), b"good\n").unwrap();
        let dest = d.path().join("out");
        let s = spec(Location::Url("https://example.invalid/x/rt-polarity.pos".into()));
        let got = fetch(&s, d.path(), &[d.path().join("mirror")], &dest, &|_, _| {}).unwrap();
        assert!(got.from.ends_with("datasets/kim/rt-polarity.pos"));
        assert_eq!(std::fs::read(&dest).unwrap(), b"good\n");
    }

    #[test]
    fn download_over_http_with_progress() {
        let d = tempfile::tempdir().unwrap();
        let url = serve_once("200 OK", b"label\ttext\n1\tfine\n");
        let dest = d.path().join("out");
        let seen = std::sync::Mutex::new(Vec::new());
        let got = fetch(&spec(Location::Url(url.clone())), d.path(), &[], &dest, &|n, t| seen.lock().unwrap().push((n, t))).unwrap();
        assert_eq!(got.from, url);
        assert_eq!(std::fs::read(&dest).unwrap(), b"label\ttext\n1\tfine\n");
        assert_eq!(seen.lock().unwrap().last(), Some(&(18, Some(18))));
    }

    #[test]
    fn http_errors_and_unreachable_hosts_say_what_failed() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("out");
        let url = serve_once("404 Not Found", b"no");
        let e = fetch(&spec(Location::Url(url.clone())), d.path(), &[], &dest, &|_, _| {}).unwrap_err().to_string();
        assert!(e.starts_with(&format!("cannot download {url}")) && e.contains("404") && e.contains("KIMCNN_MIRROR"), "{e}");
        // A port nobody listens on.
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}/file.txt");
        let e = fetch(&spec(Location::Url(url.clone())), d.path(), &[], &dest, &|_, _| {}).unwrap_err().to_string();
        assert!(e.starts_with(&format!("cannot download {url}")), "{e}");
    }

    #[test]
    fn zip_member_from_a_download_or_the_mirror_copy() {
        let mut zbuf = std::io::Cursor::new(Vec::new());
        {
            let mut z = zip::ZipWriter::new(&mut zbuf);
            let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
            z.start_file("glove.6B.50d.txt", opts).unwrap();
            z.write_all(b"the 0.1 0.2\n").unwrap();
            z.start_file("glove.6B.100d.txt", opts).unwrap();
            z.write_all(b"other\n").unwrap();
            z.finish().unwrap();
        }
        let body: &'static [u8] = Box::leak(zbuf.into_inner().into_boxed_slice());
        let url = serve_once("200 OK", body).replace("file.txt", "glove.6B.zip");
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("out");
        let mut s = spec(Location::Url(url.clone()));
        s.member = Some("glove.6B.50d.txt".into());
        s.mirror_name = Some("glove.6B.50d.txt.gz".into());
        let got = fetch(&s, d.path(), &[], &dest, &|_, _| {}).unwrap();
        assert_eq!(got.from, format!("{url}#glove.6B.50d.txt"));
        assert_eq!(std::fs::read(&dest).unwrap(), b"the 0.1 0.2\n");
        // With a mirror holding the member (gzipped), the mirror copy is used as is.
        let m = d.path().join("mirror");
        std::fs::create_dir_all(&m).unwrap();
        std::fs::write(m.join("glove.6B.50d.txt.gz"), b"\x1f\x8bgz").unwrap();
        let got = fetch(&s, d.path(), &[m], &dest, &|_, _| {}).unwrap();
        assert!(got.from.ends_with("glove.6B.50d.txt.gz"));
        assert_eq!(std::fs::read(&dest).unwrap(), b"\x1f\x8bgz");
    }

    #[test]
    fn file_names_of_urls() {
        assert_eq!(url_file_name("https://h/a/b.txt?x=1"), Some("b.txt"));
        assert_eq!(url_file_name("https://h/a/"), None);
    }
}
