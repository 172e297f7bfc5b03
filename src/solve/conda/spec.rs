//! Conda match specs as conda parses them.

use std::sync::Arc;

use rattler_conda_types::{
    Channel, MatchSpec, PackageNameMatcher, ParseMatchSpecOptions, ParseStrictness,
};
use reqwest::Url;

/// A spec could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseCondaSpecError {
    #[error("invalid conda spec `{spec}`: {reason}")]
    Invalid { spec: String, reason: String },
    #[error(
        "invalid conda spec `{spec}`: it names no package\nhint: write the package name first, like `numpy>=1.26`"
    )]
    NoName { spec: String },
}

/// One requested package: `numpy>=1.26`, `blas=*=openblas`,
/// `numpy==1.26=*_0`, `pytorch[build=cuda*]`, `conda-forge::python=3.11`.
#[derive(Clone, Debug)]
pub struct CondaSpec {
    text: String,
    channel: Option<String>,
    pub(crate) spec: MatchSpec,
}

impl CondaSpec {
    /// Parses a spec the way conda does (quotes already removed by the
    /// shell parser). Lenient where conda is lenient: `numpy=1.26.*`,
    /// `python>=3.9,<3.12`, operators separated by spaces.
    pub fn parse(text: &str) -> Result<Self, ParseCondaSpecError> {
        let trimmed = text.trim();
        // The channel is bound by the resolve layer (which knows the channel
        // alias), so it is split off before rattler would expand it with its
        // own default alias.
        let (channel, rest) = match trimmed.split_once("::") {
            Some((channel, rest)) if !channel.is_empty() => (Some(channel.to_string()), rest),
            _ => (None, trimmed),
        };
        // `conda-forge/linux-64::cupy`: channel `conda-forge`, subdir
        // `linux-64` (conda's `channel/subdir::name`).
        let (channel, subdir) = match channel.as_deref().and_then(|c| c.rsplit_once('/')) {
            Some((c, sub))
                if !c.is_empty()
                    && !c.ends_with('/')
                    && crate::oci::Platform::is_conda_subdir(sub) =>
            {
                (Some(c.to_string()), Some(sub.to_string()))
            }
            _ => (channel, None),
        };
        let options = ParseMatchSpecOptions::new(ParseStrictness::Lenient);
        let mut spec =
            MatchSpec::from_str(rest, options).map_err(|e| ParseCondaSpecError::Invalid {
                spec: trimmed.to_string(),
                reason: e.to_string(),
            })?;
        if subdir.is_some() {
            spec.subdir = subdir;
        }
        if !matches!(spec.name, PackageNameMatcher::Exact(_)) {
            return Err(ParseCondaSpecError::NoName {
                spec: trimmed.to_string(),
            });
        }
        Ok(Self {
            text: trimmed.to_string(),
            channel,
            spec,
        })
    }

    /// The spec as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The normalized package name.
    pub fn name(&self) -> &str {
        match &self.spec.name {
            PackageNameMatcher::Exact(name) => name.as_normalized(),
            _ => "",
        }
    }

    /// The channel written before `::`, if any.
    pub fn channel(&self) -> Option<&str> {
        self.channel.as_deref()
    }

    /// The subdir written in `channel/subdir::name`, if any: only that
    /// subdir's packages match.
    pub fn subdir(&self) -> Option<&str> {
        self.spec.subdir.as_deref()
    }

    /// Restricts the spec to the channel at `url` (what [`Self::channel`]
    /// resolved to).
    pub fn bind_channel(&mut self, url: &str) -> Result<(), ParseCondaSpecError> {
        let parsed = Url::parse(url).map_err(|e| ParseCondaSpecError::Invalid {
            spec: self.text.clone(),
            reason: format!("channel `{url}`: {e}"),
        })?;
        self.spec.channel = Some(Arc::new(Channel::from_url(parsed)));
        Ok(())
    }
}

impl std::fmt::Display for CondaSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_conda_accepts() {
        for text in [
            "numpy",
            "numpy>=1.26",
            "numpy==1.26=*_0",
            "blas=*=openblas",
            "python=3.11",
            "python>=3.9,<3.12",
            "pytorch[build=cuda*]",
            "numpy 1.26.*",
            "conda-forge::python=3.11",
            "scikit-learn",
        ] {
            let spec = CondaSpec::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(spec.as_str(), text);
        }
    }

    #[test]
    fn splits_the_channel() {
        let spec = CondaSpec::parse("bioconda::samtools=1.19").expect("parses");
        assert_eq!(spec.channel(), Some("bioconda"));
        assert_eq!(spec.name(), "samtools");
        let spec = CondaSpec::parse("https://host/chan::samtools").expect("parses");
        assert_eq!(spec.channel(), Some("https://host/chan"));
    }

    /// pangeo's `conda-forge/linux-64::cupy` is channel `conda-forge`,
    /// subdir `linux-64`; a channel path that does not end in a subdir
    /// keeps its path.
    #[test]
    fn channel_subdir_name_keeps_the_subdir() {
        let spec = CondaSpec::parse("conda-forge/linux-64::cupy").expect("parses");
        assert_eq!(spec.channel(), Some("conda-forge"));
        assert_eq!(spec.subdir(), Some("linux-64"));
        assert_eq!(spec.name(), "cupy");
        let spec = CondaSpec::parse("https://host/chan/noarch::six").expect("parses");
        assert_eq!(spec.channel(), Some("https://host/chan"));
        assert_eq!(spec.subdir(), Some("noarch"));
        let spec = CondaSpec::parse("pkgs/main::six").expect("parses");
        assert_eq!(spec.channel(), Some("pkgs/main"));
        assert_eq!(spec.subdir(), None);
    }

    #[test]
    fn build_string_with_wildcard() {
        let spec = CondaSpec::parse("numpy==1.26=*_0").expect("parses");
        assert_eq!(spec.name(), "numpy");
        assert!(spec.spec.build.is_some());
        assert!(spec.spec.version.is_some());
    }

    #[test]
    fn rejects_garbage() {
        assert!(CondaSpec::parse("numpy>=>1").is_err());
        assert!(CondaSpec::parse("*").is_err());
        assert!(CondaSpec::parse("").is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in ".{0,40}") {
            let _ = CondaSpec::parse(&text);
        }
    }
}
