//! OpenPGP keyrings as apt reads them from an image, and signature checks
//! (rpgp, pure Rust: RSA and Ed25519 as Debian and Ubuntu sign).

use std::collections::BTreeMap;

use pgp::composed::{CleartextSignedMessage, Deserializable, DetachedSignature, SignedPublicKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::Signature;
use pgp::types::KeyDetails;

use super::AptRepoError;
use crate::solve::apt::SourceEntry;

/// Key files found in an image, by absolute path: `/etc/apt/trusted.gpg`,
/// `/etc/apt/trusted.gpg.d/*.{gpg,asc}`, `/usr/share/keyrings/*`,
/// `/etc/apt/keyrings/*` and whatever `signed-by=` names.
#[derive(Debug, Clone, Default)]
pub struct ImageKeys {
    pub files: BTreeMap<String, Vec<u8>>,
}

/// Public keys to check one source's signature with.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
}

impl ImageKeys {
    /// The keyring apt uses for `entry`: its `signed-by` files (or the
    /// trusted keys with the fingerprints it names, or its inline key),
    /// else every key in `trusted.gpg` and `trusted.gpg.d/`.
    pub fn keyring_for(&self, entry: &SourceEntry) -> Result<Keyring, AptRepoError> {
        let mut ring = Keyring::default();
        if entry.signed_by.is_empty() {
            for (path, bytes) in &self.files {
                let trusted = path == "/etc/apt/trusted.gpg"
                    || path
                        .strip_prefix("/etc/apt/trusted.gpg.d/")
                        .is_some_and(|n| n.ends_with(".gpg") || n.ends_with(".asc"));
                if trusted {
                    ring.add(path, bytes)?;
                }
            }
            return Ok(ring);
        }
        let mut fingerprints = Vec::new();
        for item in &entry.signed_by {
            if item.contains("BEGIN PGP PUBLIC KEY BLOCK") {
                let armored: String = item
                    .lines()
                    .map(|l| if l.trim() == "." { "" } else { l.trim() })
                    .collect::<Vec<_>>()
                    .join("\n");
                ring.add("signed-by (inline)", armored.as_bytes())?;
            } else if item.starts_with('/') {
                let bytes = self
                    .files
                    .get(item)
                    .ok_or_else(|| AptRepoError::MissingKeyring {
                        location: entry.location.clone(),
                        path: item.clone(),
                    })?;
                ring.add(item, bytes)?;
            } else {
                fingerprints.push(item.trim_end_matches('!').to_ascii_uppercase());
            }
        }
        if !fingerprints.is_empty() {
            let mut all = Keyring::default();
            for (path, bytes) in &self.files {
                if path.starts_with("/etc/apt/trusted.gpg") {
                    all.add(path, bytes)?;
                }
            }
            for k in all.keys {
                let fp = k.fingerprint().to_string().to_ascii_uppercase();
                let sub = k.public_subkeys.iter().any(|s| {
                    fingerprints.contains(&s.fingerprint().to_string().to_ascii_uppercase())
                });
                if fingerprints.contains(&fp) || sub {
                    ring.keys.push(k);
                }
            }
        }
        Ok(ring)
    }
}

impl Keyring {
    /// Adds the keys of a binary (`.gpg`) or armored (`.asc`) key file.
    pub fn add(&mut self, path: &str, bytes: &[u8]) -> Result<(), AptRepoError> {
        let bad = |e: pgp::errors::Error| AptRepoError::BadKeyring {
            path: path.to_string(),
            reason: e.to_string(),
        };
        let armored = bytes.trim_ascii_start().starts_with(b"-----BEGIN");
        if armored {
            let (keys, _) = SignedPublicKey::from_armor_many(bytes).map_err(bad)?;
            for k in keys {
                self.keys.push(k.map_err(bad)?);
            }
        } else {
            for k in SignedPublicKey::from_bytes_many(bytes).map_err(bad)? {
                self.keys.push(k.map_err(bad)?);
            }
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether one key (primary or a bound subkey) made `sig` over `data`.
    fn check(&self, sig: &Signature, data: &[u8]) -> Result<(), String> {
        if matches!(
            sig.hash_alg(),
            Some(HashAlgorithm::Md5 | HashAlgorithm::Sha1 | HashAlgorithm::Ripemd160) | None
        ) {
            return Err(format!(
                "the signature uses the weak digest {:?}",
                sig.hash_alg()
            ));
        }
        if self.keys.is_empty() {
            return Err("no trusted keys".into());
        }
        for key in &self.keys {
            if sig.verify(&key.primary_key, data).is_ok() {
                return Ok(());
            }
            for sub in &key.public_subkeys {
                if sig.verify(&sub.key, data).is_ok()
                    && sub.verify_bindings(&key.primary_key).is_ok()
                {
                    return Ok(());
                }
            }
        }
        let issuers: Vec<String> = sig
            .issuer_fingerprint()
            .iter()
            .map(|f| f.to_string().to_ascii_uppercase())
            .chain(sig.issuer_key_id().iter().map(|k| format!("{k:?}")))
            .collect();
        Err(format!(
            "no key in the keyring ({} keys) made it; it was made by {}",
            self.keys.len(),
            if issuers.is_empty() {
                "an unnamed key".to_string()
            } else {
                issuers.join(", ")
            }
        ))
    }

    /// Verifies a clear-signed `InRelease` and returns the signed text (LF
    /// line ends), as apt would use it.
    pub fn verify_cleartext(&self, bytes: &[u8]) -> Result<String, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "the file is not UTF-8".to_string())?;
        let (msg, _) = CleartextSignedMessage::from_string(text)
            .map_err(|e| format!("not a clear-signed message: {e}"))?;
        let signed = msg.signed_text();
        let mut last = Err("the message carries no signature".to_string());
        for sig in msg.signatures() {
            last = self.check(sig, signed.as_bytes());
            if last.is_ok() {
                break;
            }
        }
        last?;
        Ok(signed.replace("\r\n", "\n"))
    }

    /// Verifies `Release` against a detached `Release.gpg`.
    pub fn verify_detached(&self, data: &[u8], sig: &[u8]) -> Result<(), String> {
        let sigs: Vec<DetachedSignature> = if sig.trim_ascii_start().starts_with(b"-----BEGIN") {
            let (it, _) = DetachedSignature::from_armor_many(sig).map_err(|e| e.to_string())?;
            it.collect::<Result<_, _>>().map_err(|e| e.to_string())?
        } else {
            DetachedSignature::from_bytes_many(sig)
                .map_err(|e| e.to_string())?
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())?
        };
        let mut last = Err("the file carries no signature".to_string());
        for s in &sigs {
            last = self.check(&s.signature, data);
            if last.is_ok() {
                break;
            }
        }
        last
    }
}
