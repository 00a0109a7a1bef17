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
    cache: Mutex<Vec<(i64, Arc<Decoded>)>>,
    cache_budget_bytes: usize,
}

/// What an instance row says about its stored object.
pub struct StoredInstance {
    pub id: i64,
    pub format: String,
    pub object_sha256: String,
    pub info: DicomInfo,
}

impl Images {
    pub fn new(
        objects: ObjectStore,
        limits: Limits,
        max_upload_bytes: u64,
        cache_budget_bytes: usize,
    ) -> Images {
        Images {
            objects,
            limits,
            max_upload_bytes,
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
