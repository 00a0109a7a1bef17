//! File writes that readers never see half done.

use std::path::Path;

use anyhow::Context;

/// Writes `bytes` to a hidden temporary file beside `path`, then renames it over `path`: a reader (a HIS
/// polling the reports folder, `medgemma-x status`) sees the old file or the new one, never a part.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().with_context(|| format!("{} has no file name", path.display()))?.to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("无法写入 / cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("无法写入 / cannot write {}", path.display()))
}
