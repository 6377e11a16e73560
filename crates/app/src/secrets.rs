//! The server's secret key and what is derived from it: the click-token
//! signing key and the key that seals carrier credentials at rest. The key
//! comes from configuration, or is generated on first start and kept in a
//! file readable only by its owner; it never enters the database or a log.

use std::fmt;
use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::AppError;

/// 32 random bytes; every key textbank uses is derived from it.
#[derive(Clone)]
pub struct ServerKey([u8; 32]);

impl fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerKey(***)")
    }
}

impl ServerKey {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        // The system RNG failing means the machine cannot make any secret.
        SystemRandom::new()
            .fill(&mut bytes)
            .unwrap_or_else(|_| panic!("the system random number generator failed"));
        Self(bytes)
    }

    /// 64 hex digits, as `TEXTBANK_SECRET_KEY` holds it.
    pub fn from_hex(text: &str) -> Result<Self, AppError> {
        let invalid = || AppError::Invalid {
            field: "secret_key",
            message: "the secret key must be 64 hex digits (32 bytes)".into(),
        };
        let bytes = hex::decode(text.trim()).map_err(|_| invalid())?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| invalid())?;
        Ok(Self(bytes))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Reads the key file, or creates it (mode 0600) with a new key.
    pub fn load_or_create(path: &Path) -> Result<Self, AppError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_hex(&text),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(path)?;
                writeln!(file, "{}", key.to_hex())?;
                file.sync_all()?;
                tracing::info!(path = %path.display(), "generated a new server secret key");
                Ok(key)
            }
            Err(err) => Err(err.into()),
        }
    }

    fn derive(&self, purpose: &'static [u8]) -> [u8; 32] {
        struct Len;
        impl hkdf::KeyType for Len {
            fn len(&self) -> usize {
                32
            }
        }
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"textbank").extract(&self.0);
        let mut out = [0u8; 32];
        // Only fails for output lengths HKDF cannot produce; 32 always works.
        prk.expand(&[purpose], Len)
            .and_then(|okm| okm.fill(&mut out))
            .unwrap_or_else(|_| unreachable!("HKDF-SHA256 yields 32 bytes"));
        out
    }

    /// The HMAC-SHA256 key click tokens are signed with.
    pub fn click_token_key(&self) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, &self.derive(b"click-token-v1"))
    }

    /// The HMAC key browser sessions' CSRF tokens are derived with.
    pub fn csrf_key(&self) -> [u8; 32] {
        self.derive(b"csrf-token-v1")
    }

    /// The sealing key for secrets stored in the database.
    pub fn sealer(&self) -> Sealer {
        Sealer(self.derive(b"sealed-secrets-v1"))
    }
}

/// AES-256-GCM with a random nonce per message: `base64(nonce || ciphertext)`.
#[derive(Clone)]
pub struct Sealer([u8; 32]);

impl Sealer {
    fn key(&self) -> LessSafeKey {
        LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, &self.0)
                .unwrap_or_else(|_| unreachable!("a 32-byte key fits AES-256")),
        )
    }

    /// Seals `plain`, bound to `context` (e.g. the org id), so a sealed value
    /// copied to another org's row does not open there.
    pub fn seal(&self, plain: &[u8], context: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .unwrap_or_else(|_| panic!("the system random number generator failed"));
        let mut sealed = plain.to_vec();
        self.key()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context),
                &mut sealed,
            )
            .unwrap_or_else(|_| unreachable!("sealing in memory cannot fail"));
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        STANDARD.encode(out)
    }

    pub fn open(&self, sealed: &str, context: &[u8]) -> Result<Vec<u8>, AppError> {
        let corrupt = || {
            AppError::Inconsistent("a sealed secret does not open with this server's key".into())
        };
        let bytes = STANDARD.decode(sealed).map_err(|_| corrupt())?;
        if bytes.len() < NONCE_LEN {
            return Err(corrupt());
        }
        let (nonce, cipher) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| corrupt())?;
        let mut cipher = cipher.to_vec();
        let plain = self
            .key()
            .open_in_place(nonce, Aad::from(context), &mut cipher)
            .map_err(|_| corrupt())?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_the_same_key_and_context() {
        let key = ServerKey::generate();
        let sealed = key.sealer().seal(b"auth-token", b"org-1");
        assert!(!sealed.contains("auth-token"));
        assert_eq!(key.sealer().open(&sealed, b"org-1").unwrap(), b"auth-token");
        assert!(key.sealer().open(&sealed, b"org-2").is_err());
        assert!(
            ServerKey::generate()
                .sealer()
                .open(&sealed, b"org-1")
                .is_err()
        );
    }

    #[test]
    fn the_key_file_is_created_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("textbank.key");
        let first = ServerKey::load_or_create(&path).unwrap();
        let second = ServerKey::load_or_create(&path).unwrap();
        assert_eq!(first.to_hex(), second.to_hex());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!format!("{first:?}").contains(&first.to_hex()));
    }

    #[test]
    fn a_malformed_key_is_refused() {
        assert!(ServerKey::from_hex("abc").is_err());
        assert!(ServerKey::from_hex(&"0".repeat(64)).is_ok());
    }
}
