//! DICOM Part 10: metadata a viewer, a report and an integrator need, and pixels as modality values.

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::DefaultDicomObject;
use dicom_pixeldata::PixelDecoder;
use dicom_transfer_syntax_registry::{TransferSyntaxRegistry, entries};
use measure::{Spacing, SpacingSource};
use serde::{Deserialize, Serialize};

use crate::error::{ImagingError, within};
use crate::limits::Limits;
use crate::pixels::{Frames, Samples};
use crate::scan;

/// Everything `medgemma-x dicom info` prints and the database keeps about one instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DicomInfo {
    /// For display: the ideographic form if the name has one ("Wang^Xiaoming=王小明" → "王小明"), components
    /// joined by spaces otherwise.
    pub patient_name: Option<String>,
    pub patient_id: Option<String>,
    pub patient_birth_date: Option<String>,
    pub patient_sex: Option<String>,
    pub accession_number: Option<String>,
    /// Type 1 in the standard, yet missing from some test objects: the importer refuses those.
    pub study_instance_uid: Option<String>,
    pub series_instance_uid: Option<String>,
    pub sop_instance_uid: Option<String>,
    pub sop_class_uid: Option<String>,
    pub modality: Option<String>,
    /// YYYYMMDD as in the file.
    pub study_date: Option<String>,
    pub study_time: Option<String>,
    pub study_description: Option<String>,
    pub series_description: Option<String>,
    pub series_number: Option<i64>,
    pub instance_number: Option<i64>,
    pub body_part_examined: Option<String>,
    pub view_position: Option<String>,
    pub rows: u32,
    pub columns: u32,
    pub frames: u32,
    pub samples_per_pixel: u16,
    pub photometric_interpretation: String,
    /// 0 colour-by-pixel (RGBRGB…), 1 colour-by-plane (RR…GG…BB…).
    #[serde(default)]
    pub planar_configuration: u16,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    /// 0 unsigned, 1 two's complement.
    pub pixel_representation: u16,
    /// [row spacing, column spacing] in mm, from whichever attribute applies.
    pub pixel_spacing_mm: Option<[f64; 2]>,
    pub pixel_spacing_source: Option<SpacingSource>,
    pub rescale: Rescale,
    /// Pixel Padding Value (0028,0120) and Pixel Padding Range Limit (0028,0121), stored values: pixels
    /// outside the scanned area (a CT's circle, a cropped radiograph's border).
    #[serde(default)]
    pub pixel_padding: Option<[f64; 2]>,
    /// Windows stored in the file, first is the default.
    pub windows: Vec<WindowInfo>,
    pub transfer_syntax: TransferSyntaxInfo,
    pub specific_character_set: Option<String>,
    pub slice_thickness_mm: Option<f64>,
    pub image_position_patient: Option<[f64; 3]>,
    pub image_orientation_patient: Option<[f64; 6]>,
    pub slice_location: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rescale {
    pub slope: f64,
    pub intercept: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowInfo {
    pub center: f64,
    pub width: f64,
    pub explanation: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransferSyntaxInfo {
    pub uid: String,
    pub name: Option<String>,
}

impl DicomInfo {
    /// The file's windows as the renderer takes them (first is the file's default).
    pub fn file_windows(&self) -> Vec<measure::window::Window> {
        self.windows.iter().map(|w| measure::window::Window { center: w.center, width: w.width }).collect()
    }

    pub fn spacing(&self) -> Option<Spacing> {
        let [row_mm, col_mm] = self.pixel_spacing_mm?;
        Some(Spacing { row_mm, col_mm, source: self.pixel_spacing_source? })
    }

    /// Memory that decoding takes at its peak, bytes: the decoded pixel data and the frames made from it
    /// (grey as f32 modality values).
    pub fn decode_memory(&self) -> u64 {
        let pixels = u64::from(self.rows) * u64::from(self.columns) * u64::from(self.frames);
        self.decoded_bytes() + pixels * 4
    }

    /// Bytes the decoded pixel data of all frames takes.
    pub fn decoded_bytes(&self) -> u64 {
        u64::from(self.rows)
            * u64::from(self.columns)
            * u64::from(self.frames)
            * u64::from(self.samples_per_pixel)
            * u64::from(self.bits_allocated).div_ceil(8)
    }
}

/// A parsed DICOM file, its sizes checked against the limits.
pub struct DicomImage<'a> {
    pub info: DicomInfo,
    object: DefaultDicomObject,
    /// The file, for pixel data decoded straight from it (or `layout.inflated` for deflated data sets).
    file: &'a [u8],
    layout: scan::Layout,
}

/// True if `bytes` look like DICOM Part 10 (with or without the 128-byte preamble).
pub fn is_dicom(bytes: &[u8]) -> bool {
    bytes.get(128..132) == Some(b"DICM") || bytes.get(0..4) == Some(b"DICM")
}

/// The bytes to store: the original file with the 128-byte preamble zeroed. The preamble is free for
/// applications to use and has been used to make files that are DICOM and executable at once.
pub fn zero_preamble(bytes: &mut [u8]) {
    if bytes.get(128..132) == Some(b"DICM") {
        bytes[..128].fill(0);
    }
}

pub fn read<'a>(bytes: &'a [u8], limits: &Limits) -> Result<DicomImage<'a>, ImagingError> {
    within("file bytes", bytes.len() as u64, limits.max_file_bytes)?;
    let layout = scan::scan(bytes, limits)?;
    let corrupt = |e: &dyn std::fmt::Display| ImagingError::Corrupt(e.to_string());
    let meta = dicom_object::FileMetaTable::from_reader(&bytes[layout.magic_offset..]).map_err(|e| corrupt(&e))?;
    // The data set as the scan found it: inflated (and then explicit VR little endian), implicit despite
    // what the meta says, or as declared.
    let (explicit_le, implicit_le) =
        (entries::EXPLICIT_VR_LITTLE_ENDIAN.erased(), entries::IMPLICIT_VR_LITTLE_ENDIAN.erased());
    let (dataset, start, ts) = match &layout.inflated {
        Some(inflated) => (inflated.as_slice(), 0, &explicit_le),
        None if layout.implicit_despite_meta => (bytes, layout.dataset_start, &implicit_le),
        None => match TransferSyntaxRegistry.get(&layout.transfer_syntax) {
            Some(ts) => (bytes, layout.dataset_start, ts),
            None => return Err(ImagingError::Unsupported(format!("transfer syntax {}", layout.transfer_syntax))),
        },
    };
    // Pixel data we decode from the file's bytes is not worth the parser's copy of it.
    let end = match &layout.pixel_data {
        Some(pixels) if decoded_from_file(&layout) => pixels.element_start(),
        _ => layout.dataset_end,
    };
    let object = dicom_object::InMemDicomObject::read_dataset_with_ts(&dataset[start..end], ts)
        .map_err(|e| corrupt(&e))?
        .with_exact_meta(meta);
    let info = info(&object);
    if layout.pixel_data.is_none() && object.get(tags::PIXEL_DATA).is_none() {
        return Err(ImagingError::NoPixels);
    }
    if info.rows == 0 || info.columns == 0 {
        return Err(ImagingError::Corrupt(format!("image of {} rows × {} columns", info.rows, info.columns)));
    }
    within("rows × columns", u64::from(info.rows) * u64::from(info.columns), limits.max_frame_pixels)?;
    within("frames", u64::from(info.frames), limits.max_frames)?;
    within("decoded pixel bytes", info.decoded_bytes(), limits.max_decoded_bytes)?;
    // Gray frames become f32 modality values: 4 bytes a pixel whatever the stored depth.
    let modality_bytes = u64::from(info.rows) * u64::from(info.columns) * u64::from(info.frames) * 4;
    within("decoded pixel bytes", modality_bytes, limits.max_decoded_bytes)?;
    Ok(DicomImage { info, object, file: bytes, layout })
}

/// Uncompressed, RLE and JPEG pixel data are decoded here from the file's bytes; JPEG-LS, JPEG 2000 and
/// deflated data sets go through dicom-pixeldata, which needs the parsed pixel data.
fn decoded_from_file(layout: &scan::Layout) -> bool {
    match &layout.pixel_data {
        Some(scan::PixelData::Native { .. }) => true,
        Some(scan::PixelData::Encapsulated { .. }) => {
            layout.transfer_syntax == RLE_LOSSLESS || JPEG_SYNTAXES.contains(&layout.transfer_syntax.as_str())
        }
        None => false,
    }
}

fn info(obj: &DefaultDicomObject) -> DicomInfo {
    let ts_uid = obj.meta().transfer_syntax().trim_end_matches(['\0', ' ']).to_string();
    let ts_name = TransferSyntaxRegistry.get(&ts_uid).map(|ts| ts.name().to_string());
    let floats = |tag: Tag| obj.get(tag).and_then(|e| e.to_multi_float64().ok()).filter(|v| !v.is_empty());
    let (pixel_spacing_mm, pixel_spacing_source) =
        match (floats(tags::PIXEL_SPACING), floats(tags::IMAGER_PIXEL_SPACING)) {
            (Some(v), _) if v.len() >= 2 && v[0] > 0.0 && v[1] > 0.0 => {
                (Some([v[0], v[1]]), Some(SpacingSource::PixelSpacing))
            }
            (_, Some(v)) if v.len() >= 2 && v[0] > 0.0 && v[1] > 0.0 => {
                (Some([v[0], v[1]]), Some(SpacingSource::ImagerPixelSpacing))
            }
            _ => (None, None),
        };
    let centers = floats(tags::WINDOW_CENTER).unwrap_or_default();
    let widths = floats(tags::WINDOW_WIDTH).unwrap_or_default();
    let explanations: Vec<String> = obj
        .get(tags::WINDOW_CENTER_WIDTH_EXPLANATION)
        .and_then(|e| e.to_multi_str().ok().map(|s| s.to_vec()))
        .unwrap_or_default();
    let windows = centers
        .iter()
        .zip(&widths)
        .enumerate()
        .filter(|(_, (_, w))| **w >= 1.0)
        .map(|(i, (c, w))| WindowInfo {
            center: *c,
            width: *w,
            explanation: explanations.get(i).map(|s| s.trim().to_string()).filter(|s| !s.is_empty()),
        })
        .collect();
    let u16_of = |tag: Tag| obj.get(tag).and_then(|e| e.to_int::<u16>().ok());
    let array = |tag: Tag| floats(tag);
    DicomInfo {
        patient_name: text(obj, tags::PATIENT_NAME).map(|n| display_person_name(&n)),
        patient_id: text(obj, tags::PATIENT_ID),
        patient_birth_date: text(obj, tags::PATIENT_BIRTH_DATE),
        patient_sex: text(obj, tags::PATIENT_SEX),
        accession_number: text(obj, tags::ACCESSION_NUMBER),
        study_instance_uid: text(obj, tags::STUDY_INSTANCE_UID),
        series_instance_uid: text(obj, tags::SERIES_INSTANCE_UID),
        sop_instance_uid: text(obj, tags::SOP_INSTANCE_UID),
        sop_class_uid: text(obj, tags::SOP_CLASS_UID),
        modality: text(obj, tags::MODALITY),
        study_date: text(obj, tags::STUDY_DATE),
        study_time: text(obj, tags::STUDY_TIME),
        study_description: text(obj, tags::STUDY_DESCRIPTION),
        series_description: text(obj, tags::SERIES_DESCRIPTION),
        series_number: obj.get(tags::SERIES_NUMBER).and_then(|e| e.to_int::<i64>().ok()),
        instance_number: obj.get(tags::INSTANCE_NUMBER).and_then(|e| e.to_int::<i64>().ok()),
        body_part_examined: text(obj, tags::BODY_PART_EXAMINED),
        view_position: text(obj, tags::VIEW_POSITION),
        rows: u32::from(u16_of(tags::ROWS).unwrap_or(0)),
        columns: u32::from(u16_of(tags::COLUMNS).unwrap_or(0)),
        frames: obj.get(tags::NUMBER_OF_FRAMES).and_then(|e| e.to_int::<u32>().ok()).unwrap_or(1).max(1),
        samples_per_pixel: u16_of(tags::SAMPLES_PER_PIXEL).unwrap_or(1),
        photometric_interpretation: text(obj, tags::PHOTOMETRIC_INTERPRETATION).unwrap_or_else(|| "MONOCHROME2".into()),
        planar_configuration: u16_of(tags::PLANAR_CONFIGURATION).unwrap_or(0),
        bits_allocated: u16_of(tags::BITS_ALLOCATED).unwrap_or(0),
        bits_stored: u16_of(tags::BITS_STORED).or(u16_of(tags::BITS_ALLOCATED)).unwrap_or(0),
        pixel_representation: u16_of(tags::PIXEL_REPRESENTATION).unwrap_or(0),
        pixel_spacing_mm,
        pixel_spacing_source,
        rescale: Rescale {
            slope: floats(tags::RESCALE_SLOPE).map(|v| v[0]).filter(|s| *s != 0.0).unwrap_or(1.0),
            intercept: floats(tags::RESCALE_INTERCEPT).map(|v| v[0]).unwrap_or(0.0),
        },
        pixel_padding: obj.get(tags::PIXEL_PADDING_VALUE).and_then(|e| e.to_int::<i64>().ok()).map(|value| {
            let limit = obj.get(tags::PIXEL_PADDING_RANGE_LIMIT).and_then(|e| e.to_int::<i64>().ok()).unwrap_or(value);
            [value as f64, limit as f64]
        }),
        windows,
        transfer_syntax: TransferSyntaxInfo { uid: ts_uid, name: ts_name },
        specific_character_set: obj
            .get(tags::SPECIFIC_CHARACTER_SET)
            .and_then(|e| e.to_multi_str().ok().map(|s| s.join("\\")))
            .filter(|s| !s.is_empty()),
        slice_thickness_mm: floats(tags::SLICE_THICKNESS).map(|v| v[0]),
        image_position_patient: array(tags::IMAGE_POSITION_PATIENT).and_then(|v| v.try_into().ok()),
        image_orientation_patient: array(tags::IMAGE_ORIENTATION_PATIENT).and_then(|v| v.try_into().ok()),
        slice_location: floats(tags::SLICE_LOCATION).map(|v| v[0]),
    }
}

/// A text value with the padding DICOM adds removed; None when absent or empty.
fn text(obj: &DefaultDicomObject, tag: Tag) -> Option<String> {
    let value = obj.get(tag)?.to_str().ok()?;
    let trimmed = value.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// PS3.5 6.2.1: a person name has up to three component groups (alphabetic=ideographic=phonetic), each of
/// family^given^middle^prefix^suffix. Chinese hospitals write "WANG^XIAOMING=王^小明" or just "王小明".
fn display_person_name(raw: &str) -> String {
    let groups: Vec<&str> = raw.split('=').collect();
    let chosen = groups.get(1).filter(|g| !g.trim().is_empty()).unwrap_or(&groups[0]);
    let parts: Vec<&str> = chosen.split('^').map(str::trim).filter(|p| !p.is_empty()).collect();
    // CJK names are written without a space between family and given name.
    let cjk = parts.iter().all(|p| p.chars().all(|c| c as u32 >= 0x2E80));
    parts.join(if cjk { "" } else { " " })
}

impl DicomImage<'_> {
    /// All frames as modality values (grayscale) or RGB (colour).
    pub fn decode(&self) -> Result<Frames, ImagingError> {
        let info = &self.info;
        let (rows, columns, count) = (info.rows as usize, info.columns as usize, info.frames as usize);
        let pixels = rows * columns * count;
        let (spp, bits) = (usize::from(info.samples_per_pixel), info.bits_allocated);
        if !matches!((spp, bits), (1, 8 | 16 | 32) | (3, 8)) {
            return Err(ImagingError::Unsupported(format!(
                "{spp} samples of {bits} bits per pixel ({})",
                info.photometric_interpretation
            )));
        }
        let bytes_per_sample = usize::from(bits) / 8;
        let ts = self.layout.transfer_syntax.as_str();
        let source: &[u8] = self.layout.inflated.as_deref().unwrap_or(self.file);
        let decoded;
        let own;
        let (data, bits_stored, photometric, planar, big_endian): (&[u8], u16, String, bool, bool);
        match &self.layout.pixel_data {
            Some(scan::PixelData::Native { bytes, big_endian: be, vr_ow, .. }) => {
                let mut raw: &[u8] = &source[bytes.clone()];
                // YBR_FULL_422 uncompressed keeps two luma samples per chroma pair (PS3.3 C.7.6.3.1.2).
                if info.photometric_interpretation == "YBR_FULL_422" && spp == 3 {
                    own = upsample_ybr_422(raw, rows * columns, count)?;
                    raw = &own;
                } else if *be && *vr_ow && bits == 8 {
                    // 8-bit samples in big-endian 16-bit words: swap each pair back.
                    own = raw.chunks(2).flat_map(|p| p.iter().rev().copied()).collect();
                    raw = &own;
                }
                (data, bits_stored, big_endian) = (raw, info.bits_stored, *be);
                photometric = info.photometric_interpretation.clone();
                planar = info.planar_configuration == 1;
            }
            Some(scan::PixelData::Encapsulated { .. }) if decoded_from_file(&self.layout) => {
                // Codecs we drive ourselves, frame by frame: interleaved, little endian, colour as RGB.
                own = self.decode_encapsulated(ts, rows, columns, count, bytes_per_sample)?;
                (data, bits_stored, planar, big_endian) = (&own, info.bits_stored, false, false);
                photometric =
                    if ts != RLE_LOSSLESS && spp == 3 { "RGB".into() } else { info.photometric_interpretation.clone() };
            }
            _ => {
                decoded = self.object.decode_pixel_data().map_err(|e| decode_error(info, e))?;
                (data, bits_stored, big_endian) = (decoded.data(), decoded.bits_stored(), false);
                photometric = decoded.photometric_interpretation().as_str().to_string();
                planar = decoded.planar_configuration() == dicom_pixeldata::PlanarConfiguration::PixelFirst;
            }
        }
        let expected = pixels * spp * bytes_per_sample;
        if data.len() < expected {
            return Err(ImagingError::Truncated(format!("pixel data has {} bytes, {expected} expected", data.len())));
        }
        let samples = if spp == 1 {
            if !photometric.starts_with("MONOCHROME") {
                return Err(ImagingError::Unsupported(format!("photometric interpretation {photometric}")));
            }
            Samples::Gray(modality_values(&data[..expected], bits, bits_stored, big_endian, info))
        } else {
            Samples::Rgb(to_rgb(&data[..expected], planar, &photometric, rows * columns)?)
        };
        // PS3.3 C.7.5.1.1.2: padding values are stored pixel values; compare after the same rescale.
        let padding = info.pixel_padding.map(|[a, b]| {
            let to_value = |raw: f64| (raw * info.rescale.slope + info.rescale.intercept) as f32;
            let (x, y) = (to_value(a), to_value(b));
            (x.min(y), x.max(y))
        });
        Ok(Frames { rows, columns, count, samples, inverted: photometric == "MONOCHROME1", padding })
    }

    /// RLE or JPEG pixel data, decoded frame by frame.
    fn decode_encapsulated(
        &self,
        ts: &str,
        rows: usize,
        columns: usize,
        frames: usize,
        bytes_per_sample: usize,
    ) -> Result<Vec<u8>, ImagingError> {
        let spp = usize::from(self.info.samples_per_pixel);
        let mut out = Vec::with_capacity(rows * columns * frames * spp * bytes_per_sample);
        for frame in self.encapsulated_frames(frames)? {
            if ts == RLE_LOSSLESS {
                crate::rle::decode_frame(&frame, rows * columns, spp, bytes_per_sample, &mut out)?;
            } else {
                let rgb = self.info.photometric_interpretation == "RGB";
                crate::jpeg::decode_frame(&frame, rows, columns, spp, bytes_per_sample, rgb, &mut out)?;
            }
        }
        Ok(out)
    }

    /// The compressed bytes of each frame (PS3.5 A.4): one fragment per frame, all fragments for a single
    /// frame, or the fragments the Basic Offset Table groups together.
    fn encapsulated_frames(&self, frames: usize) -> Result<Vec<std::borrow::Cow<'_, [u8]>>, ImagingError> {
        use std::borrow::Cow;
        let Some(scan::PixelData::Encapsulated { offset_table, fragments, .. }) = &self.layout.pixel_data else {
            return Err(ImagingError::Corrupt("compressed pixel data is not encapsulated".into()));
        };
        let fragment = |r: &std::ops::Range<usize>| &self.file[r.clone()];
        if fragments.len() == frames {
            return Ok(fragments.iter().map(|r| Cow::Borrowed(fragment(r))).collect());
        }
        if frames == 1 {
            return Ok(vec![Cow::Owned(fragments.iter().flat_map(|r| fragment(r).iter().copied()).collect())]);
        }
        let table: Vec<u64> = self.file[offset_table.clone()]
            .as_chunks::<4>()
            .0
            .iter()
            .map(|b| u64::from(u32::from_le_bytes(*b)))
            .collect();
        if table.len() == frames {
            // Offsets count bytes from the first fragment's item tag; each item is 8 bytes of header
            // plus its value.
            let mut grouped: Vec<Vec<u8>> = vec![Vec::new(); frames];
            let mut position = 0u64;
            for r in fragments {
                let frame = table.iter().rposition(|o| *o <= position).unwrap_or(0);
                grouped[frame].extend_from_slice(fragment(r));
                position += 8 + r.len() as u64;
            }
            return Ok(grouped.into_iter().map(Cow::Owned).collect());
        }
        Err(ImagingError::Unsupported(format!(
            "{} fragments for {frames} frames without an offset table",
            fragments.len()
        )))
    }
}

const RLE_LOSSLESS: &str = "1.2.840.10008.1.2.5";

/// JPEG baseline (process 1), extended (2 & 4), lossless (14) and lossless SV1 (14, selection value 1).
const JPEG_SYNTAXES: [&str; 4] =
    ["1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70"];

/// Y1 Y2 Cb Cr per pixel pair → Y Cb Cr per pixel.
fn upsample_ybr_422(data: &[u8], pixels_per_frame: usize, frames: usize) -> Result<Vec<u8>, ImagingError> {
    if !pixels_per_frame.is_multiple_of(2) || data.len() < pixels_per_frame * 2 * frames {
        return Err(ImagingError::Corrupt("YBR_FULL_422 pixel data of the wrong size".into()));
    }
    Ok(data[..pixels_per_frame * 2 * frames]
        .as_chunks::<4>()
        .0
        .iter()
        .flat_map(|[y1, y2, cb, cr]| [*y1, *cb, *cr, *y2, *cb, *cr])
        .collect())
}

fn decode_error(info: &DicomInfo, e: dicom_pixeldata::Error) -> ImagingError {
    let ts = info.transfer_syntax.name.clone().unwrap_or_else(|| info.transfer_syntax.uid.clone());
    let message = e.to_string();
    if TransferSyntaxRegistry.get(&info.transfer_syntax.uid).is_none_or(|t| !t.can_decode_all()) {
        ImagingError::Unsupported(format!("transfer syntax {ts}"))
    } else {
        ImagingError::Corrupt(format!("pixel data ({ts}): {message}"))
    }
}

/// PS3.3 C.7.6.3.1: samples are `bits_stored` wide (the rest of `bits_allocated` is to be ignored),
/// two's complement when PixelRepresentation is 1; then C.11.1 modality LUT: value × slope + intercept,
/// computed in f64 as pydicom does, stored as f32. Split over the cores: a CT volume is tens of millions
/// of samples.
fn modality_values(data: &[u8], bits_allocated: u16, bits_stored: u16, big_endian: bool, info: &DicomInfo) -> Vec<f32> {
    use rayon::prelude::*;
    let stored = u32::from(bits_stored.clamp(1, bits_allocated));
    let signed = info.pixel_representation == 1;
    let Rescale { slope, intercept } = info.rescale;
    let shift = 32 - stored;
    let to_value = move |raw: u32| -> f32 {
        let sample =
            if signed { f64::from(((raw << shift) as i32) >> shift) } else { f64::from((raw << shift) >> shift) };
        (sample * slope + intercept) as f32
    };
    fn convert<const N: usize>(data: &[u8], read: impl Fn(&[u8; N]) -> f32 + Sync + Send) -> Vec<f32> {
        data.as_chunks::<N>().0.par_iter().with_min_len(1 << 16).map(read).collect()
    }
    match (bits_allocated, big_endian) {
        (8, _) => data.par_iter().with_min_len(1 << 16).map(|b| to_value(u32::from(*b))).collect(),
        (16, false) => convert::<2>(data, |b| to_value(u32::from(u16::from_le_bytes(*b)))),
        (16, true) => convert::<2>(data, |b| to_value(u32::from(u16::from_be_bytes(*b)))),
        (32, false) => convert::<4>(data, |b| to_value(u32::from_le_bytes(*b))),
        (32, true) => convert::<4>(data, |b| to_value(u32::from_be_bytes(*b))),
        _ => unreachable!("checked by the caller"),
    }
}

/// 8-bit colour to interleaved RGB. YBR_FULL (and YBR_FULL_422 once a codec has upsampled it) converted
/// with the ITU-R BT.601 full-range matrix PS3.3 C.7.6.3.1.2 gives, rounded as pydicom rounds.
fn to_rgb(data: &[u8], planar: bool, photometric: &str, pixels_per_frame: usize) -> Result<Vec<u8>, ImagingError> {
    let mut out = Vec::with_capacity(data.len());
    if planar {
        // Colour-by-plane: RRR…GGG…BBB… per frame.
        for frame in data.chunks_exact(pixels_per_frame * 3) {
            let (r, rest) = frame.split_at(pixels_per_frame);
            let (g, b) = rest.split_at(pixels_per_frame);
            for i in 0..pixels_per_frame {
                out.extend([r[i], g[i], b[i]]);
            }
        }
    } else {
        out.extend_from_slice(data);
    }
    match photometric {
        "RGB" => {}
        "YBR_FULL" | "YBR_FULL_422" => {
            for px in out.as_chunks_mut::<3>().0 {
                let (y, cb, cr) = (f64::from(px[0]), f64::from(px[1]) - 128.0, f64::from(px[2]) - 128.0);
                let r = y + 1.402 * cr;
                let g = y - (0.114 * 1.772 / 0.587) * cb - (0.299 * 1.402 / 0.587) * cr;
                let b = y + 1.772 * cb;
                px.copy_from_slice(&[r, g, b].map(|v| (v + 0.5).floor().clamp(0.0, 255.0) as u8));
            }
        }
        other => return Err(ImagingError::Unsupported(format!("photometric interpretation {other}"))),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn person_names_display_ideographic_first() {
        assert_eq!(display_person_name("WANG^XIAOMING=王^小明"), "王小明");
        assert_eq!(display_person_name("王小明"), "王小明");
        assert_eq!(display_person_name("Doe^John^^Dr"), "Doe John Dr");
        assert_eq!(display_person_name("Yamada^Tarou=山田^太郎=やまだ^たろう"), "山田太郎");
    }
}
