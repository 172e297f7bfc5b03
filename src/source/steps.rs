//! Install commands found in shell text (`RUN` bodies, `%post` sections).

use serde::Serialize;

use crate::diagnostic::Span;
use crate::source::model::Expanded;

/// The program that installs packages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Manager {
    Pip,
    UvPip,
    Conda,
    Mamba,
    Micromamba,
    AptGet,
    Apt,
    Dnf,
    Microdnf,
    Yum,
    Apk,
}

/// Which kind of packages a manager installs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ecosystem {
    Python,
    Conda,
    Os,
}

impl Manager {
    pub const fn ecosystem(self) -> Ecosystem {
        match self {
            Manager::Pip | Manager::UvPip => Ecosystem::Python,
            Manager::Conda | Manager::Mamba | Manager::Micromamba => Ecosystem::Conda,
            Manager::AptGet
            | Manager::Apt
            | Manager::Dnf
            | Manager::Microdnf
            | Manager::Yum
            | Manager::Apk => Ecosystem::Os,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Manager::Pip => "pip",
            Manager::UvPip => "uv-pip",
            Manager::Conda => "conda",
            Manager::Mamba => "mamba",
            Manager::Micromamba => "micromamba",
            Manager::AptGet => "apt-get",
            Manager::Apt => "apt",
            Manager::Dnf => "dnf",
            Manager::Microdnf => "microdnf",
            Manager::Yum => "yum",
            Manager::Apk => "apk",
        }
    }
}

/// What the command does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// `pip install`, `conda install`, `apt-get install`…
    Install,
    /// `conda create` / `micromamba create`: a new, empty environment.
    Create,
    /// `conda env create -f` / `mamba env create -f`.
    EnvCreate,
    /// `conda env update -f` / `mamba env update -f`.
    EnvUpdate,
}

/// Where a command installs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "kebab-case")]
pub enum Target {
    /// `-n NAME`
    CondaName(Expanded),
    /// `-p PREFIX`
    CondaPrefix(Expanded),
    /// The interpreter or pip executable as written (`/opt/conda/bin/pip`,
    /// `python3.11 -m pip`).
    Python(Expanded),
}

/// The role of a file named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileRole {
    /// `pip install -r`
    Requirements,
    /// `pip install -c`
    Constraints,
    /// `pip install -e PATH`
    Editable,
    /// `conda install --file`
    CondaSpecs,
    /// `conda env create -f environment.yml`
    Environment,
}

/// A file an install command reads, by its path inside the image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileArg {
    pub role: FileRole,
    pub path: Expanded,
}

/// One install command with everything a resolver needs from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InstallCommand {
    pub manager: Manager,
    pub action: Action,
    /// The command as written (one simple command of the shell text).
    pub text: String,
    /// The command's span in the file.
    pub span: Span,
    /// Package specs, unquoted and expanded, each with its span.
    pub specs: Vec<Expanded>,
    pub target: Option<Target>,
    /// `-c`/`--channel` in order (conda), as written.
    pub channels: Vec<Expanded>,
    pub override_channels: bool,
    /// `-i`/`--index-url` (pip).
    pub index_url: Option<Expanded>,
    /// `--extra-index-url` (pip), in order.
    pub extra_index_urls: Vec<Expanded>,
    /// `-r`, `-c`, `-e`, `--file`, `-f` arguments.
    pub files: Vec<FileArg>,
    /// Every other option, as written (`--pre`, `--no-deps`, `-U`, `-y`…).
    pub options: Vec<String>,
}
