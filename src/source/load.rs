//! Reading a definition file from disk: size and encoding checks, kind
//! detection, and dispatch to the right parser.

use crate::source::steps::Wrappers;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnostic, Location, Span};
use crate::source::dockerfile;
use crate::source::model::{Definition, DefinitionKind};

/// Files larger than this are refused: no real definition file comes close,
/// and reading one whole into memory should stay cheap.
pub const MAX_DEFINITION_SIZE: u64 = 4 * 1024 * 1024;

/// Why a definition file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Too large, not text, or not valid: located in the file.
    #[error("{0}")]
    Invalid(Box<Diagnostic>),
}

impl SourceError {
    /// The diagnostic, when the error points into the file.
    pub fn diagnostic(&self) -> Option<&Diagnostic> {
        match self {
            SourceError::Invalid(d) => Some(d),
            _ => None,
        }
    }

    fn at(path: &Path, text: &str, span: Span, message: String, hint: Option<String>) -> Self {
        SourceError::Invalid(Box::new(Diagnostic {
            location: Location::of(path, text, span.start),
            message,
            span,
            hint,
        }))
    }
}

impl From<dockerfile::ParseDockerfileError> for SourceError {
    fn from(e: dockerfile::ParseDockerfileError) -> Self {
        SourceError::Invalid(e.0)
    }
}

/// The kind of a definition file, from its name and then its content.
pub fn detect_kind(path: &Path, text: &str) -> DefinitionKind {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if let Some(kind) = kind_from_name(&name) {
        return kind;
    }
    // By content: an Apptainer header has a `Bootstrap:` line among its
    // `Keyword: value` lines (not necessarily the first: `From:` may come
    // before it).
    for l in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let Some((k, _)) = l.split_once(':') else {
            break;
        };
        let k = k.trim();
        if k.eq_ignore_ascii_case("bootstrap") {
            return DefinitionKind::Apptainer;
        }
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            break;
        }
    }
    DefinitionKind::Dockerfile
}

/// The kind a file name says, if it says one (lowercase name).
pub fn kind_from_name(name: &str) -> Option<DefinitionKind> {
    if name == "dockerfile"
        || name == "containerfile"
        || name.ends_with(".dockerfile")
        || name.ends_with(".containerfile")
        || name.starts_with("dockerfile.")
        || name.starts_with("containerfile.")
    {
        Some(DefinitionKind::Dockerfile)
    } else if name.ends_with(".def")
        || name == "singularity"
        || name == "apptainer"
        || name.starts_with("singularity.")
        || name.starts_with("apptainer.")
    {
        Some(DefinitionKind::Apptainer)
    } else {
        None
    }
}

/// Reads and parses one definition file; `build_args` override ARG defaults.
pub fn load_definition(
    path: &Path,
    build_args: &BTreeMap<String, String>,
) -> Result<Definition, SourceError> {
    read_definition(path, build_args).map(|(definition, _)| definition)
}

/// [`load_definition`] with the configuration's `[steps] wrappers`.
pub fn load_definition_with(
    path: &Path,
    build_args: &BTreeMap<String, String>,
    wrappers: &Wrappers,
) -> Result<Definition, SourceError> {
    read_definition_with(path, build_args, wrappers).map(|(definition, _)| definition)
}

/// [`read_definition`] with the configuration's `[steps] wrappers`.
pub fn read_definition_with(
    path: &Path,
    build_args: &BTreeMap<String, String>,
    wrappers: &Wrappers,
) -> Result<(Definition, String), SourceError> {
    let (mut definition, text) = read_definition(path, build_args)?;
    if !wrappers.is_empty() {
        definition = match definition.kind {
            DefinitionKind::Dockerfile => {
                dockerfile::parse_with(path, &text, build_args, wrappers)?
            }
            DefinitionKind::Apptainer => {
                crate::source::apptainer::parse_with(path, &text, build_args, wrappers)
                    .map_err(|e| SourceError::Invalid(e.diagnostic))?
            }
        };
    }
    Ok((definition, text))
}

/// [`load_definition`], also giving the file's text (for the input hash),
/// so callers need not read the file again.
pub fn read_definition(
    path: &Path,
    build_args: &BTreeMap<String, String>,
) -> Result<(Definition, String), SourceError> {
    let read_err = |source| SourceError::Read {
        path: path.to_path_buf(),
        source,
    };
    let size = fs_err::metadata(path).map_err(read_err)?.len();
    if size > MAX_DEFINITION_SIZE {
        return Err(SourceError::at(
            path,
            "",
            Span::new(0, 0),
            format!(
                "the file is {size} bytes, more than the {} MiB a definition file may have",
                MAX_DEFINITION_SIZE / (1024 * 1024)
            ),
            Some("is this really a Dockerfile or definition file?".into()),
        ));
    }
    // Only a regular file, read with the cap again: `/dev/zero` has size 0
    // and a FIFO blocks on open.
    let bytes = crate::config::read::read_regular(path, MAX_DEFINITION_SIZE).map_err(read_err)?;
    let text = decode(path, bytes)?;
    let definition = match detect_kind(path, &text) {
        DefinitionKind::Dockerfile => dockerfile::parse(path, &text, build_args)?,
        DefinitionKind::Apptainer => crate::source::apptainer::parse(path, &text, build_args)
            .map_err(|e| SourceError::Invalid(e.diagnostic))?,
    };
    Ok((definition, text))
}

/// The file as text: UTF-8 without NUL bytes.
fn decode(path: &Path, bytes: Vec<u8>) -> Result<String, SourceError> {
    if let Some(nul) = bytes.iter().position(|&b| b == 0) {
        let valid = valid_prefix(&bytes[..nul]);
        return Err(SourceError::at(
            path,
            valid,
            Span::new(valid.len(), valid.len()),
            "the file contains a NUL byte: it is binary, not a definition file".into(),
            Some("pass the Dockerfile or definition file, not a built image or archive".into()),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let valid = valid_prefix(bytes);
        SourceError::at(
            path,
            valid,
            Span::new(valid.len(), valid.len()),
            "the file is not valid UTF-8".into(),
            Some("save the file as UTF-8".into()),
        )
    })
}

fn valid_prefix(bytes: &[u8]) -> &str {
    match std::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_name_and_content() {
        let k = |n: &str, t: &str| detect_kind(Path::new(n), t);
        assert_eq!(k("Dockerfile", ""), DefinitionKind::Dockerfile);
        assert_eq!(k("gpu.Dockerfile", ""), DefinitionKind::Dockerfile);
        assert_eq!(k("Dockerfile.cuda", ""), DefinitionKind::Dockerfile);
        assert_eq!(k("Containerfile", ""), DefinitionKind::Dockerfile);
        assert_eq!(k("tool.def", ""), DefinitionKind::Apptainer);
        assert_eq!(k("tool.sif.def", ""), DefinitionKind::Apptainer);
        assert_eq!(k("Singularity", ""), DefinitionKind::Apptainer);
        assert_eq!(
            k("recipe", "# x\n\nBootStrap : docker\n"),
            DefinitionKind::Apptainer
        );
        assert_eq!(k("recipe", "FROM a\n"), DefinitionKind::Dockerfile);
        // `Bootstrap:` need not be the first header line.
        assert_eq!(
            k(
                "Singularity.biobb",
                "From: biobb_md:3.0.0--py_0\nRegistry: quay.io\nBootstrap: docker\n"
            ),
            DefinitionKind::Apptainer
        );
        assert_eq!(
            k("recipe", "FROM ubuntu:24.04\nLABEL bootstrap: no\n"),
            DefinitionKind::Dockerfile
        );
    }
}
