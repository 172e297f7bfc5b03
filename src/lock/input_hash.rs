//! The input hash: what a lock was made from, so staleness shows offline.

use sha2::{Digest, Sha256};

/// Hashes the inputs of a lock: the definition file, the files it reads,
/// build args and the configuration that affects resolution.
///
/// Each part is a label and bytes. Text is normalized to `\n` line ends so a
/// checkout with CRLF conversion gives the same hash. Parts are framed with
/// their lengths, so moving bytes between parts changes the hash.
#[derive(Clone, Debug)]
pub struct InputHasher {
    parts: Vec<(String, Vec<u8>)>,
}

impl Default for InputHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl InputHasher {
    pub fn new() -> Self {
        Self { parts: Vec::new() }
    }

    /// Adds a text input (line ends normalized).
    pub fn text(&mut self, label: &str, text: &str) -> &mut Self {
        let normalized = text.replace("\r\n", "\n");
        self.parts
            .push((label.to_string(), normalized.into_bytes()));
        self
    }

    /// Adds a key/value input (build args, configuration values).
    pub fn value(&mut self, label: &str, value: &str) -> &mut Self {
        self.parts
            .push((label.to_string(), value.as_bytes().to_vec()));
        self
    }

    /// `sha256:<hex>`. Parts are sorted by label first, so the order they
    /// were added in does not matter.
    pub fn finish(&self) -> String {
        let mut parts: Vec<_> = self.parts.iter().collect();
        parts.sort();
        let mut h = Sha256::new();
        h.update(b"imagelock-inputs-v1\0");
        for (label, bytes) in parts {
            h.update((label.len() as u64).to_le_bytes());
            h.update(label.as_bytes());
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        }
        format!("sha256:{}", hex::encode(h.finalize()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_and_order_do_not_matter_but_content_does() {
        let a = InputHasher::new()
            .text("Dockerfile", "FROM x\r\nRUN y\r\n")
            .value("arg:A", "1")
            .finish();
        let b = InputHasher::new()
            .value("arg:A", "1")
            .text("Dockerfile", "FROM x\nRUN y\n")
            .finish();
        assert_eq!(a, b);
        let c = InputHasher::new()
            .text("Dockerfile", "FROM x\nRUN z\n")
            .value("arg:A", "1")
            .finish();
        assert_ne!(a, c);
        // Framing: the same bytes split differently are different inputs.
        let d = InputHasher::new().value("a", "bc").finish();
        let e = InputHasher::new().value("ab", "c").finish();
        assert_ne!(d, e);
    }
}
