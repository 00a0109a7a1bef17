//! `medgemma-x backup` while the server runs, `restore` into a fresh data dir, and everything read back
//! through the restored server.

mod common;

use std::process::Command;

use common::{BIN, Server, dicom_fixture};
use reqwest::blocking::multipart;
use serde_json::Value;

fn run(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn get(server: &Server, path: &str) -> reqwest::blocking::Response {
    let response = server.get(path);
    assert!(response.status().is_success(), "{path}: {}", response.status());
    response
}

/// The archive holds the database and the site key: only its owner may read it, whatever the umask.
#[test]
fn a_backup_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let (source, archive) = (tmp.path().join("source"), tmp.path().join("backup.zip"));
    let server = Server::start(&["--data-dir", source.to_str().unwrap()], &[]);
    let out = run(&["backup", "--data-dir", source.to_str().unwrap(), "--out", archive.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mode = std::fs::metadata(&archive).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the backup is mode {mode:o}");
    assert!(get(&server, "/api/v1/studies").status().is_success(), "still serving");
}

#[test]
fn a_backup_taken_while_serving_restores_into_a_fresh_data_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let (source, target, archive) =
        (tmp.path().join("source"), tmp.path().join("target"), tmp.path().join("backup.zip"));
    let server = Server::start(&["--data-dir", source.to_str().unwrap()], &[]);
    let form = ["synthetic/ct_phantom.dcm", "synthetic/cxr.jpg", "synthetic/name_gb18030.dcm"].iter().fold(
        multipart::Form::new().text("patient_id", "P0002"),
        |form, f| {
            let path = dicom_fixture(f);
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            form.part("files", multipart::Part::bytes(std::fs::read(&path).unwrap()).file_name(name))
        },
    );
    let uploaded: Value =
        server.client().post(server.url("/api/v1/uploads")).multipart(form).send().unwrap().json().unwrap();
    assert_eq!(uploaded["stored"], 3, "{uploaded:#}");
    std::fs::write(source.join("reports/CZ20251015-001.hl7"), "MSH|^~\\&|MEDGEMMA-X\r").unwrap();

    // Online: the server keeps running.
    let out = run(&["backup", "--data-dir", source.to_str().unwrap(), "--out", archive.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("3 image objects, 1 reports"));
    let studies_before = get(&server, "/api/v1/studies").json::<Value>().unwrap();
    let ids: Vec<i64> =
        uploaded["files"].as_array().unwrap().iter().map(|f| f["instance_id"].as_i64().unwrap()).collect();
    let files_before: Vec<Vec<u8>> =
        ids.iter().map(|id| get(&server, &format!("/api/v1/instances/{id}/file")).bytes().unwrap().to_vec()).collect();
    drop(server);

    let out = run(&["restore", "--data-dir", target.to_str().unwrap(), "--from", archive.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let restored = Server::start(&["--data-dir", target.to_str().unwrap()], &[]);
    assert_eq!(get(&restored, "/api/v1/studies").json::<Value>().unwrap(), studies_before);
    for (id, before) in ids.iter().zip(&files_before) {
        assert_eq!(&get(&restored, &format!("/api/v1/instances/{id}/file")).bytes().unwrap().to_vec(), before);
        get(&restored, &format!("/api/v1/instances/{id}/frames/1/image.png"));
    }
    assert_eq!(std::fs::read_to_string(target.join("reports/CZ20251015-001.hl7")).unwrap(), "MSH|^~\\&|MEDGEMMA-X\r");
    // The same site key: pseudonyms in the audit trail mean the same patient after the restore, and the
    // accounts came along (the restored server's radiologist signs in with the old password).
    assert_eq!(
        std::fs::read(target.join("secrets/site.key")).unwrap(),
        std::fs::read(source.join("secrets/site.key")).unwrap()
    );
    drop(restored);

    // Restoring over data is refused; so is a damaged archive, which leaves no database behind.
    let out = run(&["restore", "--data-dir", target.to_str().unwrap(), "--from", archive.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already has a database"));
    let mut bytes = std::fs::read(&archive).unwrap();
    let at = bytes.windows(4).position(|w| w == b"DICM").expect("a stored DICOM object in the zip");
    bytes[at + 200] ^= 0xFF;
    let damaged = tmp.path().join("damaged.zip");
    std::fs::write(&damaged, bytes).unwrap();
    let fresh = tmp.path().join("fresh");
    let out = run(&["restore", "--data-dir", fresh.to_str().unwrap(), "--from", damaged.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("checksum mismatch"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!fresh.join("db/medgemma-x.sqlite3").exists());
}
