//! What a definition file says, as the builders read it.

use std::path::PathBuf;

use serde::Serialize;

use crate::diagnostic::Span;
pub use crate::source::expanded::Expanded;
use crate::source::steps::{ChannelConfig, InstallCommand};

/// The kind of definition file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DefinitionKind {
    Dockerfile,
    Apptainer,
}

/// One parsed definition file: the stages it builds, in order.
#[derive(Clone, Debug, Serialize)]
pub struct Definition {
    pub kind: DefinitionKind,
    /// The file as given by the user (relative paths stay relative).
    pub path: PathBuf,
    /// ARGs declared before the first `FROM` (Dockerfile only).
    pub global_args: Vec<ArgDecl>,
    pub stages: Vec<Stage>,
    /// `# syntax=IMAGE`: the BuildKit frontend image the file asks for
    /// (Dockerfile only). It is an image too, so it can be pinned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syntax: Option<Expanded>,
    /// The configured wrapper programs it was read with, so a re-read
    /// (rewrite) reads it the same way.
    #[serde(skip)]
    pub wrappers: crate::source::steps::Wrappers,
}

/// `ARG NAME[=default]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ArgDecl {
    pub name: String,
    /// The default as written and expanded, with the span of its value.
    pub default: Option<Expanded>,
    pub span: Span,
}

/// What a stage starts from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum BaseTarget {
    /// An image from a registry (or another image transport, see `agent`).
    Image {
        /// For Apptainer: the bootstrap agent (`docker`, `oras`, `library`…);
        /// `docker` for Dockerfiles.
        agent: String,
    },
    /// An earlier stage of the same file, by index.
    Stage { index: usize },
    /// `FROM scratch` / `Bootstrap: scratch`.
    Scratch,
    /// An Apptainer agent other than `docker`: one that reads this machine
    /// (`docker-daemon`, an archive, a layout, `localimage`), a service
    /// (`library`, `oras`) or builds from a distribution mirror
    /// (`debootstrap`, `yum`…). How each is pinned, if at all:
    /// [`crate::source::agents::agent_pin`].
    Other { agent: String },
}

/// The base of a stage: where in the file it is written and what it means.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Base {
    /// The reference text (for `FROM`, the image token only).
    pub reference: Expanded,
    pub target: BaseTarget,
    /// When the whole reference is one variable whose value is an ARG
    /// default (`ARG BASE=python:3.11` … `FROM ${BASE}`), that ARG: rewrite
    /// pins the image there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_arg: Option<String>,
    /// `Bootstrap: library`: the stage's `Library:` header, the URL of the
    /// Library service it pulls from (over the configured one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub library: Option<String>,
}

/// An image used by a stage other than as its base.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImageUse {
    /// `copy-from`, `mount-from` or `files-from`.
    pub kind: ImageUseKind,
    pub reference: Expanded,
    pub target: BaseTarget,
    /// The whole instruction.
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageUseKind {
    CopyFrom,
    MountFrom,
    FilesFrom,
}

/// A file of the build context copied into the image (`COPY`/`ADD`,
/// Apptainer `%files`), so that install steps that read it can be followed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CopiedFile {
    /// Sources as written, relative to the build context.
    pub sources: Vec<String>,
    /// Destination inside the image, as written (after expansion).
    pub destination: String,
    /// `COPY --from=…`: copied from a stage or image, not the context.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub span: Span,
    /// `WORKDIR` in effect, against which a relative destination resolves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// The instruction's other flags as written (`--chown=1000:1000`,
    /// `--chmod=755`, `--parents`, `--exclude=*.md`, `--link`), without
    /// `--from`, in order: what `verify` reports beside the content.
    #[serde(skip)]
    pub flags: Vec<String>,
}

/// One stage: `FROM … [AS name]` and what follows up to the next `FROM`,
/// or one Apptainer header block and its sections.
#[derive(Clone, Debug, Serialize)]
pub struct Stage {
    pub index: usize,
    /// `AS name` / `Stage: name`, as written.
    pub name: Option<String>,
    /// `--platform=…` as written and expanded.
    pub platform: Option<Expanded>,
    pub base: Base,
    pub image_uses: Vec<ImageUse>,
    pub copies: Vec<CopiedFile>,
    pub steps: Vec<InstallStep>,
    /// Other commands that bring content in (`curl … | sh`, `ADD <url>`,
    /// `git clone`, `make install`), in file order; see
    /// [`crate::source::coverage`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<ContentStep>,
    /// Changes commands of the stage make to apt's sources, keys, pins,
    /// configuration and dpkg's architectures, in file order; see
    /// [`crate::source::apt_files`]. Freeze's own input, not shown in
    /// the plan.
    #[serde(skip)]
    pub apt_files: Vec<AptFileChange>,
    /// The `FROM` instruction, or the header block.
    pub span: Span,
    /// `ARG`s declared inside the stage (Dockerfile), with their defaults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<ArgDecl>,
    /// `ONBUILD` triggers: recorded, not run in this stage (they run in
    /// images built `FROM` this one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub onbuild: Vec<OnBuild>,
    /// Things in the stage imagelock could not read, each with its place.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<SourceWarning>,
    /// The build target does not use this stage, so BuildKit skips it
    /// (and it is not locked).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unused: bool,
}

/// Something imagelock could not read, at a place in the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SourceWarning {
    /// 1-based line.
    pub line: usize,
    pub message: String,
    pub span: Span,
}

/// `ONBUILD INSTRUCTION …`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OnBuild {
    /// The registered instruction's keyword, uppercase (`RUN`, `COPY`…).
    pub instruction: String,
    /// The whole `ONBUILD` instruction.
    pub span: Span,
}

/// An install command found in a `RUN` instruction or `%post` section.
#[derive(Clone, Debug, Serialize)]
pub struct InstallStep {
    /// The command, with its specs and options.
    pub command: InstallCommand,
    /// The `RUN` instruction (or `%post` section) the command is in.
    pub instruction: Span,
    /// 1-based line of the command's first byte.
    pub line: usize,
    /// Environment variables set by `ENV` (or `%environment`) in scope, that
    /// the command may read (`PIP_INDEX_URL`, `CONDA_PREFIX`, `PATH`…).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<(String, String)>,
    /// Shell user (`USER`) the command runs as, if set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `WORKDIR` in effect, against which relative file arguments resolve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// For conda steps: the channel configuration changes made before it
    /// in this stage (`conda config --add channels`, `CONDA_CHANNELS`), in
    /// order; apply them to the base image's channels with
    /// [`crate::source::steps::effective_channels`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channel_config: Vec<ChannelConfig>,
    /// Platform ARGs (`TARGETARCH`…) the step's `RUN` reads and that the
    /// caller did not give: what depends on them is conditional or
    /// unresolved here; read the file per platform with
    /// [`crate::source::dockerfile::platform_build_args`] to decide it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platform_args: Vec<String>,
}

impl Stage {
    /// Marks the stages that building `target` (default: the last stage)
    /// does not need: BuildKit skips them.
    pub fn mark_unused(stages: &mut [Stage], target: Option<usize>) {
        let Some(last) = target.or(stages.len().checked_sub(1)) else {
            return;
        };
        let mut used = vec![false; stages.len()];
        let mut todo = vec![last];
        while let Some(i) = todo.pop() {
            if i >= used.len() || used[i] {
                continue;
            }
            used[i] = true;
            let s = &stages[i];
            if let BaseTarget::Stage { index } = s.base.target {
                todo.push(index);
            }
            for u in &s.image_uses {
                if let BaseTarget::Stage { index } = u.target {
                    todo.push(index);
                }
            }
        }
        for (s, u) in stages.iter_mut().zip(used) {
            s.unused = !u;
        }
    }
}

/// A command of a `RUN` body (or `%post`) or an `ADD` that brings content
/// into the image outside the install steps imagelock resolves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ContentStep {
    #[serde(flatten)]
    pub kind: ContentKind,
    /// The command, shortened for one line (`curl … | bash`).
    pub text: String,
    /// Where it is in the file.
    pub span: Span,
    /// 1-based line of its first byte.
    pub line: usize,
}

/// What a content step does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ContentKind {
    /// `curl URL | sh`: a script from the network runs.
    ScriptFromNetwork { url: Option<String> },
    /// `curl URL | tar x`: an archive from the network is unpacked.
    ArchiveFromNetwork { url: Option<String> },
    /// `curl URL | gpg …`: other data from the network.
    PipedFromNetwork { url: Option<String>, into: String },
    /// `curl -o FILE URL`, `wget -O FILE URL`: a file from the network.
    /// `url` is `None` when it is not a fixed URL.
    Download { url: Option<String> },
    /// `git clone URL`; `commit` when the script checks out a full commit
    /// after it, `checkout` when it checks out another ref (a branch or tag
    /// name, an expansion) after it.
    GitClone {
        url: Option<String>,
        commit: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        checkout: Option<String>,
    },
    /// `make install`, `cmake --install`, `python setup.py install`;
    /// `project` is the repository a `git clone` before it in the same
    /// script fetched (`hail` of `…/hail.git`), when there is one.
    BuildFromSource { project: Option<String> },
    /// `ADD <url>`; `checksum` from `--checksum=`.
    AddUrl {
        url: String,
        checksum: Option<String>,
    },
    /// `ADD <git url>`; `commit` when the URL names a full commit.
    AddGit { url: String, commit: Option<String> },
    /// `dpkg -i FILE`: a `.deb` installed as it is (`path` is `None` when
    /// it holds an expansion); `url` and `download_line` when an earlier
    /// `curl -o`/`wget -O` of the same script fetched it from a fixed URL.
    DebFile {
        path: Option<String>,
        url: Option<String>,
        download_line: Option<usize>,
    },
}

/// A change a command makes to a file apt reads (a source list, a keyring,
/// pins, configuration, dpkg's architectures), found by
/// [`crate::source::apt_files::scan_apt_files`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AptFileChange {
    /// The file's absolute path in the image (for `Remove`, it may end in
    /// `/*`: every file of the directory).
    pub path: String,
    #[serde(flatten)]
    pub kind: AptFileKind,
    /// The command, shortened for one line.
    pub text: String,
    /// Where it is in the file.
    pub span: Span,
    /// 1-based line of its first byte.
    pub line: usize,
}

/// What a command does to an apt file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "kebab-case")]
pub enum AptFileKind {
    /// `echo TEXT > FILE`, `… | tee [-a] FILE`: the text written (or
    /// appended).
    Write { content: String, append: bool },
    /// `curl URL | gpg --dearmor -o FILE`, `curl -o FILE URL`: the file
    /// is what `url` serves (a key armored or not reads the same).
    Fetch { url: String },
    /// `rm FILE`.
    Remove,
    /// A change imagelock cannot read; why.
    Unknown { why: String },
}
