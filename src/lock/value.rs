//! The values a lock holds, each validated to its grammar when it is read.
//!
//! A lockfile is input anyone can edit in a pull request, and its values end
//! up in Dockerfiles, requirements files and registry requests. So every
//! value is parsed into a type that only holds well-formed text: a newline,
//! a space or a shell metacharacter in a version, name, digest or path is
//! refused on read, with the key and line, before anything uses it.
//!
//! Each type keeps the text it was read from, so reading and writing a lock
//! gives the same bytes.

use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::oci::{Digest, Platform};

/// Why a lock value is not well formed. The message starts with a verb so
/// the reader can put the key in front of it (`steps[0].file is not …`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

/// `text`, quoted for a message: control characters escaped.
pub(crate) fn shown(text: &str) -> String {
    format!("`{}`", text.escape_debug())
}

fn invalid(what: &str, text: &str, hint: &str) -> InvalidValue {
    InvalidValue(format!("is not {what}: {}\nhint: {hint}", shown(text)))
}

/// Whether `text` holds a character no lock value may hold.
pub(crate) fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

/// A token: non-empty, no whitespace, no control characters.
fn is_token(text: &str) -> bool {
    !text.is_empty() && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The JSON Schema of a lock string type: the grammar its check enforces,
/// as far as a pattern can say it, so the schema refuses what the reader
/// refuses.
#[cfg(test)]
fn string_schema(type_name: &str) -> schemars::Schema {
    // No control characters (U+0000–U+001F, U+007F), no whitespace.
    const WORD: &str = "^[^\\s\\u0000-\\u001f\\u007f]+$";
    let pattern = match type_name {
        "Sha256" => "^[0-9a-f]{64}$",
        "Md5" => "^[0-9a-f]{32}$",
        "PypiName" => "^[a-z0-9]+(-[a-z0-9]+)*$",
        "CondaName" => "^[a-z0-9_.-]+$",
        "CondaBuild" => "^[A-Za-z0-9_.+]+$",
        "Subdir" => "^[a-z0-9_-]+$",
        "Token" => "^[^-\\s\\u0000-\\u001f\\u007f][^\\s\\u0000-\\u001f\\u007f]*$",
        "PypiVersion" | "CondaVersion" => WORD,
        "RepoPath" => {
            return schemars::json_schema!({
                "type": "string",
                "pattern": "^[^/\\\\\\u0000-\\u001f\\u007f]+(/[^/\\\\\\u0000-\\u001f\\u007f]+)*$",
                "not": { "pattern": "(^|/)\\.\\.?(/|$)" }
            });
        }
        _ => "^[^\\u0000-\\u001f\\u007f]+$",
    };
    schemars::json_schema!({ "type": "string", "pattern": pattern })
}

macro_rules! lock_string {
    ($(#[$doc:meta])* $name:ident, $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = InvalidValue;
            fn from_str(s: &str) -> Result<Self, InvalidValue> {
                let check: fn(&str) -> Result<(), InvalidValue> = $check;
                check(s)?;
                Ok(Self(s.to_string()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidValue;
            fn try_from(s: String) -> Result<Self, InvalidValue> {
                let check: fn(&str) -> Result<(), InvalidValue> = $check;
                check(&s)?;
                Ok(Self(s))
            }
        }

        impl TryFrom<&str> for $name {
            type Error = InvalidValue;
            fn try_from(s: &str) -> Result<Self, InvalidValue> {
                s.parse()
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::try_from(s).map_err(serde::de::Error::custom)
            }
        }

        #[cfg(test)]
        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                string_schema(stringify!($name))
            }
        }
    };
}

lock_string!(
    /// The sha256 of a file: 64 lowercase hex digits.
    Sha256,
    |s| {
        if s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            Ok(())
        } else {
            Err(invalid("a sha256", s, "a sha256 is 64 lowercase hex digits"))
        }
    }
);

lock_string!(
    /// A git commit id: 40 (SHA-1) or 64 (SHA-256) lowercase hex digits.
    GitCommit,
    |s| {
        if matches!(s.len(), 40 | 64)
            && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(())
        } else {
            Err(invalid(
                "a git commit",
                s,
                "a full commit id: 40 or 64 lowercase hex digits",
            ))
        }
    }
);

lock_string!(
    /// The md5 of a file: 32 lowercase hex digits.
    Md5,
    |s| {
        if s.len() == 32 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            Ok(())
        } else {
            Err(invalid("an md5", s, "an md5 is 32 lowercase hex digits"))
        }
    }
);

lock_string!(
    /// A Python project name, normalized (PEP 503): lowercase letters and
    /// digits in runs joined by single `-`.
    PypiName,
    |s| {
        let ok = !s.is_empty()
            && s.split('-').all(|part| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
        if ok {
            Ok(())
        } else {
            Err(invalid(
                "a normalized Python project name (PEP 503)",
                s,
                "lowercase letters and digits joined by `-`, e.g. `typing-extensions`",
            ))
        }
    }
);

lock_string!(
    /// A conda package name, as conda normalizes it: lowercase letters,
    /// digits, `_`, `-` and `.`.
    CondaName,
    |s| {
        let ok = !s.is_empty()
            && s.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.".contains(&b)
            });
        if ok {
            Ok(())
        } else {
            Err(invalid(
                "a conda package name",
                s,
                "lowercase letters, digits, `_`, `-` and `.`, e.g. `python-dateutil`",
            ))
        }
    }
);

lock_string!(
    /// A Python version (PEP 440).
    PypiVersion,
    |s| {
        if is_token(s) && pep440_rs::Version::from_str(s).is_ok() {
            Ok(())
        } else {
            Err(invalid(
                "a PEP 440 version",
                s,
                "a version like `1.26.4` or `2.0.0rc1`",
            ))
        }
    }
);

lock_string!(
    /// A conda version (`1.26.4`, `2024a`, `1.2.3.post1`, with an epoch
    /// `1!164.3095` as conda-forge's x264 has).
    CondaVersion,
    |s| {
        // `!` only as the epoch's separator: digits before it, once.
        let rest = match s.split_once('!') {
            Some((epoch, rest)) if !epoch.is_empty() && epoch.bytes().all(|b| b.is_ascii_digit()) => {
                rest
            }
            Some(_) => "!",
            None => s,
        };
        if is_token(s)
            && !rest.contains(['=', '<', '>', '*', '|', ',', '!', '~'])
            && rattler_conda_types::Version::from_str(s).is_ok()
        {
            Ok(())
        } else {
            Err(invalid(
                "a conda version",
                s,
                "a version like `1.26.4` or `2024a`",
            ))
        }
    }
);

lock_string!(
    /// A conda build string (`py311h64a7726_0`).
    CondaBuild,
    |s| {
        if !s.is_empty()
            && s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.+".contains(&b))
        {
            Ok(())
        } else {
            Err(invalid(
                "a conda build string",
                s,
                "letters, digits, `_`, `.` and `+`, e.g. `py311h64a7726_0`",
            ))
        }
    }
);

lock_string!(
    /// A conda subdir (`linux-64`, `noarch`).
    Subdir,
    |s| {
        if !s.is_empty()
            && s
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-".contains(&b))
        {
            Ok(())
        } else {
            Err(invalid("a conda subdir", s, "e.g. `linux-64` or `noarch`"))
        }
    }
);

lock_string!(
    /// Where packages come from: an absolute URL (`https://…`, `file:///…`,
    /// `git+https://…`), or a local path as the configuration gave it
    /// (`../world/pypi/simple`).
    LockUrl,
    |s| {
        let url = url::Url::parse(s).is_ok_and(|u| !u.cannot_be_a_base());
        let redacted = crate::config::redact::redact_url(s);
        if redacted != s {
            // A lock carries no secret, whichever path a URL came by; the
            // message shows the URL without it.
            Err(invalid(
                "a URL without credentials",
                &redacted,
                "locks never hold passwords or channel tokens; run `imagelock freeze` to write the lock again",
            ))
        } else if is_token(s) && !s.starts_with('-') && (url || !s.contains("://")) {
            Ok(())
        } else {
            Err(invalid(
                "a URL or path",
                s,
                "an absolute URL like `https://…`, or a path",
            ))
        }
    }
);

lock_string!(
    /// A file in the repository, relative to the configuration's
    /// directory, with `/` separators and no `..`.
    RepoPath,
    |s| {
        let ok = !s.is_empty()
            && !has_control(s)
            && !s.starts_with('/')
            && !s.contains('\\')
            && s.split('/').all(|c| !c.is_empty() && c != ".." && c != ".");
        if ok {
            Ok(())
        } else {
            Err(invalid(
                "a relative path inside the repository",
                s,
                "a path like `images/driver/Dockerfile`: relative, `/`-separated, without `..`",
            ))
        }
    }
);

lock_string!(
    /// One word of a definition or a lock: a reference, a file name, a
    /// media type, a revision. Non-empty, no whitespace, no control
    /// characters.
    Token,
    |s| {
        if is_token(s) && !s.starts_with('-') {
            Ok(())
        } else {
            Err(invalid(
                "a single word",
                s,
                "it must be non-empty, without spaces or control characters, and not start with `-`",
            ))
        }
    }
);

/// Digests and platforms are the OCI types; these read them with the
/// lock's messages, and refuse a platform of an unknown operating system or
/// architecture.
pub(crate) mod serde_oci {
    use super::*;

    fn digest_of<E: serde::de::Error>(s: &str) -> Result<Digest, E> {
        s.parse::<Digest>().map_err(|_| {
            E::custom(invalid(
                "a digest",
                s,
                "write `sha256:` followed by 64 lowercase hex digits",
            ))
        })
    }

    fn platform_of<E: serde::de::Error>(s: &str) -> Result<Platform, E> {
        parse_platform(s).map_err(E::custom)
    }

    /// A lock platform: `os/arch[/variant]` of a known operating system and
    /// architecture, normalized.
    pub(crate) fn parse_platform(s: &str) -> Result<Platform, InvalidValue> {
        const OS: &[&str] = &["linux", "windows", "darwin", "freebsd"];
        let bad = || {
            invalid(
                "a known platform",
                s,
                "write `os/arch[/variant]` as `docker` does, e.g. `linux/amd64` or `linux/arm/v7`",
            )
        };
        let p: Platform = s.parse().map_err(|_| bad())?;
        let known =
            OS.contains(&p.os()) && (p.python_machine().is_some() || p.conda_subdir().is_some());
        if !known {
            return Err(bad());
        }
        Ok(p)
    }

    pub(crate) mod digest {
        use super::*;
        pub(crate) fn serialize<S: Serializer>(d: &Digest, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(d)
        }
        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
            digest_of(&String::deserialize(d)?)
        }
    }

    pub(crate) mod digest_opt {
        use super::*;
        #[allow(clippy::ref_option)] // serde's signature
        pub(crate) fn serialize<S: Serializer>(
            d: &Option<Digest>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => s.collect_str(d),
                None => s.serialize_none(),
            }
        }
        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Digest>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|s| digest_of(&s))
                .transpose()
        }
    }

    pub(crate) mod digests {
        use super::*;
        pub(crate) fn serialize<S: Serializer>(d: &[Digest], s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(d.iter().map(ToString::to_string))
        }
        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Vec<Digest>, D::Error> {
            Vec::<DigestText>::deserialize(d).map(|v| v.into_iter().map(|t| t.0).collect())
        }
        /// One element, so an error points at the element, not the list.
        struct DigestText(Digest);
        impl<'de> Deserialize<'de> for DigestText {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                digest_of(&String::deserialize(d)?).map(DigestText)
            }
        }
    }

    pub(crate) mod platform {
        use super::*;
        pub(crate) fn serialize<S: Serializer>(p: &Platform, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(p)
        }
        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Platform, D::Error> {
            platform_of(&String::deserialize(d)?)
        }
    }

    pub(crate) mod platforms {
        use super::*;
        pub(crate) fn serialize<S: Serializer>(p: &[Platform], s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(p.iter().map(ToString::to_string))
        }
        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Vec<Platform>, D::Error> {
            Vec::<PlatformText>::deserialize(d).map(|v| v.into_iter().map(|t| t.0).collect())
        }
        struct PlatformText(Platform);
        impl<'de> Deserialize<'de> for PlatformText {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                platform_of(&String::deserialize(d)?).map(PlatformText)
            }
        }
    }

    /// JSON Schema pieces for the OCI types (schema generation only).
    #[cfg(test)]
    pub(crate) fn digest_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "pattern": "^sha(256:[0-9a-f]{64}|512:[0-9a-f]{128})$" })
    }
    #[cfg(test)]
    pub(crate) fn digests_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let item = digest_schema(g);
        schemars::json_schema!({ "type": "array", "items": item })
    }
    #[cfg(test)]
    pub(crate) fn digest_opt_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        digest_schema(g)
    }
    #[cfg(test)]
    pub(crate) fn platform_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "pattern": "^(linux|windows|darwin|freebsd)/[a-z0-9_]+(/[a-z0-9]+)?$" })
    }
    #[cfg(test)]
    pub(crate) fn platforms_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let item = platform_schema(g);
        schemars::json_schema!({ "type": "array", "items": item })
    }
}

lock_string!(
    /// A Debian package name (Debian Policy 5.6.7): lowercase letters,
    /// digits, `+`, `-` and `.`, at least two characters, starting with a
    /// letter or digit.
    DebName,
    |s| {
        let ok = s.len() >= 2
            && s.as_bytes()[0].is_ascii_alphanumeric()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b));
        if ok {
            Ok(())
        } else {
            Err(invalid(
                "a Debian package name",
                s,
                "lowercase letters, digits, `+`, `-` and `.`, e.g. `libc6` or `g++`",
            ))
        }
    }
);

lock_string!(
    /// A Debian version (Debian Policy 5.6.12): `[epoch:]upstream[-revision]`;
    /// the epoch is digits, the upstream version starts with a digit and
    /// holds letters, digits and `.+~-:` (`-` only with a revision, `:` only
    /// with an epoch), the revision letters, digits and `+.~`.
    DebVersion,
    |s| {
        if is_deb_version(s) {
            Ok(())
        } else {
            Err(invalid(
                "a Debian version",
                s,
                "a version like `7.88.1-10+deb12u8` or `1:2.39.5-0+deb12u1`",
            ))
        }
    }
);

fn is_deb_version(s: &str) -> bool {
    let (epoch, rest) = match s.split_once(':') {
        Some((e, r)) => (Some(e), r),
        None => (None, s),
    };
    if epoch.is_some_and(|e| e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((u, r)) => (u, Some(r)),
        None => (rest, None),
    };
    let upstream_ok = upstream.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && upstream.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || b".+~".contains(&b)
                || (b == b'-' && revision.is_some())
                || (b == b':' && epoch.is_some())
        });
    let revision_ok = revision.is_none_or(|r| {
        !r.is_empty()
            && r.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+.~".contains(&b))
    });
    upstream_ok && revision_ok
}

lock_string!(
    /// The `Date` of an apt `Release` file (`Sat, 09 Nov 2024 10:23:45 UTC`).
    AptDate,
    |s| {
        if !has_control(s) && crate::solve::apt::release::parse_release_date(s).is_some() {
            Ok(())
        } else {
            Err(invalid(
                "a Release date",
                s,
                "a date as Release files write it, e.g. `Sat, 09 Nov 2024 10:23:45 UTC`",
            ))
        }
    }
);

lock_string!(
    /// A Debian architecture as a `.deb` names it (`amd64`, `arm64`,
    /// `all`): lowercase letters, digits and `-`.
    DebArch,
    |s| {
        if !s.is_empty()
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            Ok(())
        } else {
            Err(invalid("a Debian architecture", s, "e.g. `amd64`, `arm64` or `all`"))
        }
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_their_text_and_refuse_injections() {
        assert_eq!(PypiVersion::from_str("1.16.0").unwrap().as_str(), "1.16.0");
        assert!(PypiVersion::from_str("1.16.0\n--extra-index-url http://evil/").is_err());
        assert!(PypiVersion::from_str("1.0 ").is_err());
        assert!(CondaVersion::from_str("1.26.4").is_ok());
        assert!(CondaVersion::from_str("1.26.4 *").is_err());
        assert!(CondaVersion::from_str(">=1").is_err());
        assert!(CondaVersion::from_str("1!164.3095").is_ok());
        assert!(CondaVersion::from_str("!164").is_err());
        assert!(CondaVersion::from_str("1!2!3").is_err());
        assert!(CondaVersion::from_str("a!1").is_err());
        assert!(CondaVersion::from_str("!=1").is_err());
        assert!(PypiName::from_str("typing-extensions").is_ok());
        assert!(PypiName::from_str("typing extensions").is_err());
        assert!(PypiName::from_str("Typing_Extensions").is_err());
        assert!(CondaName::from_str("python-dateutil").is_ok());
        assert!(CondaName::from_str("a b").is_err());
        assert!(Sha256::from_str(&"ab".repeat(32)).is_ok());
        assert!(Sha256::from_str(&"AB".repeat(32)).is_err());
        assert!(Sha256::from_str("abc").is_err());
        assert!(RepoPath::from_str("a/Dockerfile").is_ok());
        for bad in ["../x", "a/../b", "/etc/passwd", "a\nb", "", "a//b", "./a"] {
            assert!(RepoPath::from_str(bad).is_err(), "{bad:?}");
        }
        assert!(LockUrl::from_str("https://pypi.org/simple").is_ok());
        assert!(LockUrl::from_str("https://x/\nRUN y").is_err());
        assert!(LockUrl::from_str("../world/pypi/simple").is_ok());
        assert!(LockUrl::from_str("--index-url=http://x").is_err());
        assert!(LockUrl::from_str("ht tp://x").is_err());
        // Secrets are refused, and the message does not repeat them.
        for secret in [
            "https://user:hunter2@pypi.example/simple",
            "https://conda.example/t/tk-1234567890abcdef/conda-forge",
        ] {
            let err = LockUrl::from_str(secret).unwrap_err().to_string();
            assert!(
                !err.contains("hunter2") && !err.contains("tk-1234567890abcdef"),
                "{err}"
            );
        }
        assert!(Token::from_str("v1.0").is_ok());
        assert!(Token::from_str("v1 .0").is_err());
    }

    #[test]
    fn platforms_are_known_and_canonical() {
        use serde_oci::parse_platform;
        assert!(parse_platform("linux/amd64").is_ok());
        assert!(parse_platform("linux/arm/v7").is_ok());
        assert!(parse_platform("amiga/68k").is_err());
        // Read in any spelling docker accepts, written in its canonical one.
        assert_eq!(
            parse_platform("linux/aarch64").unwrap().to_string(),
            "linux/arm64"
        );
        assert!(parse_platform("linux/amd64\nRUN x").is_err());
    }

    #[test]
    fn messages_escape_what_they_show() {
        let e = PypiVersion::from_str("1.0\n--x").unwrap_err();
        assert_eq!(
            e.to_string(),
            "is not a PEP 440 version: `1.0\\n--x`\nhint: a version like `1.26.4` or `2.0.0rc1`"
        );
    }

    #[test]
    fn debian_values_follow_policy() {
        for v in [
            "7.88.1-10+deb12u8",
            "1:2.39.5-0+deb12u1",
            "2.36-9+deb12u9",
            "1.0~rc1",
            "0",
            "2:1.2-3-4",
        ] {
            assert!(v.parse::<DebVersion>().is_ok(), "{v}");
        }
        for v in [
            "",
            "a1.0",
            "1.0-",
            "1:",
            ":1.0",
            "1.0 -1",
            "1.0-1;rm",
            "1:1.0-x_y",
        ] {
            assert!(v.parse::<DebVersion>().is_err(), "{v}");
        }
        for n in ["libc6", "g++", "libstdc++6", "python3.11"] {
            assert!(n.parse::<DebName>().is_ok(), "{n}");
        }
        for n in ["", "a", "Curl", "-x", "curl=1"] {
            assert!(n.parse::<DebName>().is_err(), "{n}");
        }
        assert!("amd64".parse::<DebArch>().is_ok());
        assert!("amd64 ".parse::<DebArch>().is_err());
    }
}
