//! clap definitions. Runtime configuration lives in [`crate::config`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXIT_CODES: &str = "\
Exit codes:
  0  clean
  1  findings (mismatch, drift, not pinned)
  2  trouble (bad input, unreachable service, internal error)";

/// Lock container images: base digests, conda and pip packages, with hashes.
#[derive(Debug, Parser)]
#[command(
    name = "imagelock",
    version,
    about,
    long_about = "Lock container images: base image digests for every platform, every conda \
and pip package with its hash, one lockfile per image. Then pin the definitions, verify built \
images against their locks, and report what moved upstream.",
    after_long_help = "Examples:
  imagelock plan fixtures/examples/driver/Dockerfile
  imagelock --config imagelock.toml freeze
  imagelock rewrite --check
  imagelock verify --image docker://registry.example.org/lab/driver:1.4

Exit codes:
  0  clean
  1  findings (mismatch, drift, not pinned)
  2  trouble (bad input, unreachable service, internal error)",
    propagate_version = true
)]
pub struct Opts {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalOpts {
    /// The configuration file [default: imagelock.toml in the current directory or above, if any]
    #[arg(long, global = true, value_name = "FILE", env = "IMAGELOCK_CONFIG")]
    pub config: Option<PathBuf>,
    /// Use only what is cached; fail clearly when something is missing
    #[arg(long, global = true)]
    pub offline: bool,
    /// Output format (each command accepts the formats its help lists)
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
    /// More output on stderr (repeat for more)
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Less output on stderr
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// When to use colours (with `auto`, `NO_COLOR` turns them off and
    /// `FORCE_COLOR` on when stderr is not a terminal)
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Seconds a registry, index or channel may stay silent (before it
    /// answers, and between pieces of a download) before the request is
    /// retried or fails [default: `[network] timeout` in imagelock.toml, else 30]
    #[arg(long, global = true, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,
}

impl GlobalOpts {
    /// `--timeout` as a duration.
    pub fn timeout(&self) -> Option<std::time::Duration> {
        self.timeout.map(std::time::Duration::from_secs)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Text for people
    Human,
    /// JSON for programs
    Json,
    /// Markdown, for a job summary, an issue or a pull-request comment (verify, drift, freeze)
    Markdown,
    /// JUnit XML, for CI test views (verify, drift), with `file` and `line`
    Junit,
    /// JUnit XML valid under the strict Ant and Jenkins xUnit schemas (no `file`, `line`)
    JunitStrict,
    /// SARIF 2.1.0, for code scanning (verify, drift)
    Sarif,
    /// Graphviz dot (graph)
    Dot,
}

impl OutputFormat {
    /// The format as typed (`junit-strict`).
    pub fn name(self) -> String {
        use clap::ValueEnum;
        self.to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse only: images, stages, bases and install steps, without network
    #[command(after_long_help = format!("Examples:
  imagelock plan fixtures/examples/driver/Dockerfile
  imagelock plan --build-arg PYTHON_VERSION=3.12 base-notebook/Dockerfile
  imagelock --config fixtures/examples/imagelock.toml plan --format json

Exit codes:
  0  parsed
  2  a file could not be read or parsed"))]
    Plan(PlanArgs),
    /// Resolve everything floating and write the lockfile(s)
    #[command(after_long_help = format!("Examples:
  imagelock freeze                          every image of imagelock.toml
  imagelock freeze driver/Dockerfile        one file, zero-config
  imagelock freeze --update numpy pandas    move only these packages
  imagelock freeze --update-base            move only base image digests
  imagelock freeze --dry-run                print the change to the lock
  imagelock freeze --format markdown        what changed, old → new (a PR body)

{EXIT_CODES}"))]
    Freeze(FreezeArgs),
    /// Rewrite definitions into pinned form from their locks
    #[command(after_long_help = format!("Examples:
  imagelock rewrite                   pin every image of imagelock.toml in place
  imagelock rewrite --diff            print the change, write nothing
  imagelock rewrite --check           exit 1 with a diff when not pinned (CI, pre-commit)
  imagelock rewrite --hashes          add --hash lines to requirements files

{EXIT_CODES}"))]
    Rewrite(RewriteArgs),
    /// Move packages, re-lock and pin the definitions (`freeze --update`, then `rewrite`)
    #[command(
        long_about = "Move the named packages to the newest versions their specs allow, \
re-lock, and rewrite the definitions into pinned form from the new locks: `imagelock freeze \
--update PKG…` followed by `imagelock rewrite`, written together (locks and definitions) or \
not at all.

With no names, nothing that is locked moves while it still fits: what the definitions \
changed is locked and pinned, and base image digests stay as locked unless `--update-base` \
is given.

A package the definition itself pins to one version (`numpy==1.26.4` in a Dockerfile or a \
requirements file it reads, as `imagelock rewrite` writes them) cannot move by re-locking: \
`update` names each such pin with file:line and exits 2, writing nothing. Edit or loosen \
the pin first.

The locks are frozen once more after the definitions are pinned, so `freeze --check`, \
`rewrite --check` and `verify` pass afterwards; `--dry-run` shows the lock as the rewrite \
records it, before that second pass.",
        after_long_help = format!("Examples:
  imagelock update numpy pandas        move these packages, re-lock, pin the definitions
  imagelock update --update-base       move base image digests too
  imagelock update                     lock and pin what the definitions changed
  imagelock update --dry-run numpy     print the lock and definition diffs, write nothing
  imagelock update numpy --path driver/Dockerfile   one definition only

Exit codes:
  0  updated (or, with --dry-run, printed)
  2  trouble (bad input, a named package pinned by the definition, unreachable service)")
    )]
    Update(UpdateArgs),
    /// Check that a lock is current, and that a built image matches it
    #[command(after_long_help = format!("Examples:
  imagelock verify                                     locks current for their inputs (offline)
  imagelock verify --image docker://localhost:5000/lab/driver:1
  imagelock verify --image docker-archive:driver.tar driver/Dockerfile
  imagelock verify --image oci:build/driver:latest --platform linux/arm64
  imagelock verify --image docker-daemon:lab/driver:1 --format junit
  imagelock verify --image containers-storage:localhost/driver:1
  imagelock verify --image 'containers-storage:[vfs@/var/lib/containers/storage]localhost/driver:1'
  imagelock verify --image driver=oci:build/driver --image base=oci:build/base \\
      --output junit=verify.xml --output sarif=verify.sarif

{EXIT_CODES}"))]
    Verify(VerifyArgs),
    /// Report what moved upstream since the locks were made
    #[command(after_long_help = format!("Examples:
  imagelock drift
  imagelock drift --format markdown > drift.md
  imagelock drift --fail-on base,yanked,broken
  imagelock drift --as-of 2026-01-01
  imagelock drift --output sarif=drift.sarif --output markdown=drift.md

{EXIT_CODES}"))]
    Drift(DriftArgs),
    /// Images of this repository that build FROM each other, in build order
    #[command(after_long_help = format!("Examples:
  imagelock graph
  imagelock graph --format json
  imagelock graph --format dot | dot -Tsvg > images.svg

Exit codes:
  0  printed
  2  bad input or a cycle between images"))]
    Graph(PathsArgs),
    /// Write a locked image in another format
    #[command(after_long_help = format!("Examples:
  imagelock export --to requirements driver > requirements.lock.txt
  imagelock export --to pylock driver > pylock.toml
  imagelock export --to conda-explicit longqc --platform linux/amd64 > explicit.txt

Exit codes:
  0  written
  2  bad input, or the image has nothing of that kind"))]
    Export(ExportArgs),
    /// Print shell completions for imagelock
    #[command(after_long_help = "Examples:
  imagelock completions bash > /etc/bash_completion.d/imagelock
  imagelock completions zsh > \"${fpath[1]}/_imagelock\"")]
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man pages (imagelock and each command) in roff
    #[command(after_long_help = "Examples:
  imagelock man > imagelock.1 && man ./imagelock.1
  imagelock man --dir /usr/local/share/man/man1")]
    Man(ManArgs),
}

impl Command {
    /// The definition files named on the command line.
    pub fn paths(&self) -> &[PathBuf] {
        match self {
            Command::Plan(a) => &a.paths.paths,
            Command::Freeze(a) => &a.paths.paths,
            Command::Rewrite(a) => &a.paths.paths,
            Command::Update(a) => &a.paths,
            Command::Verify(a) => &a.paths.paths,
            Command::Drift(a) => &a.paths.paths,
            Command::Graph(a) => &a.paths,
            Command::Export(_) | Command::Completions { .. } | Command::Man(_) => &[],
        }
    }

    /// The command's name as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Plan(_) => "plan",
            Command::Freeze(_) => "freeze",
            Command::Rewrite(_) => "rewrite",
            Command::Update(_) => "update",
            Command::Verify(_) => "verify",
            Command::Drift(_) => "drift",
            Command::Graph(_) => "graph",
            Command::Export(_) => "export",
            Command::Completions { .. } => "completions",
            Command::Man(_) => "man",
        }
    }
}

/// Definition files or directories; with none, the images of the configuration.
#[derive(Debug, Args)]
pub struct PathsArgs {
    /// Dockerfiles, Apptainer definition files, or directories holding them
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub paths: PathsArgs,
    /// Set a build argument (repeatable), as `docker build --build-arg`
    #[arg(long = "build-arg", value_name = "NAME=VALUE")]
    pub build_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct FreezeArgs {
    #[command(flatten)]
    pub paths: PathsArgs,
    /// Move these packages to the newest that fits; everything else keeps
    /// its locked version while it still fits (that is the default too)
    #[arg(long, value_name = "PKG", num_args = 1..)]
    pub update: Vec<String>,
    /// Move only base image digests
    #[arg(long)]
    pub update_base: bool,
    /// Set by `imagelock update`, which rewrites the pins: base references
    /// pinned to a digest after their tag follow the tag.
    #[arg(skip)]
    pub follow_tags: bool,
    /// Lock only this platform (repeatable) instead of the configured ones
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Vec<String>,
    /// Print the change to the lock; write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Exit 1 if the lock would change (CI)
    #[arg(long, conflicts_with = "dry_run")]
    pub check: bool,
    /// Resolve as of this date (upload times, record timestamps):
    /// `YYYY-MM-DD`, an RFC 3339 time, or a duration before now (`7 days`)
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub exclude_newer: Option<String>,
    /// Never run a build backend: an sdist whose metadata is dynamic is an
    /// error instead of being built with a host `python3`
    #[arg(long)]
    pub no_build: bool,
    /// Set a build argument (repeatable)
    #[arg(long = "build-arg", value_name = "NAME=VALUE")]
    pub build_args: Vec<String>,
    /// Images resolved at once (each with all its platforms) [default: 8]
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
}

#[derive(Debug, Args)]
pub struct RewriteArgs {
    #[command(flatten)]
    pub paths: PathsArgs,
    /// Exit 1 and print a diff when a file is not in pinned form; write nothing
    #[arg(long)]
    pub check: bool,
    /// Print the diff; write nothing
    #[arg(long, conflicts_with = "check")]
    pub diff: bool,
    /// Add `--hash=sha256:` lines to requirements files and `--require-hashes`
    #[arg(long)]
    pub hashes: bool,
    /// Add `&& echo "<sha256>  FILE" | sha256sum -c -` after `curl -o FILE URL` and `wget -O FILE URL` of a locked URL
    #[arg(long)]
    pub check_downloads: bool,
    /// Also read each pinned apt step's archives at the lock's snapshot (snapshot.debian.org, snapshot.ubuntu.com), as `[rewrite] apt = "pins+snapshot"`
    #[arg(long)]
    pub apt_snapshot: bool,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Packages to move (pip, conda or apt names, as the locks list them);
    /// with none, locked packages stay while they still fit
    #[arg(value_name = "PKG")]
    pub packages: Vec<String>,
    /// Definition files or directories (repeatable) [default: the images of
    /// the configuration]
    #[arg(long = "path", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Move base image digests too
    #[arg(long)]
    pub update_base: bool,
    /// Print the change to the locks and the definitions; write nothing
    #[arg(long, visible_alias = "diff")]
    pub dry_run: bool,
    /// Lock only this platform (repeatable) instead of the configured ones
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Vec<String>,
    /// Resolve as of this date: `YYYY-MM-DD`, an RFC 3339 time, or a
    /// duration before now (`7 days`)
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub exclude_newer: Option<String>,
    /// Never run a build backend (see `imagelock freeze --no-build`)
    #[arg(long)]
    pub no_build: bool,
    /// Add `--hash=sha256:` lines to requirements files and `--require-hashes`
    #[arg(long)]
    pub hashes: bool,
    /// Set a build argument (repeatable)
    #[arg(long = "build-arg", value_name = "NAME=VALUE")]
    pub build_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub paths: PathsArgs,
    /// A built image: docker://, docker-archive:, oci:, oci-archive:,
    /// docker-daemon:, containers-storage:, sif: (repeatable). With several images selected,
    /// say which each is: `IMAGE=REF` (`driver=docker://…`)
    #[arg(long, value_name = "REF")]
    pub image: Vec<String>,
    /// Which platform of an index to check [default: each locked platform present]
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Also write the report in FORMAT to PATH (repeatable): human, json,
    /// markdown, junit, junit-strict, sarif
    #[arg(long, value_name = "FORMAT=PATH", value_parser = parse_output)]
    pub output: Vec<(OutputFormat, PathBuf)>,
}

#[derive(Debug, Args)]
pub struct DriftArgs {
    #[command(flatten)]
    pub paths: PathsArgs,
    /// Finding kinds that make the exit code 1: base, yanked, gone, broken,
    /// vulnerable, security, stale, outdated, moved, unresolvable, unpinned,
    /// any; `unlocked`: a step the lock does not pin and the configuration
    /// does not accept
    #[arg(long, value_delimiter = ',', value_name = "KIND")]
    pub fail_on: Vec<String>,
    /// Show what freeze would have chosen at this date: `YYYY-MM-DD`, an
    /// RFC 3339 time, or a duration before now (`7 days`)
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub as_of: Option<String>,
    /// Also write the report in FORMAT to PATH (repeatable): human, json,
    /// markdown, junit, junit-strict, sarif
    #[arg(long, value_name = "FORMAT=PATH", value_parser = parse_output)]
    pub output: Vec<(OutputFormat, PathBuf)>,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write one page per command into DIR (`imagelock.1`,
    /// `imagelock-freeze.1`, …) instead of printing them all
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The image (its name in the configuration, or a lockfile path)
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// What to write
    #[arg(long = "to", value_enum)]
    pub to: ExportKind,
    /// Which platform
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// conda-explicit: which environment (its `-n` name or prefix), when
    /// the image has several; one file describes one environment
    #[arg(long, value_name = "NAME|PREFIX")]
    pub env: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportKind {
    /// requirements.txt with `--hash` lines, for `pip install --require-hashes`
    Requirements,
    /// PEP 751 pylock.toml
    Pylock,
    /// conda `@EXPLICIT` file with hashes
    CondaExplicit,
    /// CycloneDX 1.6 SBOM (JSON)
    Sbom,
    /// SPDX 2.3 SBOM (JSON)
    Spdx,
}

/// A date as `--exclude-newer` and `--as-of` take it: `YYYY-MM-DD`, an RFC
/// 3339 time, or a duration before now (`36 hours`, `7 days`, `2 weeks`),
/// which becomes the RFC 3339 time it names. Anything else is refused.
fn parse_date(text: &str) -> Result<String, String> {
    let bad = || {
        format!(
            "`{text}` is not a date\nhint: write `2026-01-01`, an RFC 3339 time such as `2026-01-01T12:00:00Z`, or a duration before now such as `7 days`"
        )
    };
    let words: Vec<&str> = text.split_whitespace().collect();
    if let [n, unit] = words.as_slice() {
        let n: i64 = n.parse().map_err(|_| bad())?;
        let hours = match unit.trim_end_matches('s') {
            "hour" => 1,
            "day" => 24,
            "week" => 24 * 7,
            _ => return Err(bad()),
        };
        let span = jiff::SignedDuration::from_hours(n.checked_mul(hours).ok_or_else(bad)?);
        let at = jiff::Timestamp::now()
            .checked_sub(span)
            .map_err(|_| bad())?;
        return Ok(at.to_string());
    }
    crate::solve::conda::parse_exclude_newer(text)
        .map(|_| text.to_string())
        .map_err(|_| bad())
}

/// `--output FORMAT=PATH` as clap parses it.
pub fn parse_output(text: &str) -> Result<(OutputFormat, PathBuf), String> {
    let Some((format, path)) = text.split_once('=') else {
        return Err(format!(
            "`{text}` is not FORMAT=PATH\nhint: write e.g. `--output sarif=imagelock.sarif`"
        ));
    };
    let format = OutputFormat::from_str(format, true).map_err(|_| {
        format!(
            "`{format}` is not an output format\nhint: use one of human, json, markdown, junit, junit-strict, sarif"
        )
    })?;
    if path.is_empty() {
        return Err(format!("`--output {text}` names no file"));
    }
    Ok((format, PathBuf::from(path)))
}

#[cfg(test)]
mod date_tests {
    use super::parse_date;

    #[test]
    fn dates_durations_and_garbage() {
        assert_eq!(parse_date("2026-01-01").unwrap(), "2026-01-01");
        assert_eq!(
            parse_date("2026-01-01T12:00:00Z").unwrap(),
            "2026-01-01T12:00:00Z"
        );
        let week = parse_date("7 days").unwrap();
        assert!(
            crate::solve::conda::parse_exclude_newer(&week).is_ok(),
            "{week}"
        );
        assert!(parse_date("2 weeks").is_ok());
        for garbage in ["garbage", "2026-13-01", "7 fortnights", "x days", ""] {
            let err = parse_date(garbage).unwrap_err();
            assert!(err.contains("is not a date"), "{garbage}: {err}");
        }
    }
}
