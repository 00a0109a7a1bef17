//! Stored images as the viewer and the model read them: the object store, the limits every file is held
//! to, and a small cache of decoded frames so dragging the window does not decode the file on every
//! request.

use std::sync::{Arc, Mutex};

use imaging::dicom::DicomInfo;
use imaging::{Frames, ImagingError, Limits};

use crate::store::objects::ObjectStore;

/// A decoded instance: its frames and the metadata it was stored with.
pub struct Decoded {
    pub frames: Frames,
    pub info: DicomInfo,
}

impl Decoded {
    fn bytes(&self) -> usize {
        match &self.frames.samples {
            imaging::Samples::Gray(v) => v.len() * 4,
            imaging::Samples::Rgb(v) => v.len(),
        }
    }
}

pub struct Images {
    pub objects: ObjectStore,
    pub limits: Limits,
    /// One upload request, all files together.
    pub max_upload_bytes: u64,
    /// What one upload request may extract from its zip archives, all entries together, bytes.
    pub max_upload_inflated_bytes: u64,
    /// Heavy image work running at once: uploads being unpacked and decoded, automatic measurements.
    /// Each takes a core; more wait their turn.
    pub work_slots: Arc<tokio::sync::Semaphore>,
    /// Memory that uploads being decoded may take together.
    pub decode_memory: DecodeMemory,
    cache: Mutex<Vec<(i64, Arc<Decoded>)>>,
    cache_budget_bytes: usize,
}

/// A memory budget shared by every upload being decoded: a file reserves what its decoding takes at its
/// peak (read from its header) before it decodes, waiting while others hold the budget, so that a few
/// large files at once cannot take the server's memory; a file that needs more than the whole budget is
/// refused. Reserving once per file, never while holding another reservation, cannot deadlock.
pub struct DecodeMemory {
    total: u64,
    used: Mutex<u64>,
    freed: std::sync::Condvar,
}

/// Memory reserved for one decode; given back when dropped.
pub struct Reserved<'a> {
    budget: &'a DecodeMemory,
    bytes: u64,
}

impl DecodeMemory {
    pub fn new(total: u64) -> DecodeMemory {
        DecodeMemory { total, used: Mutex::new(0), freed: std::sync::Condvar::new() }
    }

    /// Waits until `bytes` fit in the budget. Blocking: call from the blocking pool.
    pub fn reserve(&self, bytes: u64) -> Result<Reserved<'_>, ImagingError> {
        if bytes > self.total {
            return Err(ImagingError::TooLarge { what: "decoding memory (bytes)", value: bytes, limit: self.total });
        }
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        while *used + bytes > self.total {
            used = self.freed.wait(used).unwrap_or_else(|p| p.into_inner());
        }
        *used += bytes;
        Ok(Reserved { budget: self, bytes })
    }

    /// Bytes reserved now.
    pub fn in_use(&self) -> u64 {
        *self.used.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        *self.budget.used.lock().unwrap_or_else(|p| p.into_inner()) -= self.bytes;
        self.budget.freed.notify_all();
    }
}

/// What an instance row says about its stored object.
pub struct StoredInstance {
    pub id: i64,
    pub format: String,
    pub object_sha256: String,
    pub info: DicomInfo,
}

/// The sizes of [`Images`], from the command line.
#[derive(Clone, Copy, Debug)]
pub struct ImageSettings {
    pub limits: Limits,
    pub max_upload_bytes: u64,
    pub max_upload_inflated_bytes: u64,
    pub image_workers: usize,
    pub decode_memory_bytes: u64,
    pub cache_budget_bytes: usize,
}

impl Images {
    pub fn new(objects: ObjectStore, settings: ImageSettings) -> Images {
        let ImageSettings {
            limits,
            max_upload_bytes,
            max_upload_inflated_bytes,
            image_workers,
            decode_memory_bytes,
            cache_budget_bytes,
        } = settings;
        Images {
            objects,
            limits,
            max_upload_bytes,
            max_upload_inflated_bytes,
            work_slots: Arc::new(tokio::sync::Semaphore::new(image_workers.max(1))),
            decode_memory: DecodeMemory::new(decode_memory_bytes),
            cache: Mutex::new(Vec::new()),
            cache_budget_bytes,
        }
    }

    /// Decodes (or takes from the cache) an instance. Blocking: call from spawn_blocking.
    pub fn decoded(&self, stored: StoredInstance) -> anyhow::Result<Result<Arc<Decoded>, ImagingError>> {
        if let Some(hit) = self.cached(stored.id) {
            return Ok(Ok(hit));
        }
        let bytes = self.objects.read(&stored.object_sha256)?;
        let frames = match stored.format.as_str() {
            "dicom" => imaging::dicom::read(&bytes, &self.limits).and_then(|image| image.decode()),
            _ => imaging::raster::decode(&bytes, &self.limits),
        };
        Ok(frames.map(|frames| {
            let decoded = Arc::new(Decoded { frames, info: stored.info });
            self.remember(stored.id, Arc::clone(&decoded));
            decoded
        }))
    }

    fn cached(&self, id: i64) -> Option<Arc<Decoded>> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let at = cache.iter().position(|(k, _)| *k == id)?;
        let entry = cache.remove(at);
        let hit = Arc::clone(&entry.1);
        cache.push(entry); // most recently used last
        Some(hit)
    }

    /// Keeps the most recently used instances within the byte budget.
    fn remember(&self, id: i64, decoded: Arc<Decoded>) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if decoded.bytes() > self.cache_budget_bytes {
            return;
        }
        cache.retain(|(k, _)| *k != id);
        cache.push((id, decoded));
        while cache.iter().map(|(_, d)| d.bytes()).sum::<usize>() > self.cache_budget_bytes {
            cache.remove(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_wait_for_the_memory_budget_and_too_large_ones_are_refused() {
        let budget = Arc::new(DecodeMemory::new(100));
        assert_eq!(budget.reserve(101).err().map(|e| e.code()), Some("too_large"));
        let first = budget.reserve(70).unwrap();
        let waiting = {
            let budget = Arc::clone(&budget);
            std::thread::spawn(move || {
                let _second = budget.reserve(50).unwrap();
                budget.in_use()
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(!waiting.is_finished(), "70 + 50 does not fit in 100: the second waits");
        drop(first);
        assert_eq!(waiting.join().unwrap(), 50);
        assert_eq!(budget.in_use(), 0);
    }
}
