//! What a shared store holds, and why nobody without the credential can use it.
//!
//! Three keys are derived with HKDF-SHA256 from the client credential (the secret, or a
//! digest of the private key): one names entries (an HMAC of the slot's description, so
//! processes with another credential never find them), one fingerprints tokens (so an entry
//! can be compared and deleted without being decrypted), and one seals the token record with
//! AES-256-GCM, bound to its entry name. A value is
//! `"tw1" ‖ fingerprint (16) ‖ nonce (12) ‖ ciphertext ‖ tag (16)`.

use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};
use ring::{aead, hkdf, hmac};
use zeroize::Zeroizing;

use crate::secret::Secret;

const MAGIC: &[u8; 3] = b"tw1";
const FINGERPRINT_LEN: usize = 16;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = MAGIC.len() + FINGERPRINT_LEN;

/// The three keys of one credential. Derived once per credential; cheap to use.
pub(crate) struct Keys {
    name: hmac::Key,
    fingerprint: hmac::Key,
    seal: aead::LessSafeKey,
}

/// A token as the store keeps it (sealed); `lifetime` is the one the server granted, the
/// time left is the store's to say.
pub(crate) struct Record {
    pub(crate) token: Secret,
    pub(crate) granted_scope: Option<String>,
    pub(crate) lifetime: Duration,
}

struct Len<const N: usize>;

impl<const N: usize> hkdf::KeyType for Len<N> {
    fn len(&self) -> usize {
        N
    }
}

impl Keys {
    /// The keys for the credential `material` (a client secret, or a private-key digest).
    pub(crate) fn derive(material: &[u8]) -> Keys {
        let prk =
            hkdf::Salt::new(hkdf::HKDF_SHA256, b"tokenward shared cache v1").extract(material);
        let expand = |info: &'static [u8]| -> Zeroizing<[u8; 32]> {
            let mut key = Zeroizing::new([0u8; 32]);
            prk.expand(&[info], Len::<32>)
                .and_then(|okm| okm.fill(&mut key[..]))
                .expect("32 bytes is a valid HKDF-SHA256 output length");
            key
        };
        let seal = aead::UnboundKey::new(&aead::AES_256_GCM, &expand(b"entry seal")[..])
            .expect("32 bytes is an AES-256 key");
        Keys {
            name: hmac::Key::new(hmac::HMAC_SHA256, &expand(b"entry name")[..]),
            fingerprint: hmac::Key::new(hmac::HMAC_SHA256, &expand(b"token fingerprint")[..]),
            seal: aead::LessSafeKey::new(seal),
        }
    }

    /// The entry name for a slot described by `description` (see [`describe`]): 64 hex
    /// digits, the same in every process with this credential.
    pub(crate) fn entry_name(&self, description: &[u8]) -> String {
        hex(hmac::sign(&self.name, description).as_ref())
    }

    /// The clear prefix of every value holding `token`: what compare-and-delete compares.
    pub(crate) fn prefix(&self, token: &str) -> Vec<u8> {
        let mut prefix = Vec::with_capacity(HEADER_LEN);
        prefix.extend_from_slice(MAGIC);
        prefix.extend_from_slice(&self.fingerprint(token));
        prefix
    }

    fn fingerprint(&self, token: &str) -> [u8; FINGERPRINT_LEN] {
        let tag = hmac::sign(&self.fingerprint, token.as_bytes());
        let mut out = [0u8; FINGERPRINT_LEN];
        out.copy_from_slice(&tag.as_ref()[..FINGERPRINT_LEN]);
        out
    }

    /// The value to store under `name` for `record`. `None` only if the system's random
    /// source fails (then nothing is stored).
    pub(crate) fn seal(&self, name: &str, record: &Record) -> Option<Vec<u8>> {
        let token = record.token.expose();
        let scope = record.granted_scope.as_deref();
        let mut plain = Zeroizing::new(Vec::with_capacity(14 + token.len()));
        plain.push(1);
        plain.extend_from_slice(
            &(record.lifetime.as_millis().min(u64::MAX as u128) as u64).to_le_bytes(),
        );
        match scope {
            Some(scope) => {
                plain.push(1);
                plain.extend_from_slice(&(scope.len() as u32).to_le_bytes());
                plain.extend_from_slice(scope.as_bytes());
            }
            None => plain.push(0),
        }
        plain.extend_from_slice(token.as_bytes());

        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).ok()?;
        let header = self.prefix(token);
        let mut value = Vec::with_capacity(HEADER_LEN + NONCE_LEN + plain.len() + TAG_LEN);
        value.extend_from_slice(&header);
        value.extend_from_slice(&nonce);
        let start = value.len();
        value.extend_from_slice(&plain);
        let tag = self
            .seal
            .seal_in_place_separate_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aad(name, &header),
                &mut value[start..],
            )
            .ok()?;
        value.extend_from_slice(tag.as_ref());
        Some(value)
    }

    /// The record in `value` if it was sealed for `name` with these keys; `None` for a
    /// corrupt, foreign or forged value.
    pub(crate) fn open(&self, name: &str, value: &[u8]) -> Option<Record> {
        if value.len() < HEADER_LEN + NONCE_LEN + TAG_LEN || &value[..MAGIC.len()] != MAGIC {
            return None;
        }
        let (header, rest) = value.split_at(HEADER_LEN);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buffer = Zeroizing::new(sealed.to_vec());
        let plain = self
            .seal
            .open_in_place(nonce, aad(name, header), &mut buffer[..])
            .ok()?;
        let record = parse(plain)?;
        // The clear fingerprint must be the token's, or compare-and-delete would compare
        // against the wrong thing.
        let expected = self.prefix(record.token.expose());
        crate::secret::constant_time_eq(&expected, header).then_some(record)
    }
}

fn aad(name: &str, header: &[u8]) -> aead::Aad<Vec<u8>> {
    let mut aad = Vec::with_capacity(name.len() + header.len());
    aad.extend_from_slice(name.as_bytes());
    aad.extend_from_slice(header);
    aead::Aad::from(aad)
}

fn parse(plain: &[u8]) -> Option<Record> {
    let (&version, rest) = plain.split_first()?;
    if version != 1 || rest.len() < 9 {
        return None;
    }
    let lifetime = u64::from_le_bytes(rest[..8].try_into().ok()?);
    let (granted_scope, token) = match rest[8] {
        0 => (None, &rest[9..]),
        1 => {
            let len = u32::from_le_bytes(rest.get(9..13)?.try_into().ok()?) as usize;
            let scope = rest.get(13..13usize.checked_add(len)?)?;
            (
                Some(String::from_utf8(scope.to_vec()).ok()?),
                &rest[13 + len..],
            )
        }
        _ => return None,
    };
    let token = std::str::from_utf8(token).ok()?;
    if token.is_empty() {
        return None;
    }
    Some(Record {
        token: Secret::new(token),
        granted_scope,
        lifetime: Duration::from_millis(lifetime),
    })
}

/// A length-prefixed, unambiguous description of a token slot, for [`Keys::entry_name`]:
/// `None` and `Some("")` differ, and no field can run into the next.
pub(crate) fn describe<'a>(fields: impl IntoIterator<Item = Option<&'a str>>) -> Vec<u8> {
    let mut out = Vec::new();
    for field in fields {
        match field {
            Some(text) => {
                out.push(1);
                out.extend_from_slice(&(text.len() as u64).to_le_bytes());
                out.extend_from_slice(text.as_bytes());
            }
            None => out.push(0),
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(token: &str) -> Record {
        Record {
            token: Secret::new(token),
            granted_scope: Some("read write".into()),
            lifetime: Duration::from_secs(3600),
        }
    }

    #[test]
    fn a_sealed_record_opens_with_the_same_keys_and_name_only() {
        let keys = Keys::derive(b"secret-1");
        let name = keys.entry_name(&describe([Some("https://idp/token"), Some("c"), None]));
        assert_eq!(name.len(), 64);
        let value = keys.seal(&name, &record("tok-123")).unwrap();
        let opened = keys.open(&name, &value).unwrap();
        assert_eq!(opened.token.expose(), "tok-123");
        assert_eq!(opened.granted_scope.as_deref(), Some("read write"));
        assert_eq!(opened.lifetime, Duration::from_secs(3600));
        assert!(value.starts_with(&keys.prefix("tok-123")));
        assert!(
            !value.windows(7).any(|w| w == b"tok-123"),
            "nothing in clear"
        );

        assert!(
            keys.open("another-entry", &value).is_none(),
            "bound to its name"
        );
        let other = Keys::derive(b"secret-2");
        assert!(
            other.open(&name, &value).is_none(),
            "another credential cannot read it"
        );
        assert_ne!(
            other.entry_name(&describe([Some("https://idp/token"), Some("c"), None])),
            name
        );
        assert_ne!(other.prefix("tok-123"), keys.prefix("tok-123"));
    }

    #[test]
    fn tampered_or_truncated_values_do_not_open() {
        let keys = Keys::derive(b"secret");
        let value = keys.seal("n", &record("tok")).unwrap();
        for i in 0..value.len() {
            let mut bad = value.clone();
            bad[i] ^= 1;
            assert!(keys.open("n", &bad).is_none(), "byte {i}");
        }
        for len in 0..value.len() {
            assert!(keys.open("n", &value[..len]).is_none(), "length {len}");
        }
        assert!(keys.open("n", b"garbage").is_none());
    }

    #[test]
    fn descriptions_are_unambiguous() {
        assert_ne!(
            describe([Some("ab"), Some("c")]),
            describe([Some("a"), Some("bc")])
        );
        assert_ne!(describe([None]), describe([Some("")]));
        let keys = Keys::derive(b"k");
        let without_scope = Record {
            granted_scope: None,
            ..record("t")
        };
        let value = keys.seal("n", &without_scope).unwrap();
        assert!(keys.open("n", &value).unwrap().granted_scope.is_none());
    }
}
