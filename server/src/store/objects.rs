//! Content-addressed storage of uploaded files: `objects/ab/abcdef…` named by the SHA-256 of the bytes
//! stored. Names come from the content only, never from a file name or a DICOM value.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::support::files::write_atomically;

#[derive(Clone, Debug)]
pub struct ObjectStore {
    root: PathBuf,
}

impl ObjectStore {
    pub fn new(root: PathBuf) -> ObjectStore {
        ObjectStore { root }
    }

    /// Stores `bytes` (once: identical content is already there) and returns its SHA-256 in hex.
    pub fn put(&self, bytes: &[u8]) -> anyhow::Result<String> {
        let sha = hex::encode(Sha256::digest(bytes));
        let path = self.path(&sha);
        if !path.is_file() {
            std::fs::create_dir_all(path.parent().expect("objects have a parent folder"))?;
            write_atomically(&path, bytes)?;
        }
        Ok(sha)
    }

    pub fn read(&self, sha: &str) -> anyhow::Result<Vec<u8>> {
        anyhow::ensure!(sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()), "not an object name: {sha}");
        Ok(std::fs::read(self.path(sha))?)
    }

    fn path(&self, sha: &str) -> PathBuf {
        self.root.join(&sha[..2]).join(sha)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_content_is_stored_once_under_its_hash() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ObjectStore::new(tmp.path().to_path_buf());
        let a = store.put(b"abc").unwrap();
        assert_eq!(a, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(store.put(b"abc").unwrap(), a);
        assert_eq!(store.read(&a).unwrap(), b"abc");
        assert!(store.read("../../etc/passwd").is_err());
        let files: Vec<_> = walk(tmp.path());
        assert_eq!(files.len(), 1, "{files:?}");
    }

    fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .unwrap()
            .flat_map(|e| {
                let p = e.unwrap().path();
                if p.is_dir() { walk(&p) } else { vec![p] }
            })
            .collect()
    }
}
