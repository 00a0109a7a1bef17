//! File writes that readers never see half done.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;

/// Makes temporary names unique within the process (two uploads of the same image race to one path).
static NEXT_TMP: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to a hidden temporary file beside `path`, then renames it over `path`: a reader (a HIS
/// polling the reports folder, `medgemma-x status`) sees the old file or the new one, never a part. The
/// data reaches the disk before the rename, so a crash or power cut cannot leave a named, empty file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_atomically_with_mode(path, bytes, 0o644)
}

/// [`write_atomically`] for secrets: the file is readable by the server's own user only, from the moment
/// it exists (not chmod-ed afterwards).
pub fn write_secret_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_atomically_with_mode(path, bytes, 0o600)
}

fn write_atomically_with_mode(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().with_context(|| format!("{} has no file name", path.display()))?.to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp-{}-{}", std::process::id(), NEXT_TMP.fetch_add(1, Ordering::Relaxed)));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("无法写入 / cannot write {}", tmp.display()));
    }
    std::fs::rename(&tmp, path).with_context(|| format!("无法写入 / cannot write {}", path.display()))
}
