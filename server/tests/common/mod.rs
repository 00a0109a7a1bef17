//! Shared by the server's integration tests.

use std::path::PathBuf;

/// A tiny checkpoint made by models/tests/fixtures/make_tiny_gemma3.py (scripts/test.sh generates them
/// into target/fixtures; MEDGEMMA_X_FIXTURES points elsewhere). Missing fixtures fail the test.
pub fn fixture(name: &str) -> PathBuf {
    let dir = std::env::var_os("MEDGEMMA_X_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/fixtures"))
        .join(name);
    assert!(dir.join("golden.json").is_file(), "no fixture at {}: run scripts/test.sh", dir.display());
    dir
}
