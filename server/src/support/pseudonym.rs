//! Pseudonyms for patient identifiers in logs and audit exports: HMAC-SHA256 under a per-site secret.
//!
//! A plain SHA-256 of a name or ID is reversible by dictionary (a county's patient IDs are a few
//! million strings); without the site key nobody can even test a guess. The same identifier always gives
//! the same pseudonym at one site, so support staff can follow one patient through the logs, and a
//! privacy officer with access to the server can compute the pseudonym of a given patient to search the
//! audit trail.

use std::path::Path;

use anyhow::{Context, bail};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const KEY_BYTES: usize = 32;

/// The site key, created at first start in `<data-dir>/secrets/site.key` (mode 0600) and kept in
/// backups so pseudonyms stay stable after a restore.
#[derive(Clone)]
pub struct SiteKey([u8; KEY_BYTES]);

impl std::fmt::Debug for SiteKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SiteKey(..)")
    }
}

impl SiteKey {
    pub fn load_or_create(secrets_dir: &Path) -> anyhow::Result<SiteKey> {
        let path = secrets_dir.join("site.key");
        match std::fs::read(&path) {
            Ok(bytes) => {
                let Ok(key) = <[u8; KEY_BYTES]>::try_from(bytes.as_slice()) else {
                    bail!(
                        "站点密钥文件损坏 / the site key {} is damaged ({} bytes, expected {KEY_BYTES}); restore it from a backup",
                        path.display(),
                        bytes.len()
                    );
                };
                Ok(SiteKey(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = SiteKey(random_bytes());
                crate::support::files::write_secret_atomically(&path, &key.0)?;
                Ok(key)
            }
            Err(e) => Err(e).with_context(|| format!("cannot read the site key {}", path.display())),
        }
    }

    /// A fixed key, for tests.
    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> SiteKey {
        SiteKey(bytes)
    }

    /// HMAC-SHA256 of `purpose` and `value` (the purpose keeps pseudonyms of different kinds apart).
    pub fn mac(&self, purpose: &str, value: &str) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// "P-" and 16 hex digits (64 bits: no collisions among a site's patients in practice).
    pub fn patient(&self, patient_key: &str) -> String {
        format!("P-{}", hex::encode(&self.mac("patient", patient_key)[..8]))
    }
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_stable_per_site_and_differ_between_sites() {
        let a = SiteKey::from_bytes([1; 32]);
        let b = SiteKey::from_bytes([2; 32]);
        assert_eq!(a.patient("PAT-001"), a.patient("PAT-001"));
        assert_ne!(a.patient("PAT-001"), a.patient("PAT-002"));
        assert_ne!(a.patient("PAT-001"), b.patient("PAT-001"));
        assert_eq!(a.patient("PAT-001").len(), 18);
        assert!(!a.patient("PAT-001").contains("PAT"));
    }

    #[test]
    fn the_key_is_created_once_private_and_damage_is_reported() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let first = SiteKey::load_or_create(dir.path()).unwrap();
        let again = SiteKey::load_or_create(dir.path()).unwrap();
        assert_eq!(first.patient("x"), again.patient("x"));
        let mode = std::fs::metadata(dir.path().join("site.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(dir.path().join("site.key"), b"short").unwrap();
        let err = SiteKey::load_or_create(dir.path()).unwrap_err().to_string();
        assert!(err.contains("damaged"), "{err}");
    }
}
