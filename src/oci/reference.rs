//! Image references, digests and platforms: parsing and normalization as
//! Docker and containerd do it. Pure code, no I/O.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256, Sha512};

/// The registry Docker Hub names are normalized to.
pub const DOCKER_HUB: &str = "docker.io";
/// The host Docker Hub's registry API answers on.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";
const LEGACY_DOCKER_HUB: &str = "index.docker.io";

/// Why a string is not an image reference.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseImageRefError {
    #[error("image reference is empty")]
    Empty,
    #[error(
        "`{reference}` is not an image reference: {reason}\nhint: write `[registry/]repository[:tag][@sha256:…]`, e.g. `python:3.11-slim`"
    )]
    Invalid { reference: String, reason: String },
    #[error("`{reference}` has an invalid digest: {source}")]
    Digest {
        reference: String,
        #[source]
        source: ParseDigestError,
    },
}

/// Why a string is not a content digest.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseDigestError {
    #[error("`{0}` is not a digest\nhint: write `sha256:` followed by 64 lowercase hex digits")]
    Format(String),
    #[error("`{0}` uses an unsupported digest algorithm\nhint: use `sha256` or `sha512`")]
    Algorithm(String),
}

/// A content digest: algorithm and hex encoding, validated. Serialized as
/// its text, `sha256:…`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest {
    algorithm: DigestAlgorithm,
    hex: String,
}

/// The digest algorithms the OCI image spec registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DigestAlgorithm {
    Sha256,
    Sha512,
}

impl DigestAlgorithm {
    /// The name used in digests, e.g. `sha256`.
    pub fn as_str(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha256 => "sha256",
            DigestAlgorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            DigestAlgorithm::Sha256 => 64,
            DigestAlgorithm::Sha512 => 128,
        }
    }
}

impl Digest {
    /// The sha256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        Digest {
            algorithm: DigestAlgorithm::Sha256,
            hex: hex::encode(Sha256::digest(bytes)),
        }
    }

    /// A sha256 digest from a finished hash (32 bytes).
    pub fn from_sha256_output(hash: &[u8]) -> Digest {
        Digest {
            algorithm: DigestAlgorithm::Sha256,
            hex: hex::encode(hash),
        }
    }

    /// The digest of `bytes` with this digest's algorithm.
    pub fn compute_like(&self, bytes: &[u8]) -> Digest {
        match self.algorithm {
            DigestAlgorithm::Sha256 => Digest::sha256_of(bytes),
            DigestAlgorithm::Sha512 => Digest {
                algorithm: DigestAlgorithm::Sha512,
                hex: hex::encode(Sha512::digest(bytes)),
            },
        }
    }

    /// Whether `bytes` hash to this digest.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        self.compute_like(bytes) == *self
    }

    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    /// The hex part, lowercase.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl FromStr for Digest {
    type Err = ParseDigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (alg, hex) = s
            .split_once(':')
            .ok_or_else(|| ParseDigestError::Format(s.to_string()))?;
        let algorithm = match alg {
            "sha256" => DigestAlgorithm::Sha256,
            "sha512" => DigestAlgorithm::Sha512,
            _ if !alg.is_empty()
                && alg.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || "+._-".contains(c)
                }) =>
            {
                return Err(ParseDigestError::Algorithm(s.to_string()));
            }
            _ => return Err(ParseDigestError::Format(s.to_string())),
        };
        let valid = hex.len() == algorithm.hex_len()
            && hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
        if !valid {
            return Err(ParseDigestError::Format(s.to_string()));
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_string(),
        })
    }
}

impl TryFrom<String> for Digest {
    type Error = ParseDigestError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> Self {
        d.to_string()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.as_str(), self.hex)
    }
}

/// A normalized image reference: `registry/repository[:tag][@digest]`.
///
/// Parsing follows Docker: a first component with a `.` or `:`, or
/// `localhost`, names a registry; otherwise the image is on Docker Hub
/// (`docker.io`), where one-component names live under `library/`. A
/// reference with neither tag nor digest gets the tag `latest`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl ImageRef {
    /// Parses and normalizes a reference as written in a `FROM` line.
    pub fn parse(s: &str) -> Result<ImageRef, ParseImageRefError> {
        let invalid = |reason: &str| ParseImageRefError::Invalid {
            reference: s.to_string(),
            reason: reason.to_string(),
        };
        if s.is_empty() {
            return Err(ParseImageRefError::Empty);
        }
        if s.len() > 4096 || s.chars().any(char::is_whitespace) {
            return Err(invalid("it contains whitespace or is too long"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => {
                let digest = d.parse().map_err(|source| ParseImageRefError::Digest {
                    reference: s.to_string(),
                    source,
                })?;
                (rest, Some(digest))
            }
            None => (s, None),
        };
        // The tag follows the last `:` after the last `/` (a `:` before it
        // belongs to a registry port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (&rest[..at], Some(&rest[at + 1..]))
            }
            None => (rest, None),
        };
        if let Some(tag) = tag
            && !is_tag(tag)
        {
            return Err(invalid(&format!(
                "tag `{tag}` must be 1 to 128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`"
            )));
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                (first.to_string(), path.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        if !is_registry(&registry) {
            return Err(invalid(&format!(
                "registry `{registry}` is not a host[:port]"
            )));
        }
        let registry = if registry == LEGACY_DOCKER_HUB {
            DOCKER_HUB.to_string()
        } else {
            registry
        };
        if path.is_empty() || !path.split('/').all(is_path_component) {
            let hint = if path.chars().any(|c| c.is_ascii_uppercase()) {
                "repository names must be lowercase"
            } else {
                "repository path components are lowercase letters and digits separated by `.`, `_`, `__` or `-`"
            };
            return Err(invalid(hint));
        }
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, None) => Some("latest".to_string()),
            (None, Some(_)) => None,
        };
        Ok(ImageRef {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The registry as users write it (`docker.io`, `ghcr.io`, `localhost:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The host[:port] the registry API answers on (`registry-1.docker.io`
    /// for Docker Hub).
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// The repository path inside the registry (`library/python`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// What the manifest endpoint is asked for: the digest when there is one
    /// (Docker ignores the tag then), else the tag.
    pub fn reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// For a reference with both (`python:3.11-slim@sha256:…`), the same
    /// image by its tag alone: where the tag points now, which the pinned
    /// digest hides from the registry.
    #[must_use]
    pub fn tag_only(&self) -> Option<ImageRef> {
        (self.tag.is_some() && self.digest.is_some()).then(|| ImageRef {
            digest: None,
            ..self.clone()
        })
    }

    /// The same image pinned to `digest`, keeping the tag for readers.
    #[must_use]
    pub fn with_digest(&self, digest: Digest) -> ImageRef {
        ImageRef {
            digest: Some(digest),
            ..self.clone()
        }
    }
}

impl FromStr for ImageRef {
    type Err = ParseImageRefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageRef::parse(s)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

fn is_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    first_ok && tag.len() <= 128 && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

fn is_registry(registry: &str) -> bool {
    let (host, port) = match registry.rsplit_once(':') {
        // An IPv6 literal keeps its colons inside brackets.
        Some((h, p)) if !p.contains(']') => (h, Some(p)),
        _ => (registry, None),
    };
    let host_ok = if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        !inner.is_empty() && inner.chars().all(|c| c.is_ascii_hexdigit() || c == ':')
    } else {
        !host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit()));
    host_ok && port_ok
}

/// `[a-z0-9]+` separated by `.`, `_`, `__` or runs of `-`.
fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    if bytes.is_empty()
        || !bytes[0].is_ascii_alphanumeric()
        || !bytes[bytes.len() - 1].is_ascii_alphanumeric()
    {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_lowercase() || b.is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !(bytes[i].is_ascii_lowercase() || bytes[i].is_ascii_digit()) {
            i += 1;
        }
        let sep = &component[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.chars().all(|c| c == '-');
        if !ok {
            return false;
        }
    }
    true
}

/// Whether a pulled reference names the image published as `published`:
/// same registry and repository after Docker's normalization, and the same
/// tag (a digest-pinned pull of a repository image is not the repository's
/// build). The published tag may be a pattern where `*` stands for any
/// text (`org/base-notebook:*`, `org/base:2021.3-*`), for repositories
/// whose tags name a commit.
pub fn same_image(pulled: &str, published: &str) -> bool {
    let slash = published.rfind('/').map_or(0, |i| i + 1);
    if let Some((name, pattern)) = published[slash..]
        .rsplit_once(':')
        .map(|(n, t)| (&published[..slash + n.len()], t))
        .filter(|(_, t)| t.contains('*'))
    {
        return match (ImageRef::parse(pulled), ImageRef::parse(name)) {
            (Ok(a), Ok(b)) => {
                a.name() == b.name()
                    && a.digest().is_none()
                    && a.tag().is_some_and(|t| glob_match(pattern, t))
            }
            _ => false,
        };
    }
    match (ImageRef::parse(pulled), ImageRef::parse(published)) {
        (Ok(a), Ok(b)) => a.name() == b.name() && a.tag() == b.tag() && a.digest().is_none(),
        _ => false,
    }
}

/// Whether `text` matches `pattern`, where `*` is any text (possibly empty).
fn glob_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::Platform;

    #[test]
    fn a_tag_pattern_names_every_tag_of_the_repository() {
        let p = "org/base-notebook:*";
        assert!(same_image("org/base-notebook:2021.3-d02157", p));
        assert!(same_image("docker.io/org/base-notebook:latest", p));
        assert!(same_image("org/base-notebook", p));
        assert!(!same_image(
            "org/base-notebook@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            p
        ));
        assert!(!same_image("org/minimal-notebook:2021.3-d02157", p));
        let p = "localhost:5000/org/base:2021.3-*";
        assert!(same_image("localhost:5000/org/base:2021.3-d02157", p));
        assert!(!same_image("localhost:5000/org/base:2022.1-d02157", p));
        assert!(same_image(
            "localhost:5000/org/base:2021.3-x",
            "localhost:5000/org/base:*-x"
        ));
        assert!(!same_image(
            "localhost:5000/org/base:2021.3-x",
            "localhost:5000/org/base:*-y"
        ));
    }
    use proptest::prelude::*;
    use rstest::rstest;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[rstest]
    #[case("python", "docker.io/library/python:latest")]
    #[case("python:3.11-slim", "docker.io/library/python:3.11-slim")]
    #[case("library/python:3", "docker.io/library/python:3")]
    #[case("index.docker.io/library/python", "docker.io/library/python:latest")]
    #[case("docker.io/python", "docker.io/library/python:latest")]
    #[case(
        "condaforge/miniforge3:24.3.0-0",
        "docker.io/condaforge/miniforge3:24.3.0-0"
    )]
    #[case("localhost/foo", "localhost/foo:latest")]
    #[case("localhost:5000/foo/bar:1", "localhost:5000/foo/bar:1")]
    #[case("127.0.0.1:5000/x", "127.0.0.1:5000/x:latest")]
    #[case(
        "nvcr.io/nvidia/clara/clara-parabricks:4.6.0-1",
        "nvcr.io/nvidia/clara/clara-parabricks:4.6.0-1"
    )]
    #[case("Registry/foo", "Registry/foo:latest")]
    #[case("a__b/c-d.e_f:t", "docker.io/a__b/c-d.e_f:t")]
    fn normalizes_like_docker(#[case] input: &str, #[case] expected: &str) {
        assert_eq!(ImageRef::parse(input).unwrap().to_string(), expected);
    }

    #[test]
    fn tag_and_digest_together() {
        let r = ImageRef::parse(&format!("python:3.11@{D}")).unwrap();
        assert_eq!(r.tag(), Some("3.11"));
        assert_eq!(r.digest().unwrap().to_string(), D);
        assert_eq!(r.reference(), D);
        assert_eq!(r.to_string(), format!("docker.io/library/python:3.11@{D}"));
        let only = ImageRef::parse(&format!("localhost:5000/x@{D}")).unwrap();
        assert_eq!(only.tag(), None);
        assert_eq!(only.to_string(), format!("localhost:5000/x@{D}"));
    }

    #[test]
    fn docker_hub_api_host() {
        assert_eq!(
            ImageRef::parse("python").unwrap().api_host(),
            "registry-1.docker.io"
        );
        assert_eq!(
            ImageRef::parse("ghcr.io/a/b").unwrap().api_host(),
            "ghcr.io"
        );
    }

    #[rstest]
    #[case("")]
    #[case("Python")]
    #[case("python:")]
    #[case("python:-x")]
    #[case("python@sha256:abc")]
    #[case("python@md5:0123")]
    #[case("a//b")]
    #[case("a b")]
    #[case("host:port/x")]
    #[case("x/-y")]
    fn rejects_bad_references(#[case] input: &str) {
        assert!(ImageRef::parse(input).is_err(), "{input}");
    }

    #[test]
    fn error_messages_name_the_reference() {
        let e = ImageRef::parse("Python:3").unwrap_err().to_string();
        assert!(e.contains("`Python:3`") && e.contains("lowercase"), "{e}");
    }

    #[test]
    fn digests_validate_and_compute() {
        let d = Digest::sha256_of(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(d.matches(b""));
        assert!(!d.matches(b"x"));
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
        assert!("sha256:E3B0".parse::<Digest>().is_err());
        assert!(matches!(
            "blake3:00".parse::<Digest>(),
            Err(ParseDigestError::Algorithm(_))
        ));
    }

    #[rstest]
    #[case("linux/arm64", "linux/arm64/v8")]
    #[case("linux/aarch64", "linux/arm64")]
    #[case("linux/x86_64", "linux/amd64")]
    #[case("linux/arm", "linux/arm/v7")]
    #[case("linux/armhf", "linux/arm/7")]
    #[case("Linux/AMD64", "linux/amd64")]
    #[case("linux/i386", "linux/386")]
    fn platforms_normalize_like_containerd(#[case] a: &str, #[case] b: &str) {
        assert_eq!(
            a.parse::<Platform>().unwrap(),
            b.parse::<Platform>().unwrap()
        );
    }

    #[test]
    fn platforms_display_normalized() {
        assert_eq!(
            "linux/arm64/v8".parse::<Platform>().unwrap().to_string(),
            "linux/arm64"
        );
        assert_eq!(
            "linux/arm".parse::<Platform>().unwrap().to_string(),
            "linux/arm/v7"
        );
        assert_ne!(
            "linux/arm/v6".parse::<Platform>().unwrap(),
            "linux/arm/v7".parse::<Platform>().unwrap()
        );
        assert!("linux".parse::<Platform>().is_err());
        assert!("unknown/unknown".parse::<Platform>().unwrap().is_unknown());
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,80}") {
            let _ = ImageRef::parse(&s);
            let _ = s.parse::<Platform>();
            let _ = s.parse::<Digest>();
        }

        #[test]
        fn normalized_references_round_trip(
            reg in prop::option::of("[a-z]{1,8}\\.(io|com)(:[0-9]{2,4})?"),
            path in "[a-z0-9]{1,6}(/[a-z0-9]{1,6}){0,2}",
            tag in prop::option::of("[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,10}"),
        ) {
            let mut s = reg.map(|r| format!("{r}/")).unwrap_or_default() + &path;
            if let Some(t) = tag { s = format!("{s}:{t}"); }
            let r = ImageRef::parse(&s).unwrap();
            prop_assert_eq!(ImageRef::parse(&r.to_string()).unwrap(), r);
        }
    }
}
