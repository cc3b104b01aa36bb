use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{io_err, Result, StoreError};

/// The name of an object: the lower-case hex BLAKE3 hash of its bytes.
///
/// Always validated on construction, so an id read from a record or a remote
/// can never be used to build a path outside the store.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ObjectId(String);

impl ObjectId {
    pub fn parse(s: &str) -> Option<ObjectId> {
        let ok = s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| ObjectId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 hex digits, for display.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }

    pub(crate) fn from_hash(h: blake3::Hash) -> ObjectId {
        ObjectId(h.to_hex().to_string())
    }
}

impl TryFrom<String> for ObjectId {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, String> {
        ObjectId::parse(&s).ok_or_else(|| format!("not an object id: `{s}`"))
    }
}

impl From<ObjectId> for String {
    fn from(id: ObjectId) -> String {
        id.0
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// BLAKE3 of a byte string.
pub fn hash_bytes(bytes: &[u8]) -> ObjectId {
    ObjectId::from_hash(blake3::hash(bytes))
}

/// BLAKE3 of a file on all cores, as fast as `b3sum` (which memory-maps
/// the whole file), but mapped in 16 MiB windows, each unmapped after it is
/// hashed: a 3.6 GB input then adds at most 16 MiB to a stage run's RSS.
pub fn hash_file(path: &Path) -> Result<ObjectId> {
    hash_file_with(path, &|_, _| {})
}

/// [`hash_file`], telling `progress` (bytes hashed, the file's size) after
/// each window, for a bar over a long hash.
pub fn hash_file_with(path: &Path, progress: &dyn Fn(u64, u64)) -> Result<ObjectId> {
    const WINDOW: u64 = 16 << 20;
    let f = std::fs::File::open(path).map_err(io_err(path))?;
    let len = f.metadata().map_err(io_err(path))?.len();
    let mut hasher = blake3::Hasher::new();
    if len < 1 << 20 {
        hasher.update_reader(&f).map_err(io_err(path))?;
        return Ok(ObjectId::from_hash(hasher.finalize()));
    }
    let mut off = 0;
    while off < len {
        let n = WINDOW.min(len - off);
        // Safety: the store's objects are read-only and never modified in
        // place; a file changed underneath would only give a wrong hash,
        // which is what verification is there to catch.
        let map = unsafe { memmap2::MmapOptions::new().offset(off).len(n as usize).map(&f) }.map_err(io_err(path))?;
        hasher.update_rayon(&map);
        off += n;
        progress(off, len);
    }
    Ok(ObjectId::from_hash(hasher.finalize()))
}

pub(crate) fn parse_id(path: &Path, s: &str) -> Result<ObjectId> {
    ObjectId::parse(s).ok_or_else(|| StoreError::BadId { path: path.to_path_buf(), id: s.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_validated() {
        let h = hash_bytes(b"abc");
        assert_eq!(h.as_str().len(), 64);
        assert!(ObjectId::parse(h.as_str()).is_some());
        assert!(ObjectId::parse("../../etc/passwd").is_none());
        assert!(ObjectId::parse(&h.as_str().to_uppercase()).is_none());
        assert!(ObjectId::parse(&h.as_str()[..63]).is_none());
        let err = serde_json::from_str::<ObjectId>("\"../x\"").unwrap_err();
        assert!(err.to_string().contains("not an object id"));
    }

    #[test]
    fn file_hash_matches_bytes_hash() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        assert_eq!(hash_file(&p).unwrap(), hash_bytes(&data));
    }
}
