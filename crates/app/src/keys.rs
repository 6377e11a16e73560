//! Bearer secrets — API keys, and the web app's session and invite secrets:
//! random, shown once, stored only as a hash. They carry 192 random bits, so
//! a plain SHA-256 is a safe verifier (no password-style stretching needed)
//! and lookups by hash stay one index probe.

use rand::RngCore;
use sha2::{Digest, Sha256};

const PREFIX: &str = "tbk_";

/// A new key: `tbk_` and 48 hex digits.
pub fn generate() -> String {
    generate_with(PREFIX)
}

/// A new secret: `prefix` and 48 hex digits (192 random bits).
pub fn generate_with(prefix: &str) -> String {
    let mut secret = [0u8; 24];
    rand::rng().fill_bytes(&mut secret);
    format!("{prefix}{}", hex::encode(secret))
}

/// The stored verifier of a key.
pub fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Cheap shape check before touching the database.
pub fn looks_like_key(key: &str) -> bool {
    well_formed(key, PREFIX)
}

/// Whether `secret` is `prefix` and 48 hex digits.
pub fn well_formed(secret: &str, prefix: &str) -> bool {
    secret.len() == prefix.len() + 48
        && secret.starts_with(prefix)
        && secret[prefix.len()..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_well_formed_and_hashed_deterministically() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert!(looks_like_key(&a));
        assert_eq!(hash(&a), hash(&a));
        assert_ne!(hash(&a), hash(&b));
        assert_eq!(hash(&a).len(), 64);
        assert!(!hash(&a).contains(&a[4..]));
    }

    #[test]
    fn malformed_keys_are_recognized() {
        assert!(!looks_like_key(""));
        assert!(!looks_like_key("tbk_zz"));
        assert!(!looks_like_key(&format!("xyz_{}", "a".repeat(48))));
    }
}
