//! `medgemma-x backup` and `medgemma-x restore`: the whole data dir's content in one zip file an operator can
//! copy to a USB disk or a NAS.
//!
//! The database is snapshotted with SQLite's `VACUUM INTO`, which reads one consistent state while the
//! server keeps writing. Objects are immutable and named by their hash, so copying them after the snapshot
//! always includes every object the snapshot refers to. Every file is listed with its SHA-256 in
//! `manifest.json`; restore checks each one and writes nothing it cannot verify.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::support::data_dir::DataDir;
use crate::support::files::write_atomically;

const FORMAT: &str = "medgemma-x-backup";
const MANIFEST: &str = "manifest.json";
const DATABASE: &str = "db/medgemma-x.sqlite3";
/// Kept so that pseudonyms (audit trail, logs) and device cookies mean the same after a restore.
const SITE_KEY: &str = "secrets/site.key";

#[derive(Serialize, Deserialize)]
struct Manifest {
    format: String,
    version: u32,
    created_at: String,
    server_version: String,
    files: Vec<ManifestFile>,
}

#[derive(Serialize, Deserialize)]
struct ManifestFile {
    path: String,
    bytes: u64,
    sha256: String,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub objects: usize,
    pub reports: usize,
    pub database_bytes: u64,
    pub total_bytes: u64,
}

/// Writes a backup of `data_dir` to `out` (whole or not at all). Safe while the server runs.
pub async fn backup(data_dir: &Path, out: &Path) -> anyhow::Result<Summary> {
    let database = data_dir.join(DATABASE);
    ensure!(database.is_file(), "没有找到数据库 / no database at {}", database.display());
    let snapshot = out.with_extension("sqlite3.tmp");
    let _ = std::fs::remove_file(&snapshot);
    crate::store::db::snapshot_sqlite_file(&database, &snapshot).await?;
    let result = write_archive(data_dir, &snapshot, out);
    let _ = std::fs::remove_file(&snapshot);
    result
}

fn write_archive(data_dir: &Path, snapshot: &Path, out: &Path) -> anyhow::Result<Summary> {
    let tmp = out.with_extension("zip.tmp");
    let file = private_file(&tmp).with_context(|| format!("无法写入 / cannot write {}", tmp.display()))?;
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
    let mut files = Vec::new();
    let mut add = |zip: &mut zip::ZipWriter<_>, name: String, source: &Path, compress: bool| -> anyhow::Result<u64> {
        let bytes = std::fs::read(source).with_context(|| format!("cannot read {}", source.display()))?;
        let method = if compress { zip::CompressionMethod::Deflated } else { zip::CompressionMethod::Stored };
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(method)
            .large_file(bytes.len() >= (1 << 32) - 1);
        zip.start_file(name.as_str(), options)?;
        zip.write_all(&bytes)?;
        files.push(ManifestFile { path: name, bytes: bytes.len() as u64, sha256: hex::encode(Sha256::digest(&bytes)) });
        Ok(bytes.len() as u64)
    };
    let database_bytes = add(&mut zip, DATABASE.into(), snapshot, true)?;
    let mut summary = Summary { objects: 0, reports: 0, database_bytes, total_bytes: database_bytes };
    // Images are compressed already (or are DICOM that deflate barely helps): stored as they are.
    for (name, path) in list(&data_dir.join("objects"), 2)? {
        summary.total_bytes += add(&mut zip, format!("objects/{name}"), &path, false)?;
        summary.objects += 1;
    }
    for (name, path) in list(&data_dir.join("reports"), 1)? {
        summary.total_bytes += add(&mut zip, format!("reports/{name}"), &path, true)?;
        summary.reports += 1;
    }
    let site_key = data_dir.join(SITE_KEY);
    if site_key.is_file() {
        summary.total_bytes += add(&mut zip, SITE_KEY.into(), &site_key, false)?;
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        version: 1,
        created_at: crate::support::clock::now_rfc3339(),
        server_version: crate::VERSION.into(),
        files,
    };
    zip.start_file(MANIFEST, zip::write::SimpleFileOptions::default())?;
    zip.write_all(&serde_json::to_vec_pretty(&manifest)?)?;
    let mut writer = zip.finish()?;
    writer.flush()?;
    writer.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, out).with_context(|| format!("无法写入 / cannot write {}", out.display()))?;
    Ok(summary)
}

/// A new file only its owner may read or write (0600, whatever the umask): the archive holds the database
/// and `secrets/site.key`. A stale file of that name is truncated and narrowed too.
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

/// Files under `dir` at exactly `depth` levels (objects: `ab/<sha>`, reports: `<name>`), as relative
/// names with `/`, sorted; hidden (temporary) files left out.
fn list(dir: &Path, depth: usize) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy().to_string();
        if name.starts_with('.') {
            continue;
        }
        if depth > 1 && path.is_dir() {
            out.extend(list(&path, depth - 1)?.into_iter().map(|(n, p)| (format!("{name}/{n}"), p)));
        } else if depth == 1 && path.is_file() {
            out.push((name, path));
        }
    }
    out.sort();
    Ok(out)
}

/// Restores a backup into `data_dir`, which must not have a database yet. Every file is checked against
/// the manifest before it is written; a bad archive leaves no database behind.
pub fn restore(archive: &Path, data_dir: &Path) -> anyhow::Result<Summary> {
    let dir = DataDir::create(data_dir)?;
    // No server may start on the folder while it is being filled.
    let _lock = crate::support::runfile::RunLock::acquire(dir.root())?;
    let database = dir.root().join(DATABASE);
    ensure!(
        !database.exists(),
        "目标数据目录已有数据库，请恢复到空目录 / {} already has a database: restore into an empty data dir",
        dir.root().display()
    );
    let file = std::fs::File::open(archive).with_context(|| format!("无法读取 / cannot read {}", archive.display()))?;
    let mut zip = zip::ZipArchive::new(file).context("不是有效的备份文件 / not a backup archive (zip)")?;
    let manifest: Manifest = {
        let mut text = String::new();
        zip.by_name(MANIFEST)
            .context("备份文件缺少 manifest.json / no manifest.json in the archive")?
            .take(64 << 20)
            .read_to_string(&mut text)?;
        serde_json::from_str(&text).context("manifest.json 无效 / invalid manifest.json")?
    };
    ensure!(manifest.format == FORMAT && manifest.version == 1, "不支持的备份格式 / unsupported backup format");
    ensure!(
        zip.len() == manifest.files.len() + 1,
        "备份文件内容与清单不符 / the archive holds files the manifest does not list"
    );
    // The database goes last: until it is in place the folder is not a usable data dir.
    let mut files: Vec<&ManifestFile> = manifest.files.iter().collect();
    files.sort_by_key(|f| f.path == DATABASE);
    let mut summary = Summary { objects: 0, reports: 0, database_bytes: 0, total_bytes: 0 };
    for f in files {
        let target = checked_target(dir.root(), &f.path)?;
        let mut bytes = Vec::new();
        zip.by_name(&f.path)
            .with_context(|| format!("备份文件缺少 / missing from the archive: {}", f.path))?
            .take(f.bytes + 1)
            .read_to_end(&mut bytes)
            // The zip's own CRC check fails first on most damage.
            .with_context(|| {
                format!("校验失败，备份文件已损坏 / checksum mismatch, the backup is damaged: {}", f.path)
            })?;
        if bytes.len() as u64 != f.bytes || hex::encode(Sha256::digest(&bytes)) != f.sha256 {
            bail!("校验失败，备份文件已损坏 / checksum mismatch, the backup is damaged: {}", f.path);
        }
        std::fs::create_dir_all(target.parent().expect("targets are inside the data dir"))?;
        if f.path == SITE_KEY {
            crate::support::files::write_secret_atomically(&target, &bytes)?;
        } else {
            write_atomically(&target, &bytes)?;
        }
        summary.total_bytes += f.bytes;
        match f.path.split('/').next() {
            Some("objects") => summary.objects += 1,
            Some("reports") => summary.reports += 1,
            Some("secrets") => {}
            _ => summary.database_bytes = f.bytes,
        }
    }
    ensure!(database.is_file(), "备份文件缺少数据库 / the backup has no database");
    Ok(summary)
}

/// Where an archive path may be written: the database, the site key, `objects/ab/<64 hex>`, or
/// `reports/<plain name>`. Anything else (absolute paths, `..`, other folders) is refused.
fn checked_target(root: &Path, path: &str) -> anyhow::Result<PathBuf> {
    let hex_name =
        |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let parts: Vec<&str> = path.split('/').collect();
    let ok = match parts.as_slice() {
        ["db", "medgemma-x.sqlite3"] | ["secrets", "site.key"] => true,
        ["objects", shard, name] => hex_name(shard, 2) && hex_name(name, 64) && name.starts_with(shard),
        ["reports", name] => !name.is_empty() && !name.starts_with('.') && !name.contains(['\\', '\0']),
        _ => false,
    };
    ensure!(ok, "备份文件含有不允许的路径 / path not allowed in a backup: {path}");
    Ok(root.join(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_paths_are_restored() {
        let root = Path::new("/data");
        let sha = "ab".to_string() + &"0".repeat(62);
        assert!(checked_target(root, "db/medgemma-x.sqlite3").is_ok());
        assert!(checked_target(root, &format!("objects/ab/{sha}")).is_ok());
        assert!(checked_target(root, "reports/CZ2024-087.pdf").is_ok());
        for bad in
            ["../etc/passwd", "/etc/passwd", "objects/ab/../../x", "reports/../db/x", "reports/.hidden", "db/other.db"]
        {
            assert!(checked_target(root, bad).is_err(), "{bad}");
        }
        assert!(checked_target(root, &format!("objects/cd/{sha}")).is_err(), "shard must match the name");
    }
}
