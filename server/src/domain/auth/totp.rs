//! The optional second factor: time-based one-time codes (RFC 6238: HMAC-SHA1, 6 digits, 30-second
//! steps) that any authenticator app makes from a secret the user scans once. Sites at 等保 level 3 turn it
//! on per account. A code is accepted for the current step or one either side (clock drift), and only once.

use totp_rs::{Algorithm, Secret, TOTP};

pub const STEP_SECONDS: u64 = 30;
pub const ISSUER: &str = "MedGemma-X";

/// 160 random bits, as RFC 4226 recommends.
pub fn new_secret() -> String {
    match Secret::Raw(crate::support::pseudonym::random_bytes::<20>().to_vec()).to_encoded() {
        Secret::Encoded(text) => text,
        Secret::Raw(_) => unreachable!("to_encoded gives the encoded form"),
    }
}

/// What an authenticator app reads (usually from a QR code): `otpauth://totp/MedGemma-X:zhang?…`.
pub fn otpauth_uri(secret: &str, username: &str) -> String {
    format!(
        "otpauth://totp/{ISSUER}:{username}?secret={secret}&issuer={ISSUER}&algorithm=SHA1&digits=6&period={STEP_SECONDS}"
    )
}

/// The 30-second step `code` is valid for (now, or one step either side), if any.
pub fn matching_step(secret: &str, code: &str, now_unix: u64) -> Option<u64> {
    let bytes = Secret::Encoded(secret.to_string()).to_bytes().ok()?;
    let totp = TOTP::new_unchecked(Algorithm::SHA1, 6, 0, STEP_SECONDS, bytes);
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now_step = now_unix / STEP_SECONDS;
    [now_step, now_step.saturating_sub(1), now_step + 1].into_iter().find(|step| totp.check(code, step * STEP_SECONDS))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 rows (8-digit codes there; the last 6 digits are the 6-digit code).
    #[test]
    fn the_rfc_6238_test_vectors() {
        let secret = match Secret::Raw(b"12345678901234567890".to_vec()).to_encoded() {
            Secret::Encoded(s) => s,
            Secret::Raw(_) => unreachable!(),
        };
        for (time, code) in [
            (59u64, "287082"),
            (1111111109, "081804"),
            (1111111111, "050471"),
            (1234567890, "005924"),
            (2000000000, "279037"),
        ] {
            assert_eq!(matching_step(&secret, code, time), Some(time / 30), "t={time}");
        }
        assert_eq!(matching_step(&secret, "287082", 59 + 30), Some(1), "one step late is fine");
        assert_eq!(matching_step(&secret, "287082", 59 + 90), None, "three steps late is not");
        assert_eq!(matching_step(&secret, "28708", 59), None);
        assert_eq!(matching_step(&secret, "abcdef", 59), None);
    }

    #[test]
    fn secrets_are_fresh_and_the_uri_names_the_account() {
        let a = new_secret();
        assert_ne!(a, new_secret());
        assert_eq!(a.len(), 32, "160 bits in base32");
        assert!(otpauth_uri(&a, "zhang").starts_with("otpauth://totp/MedGemma-X:zhang?secret="));
    }
}
