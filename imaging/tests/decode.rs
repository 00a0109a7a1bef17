//! Decoding checked against pydicom on its own test files (every transfer syntax), synthetic files with
//! known answers, and hostile files. Fixtures: imaging/tests/fixtures/make_dicom_fixtures.py, generated
//! into target/fixtures/dicom by scripts/test.sh.

use std::path::PathBuf;

use imaging::dicom::{self, DicomImage, DicomInfo};
use imaging::{Frames, ImagingError, Limits, Samples, archive, raster};
use measure::roi::Frame;
use measure::segment::{SegmentOptions, segment_nodule};
use measure::{Point, SpacingSource};
use serde_json::Value;

fn fixtures() -> PathBuf {
    let dir = std::env::var_os("MEDGEMMA_X_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/fixtures"))
        .join("dicom");
    assert!(dir.join("manifest.json").is_file(), "no DICOM fixtures at {}: run scripts/test.sh", dir.display());
    dir
}

fn manifest() -> Value {
    serde_json::from_slice(&std::fs::read(fixtures().join("manifest.json")).unwrap()).unwrap()
}

/// Reads and decodes a fixture: its metadata and its frames (or why it was refused).
fn open(path: &str) -> Result<(DicomInfo, Frames), ImagingError> {
    let bytes = std::fs::read(fixtures().join(path)).unwrap();
    let image = dicom::read(&bytes, &Limits::default())?;
    let frames = image.decode()?;
    Ok((image.info, frames))
}

fn f32s(path: PathBuf) -> Vec<f32> {
    std::fs::read(path).unwrap().as_chunks::<4>().0.iter().map(|b| f32::from_le_bytes(*b)).collect()
}

#[test]
fn grey_files_match_pydicom_after_the_modality_lut() {
    let mut checked = Vec::new();
    for case in manifest()["gray"].as_array().unwrap() {
        let name = case["file"].as_str().unwrap();
        let (_, frames) = open(&format!("pydicom/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            (frames.rows as u64, frames.columns as u64, frames.count as u64),
            (case["rows"].as_u64().unwrap(), case["columns"].as_u64().unwrap(), case["frames"].as_u64().unwrap()),
            "{name}"
        );
        let Samples::Gray(ours) = &frames.samples else { panic!("{name}: not grey") };
        let expected = f32s(fixtures().join(format!("pydicom/{name}.f32")));
        assert_eq!(ours.len(), expected.len(), "{name}");
        if case["exact"].as_bool().unwrap() {
            let first_difference = ours.iter().zip(&expected).position(|(a, b)| a != b);
            assert_eq!(first_difference, None, "{name}: differs at {first_difference:?}");
        } else {
            // Lossy: decoders differ in IDCT/wavelet rounding. Mean error under 1 % of the range, and
            // no pixel off by more than 5 %.
            let (lo, hi) = expected.iter().fold((f32::MAX, f32::MIN), |(l, h), v| (l.min(*v), h.max(*v)));
            let range = f64::from(hi - lo).max(1.0);
            let diffs: Vec<f64> = ours.iter().zip(&expected).map(|(a, b)| f64::from((a - b).abs())).collect();
            let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
            let max = diffs.iter().cloned().fold(0.0, f64::max);
            assert!(mean < 0.01 * range && max < 0.05 * range, "{name}: mean {mean}, max {max}, range {range}");
        }
        checked.push(format!("{name} ({})", case["transfer_syntax"].as_str().unwrap()));
    }
    // Every transfer syntax the issue names is among them.
    let m = manifest();
    let covered =
        |ts: &str| ["gray", "rgb"].iter().any(|k| m[k].as_array().unwrap().iter().any(|c| c["transfer_syntax"] == ts));
    for ts in [
        "1.2.840.10008.1.2",      // implicit VR little endian
        "1.2.840.10008.1.2.1",    // explicit VR little endian
        "1.2.840.10008.1.2.2",    // explicit VR big endian
        "1.2.840.10008.1.2.1.99", // deflated
        "1.2.840.10008.1.2.5",    // RLE
        "1.2.840.10008.1.2.4.50", // JPEG baseline
        "1.2.840.10008.1.2.4.51", // JPEG extended
        "1.2.840.10008.1.2.4.70", // JPEG lossless SV1
        "1.2.840.10008.1.2.4.80", // JPEG-LS lossless
        "1.2.840.10008.1.2.4.81", // JPEG-LS near-lossless
        "1.2.840.10008.1.2.4.90", // JPEG 2000 lossless
        "1.2.840.10008.1.2.4.91", // JPEG 2000
    ] {
        assert!(covered(ts), "no fixture for {ts}");
    }
    println!("checked: {checked:#?}");
}

#[test]
fn colour_files_match_pydicom() {
    for case in manifest()["rgb"].as_array().unwrap() {
        let name = case["file"].as_str().unwrap();
        let (_, frames) = open(&format!("pydicom/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"));
        let Samples::Rgb(ours) = &frames.samples else { panic!("{name}: not colour") };
        let expected = std::fs::read(fixtures().join(format!("pydicom/{name}.rgb"))).unwrap();
        assert_eq!(ours.len(), expected.len(), "{name}");
        let diffs: Vec<i32> = ours.iter().zip(&expected).map(|(a, b)| (i32::from(*a) - i32::from(*b)).abs()).collect();
        let max = *diffs.iter().max().unwrap();
        let mean = diffs.iter().sum::<i32>() as f64 / diffs.len() as f64;
        if case["exact"].as_bool().unwrap() {
            assert_eq!(max, 0, "{name}");
        } else {
            assert!(mean < 2.0 && max <= 16, "{name}: mean {mean}, max {max}");
        }
    }
}

#[test]
fn refused_files_name_their_reason() {
    for case in manifest()["refused"].as_array().unwrap() {
        let name = case["file"].as_str().unwrap();
        let err = open(&format!("pydicom/{name}")).map(|_| ()).unwrap_err();
        assert_eq!(err.code(), case["code"].as_str().unwrap(), "{name}: {err}");
        assert!(!err.message_zh().is_empty() && !err.message_en().is_empty());
    }
}

#[test]
fn chinese_names_decode_in_gb18030_gbk_and_utf8() {
    let m = manifest();
    for (file, name) in m["synthetic"]["names"].as_object().unwrap() {
        let (info, _) = open(&format!("synthetic/{file}")).unwrap();
        assert_eq!(info.patient_name.as_deref(), name.as_str(), "{file}");
        assert_eq!(info.study_description.as_deref(), Some("胸部正位"), "{file}");
    }
}

#[test]
fn ct_phantom_metadata_hu_and_automatic_measurement() {
    let m = manifest();
    let known = &m["synthetic"]["ct_phantom"];
    for file in
        ["ct_phantom.dcm", "ct_phantom_deflated.dcm", "ct_phantom_no_preamble.dcm", "ct_phantom_dirty_preamble.dcm"]
    {
        let (info, frames) = open(&format!("synthetic/{file}")).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(info.modality.as_deref(), Some("CT"));
        assert_eq!(info.pixel_spacing_mm, Some([0.7, 0.7]));
        assert_eq!(info.pixel_spacing_source, Some(SpacingSource::PixelSpacing));
        assert_eq!((info.rescale.slope, info.rescale.intercept), (1.0, -1024.0));
        assert_eq!(info.windows.len(), 2);
        let values = frames.gray_frame(0).unwrap();
        let frame = Frame { values, columns: frames.columns, rows: frames.rows };
        // Lung background is −850 HU exactly (stored 174, intercept −1024).
        assert_eq!(frame.probe(Point::new(5.0, 5.0)), Some(-850.0));
        let spacing = info.spacing().unwrap();
        for nodule in known["nodules"].as_array().unwrap() {
            let c = &nodule["center"];
            let seed = Point::new(c[0].as_f64().unwrap(), c[1].as_f64().unwrap());
            let seg = segment_nodule(&frame, seed, &spacing, &SegmentOptions::default()).unwrap();
            let (long, short) = (nodule["long_mm"].as_f64().unwrap(), nodule["short_mm"].as_f64().unwrap());
            // Within one pixel spacing (0.7 mm), HU within 1 of the nodule's 40 HU in its core.
            assert!((seg.axes.long_axis_mm - long).abs() <= 0.7, "{file}: long {} vs {long}", seg.axes.long_axis_mm);
            assert!(
                (seg.axes.short_axis_mm - short).abs() <= 0.7,
                "{file}: short {} vs {short}",
                seg.axes.short_axis_mm
            );
            let core = measure::roi::ellipse_stats(
                &frame,
                &measure::roi::Ellipse { center: seed, radius_x: 2.0, radius_y: 2.0 },
                &spacing,
            )
            .unwrap();
            assert!((core.mean - 40.0).abs() <= 1.0, "{file}: core HU {}", core.mean);
        }
    }
}

#[test]
fn monochrome1_radiograph_uses_imager_pixel_spacing_and_inverts() {
    let m = manifest();
    let known = &m["synthetic"]["cr_monochrome1"];
    let (info, frames) = open("synthetic/cr_monochrome1.dcm").unwrap();
    assert_eq!(info.pixel_spacing_source, Some(SpacingSource::ImagerPixelSpacing));
    assert_eq!(info.spacing().unwrap().source.caveat_zh(), Some("探测器平面，未校正放大"));
    assert!(frames.inverted);
    // Rendered: the nodule (low stored values) is bright, the background dark.
    let window = measure::window::Window { center: info.windows[0].center, width: info.windows[0].width };
    let img = imaging::render::to_8bit(&frames, &Default::default(), &[window]).unwrap().to_luma8();
    assert!(img.get_pixel(100, 100)[0] > img.get_pixel(5, 5)[0] + 50);
    let frame = Frame { values: frames.gray_frame(0).unwrap(), columns: frames.columns, rows: frames.rows };
    let c = &known["center"];
    let seg = segment_nodule(
        &frame,
        Point::new(c[0].as_f64().unwrap(), c[1].as_f64().unwrap()),
        &info.spacing().unwrap(),
        &SegmentOptions::default(),
    )
    .unwrap();
    let d = known["diameter_mm"].as_f64().unwrap();
    assert!((seg.axes.long_axis_mm - d).abs() <= 0.2 && (seg.axes.short_axis_mm - d).abs() <= 0.2, "{:?}", seg.axes);
}

#[test]
fn preamble_is_zeroed_for_storage() {
    let mut bytes = std::fs::read(fixtures().join("synthetic/ct_phantom_dirty_preamble.dcm")).unwrap();
    assert_eq!(&bytes[..2], b"MZ");
    dicom::zero_preamble(&mut bytes);
    assert!(bytes[..128].iter().all(|b| *b == 0));
    assert_eq!(&bytes[128..132], b"DICM");
    dicom::read(&bytes, &Limits::default()).unwrap();
}

#[test]
fn jpeg_and_png_uploads() {
    let read = |f: &str| {
        raster::decode(&std::fs::read(fixtures().join("synthetic").join(f)).unwrap(), &Limits::default()).unwrap()
    };
    let jpg = read("cxr.jpg");
    assert_eq!((jpg.columns, jpg.rows), (240, 300));
    assert!(matches!(jpg.samples, Samples::Gray(_)));
    let png16 = read("cxr16.png");
    assert!(png16.range(0).unwrap().1 > 255.0, "16-bit values kept");
    assert!(matches!(read("photo_rgb.png").samples, Samples::Rgb(_)));
}

#[test]
fn hostile_files_are_refused_before_allocation() {
    let read = |f: &str| std::fs::read(fixtures().join("hostile").join(f)).unwrap();
    let limits = Limits::default();
    let code = |r: Result<DicomImage<'_>, ImagingError>| r.map(|_| ()).unwrap_err().code();
    assert_eq!(code(dicom::read(&read("truncated.dcm"), &limits)), "truncated");
    assert_eq!(code(dicom::read(&read("huge_declared.dcm"), &limits)), "too_large");
    assert_eq!(code(dicom::read(&read("deep_nesting.dcm"), &limits)), "nesting_too_deep");
    let small = Limits { max_decoded_bytes: 10 << 20, ..limits };
    assert_eq!(code(dicom::read(&read("deflate_bomb.dcm"), &small)), "too_large");
    // Under the default limits it inflates (50 MB), and its zeros are padding, not 4 million empty elements.
    assert_eq!(code(dicom::read(&read("deflate_bomb.dcm"), &limits)), "no_pixels");
    // Zeros with one byte after them are millions of empty elements: refused by count, in linear time.
    assert_eq!(code(dicom::read(&read("zeros_then_one_byte.dcm"), &limits)), "too_large");
    // The zip bomb: its one entry is refused, the archive itself opens.
    let entries: Vec<_> = archive::open(std::io::Cursor::new(read("bomb.zip")), &limits, u64::MAX).unwrap().collect();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].bytes.as_ref().unwrap_err().code(), "too_large");
    // Every prefix of a valid file is refused cleanly (no panic, no huge allocation).
    let good = std::fs::read(fixtures().join("synthetic/ct_phantom.dcm")).unwrap();
    for cut in (0..good.len()).step_by(97) {
        if let Ok(image) = dicom::read(&good[..cut], &limits) {
            image.decode().unwrap_err();
        }
    }
}

#[test]
fn padding_is_kept_as_stored_but_left_out_of_the_full_range_window() {
    let (info, frames) = open("synthetic/ct_padded.dcm").unwrap();
    assert_eq!(info.pixel_padding, Some([-2000.0, -2000.0]));
    let values = frames.gray_frame(0).unwrap();
    assert_eq!(values[0], -3024.0, "the corner keeps its value, as pydicom gives it");
    assert_eq!(frames.range(0), Some((-850.0, 40.0)), "the full range is the scanned area's");
}
