//! Conda `environment.yml` files: `name`, `channels`, `dependencies` (conda
//! specs and the `pip:` sub-list), each value with its byte span so that a
//! later rewrite can pin it in place.

use std::path::Path;

pub use crate::config::yaml::{SpannedValue, YamlNode, parse_yaml};
use crate::diagnostic::{Diagnostic, Location, Span};

/// An environment file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ParseEnvironmentError {
    #[error("{0}")]
    Invalid(Box<Diagnostic>),
}

/// A parsed `environment.yml`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvironmentFile {
    pub name: Option<SpannedValue>,
    /// Channels in priority order, as written (`nodefaults` included).
    pub channels: Vec<SpannedValue>,
    /// Conda specs.
    pub dependencies: Vec<SpannedValue>,
    /// Requirement strings of the `pip:` sub-list, for the Python resolver.
    pub pip: Vec<SpannedValue>,
}

impl EnvironmentFile {
    /// Parses an environment file read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ParseEnvironmentError> {
        let invalid = |span: Span, message: &str, hint: Option<&str>| {
            ParseEnvironmentError::Invalid(Box::new(Diagnostic {
                message: message.to_string(),
                location: Location::of(path, text, span.start),
                span,
                hint: hint.map(str::to_string),
            }))
        };
        let Some(root) = parse_yaml(path, text).map_err(|e| ParseEnvironmentError::Invalid(e.0))?
        else {
            return Ok(Self::default());
        };
        if !matches!(root, YamlNode::Mapping(..)) {
            return Err(invalid(
                root.span(),
                "an environment file must be a mapping",
                Some("start with `name:`, `channels:` and `dependencies:` keys"),
            ));
        }
        let strings = |node: Option<&YamlNode>, what: &str| -> Result<Vec<SpannedValue>, _> {
            match node {
                None => Ok(Vec::new()),
                Some(YamlNode::Scalar(v)) if v.value.is_empty() => Ok(Vec::new()),
                Some(YamlNode::Sequence(items, _)) => items
                    .iter()
                    .map(|i| {
                        i.as_scalar().cloned().ok_or_else(|| {
                            invalid(i.span(), &format!("`{what}` entries must be strings"), None)
                        })
                    })
                    .collect(),
                Some(other) => Err(invalid(
                    other.span(),
                    &format!("`{what}` must be a list"),
                    None,
                )),
            }
        };
        let mut env = EnvironmentFile {
            name: root.get("name").and_then(YamlNode::as_scalar).cloned(),
            channels: strings(root.get("channels"), "channels")?,
            ..Self::default()
        };
        match root.get("dependencies") {
            None => {}
            Some(YamlNode::Scalar(v)) if v.value.is_empty() => {}
            Some(YamlNode::Sequence(items, _)) => {
                for item in items {
                    match item {
                        YamlNode::Scalar(v) => env.dependencies.push(v.clone()),
                        YamlNode::Mapping(..) if item.get("pip").is_some() => {
                            env.pip.extend(strings(item.get("pip"), "pip")?);
                        }
                        other => {
                            return Err(invalid(
                                other.span(),
                                "a dependency must be a conda spec or a `pip:` list",
                                None,
                            ));
                        }
                    }
                }
            }
            Some(other) => {
                return Err(invalid(other.span(), "`dependencies` must be a list", None));
            }
        }
        Ok(env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENV: &str = "name: longqc\nchannels:\n  - conda-forge\n  - bioconda\n  - nodefaults\ndependencies:\n  - python=3.12\n  - \"numpy>=1.26\"\n  - pip\n  - pip:\n      - requests==2.32.3\n      - -r requirements.txt\n";

    #[test]
    fn reads_name_channels_dependencies_and_pip() {
        let env = EnvironmentFile::parse(Path::new("environment.yml"), ENV).expect("valid");
        assert_eq!(env.name.as_ref().map(|n| n.value.as_str()), Some("longqc"));
        let values = |v: &[SpannedValue]| v.iter().map(|s| s.value.clone()).collect::<Vec<_>>();
        assert_eq!(
            values(&env.channels),
            ["conda-forge", "bioconda", "nodefaults"]
        );
        assert_eq!(
            values(&env.dependencies),
            ["python=3.12", "numpy>=1.26", "pip"]
        );
        assert_eq!(
            values(&env.pip),
            ["requests==2.32.3", "-r requirements.txt"]
        );
    }

    #[test]
    fn spans_point_at_the_text() {
        let env = EnvironmentFile::parse(Path::new("environment.yml"), ENV).expect("valid");
        for v in env.channels.iter().chain(&env.pip) {
            assert_eq!(&ENV[v.span.start..v.span.end], v.value);
        }
        // A quoted scalar's span covers the quotes, and no more.
        let numpy = &env.dependencies[1];
        assert_eq!(&ENV[numpy.span.start..numpy.span.end], "\"numpy>=1.26\"");
        let text = "dependencies:\n  - \"a\\\"b\"  # c\n  - 'it''s'   # d\n";
        let env = EnvironmentFile::parse(Path::new("e.yml"), text).expect("valid");
        let spans: Vec<&str> = env
            .dependencies
            .iter()
            .map(|d| &text[d.span.start..d.span.end])
            .collect();
        assert_eq!(spans, ["\"a\\\"b\"", "'it''s'"]);
    }

    #[test]
    fn spans_are_bytes_after_multibyte_text() {
        let text = "# café ☕\nchannels: [conda-forge]\ndependencies: [zlib]\n";
        let env = EnvironmentFile::parse(Path::new("e.yml"), text).expect("valid");
        let zlib = &env.dependencies[0];
        assert_eq!(&text[zlib.span.start..zlib.span.end], "zlib");
    }

    #[test]
    fn bad_files_are_located_errors() {
        for (text, message) in [
            (
                "- a\n- b\n",
                "environment.yml:1:1: an environment file must be a mapping",
            ),
            (
                "dependencies: numpy\n",
                "environment.yml:1:15: `dependencies` must be a list",
            ),
            (
                "dependencies:\n  - [a]\n",
                "environment.yml:2:5: a dependency must be a conda spec or a `pip:` list",
            ),
            ("channels: [a\n", "environment.yml:2:1: invalid YAML"),
        ] {
            let err = EnvironmentFile::parse(Path::new("environment.yml"), text).expect_err(text);
            assert!(err.to_string().starts_with(message), "{err}");
        }
        assert_eq!(
            EnvironmentFile::parse(Path::new("e.yml"), "").expect("empty"),
            EnvironmentFile::default()
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "[a-z:\\-\\[\\]{}\"' \n#]{0,60}") {
            let _ = EnvironmentFile::parse(Path::new("e.yml"), &text);
        }
    }
}
