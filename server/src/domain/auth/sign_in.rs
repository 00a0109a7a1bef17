//! Signing in with a password (and the second factor where the account has one): throttled per account
//! and address, a constant-time answer for unknown names, and the reason only once the password was right.

use std::net::IpAddr;
use std::time::Duration;

use crate::domain::DomainError;
use crate::domain::auth::password::HashPermits;
use crate::domain::auth::throttle::{Throttle, device_cookie_matches};
use crate::domain::auth::users;
use crate::store::db::Pool;
use crate::support::pseudonym::SiteKey;

/// What the sign-in form sent, and where from.
pub struct Attempt {
    pub username: String,
    pub password: String,
    pub totp: Option<String>,
    pub address: IpAddr,
    /// The browser's device cookie, if it has one (a trusted device skips the throttle's delays).
    pub device_cookie: Option<String>,
}

/// Why a sign-in was refused, each with what the audit row says of it.
#[derive(Debug)]
pub enum Refusal {
    Throttled {
        wait: Duration,
    },
    BadCredentials,
    /// The password was right, but the account is disabled or is an integrator's (tokens only).
    CannotSignIn {
        disabled: bool,
    },
    TotpRequired,
    BadTotp,
    /// A username longer than any account's (refused before any lookup or hash).
    UsernameTooLong,
}

/// Longest username a sign-in may send, in characters (accounts have at most 32).
pub const MAX_USERNAME_CHARS: usize = 64;

impl Refusal {
    /// The audit row's detail.
    pub fn audit_detail(&self) -> &'static str {
        match self {
            Refusal::Throttled { .. } => "throttled",
            Refusal::BadCredentials => "wrong username or password",
            Refusal::CannotSignIn { disabled: true } => "this account is disabled; ask an administrator",
            Refusal::CannotSignIn { disabled: false } => "integrator accounts use API tokens, not passwords",
            Refusal::TotpRequired => "password right, one-time code missing",
            Refusal::BadTotp => "wrong or reused one-time code",
            Refusal::UsernameTooLong => "username over 64 characters",
        }
    }

    /// Whether the audit row may name the account tried (not when the name itself is the attack).
    pub fn names_account(&self) -> bool {
        !matches!(self, Refusal::UsernameTooLong)
    }
}

/// Checks an attempt; the account on success. A wrong password or code counts against the account and
/// the address; a success clears the account's count.
pub async fn sign_in(
    db: &Pool,
    throttle: &Throttle,
    hashes: &HashPermits,
    site_key: &SiteKey,
    attempt: Attempt,
) -> Result<Result<users::User, Refusal>, DomainError> {
    let username = attempt.username.trim().to_string();
    if username.chars().count() > MAX_USERNAME_CHARS {
        return Ok(Err(Refusal::UsernameTooLong));
    }
    let user = users::by_username(db, &username).await?;
    let trusted_device = user
        .as_ref()
        .is_some_and(|u| attempt.device_cookie.as_deref().is_some_and(|c| device_cookie_matches(site_key, c, u.id)));
    let reservation = match throttle.begin(&username, attempt.address, trusted_device) {
        Ok(reservation) => reservation,
        Err(wait) => return Ok(Err(Refusal::Throttled { wait })),
    };
    let checked = hashes.verify(attempt.password, user.as_ref().map(|u| u.password_hash.clone())).await?;
    let user = match user {
        Some(user) if checked => user,
        _ => {
            reservation.failed();
            return Ok(Err(Refusal::BadCredentials));
        }
    };
    // The password was right; now it is safe to say why the account cannot sign in.
    if user.disabled || !user.role.signs_in_with_password() {
        reservation.released();
        return Ok(Err(Refusal::CannotSignIn { disabled: user.disabled }));
    }
    // The second factor, for accounts that have one. A wrong code counts as a failed sign-in.
    if user.totp_enabled {
        let Some(code) = attempt.totp.filter(|c| !c.trim().is_empty()) else {
            reservation.released();
            return Ok(Err(Refusal::TotpRequired));
        };
        if !users::use_totp_code(db, &user, &code).await? {
            reservation.failed();
            return Ok(Err(Refusal::BadTotp));
        }
    }
    reservation.succeeded();
    Ok(Ok(user))
}

/// A signed-in person's current password, asked again (to change it), under the same throttle as a
/// sign-in: a stolen session cannot guess it any faster.
pub async fn recheck_password(
    throttle: &Throttle,
    hashes: &HashPermits,
    user: &users::User,
    given: String,
    address: IpAddr,
) -> Result<Result<(), Refusal>, DomainError> {
    let reservation = match throttle.begin(&user.username, address, false) {
        Ok(reservation) => reservation,
        Err(wait) => return Ok(Err(Refusal::Throttled { wait })),
    };
    if !hashes.verify(given, Some(user.password_hash.clone())).await? {
        reservation.failed();
        return Ok(Err(Refusal::BadCredentials));
    }
    reservation.released();
    Ok(Ok(()))
}

/// A current one-time code, asked to turn the second factor off, under the same throttle.
pub async fn recheck_totp(
    db: &Pool,
    throttle: &Throttle,
    user: &users::User,
    code: &str,
    address: IpAddr,
) -> Result<Result<(), Refusal>, DomainError> {
    let reservation = match throttle.begin(&user.username, address, false) {
        Ok(reservation) => reservation,
        Err(wait) => return Ok(Err(Refusal::Throttled { wait })),
    };
    if !user.totp_enabled || !users::use_totp_code(db, user, code).await? {
        reservation.failed();
        return Ok(Err(Refusal::BadTotp));
    }
    reservation.released();
    Ok(Ok(()))
}
