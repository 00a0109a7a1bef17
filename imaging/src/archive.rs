//! Zip archives of exam folders (DICOMDIR-less CD exports zipped by the uploader).

use std::io::{Read, Seek};

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

/// A zip archive read one entry at a time: an entry is extracted only when the caller asks for the next
/// one, so reading an archive never holds more than one extracted entry in memory.
pub struct Archive<R: Read + Seek> {
    zip: zip::ZipArchive<R>,
    limits: Limits,
    next: usize,
    /// Extracted bytes the archive may still give, all entries together.
    inflate_left: u64,
}

/// Opens an archive (its central directory only) under the limits: at most max_zip_entries entries; each
/// entry declared and extracted ≤ max_file_bytes at a ratio ≤ max_zip_ratio; all entries together at
/// most `inflate_budget` extracted bytes (entries past it are refused, each with its reason).
pub fn open<R: Read + Seek>(reader: R, limits: &Limits, inflate_budget: u64) -> Result<Archive<R>, ImagingError> {
    let zip = zip::ZipArchive::new(reader).map_err(|e| ImagingError::Corrupt(format!("zip: {e}")))?;
    within("zip entries", zip.len() as u64, limits.max_zip_entries)?;
    Ok(Archive { zip, limits: *limits, next: 0, inflate_left: inflate_budget })
}

impl<R: Read + Seek> Archive<R> {
    /// Extracted bytes the archive may still give.
    pub fn inflate_left(&self) -> u64 {
        self.inflate_left
    }
}

impl<R: Read + Seek> Iterator for Archive<R> {
    type Item = Entry;

    /// The next file entry (directories, DICOMDIR and hidden files skipped), extracted under the limits.
    fn next(&mut self) -> Option<Entry> {
        while self.next < self.zip.len() {
            let i = self.next;
            self.next += 1;
            let limits = self.limits;
            let mut file = match self.zip.by_index(i) {
                Ok(f) => f,
                Err(e) => {
                    return Some(Entry {
                        name: format!("#{i}"),
                        bytes: Err(ImagingError::Corrupt(format!("zip entry: {e}"))),
                    });
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
            let left = self.inflate_left;
            let result = within("zip entry bytes", declared, limits.max_file_bytes)
                .and_then(|_| within("zip entry compression ratio", declared / compressed, limits.max_zip_ratio))
                .and_then(|_| within("zip bytes extracted, all entries", declared, left))
                .and_then(|_| {
                    // The declared size can lie: read at most the cap (and what the archive has left), and
                    // refuse if there is more.
                    let read_at_most = cap.min(left);
                    let mut buf = Vec::new();
                    (&mut file)
                        .take(read_at_most + 1)
                        .read_to_end(&mut buf)
                        .map_err(|e| ImagingError::Corrupt(format!("zip entry: {e}")))?;
                    within("zip entry bytes (extracted)", buf.len() as u64, cap)?;
                    within("zip bytes extracted, all entries", buf.len() as u64, left)?;
                    Ok(buf)
                });
            if let Ok(bytes) = &result {
                self.inflate_left -= bytes.len() as u64;
            }
            return Some(Entry { name, bytes: result });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};

    fn zip_of(entries: &[(&str, usize)]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, len) in entries {
            writer.start_file(*name, options).unwrap();
            // Varied bytes: they compress far less than 200:1.
            let bytes: Vec<u8> = (0..*len).map(|i| (i * 7919 % 251) as u8).collect();
            writer.write_all(&bytes).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    #[test]
    fn entries_come_one_at_a_time_within_the_archives_total() {
        let bytes = zip_of(&[("a.dcm", 1000), ("dir/.hidden", 10), ("b.dcm", 1000), ("c.dcm", 1000)]);
        let mut archive = open(Cursor::new(bytes), &Limits::default(), 2500).unwrap();
        let first = archive.next().unwrap();
        assert_eq!((first.name.as_str(), first.bytes.unwrap().len()), ("a.dcm", 1000));
        assert_eq!(archive.inflate_left(), 1500, "only what was asked for is extracted");
        assert_eq!(archive.next().unwrap().bytes.unwrap().len(), 1000, "the hidden file is skipped");
        let third = archive.next().unwrap();
        assert_eq!(third.name, "c.dcm");
        let refused = third.bytes.unwrap_err();
        assert_eq!(refused.code(), "too_large");
        assert!(refused.message_en().contains("all entries"), "{}", refused.message_en());
        assert!(archive.next().is_none());
    }
}
