//! The data dir: everything the server stores, in one folder an operator can back up.
//!
//! ```text
//! <data-dir>/db/        SQLite database (the embedded default)
//! <data-dir>/objects/   images as uploaded, content-addressed
//! <data-dir>/reports/   exported reports (PDF, HL7, FHIR) for the HIS to pick up
//! <data-dir>/logs/      JSON logs, rolled daily
//! <data-dir>/tmp/       uploads being received; emptied at start (only a crash leaves anything here)
//! <data-dir>/secrets/   the site key (pseudonyms, device cookies) and the first admin password
//! (db/, objects/, tmp/ and secrets/ are mode 0700: readable by the server's own user only)
//! ```

use std::path::{Path, PathBuf};

use anyhow::Context;

#[derive(Clone, Debug)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub const SUBDIRS: [&'static str; 6] = ["db", "objects", "reports", "logs", "tmp", "secrets"];
    /// Mode 0700.
    pub const PRIVATE: [&'static str; 4] = ["db", "objects", "tmp", "secrets"];

    /// Creates the folder and its layout where missing (first start, or a folder someone emptied).
    pub fn create(root: &Path) -> anyhow::Result<Self> {
        for sub in Self::SUBDIRS {
            let dir = root.join(sub);
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("无法创建数据目录 / cannot create data folder {}", dir.display()))?;
        }
        // Patient data and secrets: the server's own user only (other local accounts on the machine must not
        // read the database or the images). reports/ stays readable: a HIS pickup job may run as another user.
        use std::os::unix::fs::PermissionsExt;
        for private in Self::PRIVATE {
            let dir = root.join(private);
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("cannot restrict {}", dir.display()))?;
        }
        let root = root.canonicalize().with_context(|| format!("cannot resolve {}", root.display()))?;
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn db(&self) -> PathBuf {
        self.root.join("db")
    }

    pub fn objects(&self) -> PathBuf {
        self.root.join("objects")
    }

    pub fn reports(&self) -> PathBuf {
        self.root.join("reports")
    }

    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }

    pub fn secrets(&self) -> PathBuf {
        self.root.join("secrets")
    }

    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Removes what a crashed server left in tmp/ (partial uploads, never referenced by the database);
    /// returns how many files. Only called while holding the data dir's run lock.
    pub fn clear_tmp(&self) -> anyhow::Result<usize> {
        let mut removed = 0;
        for entry in std::fs::read_dir(self.tmp())? {
            let path = entry?.path();
            if path.is_file() {
                std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    pub fn default_sqlite_file(&self) -> PathBuf {
        self.db().join("medgemma-x.sqlite3")
    }
}

/// The low-disk guard: below `min_free` bytes free on the data dir's disk, requests that add data are
/// refused with 507 while reading goes on, so the database, its audit rows and the logs never meet a full
/// disk. The maintenance log gets a line when the disk is first seen low, and again at most every ten
/// minutes while it stays low (a refused request must not itself fill the disk with log lines).
pub struct DiskGuard {
    data_dir: PathBuf,
    logs: PathBuf,
    min_free: u64,
    /// Unix seconds of the last maintenance line about it.
    last_line: std::sync::atomic::AtomicI64,
}

impl DiskGuard {
    const LINE_EVERY_SECS: i64 = 600;

    pub fn new(data_dir: &DataDir, min_free: u64) -> DiskGuard {
        DiskGuard {
            data_dir: data_dir.root().to_path_buf(),
            logs: data_dir.logs(),
            min_free,
            last_line: std::sync::atomic::AtomicI64::new(i64::MIN),
        }
    }

    /// The free bytes, when under the minimum.
    pub fn low(&self) -> Option<u64> {
        use std::sync::atomic::Ordering;
        let free = free_bytes(&self.data_dir).filter(|free| *free < self.min_free)?;
        let now = crate::support::clock::now_unix();
        let last = self.last_line.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= Self::LINE_EVERY_SECS
            && self.last_line.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            crate::support::maintenance::record(
                &self.logs,
                "low_disk",
                &format!(
                    "数据目录磁盘剩余 {} MB，低于下限 {} MB / {} MB free on the data dir's disk, under the {} MB minimum",
                    free >> 20,
                    self.min_free >> 20,
                    free >> 20,
                    self.min_free >> 20
                ),
                "暂停上传和新增数据（507），阅片照常；请清理磁盘 / new data refused with 507, reading goes on; free some disk space",
                "pending",
            );
        }
        Some(free)
    }
}

/// Free bytes for unprivileged writers on the file system holding `path`.
pub fn free_bytes(path: &Path) -> Option<u64> {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statvfs is plain old data; zeroed is a valid value to be overwritten.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is a valid C string and stat a valid out-pointer.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    Some(stat.f_bavail as u64 * stat.f_frsize as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_makes_the_layout_and_is_idempotent() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("nested/data");
        let first = DataDir::create(&root).unwrap();
        std::fs::write(first.reports().join("kept.txt"), "x").unwrap();
        let second = DataDir::create(&root).unwrap();
        for dir in [second.db(), second.objects(), second.reports(), second.logs()] {
            assert!(dir.is_dir(), "{} missing", dir.display());
        }
        assert_eq!(std::fs::read_to_string(second.reports().join("kept.txt")).unwrap(), "x");
        assert!(second.root().is_absolute());
    }
}
