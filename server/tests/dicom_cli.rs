//! `medgemma-x dicom info|render` on the fixtures, as an integrator checking a file would run them.

mod common;

use std::process::Command;

use common::{BIN, dicom_fixture};
use serde_json::Value;

fn info_json(path: &str) -> Value {
    let out = Command::new(BIN).args(["dicom", "info", "--json"]).arg(dicom_fixture(path)).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn info_decodes_chinese_names_and_says_where_the_spacing_came_from() {
    let gb = info_json("synthetic/name_gb18030.dcm");
    assert_eq!(gb["patient_name"], "王小明");
    assert_eq!(gb["specific_character_set"], "GB18030");
    assert_eq!(gb["pixel_spacing_mm"], Value::Null);

    let cr = info_json("synthetic/cr_monochrome1.dcm");
    assert_eq!(cr["modality"], "CR");
    assert_eq!(cr["photometric_interpretation"], "MONOCHROME1");
    assert_eq!(cr["pixel_spacing_mm"], serde_json::json!([0.2, 0.2]));
    assert_eq!(cr["pixel_spacing_source"], "imager_pixel_spacing");
    assert_eq!(cr["windows"][0]["center"], 2048.0);

    let ct = info_json("pydicom/rtdose.dcm");
    assert_eq!((ct["rows"].as_u64(), ct["columns"].as_u64(), ct["frames"].as_u64()), (Some(10), Some(10), Some(15)));
    assert_eq!(ct["transfer_syntax"]["uid"], "1.2.840.10008.1.2");
    assert_eq!(ct["transfer_syntax"]["name"], "Implicit VR Little Endian");

    // The table form carries the caveat in Chinese.
    let out =
        Command::new(BIN).args(["dicom", "info"]).arg(dicom_fixture("synthetic/cr_monochrome1.dcm")).output().unwrap();
    assert!(String::from_utf8(out.stdout).unwrap().contains("探测器平面，未校正放大"));
}

#[test]
fn bad_files_and_frames_fail_with_a_reason_in_both_languages() {
    let out =
        Command::new(BIN).args(["dicom", "info"]).arg(dicom_fixture("hostile/huge_declared.dcm")).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("文件过大") && err.contains("too large"), "{err}");

    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["dicom", "render", "--frame", "16", "--out"])
        .arg(tmp.path().join("x.png"))
        .arg(dicom_fixture("pydicom/rtdose.dcm"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr).unwrap().contains("no frame 16"));
    assert!(!tmp.path().join("x.png").exists());

    // The last frame renders.
    let png = tmp.path().join("15.png");
    let ok = Command::new(BIN)
        .args(["dicom", "render", "--frame", "15", "--out"])
        .arg(&png)
        .arg(dicom_fixture("pydicom/rtdose.dcm"))
        .status()
        .unwrap();
    assert!(ok.success());
    assert_eq!(image::open(&png).unwrap().to_luma8().dimensions(), (10, 10));
}
