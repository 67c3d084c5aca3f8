//! Sealing a session into a cookie value and opening it again: the envelope (issued-at, expiry and
//! either the values or a store id) is JSON, encrypted and authenticated by the cookie crate's
//! private jar (AES-256-GCM, random nonce, the cookie's **name** as associated data).

use cookie::{Cookie, CookieJar};
use serde::{Deserialize, Serialize};

use super::handle::SessionData;
use super::keys::Keys;

/// What the sealed cookie holds. Times are seconds since the Unix epoch, all inside the
/// authenticated payload: changing any of them breaks the seal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Envelope {
    /// When this cookie was sealed.
    pub(crate) iat: u64,
    /// When the session was created (absolute expiry counts from here).
    pub(crate) ctd: u64,
    /// After this, the cookie opens to an empty session.
    pub(crate) exp: u64,
    /// Cookie sessions: the values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) data: Option<SessionData>,
    /// Server-side sessions: the record's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<String>,
}

/// Why a presented cookie gave an empty session (logged at debug level, never shown to clients).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejected {
    /// No key of the ring opens it: tampered, truncated, garbage, swapped from another cookie name,
    /// or sealed by a retired key.
    Seal,
    /// It opened, but the payload is not an envelope.
    Payload,
    /// It opened, but its expiry has passed.
    Expired,
}

impl Rejected {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Rejected::Seal => {
                "does not open with any key (tampered, truncated, foreign or retired key)"
            }
            Rejected::Payload => "opened but holds no valid session envelope",
            Rejected::Expired => "has expired",
        }
    }
}

/// Seal `envelope` as the value of a cookie named `name`, under the newest key.
pub(crate) fn seal(keys: &Keys, name: &str, envelope: &Envelope) -> String {
    let json = serde_json::to_string(envelope).unwrap_or_default();
    let mut jar = CookieJar::new();
    jar.private_mut(keys.newest())
        .add(Cookie::new(name.to_owned(), json));
    jar.get(name)
        .map(|cookie| cookie.value().to_owned())
        .unwrap_or_default()
}

/// Open the value of cookie `name`: the envelope, and whether it was sealed by an older key (so it
/// must be re-issued under the newest).
pub(crate) fn open(
    keys: &Keys,
    name: &str,
    value: &str,
    now: u64,
) -> Result<(Envelope, bool), Rejected> {
    let mut jar = CookieJar::new();
    for (index, key) in keys.all().iter().enumerate() {
        let sealed = Cookie::new(name.to_owned(), value.to_owned());
        let Some(plain) = jar.private_mut(key).decrypt(sealed) else {
            continue;
        };
        let envelope: Envelope =
            serde_json::from_str(plain.value()).map_err(|_| Rejected::Payload)?;
        if envelope.data.is_none() == envelope.id.is_none() {
            return Err(Rejected::Payload);
        }
        if envelope.exp <= now {
            return Err(Rejected::Expired);
        }
        return Ok((envelope, index > 0));
    }
    Err(Rejected::Seal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn envelope(exp: u64) -> Envelope {
        Envelope {
            iat: 100,
            ctd: 100,
            exp,
            data: Some(SessionData::from([("user".into(), "ada".into())])),
            id: None,
        }
    }

    #[test]
    fn a_sealed_envelope_opens_under_its_name_only() {
        let keys = Keys::ephemeral().unwrap();
        let value = seal(&keys, "s", &envelope(1000));
        assert_eq!(open(&keys, "s", &value, 500), Ok((envelope(1000), false)));
        assert_eq!(open(&keys, "other", &value, 500), Err(Rejected::Seal));
        assert_eq!(open(&keys, "s", &value, 1000), Err(Rejected::Expired));
    }

    #[test]
    fn every_flipped_byte_and_every_truncation_is_refused() {
        let keys = Keys::ephemeral().unwrap();
        let value = seal(&keys, "s", &envelope(1000));
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&value)
            .unwrap();
        for i in 0..raw.len() {
            let mut bad = raw.clone();
            bad[i] ^= 0x01;
            let bad = base64::engine::general_purpose::STANDARD.encode(bad);
            assert_eq!(open(&keys, "s", &bad, 500), Err(Rejected::Seal), "byte {i}");
        }
        for len in 0..value.len() {
            assert!(
                open(&keys, "s", &value[..len], 500).is_err(),
                "length {len}"
            );
        }
        assert_eq!(
            open(&keys, "s", "%%%not base64%%%", 500),
            Err(Rejected::Seal)
        );
    }

    #[test]
    fn an_older_key_opens_and_asks_for_reissue_a_retired_one_does_not() {
        let old = Keys::ephemeral().unwrap();
        let new = Keys::ephemeral().unwrap();
        let value = seal(&old, "s", &envelope(1000));
        let rotated = Keys::new(vec![new.newest().clone(), old.newest().clone()]).unwrap();
        assert_eq!(open(&rotated, "s", &value, 500), Ok((envelope(1000), true)));
        assert_eq!(open(&new, "s", &value, 500), Err(Rejected::Seal));
    }
}
