//! The inputs of an image: its definition text, the build-context files its
//! install steps read, and its build args. `freeze` hashes them into the
//! lock's `input-hash`; `verify` and `rewrite` recompute the hash to tell
//! whether a lock is stale.
//!
//! Which files an install step reads is found the way the build finds them:
//! a file argument (`pip install -r /tmp/requirements.txt`,
//! `conda env create -f env.yml`, `conda install --file specs.txt`) names a
//! path inside the image; the stage's `COPY`/`ADD` instructions (Apptainer
//! `%files`) that come before the step say which context file ended up
//! there. Requirements files are followed through their own `-r`/`-c`
//! includes.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::source::load::SourceError;
use crate::source::model::{CopiedFile, Definition, DefinitionKind, InstallStep, Stage};
use crate::source::requirements::{RequirementsEntry, RequirementsFile};
use crate::source::steps::FileRole;

/// How deep requirements files may include each other.
const MAX_INCLUDE_DEPTH: usize = 8;

/// A build-context file an install step reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputFile {
    /// The path relative to the build context, with `/` separators.
    pub label: String,
    /// Where it was read from.
    pub path: PathBuf,
    pub role: FileRole,
    pub text: String,
    /// For a file included by a requirements file: that file's index.
    pub included_from: Option<usize>,
}

/// A file argument of an install step that maps to an [`InputFile`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileLink {
    pub stage: usize,
    /// Index into the stage's steps.
    pub step: usize,
    /// Index into the step's `command.files`.
    pub arg: usize,
    /// Index into [`Inputs::files`].
    pub file: usize,
}

/// Everything a lock of one image was made from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inputs {
    /// The definition file's text.
    pub definition: String,
    /// Context files read by install steps, each once, in discovery order.
    pub files: Vec<InputFile>,
    pub links: Vec<FileLink>,
    pub build_args: BTreeMap<String, String>,
}

impl Inputs {
    /// The input hash, `sha256:<hex>`, over exactly these parts (see
    /// [`InputHasher`] for framing and line-end normalization):
    ///
    /// - `definition`: the definition file's text;
    /// - `file:<label>`: the text of every context file an install step
    ///   reads (requirements, constraints, conda spec and environment
    ///   files, and requirements files they include), by its path relative
    ///   to the build context;
    /// - `build-arg:<NAME>`: every build arg given (configuration and
    ///   command line), by name.
    ///
    /// Not hashed: the definition's path or name (moving a repository does
    /// not make its locks stale), files of the context no step reads, and
    /// the configuration beyond build args.
    pub fn hash(&self) -> crate::oci::Digest {
        let mut h = InputHasher::new();
        h.text("definition", &self.definition);
        for f in &self.files {
            h.text(&format!("file:{}", f.label), &f.text);
        }
        for (k, v) in &self.build_args {
            h.value(&format!("build-arg:{k}"), v);
        }
        h.finish()
    }

    /// The files linked to one step (with the files they include), in order.
    pub fn step_files(&self, stage: usize, step: usize) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for link in self
            .links
            .iter()
            .filter(|l| l.stage == stage && l.step == step)
        {
            out.push((link.arg, link.file));
            let mut i = 0;
            let mut seen = vec![link.file];
            while i < seen.len() {
                let parent = seen[i];
                for (j, f) in self.files.iter().enumerate() {
                    if f.included_from == Some(parent) && !seen.contains(&j) {
                        seen.push(j);
                        out.push((link.arg, j));
                    }
                }
                i += 1;
            }
        }
        out
    }
}

/// Reads the inputs of `definition` (whose text is `text`) from the build
/// context `context`.
///
/// A file argument that no `COPY` explains, or whose file is missing, is
/// left out: `freeze` reports those; here they only cannot change the hash.
pub fn load_inputs(
    definition: &Definition,
    text: &str,
    context: &Path,
    build_args: &BTreeMap<String, String>,
) -> Result<Inputs, SourceError> {
    load_inputs_with(definition, text, context, build_args, &|path| {
        crate::config::read::read_regular_to_string(path, crate::config::read::MAX_INPUT_FILE)
    })
}

/// [`load_inputs`] reading files through `read` (so a caller can hash files
/// it has not written yet). `read` is only called for paths that exist.
pub fn load_inputs_with(
    definition: &Definition,
    text: &str,
    context: &Path,
    build_args: &BTreeMap<String, String>,
    read: &dyn Fn(&Path) -> std::io::Result<String>,
) -> Result<Inputs, SourceError> {
    let mut inputs = Inputs {
        definition: text.to_string(),
        files: Vec::new(),
        links: Vec::new(),
        build_args: build_args.clone(),
    };
    for stage in &definition.stages {
        for (si, step) in stage.steps.iter().enumerate() {
            for (ai, arg) in step.command.files.iter().enumerate() {
                let Some(in_image) = arg.path.value.as_deref() else {
                    continue;
                };
                let target = image_path(step.workdir.as_deref(), in_image);
                let Some(label) = context_file(definition.kind, stage, step, &target, context)
                else {
                    continue;
                };
                let file = add_file(&mut inputs, context, &label, arg.role, None, read)?;
                inputs.links.push(FileLink {
                    stage: stage.index,
                    step: si,
                    arg: ai,
                    file,
                });
                if arg.role == FileRole::Requirements || arg.role == FileRole::Constraints {
                    follow_includes(&mut inputs, context, file, step, read, 0)?;
                }
            }
        }
    }
    Ok(inputs)
}

fn add_file(
    inputs: &mut Inputs,
    context: &Path,
    label: &str,
    role: FileRole,
    included_from: Option<usize>,
    read: &dyn Fn(&Path) -> std::io::Result<String>,
) -> Result<usize, SourceError> {
    if let Some(i) = inputs.files.iter().position(|f| f.label == label) {
        return Ok(i);
    }
    let path = context.join(label);
    let text = read(&path).map_err(|source| SourceError::Read {
        path: path.clone(),
        source,
    })?;
    inputs.files.push(InputFile {
        label: label.to_string(),
        path,
        role,
        text,
        included_from,
    });
    Ok(inputs.files.len() - 1)
}

fn follow_includes(
    inputs: &mut Inputs,
    context: &Path,
    file: usize,
    step: &InstallStep,
    read: &dyn Fn(&Path) -> std::io::Result<String>,
    depth: usize,
) -> Result<(), SourceError> {
    if depth >= MAX_INCLUDE_DEPTH {
        return Ok(());
    }
    let env = |name: &str| {
        step.env
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let parsed = RequirementsFile::parse(&inputs.files[file].path, &inputs.files[file].text, &env)
        .map_err(|e| SourceError::Invalid(e.0))?;
    let dir = parent_label(&inputs.files[file].label);
    for entry in &parsed.entries {
        let RequirementsEntry::Include {
            constraint, path, ..
        } = entry
        else {
            continue;
        };
        let Some(label) = normalize(&format!("{dir}{path}")) else {
            continue;
        };
        if !context.join(&label).is_file() {
            continue;
        }
        let role = if *constraint {
            FileRole::Constraints
        } else {
            FileRole::Requirements
        };
        let before = inputs.files.len();
        let child = add_file(inputs, context, &label, role, Some(file), read)?;
        if child == before {
            follow_includes(inputs, context, child, step, read, depth + 1)?;
        }
    }
    Ok(())
}

/// `dir/` of a label, or empty.
fn parent_label(label: &str) -> String {
    label
        .rsplit_once('/')
        .map_or_else(String::new, |(d, _)| format!("{d}/"))
}

/// An absolute, normalized path inside the image.
pub(crate) fn image_path(workdir: Option<&str>, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{}/{}", workdir.unwrap_or("/").trim_end_matches('/'), path)
    };
    format!("/{}", normalize(&joined).unwrap_or_default())
}

/// A `/`-separated path without `.`, `..` (clamped at the root) or empty
/// parts, and without a leading `/`; `None` for Windows-style prefixes.
fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str()?),
            Component::ParentDir => {
                parts.pop();
            }
            Component::CurDir | Component::RootDir => {}
            Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

/// Where in the build context the file or directory at `path` inside the
/// image (relative to the step's `WORKDIR`) was copied from by a `COPY`
/// before the step: a `--find-links` directory of wheels. `None` when no
/// `COPY` of the stage explains it.
pub fn context_path(
    definition: &Definition,
    stage: usize,
    step: usize,
    path: &str,
    context: &Path,
) -> Option<PathBuf> {
    let stage = definition.stages.iter().find(|s| s.index == stage)?;
    let step = stage.steps.get(step)?;
    let target = image_path(step.workdir.as_deref(), path);
    let before = |c: &&CopiedFile| {
        c.from.is_none()
            && (definition.kind == DefinitionKind::Apptainer
                || c.span.start < step.instruction.start)
    };
    for copy in stage.copies.iter().filter(before).rev() {
        let dest = image_path(copy.workdir.as_deref(), &copy.destination);
        for src in &copy.sources {
            if src.contains(['*', '?', '[']) {
                continue;
            }
            let Some(src) = normalize(src) else { continue };
            let src_is_dir = src.is_empty() || context.join(&src).is_dir();
            let rel = if target == dest {
                Some(String::new())
            } else {
                target
                    .strip_prefix(&dest)
                    .and_then(|r| r.strip_prefix('/').or((dest == "/").then_some(r)))
                    .map(str::to_string)
            };
            let Some(rel) = rel else { continue };
            let candidate = if src_is_dir {
                if rel.is_empty() {
                    src.clone()
                } else if src.is_empty() {
                    rel
                } else {
                    format!("{src}/{rel}")
                }
            } else if rel.is_empty() || rel == src.rsplit('/').next().unwrap_or(&src) {
                src.clone()
            } else {
                continue;
            };
            let Some(c) = normalize(&candidate) else {
                continue;
            };
            let full = context.join(&c);
            if full.exists() {
                return Some(full);
            }
        }
    }
    None
}

/// The context file (label) that `target` inside the image was copied from.
fn context_file(
    kind: DefinitionKind,
    stage: &Stage,
    step: &InstallStep,
    target: &str,
    context: &Path,
) -> Option<String> {
    // `%files` runs before `%post` wherever it is written; `COPY` only
    // counts when it comes before the `RUN`.
    let before = |c: &&CopiedFile| {
        c.from.is_none()
            && (kind == DefinitionKind::Apptainer || c.span.start < step.instruction.start)
    };
    for copy in stage.copies.iter().filter(before).rev() {
        if let Some(label) = copied_from(copy, target, context) {
            return Some(label);
        }
    }
    None
}

fn copied_from(copy: &CopiedFile, target: &str, context: &Path) -> Option<String> {
    let dest = image_path(copy.workdir.as_deref(), &copy.destination);
    let dest_is_dir = copy.destination.ends_with('/') || copy.sources.len() > 1;
    for src in &copy.sources {
        if src.contains(['*', '?', '[']) {
            continue;
        }
        let src = normalize(src)?;
        let is_dir = src.is_empty() || context.join(&src).is_dir();
        let candidate = if is_dir {
            // The directory's content lands under the destination.
            target
                .strip_prefix(&dest)
                .and_then(|r| r.strip_prefix('/').or((dest == "/").then_some(r)))
                .map(|rel| {
                    if src.is_empty() {
                        rel.to_string()
                    } else {
                        format!("{src}/{rel}")
                    }
                })
        } else {
            let base = src.rsplit('/').next().unwrap_or(&src);
            let exact = !dest_is_dir && target == dest;
            let into = target
                .strip_prefix(dest.trim_end_matches('/'))
                .and_then(|r| r.strip_prefix('/'))
                == Some(base);
            (exact || into).then(|| src.clone())
        };
        if let Some(c) = candidate.and_then(|c| normalize(&c))
            && context.join(&c).is_file()
        {
            return Some(c);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::dockerfile;

    #[test]
    fn image_paths_are_absolute_and_normalized() {
        assert_eq!(image_path(None, "req.txt"), "/req.txt");
        assert_eq!(image_path(Some("/app"), "./a/../req.txt"), "/app/req.txt");
        assert_eq!(image_path(Some("/app"), "/tmp/r.txt"), "/tmp/r.txt");
    }

    #[test]
    fn requirements_are_found_through_copy_and_hashed() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs_err::create_dir_all(dir.path().join("deps")).expect("mkdir");
        fs_err::write(
            dir.path().join("requirements.txt"),
            "-r deps/base.txt\nrich\n",
        )
        .expect("write");
        fs_err::write(dir.path().join("deps/base.txt"), "numpy\n").expect("write");
        let text = "FROM python:3.11\nCOPY . /src/\nRUN pip install -r /src/requirements.txt\n";
        let def =
            dockerfile::parse(Path::new("Dockerfile"), text, &BTreeMap::new()).expect("parses");
        if def.stages[0].steps.is_empty() {
            // The Dockerfile parser does not report install steps yet.
            return;
        }
        let inputs = load_inputs(&def, text, dir.path(), &BTreeMap::new()).expect("inputs");
        let labels: Vec<_> = inputs.files.iter().map(|f| f.label.as_str()).collect();
        assert_eq!(labels, ["requirements.txt", "deps/base.txt"]);
        let before = inputs.hash();
        fs_err::write(dir.path().join("deps/base.txt"), "numpy<2\n").expect("write");
        let after = load_inputs(&def, text, dir.path(), &BTreeMap::new())
            .expect("inputs")
            .hash();
        assert_ne!(before, after);
    }
}

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
    pub fn finish(&self) -> crate::oci::Digest {
        let mut parts: Vec<_> = self.parts.iter().collect();
        parts.sort();
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(b"imagelock-inputs-v1\0");
        for (label, bytes) in parts {
            h.update((label.len() as u64).to_le_bytes());
            h.update(label.as_bytes());
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        }
        crate::oci::Digest::from_sha256_output(&h.finalize())
    }
}

#[cfg(test)]
mod hasher_tests {
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
