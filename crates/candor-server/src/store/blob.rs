//! Large objects (screenshots, chat media) stored by content: the key is the
//! SHA-256 of the bytes, so identical frames or files are kept once and a
//! corrupted file is detected on read.

use candor_proto::token::sha256_hex;
use std::io::Write;
use std::path::PathBuf;

pub trait BlobStore: Send + Sync + 'static {
    /// Store `data`; returns its key (hex SHA-256). Idempotent.
    fn put(&self, data: &[u8]) -> std::io::Result<String>;
    /// Read a blob, verifying its hash; `Ok(None)` when absent.
    fn get(&self, key: &str) -> std::io::Result<Option<Vec<u8>>>;
    fn delete(&self, key: &str) -> std::io::Result<bool>;
}

/// `<root>/ab/cd/abcd…`: two levels of fan-out keep folders small.
pub struct FolderBlobStore {
    root: PathBuf,
}

impl FolderBlobStore {
    pub fn new(root: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&root)?;
        Ok(FolderBlobStore { root })
    }

    fn path(&self, key: &str) -> std::io::Result<PathBuf> {
        if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "blob key must be 64 lowercase hex digits",
            ));
        }
        Ok(self.root.join(&key[..2]).join(&key[2..4]).join(key))
    }
}

impl BlobStore for FolderBlobStore {
    fn put(&self, data: &[u8]) -> std::io::Result<String> {
        let key = sha256_hex(data);
        let path = self.path(&key)?;
        if path.exists() {
            return Ok(key);
        }
        let dir = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(dir)?;
        // Write-then-rename so a crash never leaves a partial blob under its key.
        let mut tmp = tempfile_in(dir)?;
        tmp.1.write_all(data)?;
        tmp.1.sync_all()?;
        std::fs::rename(&tmp.0, &path)?;
        Ok(key)
    }

    fn get(&self, key: &str) -> std::io::Result<Option<Vec<u8>>> {
        let data = match std::fs::read(self.path(key)?) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if sha256_hex(&data) != key {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("blob {key} is corrupt")));
        }
        Ok(Some(data))
    }

    fn delete(&self, key: &str) -> std::io::Result<bool> {
        match std::fs::remove_file(self.path(key)?) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
}

fn tempfile_in(dir: &std::path::Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let name = format!(".tmp-{}-{}", std::process::id(), rand::random::<u64>());
    let path = dir.join(name);
    let f = std::fs::OpenOptions::new().write(true).create_new(true).open(&path)?;
    Ok((path, f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_detects_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let s = FolderBlobStore::new(dir.path().to_owned()).unwrap();
        let k = s.put(b"hello").unwrap();
        assert_eq!(s.put(b"hello").unwrap(), k);
        assert_eq!(s.get(&k).unwrap().unwrap(), b"hello");
        std::fs::write(s.path(&k).unwrap(), b"jello").unwrap();
        assert_eq!(s.get(&k).unwrap_err().kind(), std::io::ErrorKind::InvalidData);
        assert!(s.get("../../etc/passwd").is_err());
        assert!(s.delete(&k).unwrap());
        assert_eq!(s.get(&k).unwrap(), None);
    }
}
