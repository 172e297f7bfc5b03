//! Solving one conda install step for one platform with rattler's resolvo
//! solver.
//!
//! This module and `resolve::conda` are the only places that name rattler
//! types; everything else sees [`CondaSpec`], [`CondaRecord`],
//! [`CondaRepodata`] and [`CondaSolution`].

pub mod memo;
mod record;
mod spec;
mod target;

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use rattler_conda_types::{Channel, MatchSpec, PackageName, RepoDataRecord};
use rattler_solve::{ExcludeNewer, SolverImpl, SolverTask, TimestampPolicy};
use reqwest::Url;

pub use record::{CondaRecord, ReadCondaRecordError};
pub use spec::{CondaSpec, ParseCondaSpecError};
pub use target::{
    CONDA_OVERRIDES, CondaTarget, CondaTargetError, DEFAULT_LINUX_KERNEL, VirtualPackage,
};

use crate::config::ChannelPriority;

/// A conda solve failed.
#[derive(Debug, thiserror::Error)]
pub enum SolveCondaError {
    #[error(transparent)]
    Unsatisfiable(Box<UnsatisfiableRequest>),
    #[error("the conda solve for `{platform}`{context} was cancelled or took too long")]
    Cancelled {
        platform: String,
        context: SolveContextDisplay,
    },
    #[error("conda solver failed for `{platform}`{context}: {message}")]
    Solver {
        platform: String,
        context: SolveContextDisplay,
        message: String,
    },
    #[error(transparent)]
    Target(#[from] CondaTargetError),
    #[error("invalid repodata for channel `{channel}`: {reason}")]
    Repodata { channel: String, reason: String },
    #[error(
        "invalid date `{0}` for --exclude-newer\nhint: write a date like `2024-05-01` or `2024-05-01T12:00:00Z`"
    )]
    ExcludeNewer(String),
}

/// A request no combination of records satisfies, with the solver's own
/// explanation.
#[derive(Debug, thiserror::Error)]
#[error("cannot satisfy {specs} for `{platform}`{context}\n{explanation}\nhint: {hint}")]
pub struct UnsatisfiableRequest {
    pub specs: SpecList,
    pub platform: String,
    pub context: SolveContextDisplay,
    pub explanation: String,
    /// What to change: the override when a virtual package is what is
    /// missing, else the specs or channels.
    pub hint: String,
}

/// The hint for an unsatisfiable request: a missing or too old virtual
/// package is the target's (the machine conda runs on), set by
/// `CONDA_OVERRIDE_*` or imagelock.toml's `overrides`, not a channel's.
fn unsatisfiable_hint(explanation: &str, request: &CondaSolveRequest) -> String {
    let target = &request.target;
    let named = |name: &str| {
        explanation.match_indices(name).any(|(i, _)| {
            let before = explanation[..i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
            !before
                && !explanation[i + name.len()..]
                    .starts_with(|c: char| c.is_ascii_alphanumeric() || "_-".contains(c))
        })
    };
    let pins: Vec<&str> = request
        .pinned
        .iter()
        .filter(|p| named(p.name()))
        .map(CondaSpec::as_str)
        .collect();
    if !pins.is_empty() {
        return format!(
            "the prefix's `conda-meta/pinned` pins `{}`, and conda, mamba and micromamba keep to it; change the request, or the pin before this step",
            pins.join("`, `")
        );
    }
    for (var, package) in CONDA_OVERRIDES {
        if !named(package) {
            continue;
        }
        let (now, config) = match package {
            "__cuda" => (target.cuda.as_deref(), Some("cuda")),
            "__glibc" => (target.glibc.as_deref(), Some("glibc")),
            "__linux" => (
                Some(
                    target
                        .linux_kernel
                        .as_deref()
                        .unwrap_or(DEFAULT_LINUX_KERNEL),
                ),
                None,
            ),
            "__archspec" => (target.archspec.as_deref(), None),
            _ => (target.osx.as_deref(), None),
        };
        let config = config
            .map(|c| format!(" or `overrides.{c}` in imagelock.toml"))
            .unwrap_or_default();
        return match now {
            Some(v) => format!(
                "the target's `{package}` is {v}; a build for a newer one is chosen with `{var}=VERSION` in the definition (`ENV` or before the command){config}"
            ),
            None => format!(
                "the target has no `{package}` (as conda detects it on a build machine); set `{var}=VERSION` in the definition (`ENV` or before the command){config}"
            ),
        };
    }
    "loosen or remove the conflicting specs, or add a channel that has the missing packages"
        .to_string()
}

/// Specs as shown in messages: `` `numpy>=3`, `python=3.11` ``.
#[derive(Debug, Clone, Default)]
pub struct SpecList(pub Vec<String>);

impl fmt::Display for SpecList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("the installed packages");
        }
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "`{s}`")?;
        }
        Ok(())
    }
}

/// Where the step being solved comes from; the caller fills it so an
/// unsatisfiable request names the image, file and line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SolveContext {
    pub image: String,
    pub file: String,
    pub line: u32,
}

/// The optional context as a message suffix (empty when unknown).
#[derive(Clone, Debug, Default)]
pub struct SolveContextDisplay(pub Option<SolveContext>);

impl fmt::Display for SolveContextDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(c) => write!(f, " in image `{}` ({}:{})", c.image, c.file, c.line),
            None => Ok(()),
        }
    }
}

/// Parses `--exclude-newer`: a date (midnight UTC) or an RFC 3339 time.
pub fn parse_exclude_newer(text: &str) -> Result<DateTime<Utc>, SolveCondaError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| SolveCondaError::ExcludeNewer(text.to_string()))
}

/// The `--exclude-newer` time as the solver takes it.
fn exclude_newer_cutoff(time: DateTime<Utc>) -> Result<jiff::Timestamp, SolveCondaError> {
    jiff::Timestamp::from_millisecond(time.timestamp_millis())
        .map_err(|_| SolveCondaError::ExcludeNewer(time.to_rfc3339()))
}

/// The records of the channels a solve may use, in channel priority order
/// (first channel first). Cheap to share: fetched repodata is reference
/// counted.
#[derive(Default)]
pub struct CondaRepodata {
    parts: Vec<Part>,
}

impl fmt::Debug for CondaRepodata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CondaRepodata")
            .field("parts", &self.parts.len())
            .field("records", &self.len())
            .finish()
    }
}

enum Part {
    Fetched(rattler_repodata_gateway::RepoData),
    Owned(Vec<RepoDataRecord>),
}

impl CondaRepodata {
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn push_fetched(&mut self, data: rattler_repodata_gateway::RepoData) {
        self.parts.push(Part::Fetched(data));
    }

    /// Adds the records of one subdir's `repodata.json` text served by the
    /// channel at `channel_url`.
    pub fn push_repodata_json(
        &mut self,
        channel_url: &str,
        text: &str,
    ) -> Result<(), SolveCondaError> {
        let invalid = |reason: String| SolveCondaError::Repodata {
            channel: channel_url.to_string(),
            reason,
        };
        let url = Url::parse(channel_url).map_err(|e| invalid(e.to_string()))?;
        let data: rattler_conda_types::RepoData =
            serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        self.parts.push(Part::Owned(
            data.into_repo_data_records(&Channel::from_url(url)),
        ));
        Ok(())
    }

    /// How many records all channels hold together.
    pub fn len(&self) -> usize {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Fetched(d) => d.len(),
                Part::Owned(v) => v.len(),
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The file name of every record (drift looks locked files up).
    pub fn file_names(&self) -> std::collections::BTreeSet<String> {
        self.parts()
            .into_iter()
            .flatten()
            .map(|r| r.identifier.to_string())
            .collect()
    }

    /// What the repodata states for each file: its sha256 and md5 (hex),
    /// for comparing a lock with the channel.
    pub fn file_hashes(
        &self,
    ) -> std::collections::BTreeMap<String, (Option<String>, Option<String>)> {
        self.parts()
            .into_iter()
            .flatten()
            .map(|r| {
                (
                    r.identifier.to_string(),
                    (
                        r.package_record.sha256.map(hex::encode),
                        r.package_record.md5.map(hex::encode),
                    ),
                )
            })
            .collect()
    }

    fn parts(&self) -> Vec<Vec<&RepoDataRecord>> {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Fetched(d) => d.iter().collect(),
                Part::Owned(v) => v.iter().collect(),
            })
            .collect()
    }
}

/// What to solve: one install step on one platform.
#[derive(Clone, Debug)]
pub struct CondaSolveRequest {
    /// The specs the command asks for (channels already bound).
    pub specs: Vec<CondaSpec>,
    /// What the prefix holds before the step (`conda install` into an
    /// existing prefix); empty for `conda create` and `env create`.
    pub installed: Vec<CondaRecord>,
    pub target: CondaTarget,
    pub channel_priority: ChannelPriority,
    /// Ignore records built after this time. Records without a timestamp
    /// are kept (old channels lack them).
    pub exclude_newer: Option<DateTime<Utc>>,
    pub context: Option<SolveContext>,
    pub timeout: Option<Duration>,
    /// Builds to choose when they still fit (name, version, build): what an
    /// existing lock has, so a re-run does not move what it need not.
    pub preferred: Vec<(String, String, String)>,
    /// conda's `add_pip_as_python_dependency`: every `python` 2.x/3.x record
    /// depends on `pip`, so the installer brings pip (and what pip
    /// depends on) with python. conda, mamba and micromamba default to it;
    /// the repodata needs `pip` fetched too.
    pub add_pip_as_python_dependency: bool,
    /// The prefix's pins (`conda-meta/pinned`): constraints every package
    /// of that name must meet, as conda, mamba and micromamba apply them;
    /// they do not ask for a package.
    pub pinned: Vec<CondaSpec>,
}

impl CondaSolveRequest {
    pub fn new(specs: Vec<CondaSpec>, target: CondaTarget) -> Self {
        Self {
            specs,
            installed: Vec::new(),
            target,
            channel_priority: ChannelPriority::Strict,
            exclude_newer: None,
            context: None,
            timeout: None,
            preferred: Vec::new(),
            add_pip_as_python_dependency: true,
            pinned: Vec::new(),
        }
    }

    /// The names whose dependency closure the repodata must hold for this
    /// request: its specs, and `pip` when python gains it.
    pub fn fetch_specs(&self) -> Vec<CondaSpec> {
        let mut names = self.specs.clone();
        if self.add_pip_as_python_dependency {
            names.push(CondaSpec::parse("pip").expect("`pip` is a valid spec"));
        }
        names
    }
}

/// One package of a solution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SolvedCondaPackage {
    pub record: CondaRecord,
    /// The spec that asked for it by name.
    pub requested: Option<String>,
    /// The prefix held this exact build before the step.
    pub unchanged: bool,
}

/// The prefix after the step, sorted by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CondaSolution {
    pub packages: Vec<SolvedCondaPackage>,
}

impl CondaSolution {
    /// The version of `python` in the solution, for resolving an
    /// environment file's `pip:` section against it.
    pub fn python_version(&self) -> Option<String> {
        self.packages
            .iter()
            .find(|p| p.record.name() == "python")
            .map(|p| p.record.version())
    }

    /// Every record of the prefix after the step (the `installed` of the
    /// next step).
    pub fn records(&self) -> Vec<CondaRecord> {
        self.packages.iter().map(|p| p.record.clone()).collect()
    }
}

/// Solves one step. Pure and CPU-bound: run it on a blocking thread.
pub fn solve(
    request: &CondaSolveRequest,
    available: &CondaRepodata,
) -> Result<CondaSolution, SolveCondaError> {
    solve_with(request, available, None)
}

/// [`solve`], taking the answer kept in `memo` for exactly this request
/// over exactly these records when there is one, and keeping the answer
/// otherwise (see [`memo`] for why an entry cannot change an answer).
pub fn solve_with(
    request: &CondaSolveRequest,
    available: &CondaRepodata,
    memo: Option<&memo::SolveMemo>,
) -> Result<CondaSolution, SolveCondaError> {
    let platform = request.target.platform.clone();
    let context = || SolveContextDisplay(request.context.clone());
    let virtual_packages = request.target.rattler_virtual_packages()?;

    let mut specs: Vec<MatchSpec> = request.specs.iter().map(|s| s.spec.clone()).collect();
    // `conda install` keeps what the prefix holds: each installed package
    // stays requested by name, and its installed build is preferred.
    for installed in &request.installed {
        if !request.specs.iter().any(|s| s.name() == installed.name()) {
            specs.push(MatchSpec::from(PackageName::new_unchecked(
                installed.name().to_string(),
            )));
        }
    }

    let mut parts = available.parts();
    // As conda's `SubdirData` and libmamba's pool do: `pip` joins the
    // dependencies of each python 2/3 record (the solution gives back the
    // record as published).
    let with_pip: Vec<RepoDataRecord> = if request.add_pip_as_python_dependency {
        parts
            .iter()
            .flatten()
            .filter(|r| gains_pip(r))
            .map(|r| {
                let mut r = (*r).clone();
                r.package_record.depends.push("pip".to_string());
                r
            })
            .collect()
    } else {
        Vec::new()
    };
    if !with_pip.is_empty() {
        let mut patched = with_pip.iter();
        for part in &mut parts {
            for r in part.iter_mut() {
                if gains_pip(r) {
                    *r = patched
                        .next()
                        .expect("one patched record per python record");
                }
            }
        }
    }
    // `channel/subdir::name`: rattler's solver does not look at a spec's
    // subdir, so records of that name from other subdirs are left out here.
    for spec in &request.specs {
        if let Some(subdir) = spec.subdir() {
            for part in &mut parts {
                part.retain(|r| {
                    r.package_record.name.as_normalized() != spec.name()
                        || r.package_record.subdir == subdir
                });
            }
        }
    }
    // Preferred ("locked" in rattler's terms) records: what the prefix holds,
    // then what an earlier lock chose, when the channels still offer it.
    let mut locked: Vec<&RepoDataRecord> = request.installed.iter().map(|r| &r.inner).collect();
    for (name, version, build) in &request.preferred {
        if locked
            .iter()
            .any(|r| r.package_record.name.as_normalized() == name)
        {
            continue;
        }
        if let Some(r) = parts.iter().flatten().find(|r| {
            r.package_record.name.as_normalized() == name
                && r.package_record.version.to_string() == *version
                && r.package_record.build == *build
        }) {
            locked.push(r);
        }
    }
    let constraints: Vec<MatchSpec> = request.pinned.iter().map(|s| s.spec.clone()).collect();
    let channel_priority = match request.channel_priority {
        ChannelPriority::Strict => rattler_solve::ChannelPriority::Strict,
        ChannelPriority::Flexible => rattler_solve::ChannelPriority::Flexible,
        ChannelPriority::Disabled => rattler_solve::ChannelPriority::Disabled,
    };
    let key = memo.and_then(|_| {
        solve_key(
            &specs,
            &constraints,
            &locked,
            &virtual_packages,
            channel_priority,
            request,
            &parts,
        )
    });
    if let (Some(memo), Some(key)) = (memo, &key) {
        let candidates = parts
            .iter()
            .flatten()
            .copied()
            .chain(locked.iter().copied());
        if let memo::Lookup::Hit(records) = memo.lookup(key, candidates) {
            return Ok(solution(request, &with_pip, records));
        }
    }
    let task = SolverTask {
        constraints,
        locked_packages: locked,
        virtual_packages,
        specs,
        timeout: request.timeout,
        channel_priority,
        exclude_newer: request
            .exclude_newer
            .map(exclude_newer_cutoff)
            .transpose()?
            .map(|t| {
                ExcludeNewer::from_datetime(t).with_timestamp_policy(TimestampPolicy::AllowMissing)
            }),
        ..SolverTask::from_iter(parts)
    };

    let result = rattler_solve::resolvo::Solver
        .solve(task)
        .map_err(|e| match e {
            rattler_solve::SolveError::Unsolvable(lines) => {
                SolveCondaError::Unsatisfiable(Box::new(UnsatisfiableRequest {
                    specs: SpecList(
                        request
                            .specs
                            .iter()
                            .map(|s| s.as_str().to_string())
                            .collect(),
                    ),
                    platform: platform.clone(),
                    context: context(),
                    hint: unsatisfiable_hint(&lines.join("\n"), request),
                    explanation: lines.join("\n").trim_end().to_string(),
                }))
            }
            rattler_solve::SolveError::Cancelled => SolveCondaError::Cancelled {
                platform: platform.clone(),
                context: context(),
            },
            other => SolveCondaError::Solver {
                platform: platform.clone(),
                context: context(),
                message: other.to_string(),
            },
        })?;
    if let (Some(memo), Some(key)) = (memo, &key) {
        memo.keep(key, &result.records);
    }
    Ok(solution(request, &with_pip, result.records))
}

/// The key of one solve: every input the solver is given (see [`memo`]).
/// `None` when a record does not serialize (then nothing is kept).
fn solve_key(
    specs: &[MatchSpec],
    constraints: &[MatchSpec],
    locked: &[&RepoDataRecord],
    virtual_packages: &[rattler_conda_types::GenericVirtualPackage],
    priority: rattler_solve::ChannelPriority,
    request: &CondaSolveRequest,
    parts: &[Vec<&RepoDataRecord>],
) -> Option<String> {
    let mut k = memo::KeyBuilder::new();
    for s in specs {
        k.text("spec", &format!("{s:?}"));
    }
    for s in constraints {
        k.text("constraint", &format!("{s:?}"));
    }
    for v in virtual_packages {
        k.text("virtual", &format!("{v:?}"));
    }
    k.text("priority", &format!("{priority:?}"));
    k.text("exclude-newer", &format!("{:?}", request.exclude_newer));
    k.text("add-pip", &request.add_pip_as_python_dependency.to_string());
    for r in locked {
        k.record("locked", r).ok()?;
    }
    // A channel part's records come in the order the gateway's lookups
    // finished, which varies from run to run; the solver orders candidates
    // itself. So a part is the sorted set of its records' digests.
    for part in parts {
        let mut digests = part
            .iter()
            .map(|r| memo::record_digest(r))
            .collect::<Option<Vec<_>>>()?;
        digests.sort_unstable();
        k.text("part", &digests.len().to_string());
        for d in &digests {
            k.text("record", d);
        }
    }
    Some(k.finish())
}

/// The solution of `request` from the solver's records.
fn solution(
    request: &CondaSolveRequest,
    with_pip: &[RepoDataRecord],
    records: Vec<RepoDataRecord>,
) -> CondaSolution {
    let mut packages: Vec<SolvedCondaPackage> = records
        .into_iter()
        .map(|mut inner| {
            // Only the patched record (an installed python comes as the
            // prefix recorded it) gives its added `pip` back.
            if inner.package_record.name.as_normalized() == "python"
                && with_pip.iter().any(|w| {
                    w.url == inner.url && w.package_record.depends == inner.package_record.depends
                })
            {
                inner.package_record.depends.pop();
            }
            let record = CondaRecord::new(inner);
            let requested = request
                .specs
                .iter()
                .find(|s| s.name() == record.name())
                .map(|s| s.as_str().to_string());
            let unchanged = request.installed.iter().any(|i| i.same_build(&record));
            SolvedCondaPackage {
                record,
                requested,
                unchanged,
            }
        })
        .collect();
    packages.sort_by(|a, b| a.record.name().cmp(b.record.name()));
    CondaSolution { packages }
}

/// Whether conda's `add_pip_as_python_dependency` adds `pip` to this
/// record: python 2.x or 3.x that does not already name pip (as conda
/// checks it, by the version's first characters).
fn gains_pip(r: &RepoDataRecord) -> bool {
    let p = &r.package_record;
    if p.name.as_normalized() != "python" {
        return false;
    }
    let version = p.version.to_string();
    (version.starts_with("2.") || version.starts_with("3."))
        && !p
            .depends
            .iter()
            .any(|d| d.split([' ', '=', '<', '>', '!']).next() == Some("pip"))
}

#[cfg(test)]
mod tests;
