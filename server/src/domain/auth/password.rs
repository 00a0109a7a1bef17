//! Password hashing: argon2id with OWASP's parameters (19 MiB, 2 passes, 1 lane), and the rules a new
//! password must meet.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// OWASP Password Storage Cheat Sheet (2025): argon2id, m = 19 MiB, t = 2, p = 1.
fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(19 * 1024, 2, 1, None).expect("valid parameters"))
}

pub const MIN_LENGTH: usize = 10;

/// Why a new password is refused, in both languages; None when it is acceptable.
pub fn weakness(password: &str, username: &str) -> Option<(&'static str, &'static str)> {
    if password.chars().count() < MIN_LENGTH {
        return Some(("密码至少 10 个字符", "the password needs at least 10 characters"));
    }
    if password.chars().count() > 256 {
        return Some(("密码过长（最多 256 个字符）", "the password is too long (256 characters at most)"));
    }
    if password.to_lowercase().contains(&username.to_lowercase()) {
        return Some(("密码不能包含用户名", "the password must not contain the username"));
    }
    None
}

/// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`). CPU-heavy (~50 ms): call it off the
/// async runtime.
pub fn hash(password: &str) -> String {
    let salt =
        SaltString::encode_b64(&crate::support::pseudonym::random_bytes::<16>()).expect("16 bytes is a valid salt");
    hasher().hash_password(password.as_bytes(), &salt).expect("argon2 hashing cannot fail for valid params").to_string()
}

/// At most this many password checks at once (each takes 19 MiB and a core for ~50 ms); more wait their
/// turn. Flag `--max-concurrent-password-hashes`.
pub struct HashPermits(tokio::sync::Semaphore);

impl HashPermits {
    pub fn new(permits: usize) -> HashPermits {
        HashPermits(tokio::sync::Semaphore::new(permits.max(1)))
    }

    /// Checks `given` against the stored hash, off the async runtime, when a permit is free; with no hash
    /// (no such account) it takes as long and answers false.
    pub async fn verify(&self, given: String, hash: Option<String>) -> Result<bool, crate::domain::DomainError> {
        let _permit = self.0.acquire().await.map_err(anyhow::Error::from)?;
        let checked = tokio::task::spawn_blocking(move || match hash {
            Some(hash) => verify(&given, &hash),
            None => {
                verify_nothing(&given);
                false
            }
        });
        Ok(checked.await?)
    }
}

/// Checks `password` against a stored PHC string (its own parameters, so old hashes keep working).
pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|parsed| hasher().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Spends the time of a real verification, so an unknown username answers as slowly as a wrong password.
pub fn verify_nothing(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let phc = DUMMY.get_or_init(|| hash("not a real password, only to spend the time"));
    let _ = verify(password, phc);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let a = hash("correct horse battery");
        let b = hash("correct horse battery");
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "salted");
        assert!(verify("correct horse battery", &a));
        assert!(!verify("correct horse batterx", &a));
        assert!(!verify("anything", "not a hash"));
    }

    #[test]
    fn weak_passwords_are_refused_with_a_reason() {
        assert!(weakness("short", "zhang").is_some());
        assert!(weakness("zhang-2026-secure", "zhang").is_some());
        assert!(weakness("长城长城长城长城长城", "zhang").is_none(), "10 Chinese characters are enough");
        assert!(weakness("a sound passphrase", "zhang").is_none());
    }
}
