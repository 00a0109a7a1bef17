//! Uploads into storage: each file (or zip entry) is parsed and decoded under the limits, stored as a
//! content-addressed object, and recorded as patient → study → series → instance. A file that fails
//! gets its reason; the others land regardless.

use imaging::dicom::{self, DicomInfo, Rescale, TransferSyntaxInfo};
use imaging::{ImagingError, Samples, archive, raster};
use measure::SpacingSource;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use crate::domain::DomainError;
use crate::domain::images::Images;
use crate::store::db::Pool;

/// Identity for JPEG/PNG uploads, which carry none of their own (form fields of the upload).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct UploaderIdentity {
    pub patient_id: Option<String>,
    pub patient_name: Option<String>,
    /// YYYY-MM-DD or YYYYMMDD.
    pub exam_date: Option<String>,
    /// DX, CR, CT… (default DX: most JPEG uploads are chest films).
    pub modality: Option<String>,
    /// Pixel spacing in mm, if the uploader knows it (same in both directions).
    pub pixel_spacing_mm: Option<f64>,
    pub description: Option<String>,
}

/// The physical range of a pixel spacing an uploader may give, mm.
pub const MIN_UPLOADER_SPACING_MM: f64 = 0.02;
pub const MAX_UPLOADER_SPACING_MM: f64 = 5.0;

impl UploaderIdentity {
    /// Takes one text field of the upload form (they may come before the files they describe).
    pub fn set(&mut self, field: &str, value: String) -> Result<(), DomainError> {
        let value = value.trim().to_string();
        let slot = match field {
            "patient_id" => &mut self.patient_id,
            "patient_name" => &mut self.patient_name,
            "exam_date" => &mut self.exam_date,
            "modality" => &mut self.modality,
            "description" => &mut self.description,
            "pixel_spacing_mm" => {
                // Detectors and film digitisers sample at 0.05–1 mm; a photographed film maybe coarser.
                let mm: f64 = value
                    .parse()
                    .ok()
                    .filter(|v: &f64| (MIN_UPLOADER_SPACING_MM..=MAX_UPLOADER_SPACING_MM).contains(v))
                    .ok_or_else(|| {
                        DomainError::invalid(
                            format!(
                                "像素间距应为 {MIN_UPLOADER_SPACING_MM}–{MAX_UPLOADER_SPACING_MM} 毫米之间的数字"
                            ),
                            format!(
                                "pixel_spacing_mm must be a number from {MIN_UPLOADER_SPACING_MM} to {MAX_UPLOADER_SPACING_MM}"
                            ),
                        )
                    })?;
                self.pixel_spacing_mm = Some(mm);
                return Ok(());
            }
            other => {
                return Err(DomainError::invalid(
                    format!("未知的表单字段：{other}"),
                    format!("unknown form field: {other}"),
                ));
            }
        };
        if field == "exam_date" && !valid_date(&value) {
            return Err(DomainError::invalid("检查日期格式应为 YYYY-MM-DD", "exam_date must be YYYY-MM-DD"));
        }
        *slot = Some(value);
        Ok(())
    }
}

fn valid_date(s: &str) -> bool {
    let digits: String = s.chars().filter(|c| *c != '-').collect();
    digits.len() == 8
        && digits.chars().all(|c| c.is_ascii_digit())
        && (1..=12).contains(&digits[4..6].parse::<u32>().unwrap_or(0))
        && (1..=31).contains(&digits[6..8].parse::<u32>().unwrap_or(0))
}

/// What one upload request may still extract from its zip archives, bytes (`--max-upload-inflated-mb`).
pub struct InflateBudget(pub u64);

/// Ingests one received file (a temporary file, removed here): parsed, decoded and stored off the async
/// threads, one of the server's image-work slots at a time, then recorded. One outcome per file, or per
/// entry of a zip.
pub async fn ingest_file(
    db: &Pool,
    images: &Arc<Images>,
    received: PathBuf,
    name: String,
    identity: &UploaderIdentity,
    inflate: &mut InflateBudget,
) -> Result<Vec<FileOutcome>, DomainError> {
    let (images, identity, inflate_left) = (Arc::clone(images), identity.clone(), inflate.0);
    // A burst of uploads waits here for a core instead of taking all of them from the viewer and the model.
    let _slot = Arc::clone(&images.work_slots).acquire_owned().await.map_err(anyhow::Error::from)?;
    let (prepared, left) = tokio::task::spawn_blocking(move || {
        let prepared = prepare(&name, &received, &identity, &images, inflate_left);
        let _ = std::fs::remove_file(&received);
        prepared
    })
    .await??;
    inflate.0 = left;
    let now = crate::support::clock::now_rfc3339();
    let mut outcomes = Vec::with_capacity(prepared.len());
    for (name, result) in prepared {
        outcomes.push(match result {
            Ok(p) => record(db, &p, &now).await?,
            Err(e) => {
                tracing::info!(code = e.code(), reason = %e, "upload rejected");
                FileOutcome::rejected(name, &e)
            }
        });
    }
    Ok(outcomes)
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Stored,
    /// The SOP Instance UID is already stored: nothing changed.
    Duplicate,
    Rejected,
}

impl Status {
    /// As serialized (and as the metrics label it).
    pub fn label(&self) -> &'static str {
        match self {
            Status::Stored => "stored",
            Status::Duplicate => "duplicate",
            Status::Rejected => "rejected",
        }
    }
}

/// What happened to one file of an upload.
#[derive(Clone, Debug, Serialize)]
pub struct FileOutcome {
    /// The name the uploader gave (for zip entries: archive name / entry path). For display only.
    pub name: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_zh: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_en: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub study_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<i64>,
}

impl FileOutcome {
    /// Code of a file refused because its study or series UID belongs to another patient.
    pub const UID_CONFLICT: &'static str = "uid_conflict";

    /// Stored now, or already stored: where the instance is, as (instance, series, study).
    fn landed(name: String, status: Status, (instance, series, study): (i64, i64, i64)) -> FileOutcome {
        FileOutcome {
            name,
            status,
            code: None,
            message_zh: None,
            message_en: None,
            study_id: Some(study),
            series_id: Some(series),
            instance_id: Some(instance),
        }
    }

    fn uid_conflict(name: String, what: &str) -> FileOutcome {
        let (zh, en) = if what == "study" { ("检查", "study") } else { ("序列", "series") };
        FileOutcome {
            name,
            status: Status::Rejected,
            code: Some(Self::UID_CONFLICT),
            message_zh: Some(format!("该文件的{zh} UID 已属于另一患者（患者编号或姓名不同），已拒收，未合并")),
            message_en: Some(format!(
                "the file's {en} UID already belongs to another patient (another patient ID or name): refused, not merged"
            )),
            study_id: None,
            series_id: None,
            instance_id: None,
        }
    }

    pub fn rejected(name: String, error: &ImagingError) -> FileOutcome {
        FileOutcome {
            name,
            status: Status::Rejected,
            code: Some(error.code()),
            message_zh: Some(error.message_zh()),
            message_en: Some(error.message_en()),
            study_id: None,
            series_id: None,
            instance_id: None,
        }
    }
}

/// A file ready for the database: its object stored, its metadata extracted.
pub struct Prepared {
    pub name: String,
    pub format: &'static str,
    pub object_sha256: String,
    pub object_bytes: usize,
    pub info: DicomInfo,
    /// "dicom" or "upload".
    pub source: &'static str,
}

/// One file's name and result: prepared for the database, or refused with the reason.
pub type FileResult = (String, Result<Prepared, ImagingError>);

/// Parses, decodes and stores every file in the received file `path` (one file, or a zip of many, read
/// entry by entry). Blocking. A file's own faults are its result; an error here is the server's (the
/// object store could not write). Returns what the request may still extract from zip archives.
pub fn prepare(
    name: &str,
    path: &Path,
    identity: &UploaderIdentity,
    images: &Images,
    inflate_left: u64,
) -> anyhow::Result<(Vec<FileResult>, u64)> {
    let mut file = std::fs::File::open(path).context("cannot read a received upload back")?;
    let mut magic = Vec::with_capacity(4);
    (&mut file).take(4).read_to_end(&mut magic).context("cannot read a received upload back")?;
    file.rewind()?;
    if !archive::is_zip(&magic) {
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).context("cannot read a received upload back")?;
        return Ok((vec![(name.to_string(), prepare_one(name, bytes, identity, images)?)], inflate_left));
    }
    let mut entries = match archive::open(std::io::BufReader::new(file), &images.limits, inflate_left) {
        Ok(entries) => entries,
        Err(e) => return Ok((vec![(name.to_string(), Err(e))], inflate_left)),
    };
    let mut out = Vec::new();
    for entry in &mut entries {
        let entry_name = format!("{name}/{}", entry.name);
        let result = match entry.bytes {
            Ok(b) if archive::is_zip(&b) => {
                Err(ImagingError::Unsupported("zip inside a zip / 压缩包内嵌套压缩包".into()))
            }
            Ok(b) => prepare_one(&entry_name, b, identity, images)?,
            Err(e) => Err(e),
        };
        out.push((entry_name, result));
    }
    Ok((out, entries.inflate_left()))
}

fn prepare_one(
    name: &str,
    mut bytes: Vec<u8>,
    identity: &UploaderIdentity,
    images: &Images,
) -> anyhow::Result<Result<Prepared, ImagingError>> {
    Ok(match parse(&mut bytes, identity, images) {
        Ok(Parsed { format, info, source }) => Ok(Prepared {
            name: name.to_string(),
            format,
            object_sha256: images.objects.put(&bytes)?,
            object_bytes: bytes.len(),
            info,
            source,
        }),
        Err(e) => Err(e),
    })
}

/// What reading a file found, before it is stored.
struct Parsed {
    format: &'static str,
    info: DicomInfo,
    source: &'static str,
}

/// Reads and decodes one file under the limits and the server's decoding-memory budget; for DICOM, zeroes
/// its preamble in `bytes` (what gets stored).
fn parse(bytes: &mut [u8], identity: &UploaderIdentity, images: &Images) -> Result<Parsed, ImagingError> {
    let limits = &images.limits;
    if dicom::is_dicom(bytes) {
        let image = dicom::read(bytes, limits)?;
        for (uid, what) in [
            (&image.info.study_instance_uid, "Study Instance UID (0020,000D)"),
            (&image.info.series_instance_uid, "Series Instance UID (0020,000E)"),
            (&image.info.sop_instance_uid, "SOP Instance UID (0008,0018)"),
        ] {
            if uid.is_none() {
                return Err(ImagingError::Corrupt(format!("缺少 / missing {what}")));
            }
        }
        // Decoding now means a stored image is an image the viewer can show.
        let _memory = images.decode_memory.reserve(image.info.decode_memory())?;
        image.decode()?;
        let info = image.info;
        dicom::zero_preamble(bytes);
        return Ok(Parsed { format: "dicom", info, source: "dicom" });
    }
    let format = match raster::format_of(bytes) {
        Some(image::ImageFormat::Jpeg) => "jpeg",
        Some(_) => "png",
        None => return Err(ImagingError::UnknownFormat),
    };
    let _memory = images.decode_memory.reserve(raster::decode_memory(bytes)?)?;
    let frames = raster::decode(bytes, limits)?;
    // The generated UIDs come from the content, so the same file uploaded again is a duplicate.
    let content_hash = hex::encode(Sha256::digest(&*bytes));
    let info = raster_info(identity, &frames, format, &content_hash);
    Ok(Parsed { format, info, source: "upload" })
}

/// The metadata of a JPEG/PNG upload, in the same shape as a DICOM file's, from the uploader's fields.
fn raster_info(identity: &UploaderIdentity, frames: &imaging::Frames, format: &str, sha: &str) -> DicomInfo {
    let clean = |s: &Option<String>| s.as_ref().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    // One study per upload file: UIDs derived from the content, under the 2.25 UUID-derived root.
    let uid = |what: &str| {
        format!(
            "2.25.{}",
            u128::from_be_bytes(Sha256::digest(format!("{what}:{sha}")).as_slice()[..16].try_into().unwrap())
        )
    };
    let spacing = identity.pixel_spacing_mm.filter(|s| *s > 0.0 && s.is_finite());
    let (spp, photometric, bits) = match &frames.samples {
        Samples::Gray(v) if v.iter().any(|x| *x > 255.0) => (1, "MONOCHROME2", 16),
        Samples::Gray(_) => (1, "MONOCHROME2", 8),
        Samples::Rgb(_) => (3, "RGB", 8),
    };
    DicomInfo {
        patient_name: clean(&identity.patient_name),
        patient_id: clean(&identity.patient_id),
        patient_birth_date: None,
        patient_sex: None,
        accession_number: None,
        study_instance_uid: Some(uid("study")),
        series_instance_uid: Some(uid("series")),
        sop_instance_uid: Some(uid("instance")),
        sop_class_uid: None,
        modality: clean(&identity.modality).or(Some("DX".into())).map(|m| m.to_uppercase()),
        study_date: clean(&identity.exam_date).map(|d| d.replace('-', "")),
        study_time: None,
        study_description: clean(&identity.description),
        series_description: None,
        series_number: Some(1),
        instance_number: Some(1),
        body_part_examined: None,
        view_position: None,
        rows: frames.rows as u32,
        columns: frames.columns as u32,
        frames: 1,
        samples_per_pixel: spp,
        photometric_interpretation: photometric.into(),
        planar_configuration: 0,
        bits_allocated: bits,
        bits_stored: bits,
        pixel_representation: 0,
        pixel_spacing_mm: spacing.map(|s| [s, s]),
        pixel_spacing_source: spacing.map(|_| SpacingSource::Uploader),
        rescale: Rescale { slope: 1.0, intercept: 0.0 },
        pixel_padding: None,
        windows: Vec::new(),
        transfer_syntax: TransferSyntaxInfo { uid: String::new(), name: Some(format.to_uppercase()) },
        specific_character_set: None,
        slice_thickness_mm: None,
        image_position_patient: None,
        image_orientation_patient: None,
        slice_location: None,
    }
}

/// The stored instance with this SOP Instance UID: (instance, series, study).
async fn stored_instance(
    tx: &mut crate::store::db::Connection,
    sop_uid: &str,
) -> Result<Option<(i64, i64, i64)>, crate::store::db::DbError> {
    sqlx::query_as(
        "SELECT instances.id, series.id, series.study_id FROM instances JOIN series ON series.id = instances.series_id \
         WHERE sop_instance_uid = $1",
    )
    .bind(sop_uid)
    .fetch_optional(&mut *tx)
    .await
}

/// Which stored UID the file claims for another patient, if any: its study's ("study"), when that study
/// belongs to another patient row or to the same patient ID under another name; its series' ("series"),
/// when that series belongs to another study or patient.
async fn uid_conflict(
    tx: &mut crate::store::db::Connection,
    patient: i64,
    info: &DicomInfo,
    study_uid: &str,
    series_uid: &str,
) -> Result<Option<&'static str>, crate::store::db::DbError> {
    let study_owner: Option<(i64, Option<String>)> = sqlx::query_as(
        "SELECT studies.patient_id, patients.name FROM studies JOIN patients ON patients.id = studies.patient_id \
         WHERE studies.study_uid = $1",
    )
    .bind(study_uid)
    .fetch_optional(&mut *tx)
    .await?;
    let other_name = |stored: &Option<String>| match (stored.as_deref(), info.patient_name.as_deref()) {
        (Some(stored), Some(given)) => !stored.trim().eq_ignore_ascii_case(given.trim()),
        _ => false,
    };
    if let Some((owner, name)) = &study_owner
        && (*owner != patient || other_name(name))
    {
        return Ok(Some("study"));
    }
    let series_owner: Option<(String, i64)> = sqlx::query_as(
        "SELECT studies.study_uid, studies.patient_id FROM series JOIN studies ON studies.id = series.study_id \
         WHERE series.series_uid = $1",
    )
    .bind(series_uid)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(series_owner.filter(|(owner_study, owner)| owner_study != study_uid || *owner != patient).map(|_| "series"))
}

/// Records a prepared file. Idempotent on the SOP Instance UID.
pub async fn record(db: &Pool, p: &Prepared, now: &str) -> Result<FileOutcome, crate::store::db::DbError> {
    let info = &p.info;
    let study_uid = info.study_instance_uid.as_deref().expect("checked in prepare");
    let series_uid = info.series_instance_uid.as_deref().expect("checked in prepare");
    let sop_uid = info.sop_instance_uid.as_deref().expect("checked in prepare");
    let patient_key = match &info.patient_id {
        Some(id) => id.clone(),
        None => format!("anonymous:{study_uid}"),
    };
    // The same instance again (a re-sent file): nothing changes, whatever identity came with it this time
    // (a JPEG sent again without its form fields is still the image stored before). Looked up before the
    // transaction: one that began with a read could not become the writer after another upload's commit
    // (SQLite's WAL answers SQLITE_BUSY_SNAPSHOT at once, without waiting).
    if let Some(stored) = stored_instance(&mut *db.acquire().await?, sop_uid).await? {
        return Ok(FileOutcome::landed(p.name.clone(), Status::Duplicate, stored));
    }
    let mut tx = db.begin().await?;
    // A patient, study or series seen before keeps its row; missing fields are filled in.
    let patient: i64 = sqlx::query_scalar(
        "INSERT INTO patients (patient_key, patient_id, name, birth_date, sex, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (patient_key) DO UPDATE SET name = COALESCE(patients.name, excluded.name), \
         birth_date = COALESCE(patients.birth_date, excluded.birth_date), sex = COALESCE(patients.sex, excluded.sex) \
         RETURNING id",
    )
    .bind(&patient_key)
    .bind(&info.patient_id)
    .bind(&info.patient_name)
    .bind(&info.patient_birth_date)
    .bind(&info.patient_sex)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    // A study or series UID already stored belongs to its patient: a file that claims it for another
    // patient is refused and the transaction dropped (nothing of it stored), never merged.
    if let Some(what) = uid_conflict(&mut tx, patient, info, study_uid, series_uid).await? {
        tracing::warn!(uid = what, "upload refused: a stored UID claimed for another patient");
        return Ok(FileOutcome::uid_conflict(p.name.clone(), what));
    }
    let study: i64 = sqlx::query_scalar(
        "INSERT INTO studies (patient_id, study_uid, accession_number, study_date, study_time, description, source, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (study_uid) DO UPDATE SET description = COALESCE(studies.description, excluded.description) \
         RETURNING id",
    )
    .bind(patient)
    .bind(study_uid)
    .bind(&info.accession_number)
    .bind(&info.study_date)
    .bind(&info.study_time)
    .bind(&info.study_description)
    .bind(p.source)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let series: i64 = sqlx::query_scalar(
        "INSERT INTO series (study_id, series_uid, modality, series_number, description, body_part, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (series_uid) DO UPDATE SET modality = COALESCE(series.modality, excluded.modality) \
         RETURNING id",
    )
    .bind(study)
    .bind(series_uid)
    .bind(&info.modality)
    .bind(info.series_number)
    .bind(&info.series_description)
    .bind(&info.body_part_examined)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let metadata = serde_json::to_string(info).expect("metadata serializes");
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO instances (series_id, sop_instance_uid, instance_number, format, object_sha256, object_bytes, \
         rows, columns, frames, metadata, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (sop_instance_uid) DO NOTHING RETURNING id",
    )
    .bind(series)
    .bind(sop_uid)
    .bind(info.instance_number)
    .bind(p.format)
    .bind(&p.object_sha256)
    .bind(p.object_bytes as i64)
    .bind(i64::from(info.rows))
    .bind(i64::from(info.columns))
    .bind(i64::from(info.frames))
    .bind(&metadata)
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(instance) = inserted else {
        // Stored meanwhile by a concurrent upload of the same file: point at that one.
        let stored = stored_instance(&mut tx, sop_uid).await?.ok_or(sqlx::Error::RowNotFound)?;
        return Ok(FileOutcome::landed(p.name.clone(), Status::Duplicate, stored));
    };
    tx.commit().await?;
    Ok(FileOutcome::landed(p.name.clone(), Status::Stored, (instance, series, study)))
}
