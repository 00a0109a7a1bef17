//! Login throttling, per account and per client address, that slows guessing without letting an
//! attacker lock a real user out.
//!
//! - Per address: 20 free failures, then each further attempt waits 2^(n−20) s, at most 15 minutes.
//! - Per account: 5 free failures, then 2^(n−5) s, at most 5 minutes — a delay, never a lock, so an
//!   attacker elsewhere can at worst make the account's owner wait a few minutes between attempts.
//! - A browser that signed in to the account before carries a device cookie ([`device_cookie`]); it skips
//!   both delays, so the owner at their usual workstation is never slowed by somebody else's guessing.
//! - Counts fade: a quiet hour forgets them. A success clears the account's count (not the address's:
//!   signing in to one's own account must not reset a spray across others).
//!
//! Kept in memory: a restart forgets counts, which costs an attacker one restart of ours per 20 guesses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Failures {
    count: u32,
    last: Instant,
}

struct Policy {
    free: u32,
    cap: Duration,
}

const ACCOUNT: Policy = Policy { free: 5, cap: Duration::from_secs(5 * 60) };
const ADDRESS: Policy = Policy { free: 20, cap: Duration::from_secs(15 * 60) };
const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// Bound on remembered entries (a spray of random usernames must not grow memory without end).
const MAX_ENTRIES: usize = 100_000;

impl Policy {
    fn wait(&self, failures: Option<&Failures>, now: Instant) -> Option<Duration> {
        let f = failures?;
        if f.count < self.free || now.duration_since(f.last) > FORGET_AFTER {
            return None;
        }
        let delay = Duration::from_secs(1u64 << (f.count - self.free).min(20)).min(self.cap);
        delay.checked_sub(now.duration_since(f.last)).filter(|d| !d.is_zero())
    }
}

#[derive(Default)]
pub struct Throttle {
    accounts: Mutex<HashMap<String, Failures>>,
    addresses: Mutex<HashMap<IpAddr, Failures>>,
}

impl Throttle {
    /// Checks an attempt and, in the same step, counts it as a failure until its [`Reservation`] says
    /// otherwise: parallel attempts see each other at once, so a burst gets no more through than a
    /// sequence would. Err: how long this attempt must wait (it costs no password hash).
    pub fn begin(&self, account: &str, address: IpAddr, trusted_device: bool) -> Result<Reservation<'_>, Duration> {
        let now = Instant::now();
        let account = account.to_lowercase();
        let mut accounts = lock(&self.accounts);
        let mut addresses = lock(&self.addresses);
        if !trusted_device {
            let wait = ACCOUNT.wait(accounts.get(&account), now).max(ADDRESS.wait(addresses.get(&address), now));
            if let Some(wait) = wait {
                return Err(wait);
            }
        }
        count(&mut accounts, account.clone(), now);
        count(&mut addresses, address, now);
        Ok(Reservation { throttle: self, account, address })
    }
}

/// An attempt that the throttle let through, counted as a failure until it is settled otherwise.
#[must_use = "a reservation is settled with failed, released or succeeded"]
pub struct Reservation<'a> {
    throttle: &'a Throttle,
    account: String,
    address: IpAddr,
}

impl Reservation<'_> {
    /// A wrong password or code: the count taken up front stands, and the delay counts from now (the
    /// answer), not from when the attempt began, however long its password check took.
    pub fn failed(self) {
        let now = Instant::now();
        touch(&mut lock(&self.throttle.accounts), &self.account, now);
        touch(&mut lock(&self.throttle.addresses), &self.address, now);
    }

    /// Not a wrong guess (the password was right but something else is missing): the count is given back.
    pub fn released(self) {
        uncount(&mut lock(&self.throttle.accounts), &self.account);
        uncount(&mut lock(&self.throttle.addresses), &self.address);
    }

    /// Signed in: the account's count is cleared (not the address's, whose other failures stand).
    pub fn succeeded(self) {
        lock(&self.throttle.accounts).remove(&self.account);
        uncount(&mut lock(&self.throttle.addresses), &self.address);
    }
}

fn touch<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Failures>, key: &K, now: Instant) {
    if let Some(f) = map.get_mut(key) {
        f.last = now;
    }
}

fn uncount<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Failures>, key: &K) {
    if let Some(f) = map.get_mut(key) {
        f.count = f.count.saturating_sub(1);
    }
}

fn count<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Failures>, key: K, now: Instant) {
    if map.len() >= MAX_ENTRIES {
        map.retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
    }
    let entry = map.entry(key).or_insert(Failures { count: 0, last: now });
    if now.duration_since(entry.last) > FORGET_AFTER {
        entry.count = 0;
    }
    entry.count += 1;
    entry.last = now;
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The device cookie's value for a user: the user id and an HMAC under the site key. It proves only that
/// this browser once signed in as that user (it grants nothing else).
pub fn device_cookie(site_key: &crate::support::pseudonym::SiteKey, user_id: i64) -> String {
    format!("{user_id}.{}", hex::encode(&site_key.mac("device", &user_id.to_string())[..16]))
}

pub fn device_cookie_matches(site_key: &crate::support::pseudonym::SiteKey, cookie: &str, user_id: i64) -> bool {
    use subtle::ConstantTimeEq;
    let expected = device_cookie(site_key, user_id);
    expected.len() == cookie.len() && bool::from(expected.as_bytes().ct_eq(cookie.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_slow_down_after_five_failures_and_trusted_devices_skip_it() {
        let t = Throttle::default();
        let ip: IpAddr = "10.0.0.9".parse().unwrap();
        // Five attempts begun together (none settled yet) already use up the free allowance.
        let burst: Vec<_> = (0..5).map(|_| t.begin("Zhang", ip, false).expect("free attempt")).collect();
        let wait = t.begin("ZHANG", ip, false).err().expect("sixth attempt waits");
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        burst.into_iter().for_each(Reservation::failed);
        assert!(t.begin("zhang", ip, false).is_err());
        t.begin("zhang", ip, true).expect("the trusted device goes ahead").succeeded();
        assert!(t.begin("li", "10.0.0.10".parse().unwrap(), false).is_ok(), "other accounts unaffected");
        t.begin("zhang", ip, false).expect("cleared by the success").failed();
    }

    #[test]
    fn a_released_attempt_is_not_counted() {
        let t = Throttle::default();
        let ip: IpAddr = "10.0.0.9".parse().unwrap();
        for _ in 0..20 {
            t.begin("wang", ip, false).expect("released attempts never add up").released();
        }
    }

    #[test]
    fn the_delay_doubles_and_is_capped() {
        let now = Instant::now();
        let f = |count| Failures { count, last: now };
        assert_eq!(ACCOUNT.wait(Some(&f(4)), now), None);
        assert_eq!(ACCOUNT.wait(Some(&f(5)), now), Some(Duration::from_secs(1)));
        assert_eq!(ACCOUNT.wait(Some(&f(8)), now), Some(Duration::from_secs(8)));
        assert_eq!(ACCOUNT.wait(Some(&f(60)), now), Some(Duration::from_secs(300)));
        assert_eq!(ADDRESS.wait(Some(&f(99)), now), Some(Duration::from_secs(900)));
    }

    #[test]
    fn device_cookies_are_per_user_and_per_site() {
        let key = crate::support::pseudonym::SiteKey::from_bytes([7; 32]);
        let other = crate::support::pseudonym::SiteKey::from_bytes([8; 32]);
        let cookie = device_cookie(&key, 3);
        assert!(device_cookie_matches(&key, &cookie, 3));
        assert!(!device_cookie_matches(&key, &cookie, 4));
        assert!(!device_cookie_matches(&other, &cookie, 3));
    }
}
