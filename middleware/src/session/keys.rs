//! The secret keys that seal session cookies, with rotation (the cookie crate has none, its issue #158).
//!
//! A [`Keys`] ring holds one or more keys: the **first** seals every cookie issued, the others only
//! open cookies sealed before a rotation; a cookie opened by an older key is re-issued under the
//! newest one on that response. Dropping a key from the ring retires it: its cookies become empty
//! sessions.
//!
//! # Where keys come from ([`SecretConfig`])
//!
//! - `RGI_SECRET_KEYS`: comma-separated secrets, **newest first**. Each secret is either hex (only
//!   hex digits, at least 64 of them) or base64 (standard or URL-safe alphabet, padding optional),
//!   and must decode to **at least 32 bytes**. Each is stretched to the 64 bytes the cookie crate
//!   needs with HKDF ([`cookie::Key::derive_from`]). Make one with `openssl rand -base64 32`.
//! - `RGI_SECRET_KEYS_FILE`: a file with the same secrets, one per line (newest first; blank lines
//!   and lines starting with `#` are skipped), read when `RGI_SECRET_KEYS` is unset.
//! - Neither: with `RGI_ENV=production` building the session layer fails with a [`KeyError`] that
//!   says what to set; otherwise (development) an ephemeral random key is made and a warning is
//!   printed: sessions then do not survive a restart and are not shared between processes.
//!
//! Constructors take the values, not the process environment ([`SecretConfig::from_process_env`]
//! reads it), so tests never mutate the environment.

use std::fmt;
use std::path::PathBuf;

use base64::Engine as _;
use cookie::Key;

/// The shortest secret accepted, in bytes: AES-256 needs 256 bits of key material.
pub const MIN_SECRET_BYTES: usize = 32;

/// A ring of cookie keys, newest first; see the [module docs](self).
#[derive(Clone)]
pub struct Keys {
    keys: Vec<Key>,
}

impl Keys {
    /// A ring of already-made keys, newest first.
    ///
    /// # Errors
    ///
    /// [`KeyError::Empty`] when `keys` is empty.
    pub fn new(keys: Vec<Key>) -> Result<Keys, KeyError> {
        if keys.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(Keys { keys })
    }

    /// One fresh random key: for tests and development only (nothing else can open its cookies).
    ///
    /// # Errors
    ///
    /// [`KeyError::Random`] when the operating system's random source fails.
    pub fn ephemeral() -> Result<Keys, KeyError> {
        let key = Key::try_generate().ok_or(KeyError::Random)?;
        Keys::new(vec![key])
    }

    /// Parse secrets in the `RGI_SECRET_KEYS` format: comma-separated, newest first.
    ///
    /// # Errors
    ///
    /// [`KeyError::BadSecret`] naming the position of a secret that is not hex or base64 or is
    /// shorter than [`MIN_SECRET_BYTES`]; [`KeyError::Empty`] when there is none.
    pub fn parse(list: &str) -> Result<Keys, KeyError> {
        Keys::from_secrets(list.split(','))
    }

    /// Parse a keys file: one secret per line, newest first, `#` comments and blank lines skipped.
    ///
    /// # Errors
    ///
    /// As [`Keys::parse`].
    pub fn parse_file_contents(text: &str) -> Result<Keys, KeyError> {
        Keys::from_secrets(text.lines().filter(|l| !l.trim_start().starts_with('#')))
    }

    fn from_secrets<'a>(secrets: impl Iterator<Item = &'a str>) -> Result<Keys, KeyError> {
        let mut keys = Vec::new();
        for (index, secret) in secrets.map(str::trim).filter(|s| !s.is_empty()).enumerate() {
            let bytes = decode_secret(secret).ok_or(KeyError::BadSecret { index })?;
            if bytes.len() < MIN_SECRET_BYTES {
                return Err(KeyError::BadSecret { index });
            }
            keys.push(Key::derive_from(&bytes));
        }
        Keys::new(keys)
    }

    /// The key that seals new cookies.
    pub fn newest(&self) -> &Key {
        &self.keys[0]
    }

    /// Every key, newest first.
    pub fn all(&self) -> &[Key] {
        &self.keys
    }
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("Keys")
            .field("count", &self.keys.len())
            .finish()
    }
}

fn decode_secret(secret: &str) -> Option<Vec<u8>> {
    if secret.len() >= 2 * MIN_SECRET_BYTES && secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        return hex::decode(secret).ok();
    }
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let unpadded = secret.trim_end_matches('=');
    STANDARD_NO_PAD
        .decode(unpadded)
        .or_else(|_| URL_SAFE_NO_PAD.decode(unpadded))
        .ok()
}

/// Where the session layer's keys come from: the values of `RGI_ENV`, `RGI_SECRET_KEYS` and
/// `RGI_SECRET_KEYS_FILE`; see the [module docs](self).
#[derive(Debug, Clone, Default)]
pub struct SecretConfig {
    /// `RGI_ENV`: `production` forbids the ephemeral development key.
    pub env: Option<String>,
    /// `RGI_SECRET_KEYS`: comma-separated secrets, newest first.
    pub secret_keys: Option<String>,
    /// `RGI_SECRET_KEYS_FILE`: a file of secrets, one per line, newest first.
    pub secret_keys_file: Option<PathBuf>,
}

/// What [`SecretConfig::resolve`] decided.
#[derive(Debug)]
pub struct Resolved {
    /// The key ring.
    pub keys: Keys,
    /// A warning to print when the keys are ephemeral (development mode without a key).
    pub warning: Option<String>,
}

impl SecretConfig {
    /// The values of `RGI_ENV`, `RGI_SECRET_KEYS` and `RGI_SECRET_KEYS_FILE` in this process.
    pub fn from_process_env() -> SecretConfig {
        let var = |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        SecretConfig {
            env: var("RGI_ENV"),
            secret_keys: var("RGI_SECRET_KEYS"),
            secret_keys_file: var("RGI_SECRET_KEYS_FILE").map(PathBuf::from),
        }
    }

    /// Is this production (`RGI_ENV=production`)?
    pub fn is_production(&self) -> bool {
        self.env.as_deref().map(str::trim) == Some("production")
    }

    /// Make the key ring.
    ///
    /// # Errors
    ///
    /// A bad secret, an unreadable keys file, or no key at all in production.
    pub fn resolve(&self) -> Result<Resolved, KeyError> {
        if let Some(list) = &self.secret_keys {
            return Ok(Resolved {
                keys: Keys::parse(list)?,
                warning: None,
            });
        }
        if let Some(path) = &self.secret_keys_file {
            let text = std::fs::read_to_string(path).map_err(|error| KeyError::File {
                path: path.clone(),
                error,
            })?;
            return Ok(Resolved {
                keys: Keys::parse_file_contents(&text)?,
                warning: None,
            });
        }
        if self.is_production() {
            return Err(KeyError::MissingInProduction);
        }
        Ok(Resolved {
            keys: Keys::ephemeral()?,
            warning: Some(
                "rgi-middleware: warning: no RGI_SECRET_KEYS set; sessions use an ephemeral key \
                 (lost on restart, not shared between processes). Set RGI_SECRET_KEYS for anything \
                 but development."
                    .to_owned(),
            ),
        })
    }
}

/// Why no key ring could be made.
#[derive(Debug)]
#[non_exhaustive]
pub enum KeyError {
    /// No key was given.
    Empty,
    /// `RGI_ENV=production` and no key.
    MissingInProduction,
    /// The secret at this position (0 = newest) is not hex/base64 of at least 32 bytes.
    BadSecret {
        /// Its position, newest first, from 0.
        index: usize,
    },
    /// The keys file could not be read.
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The operating system's random source failed.
    Random,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Empty => f.write_str("rgi sessions: no secret key given"),
            KeyError::MissingInProduction => f.write_str(
                "rgi sessions: RGI_ENV=production but no secret key: set RGI_SECRET_KEYS \
                 (comma-separated base64 or hex secrets of at least 32 bytes, newest first, \
                 e.g. from `openssl rand -base64 32`) or RGI_SECRET_KEYS_FILE (one per line)",
            ),
            KeyError::BadSecret { index } => write!(
                f,
                "rgi sessions: secret key #{index} (0 = newest) is not hex or base64 of at least \
                 {MIN_SECRET_BYTES} bytes"
            ),
            KeyError::File { path, error } => write!(
                f,
                "rgi sessions: cannot read RGI_SECRET_KEYS_FILE {}: {error}",
                path.display()
            ),
            KeyError::Random => f.write_str("rgi sessions: the system random source failed"),
        }
    }
}

impl std::error::Error for KeyError {}

#[cfg(test)]
mod tests {
    use super::*;

    const B64: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // 32 bytes
    const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn secrets_parse_as_base64_or_hex_newest_first() {
        let keys = Keys::parse(&format!("{B64}, {HEX}")).unwrap();
        assert_eq!(keys.all().len(), 2);
        assert_eq!(
            keys.newest().master(),
            Key::derive_from(b"0123456789abcdef0123456789abcdef").master()
        );
        let url_safe = Keys::parse("_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-").unwrap();
        assert_eq!(url_safe.all().len(), 1);
    }

    #[test]
    fn short_or_garbage_secrets_are_refused_by_position() {
        let short = Keys::parse(&format!("{B64},c2hvcnQ=")).unwrap_err();
        assert!(matches!(short, KeyError::BadSecret { index: 1 }), "{short}");
        let garbage = Keys::parse("!!not a key!!").unwrap_err();
        assert!(matches!(garbage, KeyError::BadSecret { index: 0 }));
        assert!(matches!(Keys::parse(" , "), Err(KeyError::Empty)));
    }

    #[test]
    fn a_keys_file_skips_comments_and_blank_lines() {
        let keys =
            Keys::parse_file_contents(&format!("# current\n{HEX}\n\n# old\n{B64}\n")).unwrap();
        assert_eq!(keys.all().len(), 2);
    }

    #[test]
    fn production_without_a_key_says_what_to_set() {
        let config = SecretConfig {
            env: Some("production".into()),
            ..SecretConfig::default()
        };
        let message = config.resolve().unwrap_err().to_string();
        assert!(message.contains("RGI_SECRET_KEYS"), "{message}");
        let dev = SecretConfig::default().resolve().unwrap();
        assert!(dev.warning.unwrap().contains("ephemeral"));
    }

    #[test]
    fn a_keys_file_is_read_when_the_variable_is_unset() {
        let path = std::env::temp_dir().join(format!("rgi-keys-{}", std::process::id()));
        std::fs::write(&path, format!("{HEX}\n")).unwrap();
        let config = SecretConfig {
            env: Some("production".into()),
            secret_keys_file: Some(path.clone()),
            ..SecretConfig::default()
        };
        let resolved = config.resolve().unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(resolved.warning.is_none());
        assert_eq!(resolved.keys.all().len(), 1);
        let missing = SecretConfig {
            secret_keys_file: Some(path),
            ..SecretConfig::default()
        };
        assert!(matches!(missing.resolve(), Err(KeyError::File { .. })));
    }
}
