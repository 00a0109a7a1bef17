//! Zip archives of exam folders (DICOMDIR-less CD exports zipped by the uploader).

use std::io::{Cursor, Read};

use crate::error::{ImagingError, within};
use crate::limits::Limits;

/// An extracted entry, or why it was refused; the archive's other entries are unaffected.
pub struct Entry {
    /// Path inside the archive, for messages only (never used to build a path on disk).
    pub name: String,
    pub bytes: Result<Vec<u8>, ImagingError>,
}

pub fn is_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06")
}

/// Every file entry of the archive (directories and DICOMDIR skipped), each extracted under the limits:
/// declared and actual size ≤ max_file_bytes, ratio ≤ max_zip_ratio, at most max_zip_entries entries.
pub fn entries(bytes: &[u8], limits: &Limits) -> Result<Vec<Entry>, ImagingError> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| ImagingError::Corrupt(format!("zip: {e}")))?;
    within("zip entries", zip.len() as u64, limits.max_zip_entries)?;
    let mut out = Vec::new();
    for i in 0..zip.len() {
        let mut file = match zip.by_index(i) {
            Ok(f) => f,
            Err(e) => {
                out.push(Entry { name: format!("#{i}"), bytes: Err(ImagingError::Corrupt(format!("zip entry: {e}"))) });
                continue;
            }
        };
        let name = file.name().to_string();
        let base = name.rsplit('/').next().unwrap_or(&name);
        if file.is_dir() || base.eq_ignore_ascii_case("DICOMDIR") || base.starts_with('.') || base.is_empty() {
            continue;
        }
        let compressed = file.compressed_size().max(1);
        let declared = file.size();
        let cap = limits.max_file_bytes.min(compressed.saturating_mul(limits.max_zip_ratio));
        let result = within("zip entry bytes", declared, limits.max_file_bytes)
            .and_then(|_| within("zip entry compression ratio", declared / compressed, limits.max_zip_ratio))
            .and_then(|_| {
                // The declared size can lie: read at most the cap, and refuse if there is more.
                let mut buf = Vec::new();
                (&mut file)
                    .take(cap + 1)
                    .read_to_end(&mut buf)
                    .map_err(|e| ImagingError::Corrupt(format!("zip entry: {e}")))?;
                within("zip entry bytes (extracted)", buf.len() as u64, cap)?;
                Ok(buf)
            });
        out.push(Entry { name, bytes: result });
    }
    Ok(out)
}
