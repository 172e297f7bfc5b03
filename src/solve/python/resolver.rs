//! PubGrub over a [`PackageSource`], with pip's semantics: pre-releases only
//! when asked or the only match, extras as virtual packages, markers for the
//! target, constraints, installed packages kept when they satisfy.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::rc::Rc;
use std::str::FromStr;
use std::sync::Arc;

use pep440_rs::{Operator, Version, VersionSpecifiers};
use pep508_rs::{ExtraName, PackageName, Requirement, VersionOrUrl};
use pubgrub::{
    DefaultStringReporter, Dependencies, DependencyConstraints, DependencyProvider,
    PackageResolutionStatistics, PubGrubError, Ranges, Reporter,
};

use super::direct::{self, DirectError, DirectKind, UnbuiltDist};
use super::dist::{CoreMetadata, DistFile, file_rank, parse_filename, python_fits};
use super::provider::{DirectDist, PackageSource, SourceError};
use super::target::TargetEnv;

/// Which requested packages `--upgrade` applies to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Upgrade {
    /// Installed versions are kept when they satisfy.
    #[default]
    None,
    /// `pip install -U`: requested packages move to the newest; their
    /// dependencies only when needed (pip's `only-if-needed`).
    Requested,
    /// Only these packages move.
    Packages(BTreeSet<PackageName>),
    /// Every package moves to the newest that fits: pip's `-U
    /// --upgrade-strategy eager`, `uv pip install --upgrade`.
    All,
}

/// Which version of a package is tried first (uv's `--resolution`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Resolution {
    /// The newest (pip; uv's default).
    #[default]
    Highest,
    /// The oldest, for every package (`--resolution lowest`).
    Lowest,
    /// The oldest for requested packages, the newest for the others
    /// (`--resolution lowest-direct`).
    LowestDirect,
}

/// pip options that change resolution.
#[derive(Clone, Debug, Default)]
pub struct ResolveOptions {
    /// `--pre`.
    pub pre: bool,
    /// `--no-deps`.
    pub no_deps: bool,
    pub upgrade: Upgrade,
    /// uv's `--resolution`.
    pub resolution: Resolution,
    /// `--exclude-newer`: RFC 3339 date or time (UTC); files uploaded after
    /// it, or without an upload time, are ignored.
    pub exclude_newer: Option<String>,
    /// Versions to choose when they still fit (name, version): what an
    /// existing lock has, so a re-run does not move what it need not.
    pub preferences: Vec<(String, String)>,
}

/// One resolution: requirements as written plus what is already there.
#[derive(Clone, Debug, Default)]
pub struct ResolveRequest {
    /// PEP 508 requirements (`pandas>=2`, `name @ https://…`).
    pub requirements: Vec<String>,
    /// `-c` constraints.
    pub constraints: Vec<String>,
    /// Distributions already installed (base image, earlier steps).
    pub installed: Vec<(String, String)>,
    pub options: ResolveOptions,
}

/// Where a pinned package comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PinnedSource {
    /// A file from the index.
    Index(DistFile),
    /// A wheel or sdist URL, fetched and hashed.
    Direct(DirectDist),
    /// A VCS or path requirement, as given: not fetched, not resolved.
    Unbuilt(UnbuiltDist),
    /// Already installed; nothing to install.
    Installed,
}

/// A package the resolution chose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinnedPackage {
    pub name: PackageName,
    /// `None` for a VCS or path requirement whose version only a build
    /// would tell.
    pub version: Option<Version>,
    pub source: PinnedSource,
    /// The requirement that asked for it, when asked for directly, as
    /// written.
    pub requested: Option<String>,
    /// The packages of the resolution whose dependencies pulled it in
    /// (`anyio`, `requests[socks]`), each with the requirement's marker when
    /// it had one (`anyio; python_version < "3.11"`).
    pub required_by: Vec<String>,
    /// Newer releases of it that were left out because their metadata could
    /// not be had (an sdist that does not build, a file the index lists but
    /// does not serve), each with why. The installer may stop at one of them
    /// rather than step back as the resolution did, so freeze says so.
    pub passed_over: Vec<(Version, String)>,
}

/// Why a resolution failed.
#[derive(Debug, thiserror::Error)]
pub enum SolveError {
    #[error("`{text}` is not a valid requirement: {message}")]
    BadRequirement { text: String, message: String },
    #[error(
        "cannot tell which project `{text}` is without a checkout or a build\nhint: name it: `NAME @ {text}`, or add `#egg=NAME`"
    )]
    NoProjectName { text: String },
    #[error("`{name}`: {source}")]
    Source {
        name: String,
        #[source]
        source: SourceError,
    },
    #[error("{}", render_no_solution(.context.as_deref(), .target, .report, .hints))]
    NoSolution {
        /// Filled by the caller: image, step, file:line.
        context: Option<String>,
        target: String,
        report: String,
        hints: Vec<String>,
    },
    #[error("the resolver failed: {0}")]
    Internal(String),
}

fn render_no_solution(
    context: Option<&str>,
    target: &str,
    report: &str,
    hints: &[String],
) -> String {
    let mut out = String::from("no set of Python packages satisfies the request");
    if let Some(ctx) = context {
        out.push_str(&format!(" of {ctx}"));
    }
    out.push_str(&format!(" for {target}:\n"));
    for line in report.lines() {
        out.push_str(&format!("  {line}\n"));
    }
    for hint in hints {
        out.push_str(&format!("hint: {hint}\n"));
    }
    out.trim_end().to_string()
}

impl SolveError {
    /// Adds where the request came from (`image app, Dockerfile:12`).
    #[must_use]
    pub fn with_context(mut self, ctx: impl Into<String>) -> Self {
        if let SolveError::NoSolution { context, .. } = &mut self {
            *context = Some(ctx.into());
        }
        self
    }
}

/// A version of a project that fits the target, with the file to install.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub version: Version,
    pub file: DistFile,
    pub yanked: bool,
}

/// The versions of one project that fit the target, newest first, and
/// notes on newer ones that did not.
#[derive(Clone, Debug, Default)]
pub struct Candidates {
    pub versions: Vec<Candidate>,
    /// `2.0: requires Python >=3.12` for versions that were left out.
    pub skipped: Vec<(Version, String)>,
    /// Every version the index lists a file of, fit or not, oldest first.
    pub listed: Vec<Version>,
}

impl Candidates {
    /// Groups an index page's files by version and picks each version's best
    /// file for `target`: the wheel with the best tag, else the sdist.
    pub fn new(
        name: &PackageName,
        files: &[DistFile],
        target: &TargetEnv,
        exclude_newer: Option<&str>,
    ) -> Self {
        // version -> (best non-yanked, best yanked, why others were left out)
        type Best = Option<(usize, DistFile)>;
        let mut by_version: BTreeMap<Version, (Best, Best, Option<String>)> = BTreeMap::new();
        for file in files {
            let Some(parsed) = parse_filename(&file.filename, name) else {
                continue;
            };
            let entry = by_version.entry(parsed.version.clone()).or_default();
            if let Some(limit) = exclude_newer
                && file.upload_time.as_deref().is_none_or(|t| t > limit)
            {
                entry
                    .2
                    .get_or_insert_with(|| format!("uploaded after {limit}"));
                continue;
            }
            if !python_fits(file.requires_python.as_deref(), target) {
                entry.2.get_or_insert_with(|| {
                    format!(
                        "requires Python {}",
                        file.requires_python.as_deref().unwrap_or_default()
                    )
                });
                continue;
            }
            let Some(rank) = file_rank(&parsed, target) else {
                entry
                    .2
                    .get_or_insert_with(|| format!("has no wheel for {}", target.describe()));
                continue;
            };
            let slot = if file.yanked.is_some() {
                &mut entry.1
            } else {
                &mut entry.0
            };
            if slot.as_ref().is_none_or(|(r, _)| rank < *r) {
                *slot = Some((rank, file.clone()));
            }
        }
        let mut out = Candidates {
            listed: by_version.keys().cloned().collect(),
            ..Candidates::default()
        };
        for (version, (good, yanked, why)) in by_version.into_iter().rev() {
            match (good, yanked) {
                (Some((_, file)), _) => out.versions.push(Candidate {
                    version,
                    file,
                    yanked: false,
                }),
                (None, Some((_, file))) => out.versions.push(Candidate {
                    version,
                    file,
                    yanked: true,
                }),
                (None, None) => {
                    if out.versions.is_empty() {
                        out.skipped
                            .push((version, why.unwrap_or_else(|| "has no usable file".into())));
                    }
                }
            }
        }
        out
    }

    /// The version pip would pick in `range` (ignoring installed ones).
    pub fn best(
        &self,
        range: &Ranges<Version>,
        allow_pre: bool,
        pins: &[Version],
    ) -> Option<&Candidate> {
        let usable =
            |c: &&Candidate| range.contains(&c.version) && (!c.yanked || pins.contains(&c.version));
        let stable = self
            .versions
            .iter()
            .filter(usable)
            .find(|c| allow_pre || !c.version.any_prerelease());
        // Pre-releases are used when they are the only match.
        stable.or_else(|| self.versions.iter().find(usable))
    }

    /// The oldest version in `range` (uv's `--resolution lowest`), by the
    /// same rules as [`Self::best`].
    pub fn lowest(
        &self,
        range: &Ranges<Version>,
        allow_pre: bool,
        pins: &[Version],
    ) -> Option<&Candidate> {
        let usable =
            |c: &&Candidate| range.contains(&c.version) && (!c.yanked || pins.contains(&c.version));
        let stable = self
            .versions
            .iter()
            .rev()
            .filter(usable)
            .find(|c| allow_pre || !c.version.any_prerelease());
        stable.or_else(|| self.versions.iter().rev().find(usable))
    }
}

/// Turns specifiers into a range, letting `==1.0` match `1.0+local` as
/// PEP 440 says.
pub fn specifiers_to_range(specs: &VersionSpecifiers) -> Ranges<Version> {
    let mut range = Ranges::full();
    for spec in specs.iter() {
        let v = spec.version();
        let part = match spec.operator() {
            Operator::Equal if !v.is_local() => local_span(v),
            Operator::NotEqual if !v.is_local() => local_span(v).complement(),
            _ => Ranges::from(spec.clone()),
        };
        range = range.intersection(&part);
    }
    range
}

/// Shows `>=1.0, <1.0.post0.dev0` (how `==1.0` is stored) as `==1.0`.
fn tidy_report(report: &str) -> String {
    report
        .lines()
        .map(|line| {
            let words: Vec<&str> = line.split(' ').collect();
            let mut out: Vec<String> = Vec::with_capacity(words.len());
            let mut i = 0;
            while i < words.len() {
                let w = words[i];
                if let (Some(v), Some(next)) = (
                    w.strip_prefix(">=").and_then(|v| v.strip_suffix(',')),
                    words.get(i + 1),
                ) {
                    let upper = Version::from_str(v)
                        .map(|v| format!("<{}", after_locals(&v)))
                        .unwrap_or_default();
                    if let Some(rest) = next
                        .strip_prefix(upper.as_str())
                        .filter(|_| !upper.is_empty())
                    {
                        out.push(format!("=={v}{rest}"));
                        i += 2;
                        continue;
                    }
                }
                out.push(w.to_string());
                i += 1;
            }
            out.join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn local_span(v: &Version) -> Ranges<Version> {
    Ranges::from_range_bounds(v.clone()..after_locals(v))
}

/// The least version above `v` and all its local versions (`v+anything`):
/// `1.0` → `1.0.post0.dev0`, `1.0.post0` → `1.0.post1.dev0`,
/// `1.0.dev1` → `1.0.dev2`.
fn after_locals(v: &Version) -> Version {
    let v = v.clone().without_local();
    if let Some(dev) = v.dev() {
        v.with_dev(Some(dev + 1))
    } else if let Some(post) = v.post() {
        v.with_post(Some(post + 1)).with_dev(Some(0))
    } else {
        v.with_post(Some(0)).with_dev(Some(0))
    }
}

/// A node of the PubGrub graph.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PyPkg {
    Root,
    Dist(PackageName),
    /// `name[extra]`: depends on `name` at the same version plus the
    /// extra's requirements.
    Extra(PackageName, ExtraName),
}

impl fmt::Display for PyPkg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PyPkg::Root => write!(f, "the requested packages"),
            PyPkg::Dist(n) => write!(f, "{n}"),
            PyPkg::Extra(n, e) => write!(f, "{n}[{e}]"),
        }
    }
}

struct Provider<'a, S: PackageSource> {
    source: &'a S,
    target: &'a TargetEnv,
    options: &'a ResolveOptions,
    root: Vec<Requirement>,
    constraints: HashMap<PackageName, Ranges<Version>>,
    installed: HashMap<PackageName, Version>,
    requested: HashSet<PackageName>,
    pins: HashMap<PackageName, Vec<Version>>,
    preferred: HashMap<PackageName, Version>,
    direct: HashMap<PackageName, DirectDist>,
    /// VCS and path requirements: outside the resolution; requirements on
    /// these names count as met.
    unbuilt: HashMap<PackageName, UnbuiltDist>,
    projects: RefCell<HashMap<PackageName, Rc<Candidates>>>,
    /// Projects no index has (a 404), asked for on the way.
    missing: RefCell<BTreeMap<PackageName, SourceError>>,
    allow_pre: RefCell<HashSet<PackageName>>,
    seen_order: RefCell<HashMap<PyPkg, usize>>,
    /// Versions left out because their metadata could not be had, with why.
    unusable: RefCell<BTreeMap<(PackageName, Version), String>>,
}

/// What the PubGrub report says of a version in [`Provider::unusable`];
/// the reason follows the report.
const UNUSABLE: &str = "(its metadata could not be read or built)";

/// `no version of numpy matches ==0.0.1; the index has …` for the first
/// requirement asked for directly whose specifiers no version on the index
/// meets.
fn unlisted_request<S: PackageSource>(
    provider: &Provider<'_, S>,
    target: &TargetEnv,
) -> Option<String> {
    for req in &provider.root {
        let Some(VersionOrUrl::VersionSpecifier(specs)) = &req.version_or_url else {
            continue;
        };
        if !req.evaluate_markers(target.markers(), &[]) {
            continue;
        }
        let Ok(project) = provider.project(&req.name) else {
            continue;
        };
        let listed = &project.listed;
        if listed.iter().any(|v| specs.contains(v)) {
            continue;
        }
        let has = match listed.as_slice() {
            [] => "no version of it".to_string(),
            [one] => format!("only {one}"),
            [first, .., last] if listed.len() > 6 => {
                let recent: Vec<String> = listed[listed.len() - 5..]
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                format!(
                    "{} versions, {first} to {last} (latest: {})",
                    listed.len(),
                    recent.join(", ")
                )
            }
            all => all
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        };
        return Some(format!(
            "no version of {} matches {specs}; the index has {has}",
            req.name
        ));
    }
    None
}

impl<S: PackageSource> Provider<'_, S> {
    fn project(&self, name: &PackageName) -> Result<Rc<Candidates>, SourceError> {
        if let Some(p) = self.projects.borrow().get(name) {
            return Ok(p.clone());
        }
        let files = self.source.files(name)?;
        let c = Rc::new(Candidates::new(
            name,
            &files,
            self.target,
            self.options.exclude_newer.as_deref(),
        ));
        self.projects.borrow_mut().insert(name.clone(), c.clone());
        Ok(c)
    }

    fn keeps_installed(&self, name: &PackageName) -> bool {
        match &self.options.upgrade {
            Upgrade::None => true,
            Upgrade::Requested => !self.requested.contains(name),
            Upgrade::Packages(set) => !set.contains(name),
            Upgrade::All => false,
        }
    }

    fn lowest_first(&self, name: &PackageName) -> bool {
        match self.options.resolution {
            Resolution::Highest => false,
            Resolution::Lowest => true,
            Resolution::LowestDirect => self.requested.contains(name),
        }
    }

    fn chosen_installed(&self, name: &PackageName, version: &Version) -> bool {
        self.installed.get(name) == Some(version) && !self.direct.contains_key(name)
    }

    /// Adds `req` (already known to apply) to `deps`.
    fn add_requirement(
        &self,
        deps: &mut DependencyConstraints<PyPkg, Ranges<Version>>,
        req: &Requirement,
    ) {
        self.add_requirement_of(deps, req, None);
    }

    /// Adds `req`, a requirement of `of` (a package and its version) or of
    /// the request (`None`). A package that names itself (`dask[complete]`
    /// needs `dask[array,dataframe]`) means its own version, as pip and uv
    /// read it: its other extras are added at that version, so they are
    /// never looked for in other releases.
    fn add_requirement_of(
        &self,
        deps: &mut DependencyConstraints<PyPkg, Ranges<Version>>,
        req: &Requirement,
        of: Option<(&PyPkg, &Version)>,
    ) {
        if self.unbuilt.contains_key(&req.name) {
            return;
        }
        let own = of.filter(|(pkg, _)| match pkg {
            PyPkg::Dist(n) | PyPkg::Extra(n, _) => *n == req.name,
            PyPkg::Root => false,
        });
        let mut range = match &req.version_or_url {
            Some(VersionOrUrl::VersionSpecifier(specs)) => {
                if specs.iter().any(|s| s.version().any_prerelease()) {
                    self.allow_pre.borrow_mut().insert(req.name.clone());
                }
                specifiers_to_range(specs)
            }
            Some(VersionOrUrl::Url(_)) => match self.direct.get(&req.name) {
                Some(d) => Ranges::singleton(d.version.clone()),
                None => Ranges::full(),
            },
            None => Ranges::full(),
        };
        if let Some(c) = self.constraints.get(&req.name) {
            range = range.intersection(c);
        }
        if let Some((_, version)) = own {
            range = range.intersection(&Ranges::singleton(version.clone()));
        }
        self.source.prefetch(&req.name, &req.extras, &range);
        let mut add = |pkg: PyPkg, range: &Ranges<Version>| {
            let next = self.seen_order.borrow().len();
            self.seen_order
                .borrow_mut()
                .entry(pkg.clone())
                .or_insert(next);
            let merged = match deps.get(&pkg) {
                Some(old) => old.intersection(range),
                None => range.clone(),
            };
            deps.insert(pkg, merged);
        };
        // A package never depends on itself (PubGrub has no such edge).
        let itself = |pkg: &PyPkg| own.is_some_and(|(p, _)| p == pkg);
        let dist = PyPkg::Dist(req.name.clone());
        if !itself(&dist) {
            add(dist, &range);
        }
        for extra in &req.extras {
            let pkg = PyPkg::Extra(req.name.clone(), extra.clone());
            if !itself(&pkg) {
                add(pkg, &range);
            }
        }
    }
}

impl<S: PackageSource> DependencyProvider for Provider<'_, S> {
    type P = PyPkg;
    type V = Version;
    type VS = Ranges<Version>;
    type M = String;
    type Err = SourceError;
    type Priority = (u8, u32, Reverse<usize>);

    fn prioritize(
        &self,
        package: &PyPkg,
        range: &Ranges<Version>,
        stats: &PackageResolutionStatistics,
    ) -> Self::Priority {
        // Root first, then exact pins and direct URLs, then packages that
        // conflicted most, then in discovery order (breadth first, like pip).
        let kind = match package {
            PyPkg::Root => 3,
            _ if range.as_singleton().is_some() => 2,
            _ => 1,
        };
        let order = self
            .seen_order
            .borrow()
            .get(package)
            .copied()
            .unwrap_or(usize::MAX);
        (kind, stats.conflict_count(), Reverse(order))
    }

    fn choose_version(
        &self,
        package: &PyPkg,
        range: &Ranges<Version>,
    ) -> Result<Option<Version>, SourceError> {
        let name = match package {
            PyPkg::Root => return Ok(Some(Version::new([0]))),
            PyPkg::Dist(n) | PyPkg::Extra(n, _) => n,
        };
        if let Some(d) = self.direct.get(name) {
            return Ok(range.contains(&d.version).then(|| d.version.clone()));
        }
        if let Some(v) = self.installed.get(name)
            && range.contains(v)
            && self.keeps_installed(name)
        {
            return Ok(Some(v.clone()));
        }
        let project = match self.project(name) {
            Ok(p) => p,
            // An unknown project has no versions; if no solution is found,
            // that is the reason given.
            Err(e @ SourceError::NotFound(..)) => {
                self.missing.borrow_mut().entry(name.clone()).or_insert(e);
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let allow_pre = self.options.pre || self.allow_pre.borrow().contains(name);
        let pins = self.pins.get(name).map(Vec::as_slice).unwrap_or_default();
        // The locked version, when it still fits and still has a usable file.
        if let Some(v) = self.preferred.get(name).filter(|v| range.contains(v)) {
            let only = Ranges::singleton(v.clone());
            if let Some(c) = project.best(&only, true, pins) {
                return Ok(Some(c.version.clone()));
            }
        }
        let chosen = if self.lowest_first(name) {
            project.lowest(range, allow_pre, pins)
        } else {
            project.best(range, allow_pre, pins)
        };
        Ok(chosen.map(|c| c.version.clone()))
    }

    fn get_dependencies(
        &self,
        package: &PyPkg,
        version: &Version,
    ) -> Result<Dependencies<PyPkg, Ranges<Version>, String>, SourceError> {
        let mut deps = DependencyConstraints::default();
        let (name, extra) = match package {
            PyPkg::Root => {
                for req in &self.root {
                    if req.evaluate_markers(self.target.markers(), &[]) {
                        self.add_requirement(&mut deps, req);
                    }
                }
                return Ok(Dependencies::Available(deps));
            }
            PyPkg::Dist(n) => (n, None),
            PyPkg::Extra(n, e) => (n, Some(e)),
        };
        if let Some(e) = extra {
            deps.insert(
                PyPkg::Dist(name.clone()),
                Ranges::singleton(version.clone()),
            );
            if self.options.no_deps {
                return Ok(Dependencies::Available(deps));
            }
            let _ = e;
        } else if self.options.no_deps {
            return Ok(Dependencies::Available(deps));
        }
        let metadata = if let Some(d) = self.direct.get(name) {
            match &d.metadata {
                Some(m) => Arc::new(m.clone()),
                None => return Ok(Dependencies::Available(deps)),
            }
        } else {
            let project = self.project(name)?;
            let candidate = project.versions.iter().find(|c| &c.version == version);
            match candidate {
                Some(c) => match self.source.metadata(name, &c.file) {
                    Ok(m) => m,
                    // A version whose metadata cannot be had (a failed
                    // sdist build, a broken file) is left out, as pip and uv
                    // do while backtracking; the final error names it.
                    // Trouble reaching the index is not an answer and stops.
                    Err(SourceError::Failed(why) | SourceError::NotFound(why, _)) => {
                        self.unusable
                            .borrow_mut()
                            .insert((name.clone(), version.clone()), why);
                        return Ok(Dependencies::Unavailable(UNUSABLE.into()));
                    }
                    Err(e) => return Err(e),
                },
                // Installed but not on the index: its dependencies are
                // already installed with it.
                None if self.chosen_installed(name, version) => {
                    return Ok(Dependencies::Available(deps));
                }
                None => return Ok(Dependencies::Unavailable("is not on the index".into())),
            }
        };
        if let Some(rp) = &metadata.requires_python
            && !python_fits(Some(rp), self.target)
        {
            return Ok(Dependencies::Unavailable(format!("requires Python {rp}")));
        }
        let reqs = match metadata.requirements() {
            Ok(r) => r,
            Err(e) => return Ok(Dependencies::Unavailable(e.to_string())),
        };
        let extras: Vec<ExtraName> = extra.into_iter().cloned().collect();
        for req in &reqs {
            if req.evaluate_markers(self.target.markers(), &extras) {
                // An extra package carries only what the extra adds.
                if extra.is_some() && req.evaluate_markers(self.target.markers(), &[]) {
                    continue;
                }
                self.add_requirement_of(&mut deps, req, Some((package, version)));
            }
        }
        Ok(Dependencies::Available(deps))
    }
}

impl<S: PackageSource> Provider<'_, S> {
    /// The metadata a chosen version was resolved with (`None` for kept
    /// installed packages).
    fn chosen_metadata(&self, name: &PackageName, version: &Version) -> Option<Arc<CoreMetadata>> {
        if let Some(d) = self.direct.get(name) {
            return d.metadata.clone().map(Arc::new);
        }
        if self.chosen_installed(name, version) {
            return None;
        }
        let project = self.project(name).ok()?;
        let c = project.versions.iter().find(|c| &c.version == version)?;
        self.source.metadata(name, &c.file).ok()
    }

    /// For each package of `solution`, the edges that pulled it in.
    fn edges(&self, solution: &[(PyPkg, Version)]) -> HashMap<PackageName, BTreeSet<String>> {
        let chosen: HashSet<&PackageName> = solution
            .iter()
            .filter_map(|(p, _)| match p {
                PyPkg::Dist(n) => Some(n),
                _ => None,
            })
            .collect();
        let mut out: HashMap<PackageName, BTreeSet<String>> = HashMap::new();
        if self.options.no_deps {
            return out;
        }
        for (pkg, version) in solution {
            let (name, extra) = match pkg {
                PyPkg::Root => continue,
                PyPkg::Dist(n) => (n, None),
                PyPkg::Extra(n, e) => (n, Some(e)),
            };
            let Some(meta) = self.chosen_metadata(name, version) else {
                continue;
            };
            let Ok(reqs) = meta.requirements() else {
                continue;
            };
            let extras: Vec<ExtraName> = extra.into_iter().cloned().collect();
            for req in &reqs {
                let applies = req.evaluate_markers(self.target.markers(), &extras)
                    && !(extra.is_some() && req.evaluate_markers(self.target.markers(), &[]));
                if !applies || !chosen.contains(&req.name) || &req.name == name {
                    continue;
                }
                let from = match extra {
                    Some(e) => format!("{name}[{e}]"),
                    None => name.to_string(),
                };
                let marker = req.marker.clone().simplify_extras(&extras);
                let edge = match marker.try_to_string() {
                    Some(m) => format!("{from}; {m}"),
                    None => from,
                };
                out.entry(req.name.clone()).or_default().insert(edge);
            }
        }
        out
    }
}

fn parse_requirement(text: &str) -> Result<Requirement, SolveError> {
    Requirement::from_str(text.trim()).map_err(|e| SolveError::BadRequirement {
        text: text.trim().to_string(),
        message: e.message.to_string(),
    })
}

/// Resolves `request` for `target`, fetching through `source`.
pub fn resolve<S: PackageSource>(
    source: &S,
    target: &TargetEnv,
    request: &ResolveRequest,
) -> Result<Vec<PinnedPackage>, SolveError> {
    let parsed: Vec<direct::ParsedRequirement> = request
        .requirements
        .iter()
        .map(|r| {
            direct::parse(r).map_err(|e| match e {
                DirectError::Invalid(message) => SolveError::BadRequirement {
                    text: r.trim().to_string(),
                    message,
                },
                DirectError::NoName(text) => SolveError::NoProjectName { text },
            })
        })
        .collect::<Result<_, _>>()?;
    let root: Vec<Requirement> = parsed.iter().map(|p| p.requirement.clone()).collect();
    let mut constraints: HashMap<PackageName, Ranges<Version>> = HashMap::new();
    for text in &request.constraints {
        let c = parse_requirement(text)?;
        if let Some(VersionOrUrl::VersionSpecifier(specs)) = &c.version_or_url {
            if !c.evaluate_markers(target.markers(), &[]) {
                continue;
            }
            let r = specifiers_to_range(specs);
            let slot = constraints
                .entry(c.name.clone())
                .or_insert_with(Ranges::full);
            *slot = slot.intersection(&r);
        }
    }
    let mut installed = HashMap::new();
    for (name, version) in &request.installed {
        if let (Ok(n), Ok(v)) = (PackageName::from_str(name), Version::from_str(version)) {
            installed.insert(n, v);
        }
    }
    let mut pins: HashMap<PackageName, Vec<Version>> = HashMap::new();
    let mut direct = HashMap::new();
    let mut unbuilt = HashMap::new();
    let mut requested_text = HashMap::new();
    for p in &parsed {
        let req = &p.requirement;
        requested_text.insert(req.name.clone(), p.written.clone());
        if let Some((kind @ (DirectKind::Vcs | DirectKind::Path), given)) = &p.direct {
            unbuilt.insert(req.name.clone(), direct::unbuilt(*kind, given));
            continue;
        }
        match &req.version_or_url {
            Some(VersionOrUrl::VersionSpecifier(specs)) => {
                for s in specs.iter() {
                    if matches!(s.operator(), Operator::Equal | Operator::ExactEqual) {
                        pins.entry(req.name.clone())
                            .or_default()
                            .push(s.version().clone());
                    }
                }
            }
            Some(VersionOrUrl::Url(url)) => {
                let d = source
                    .direct(&req.name, url.given().unwrap_or(url.raw().as_str()))
                    .map_err(|source| SolveError::Source {
                        name: req.name.to_string(),
                        source,
                    })?;
                direct.insert(req.name.clone(), d);
            }
            None => {}
        }
    }
    let provider = Provider {
        source,
        target,
        options: &request.options,
        requested: root.iter().map(|r| r.name.clone()).collect(),
        root,
        constraints,
        installed,
        pins,
        preferred: request
            .options
            .preferences
            .iter()
            .filter_map(|(n, v)| Some((PackageName::from_str(n).ok()?, Version::from_str(v).ok()?)))
            .collect(),
        direct,
        unbuilt,
        projects: RefCell::default(),
        missing: RefCell::default(),
        allow_pre: RefCell::default(),
        seen_order: RefCell::default(),
        unusable: RefCell::default(),
    };
    let solution = match pubgrub::resolve(&provider, PyPkg::Root, Version::new([0])) {
        Ok(s) => s,
        Err(PubGrubError::NoSolution(mut tree)) => {
            // A project no index has (a 404) is the reason, not a conflict.
            let missing = {
                let packages = tree.packages();
                provider
                    .missing
                    .borrow()
                    .iter()
                    .find(|(n, _)| packages.contains(&PyPkg::Dist((*n).clone())))
                    .map(|(n, e)| (n.clone(), e.clone()))
            };
            if let Some((name, source)) = missing {
                return Err(SolveError::Source {
                    name: name.to_string(),
                    source,
                });
            }
            tree.collapse_no_versions();
            let report = DefaultStringReporter::report(&tree)
                .replace("the requested packages 0 depends on", "you asked for")
                .replace(
                    "the requested packages 0 is forbidden",
                    "the request cannot be met",
                )
                .replace("the requested packages 0", "the request");
            // A requested version the index does not list at all is the
            // whole story, whatever else the tree says (a Python bound of a
            // newer release is beside the point).
            if let Some(report) = unlisted_request(&provider, target) {
                return Err(SolveError::NoSolution {
                    context: None,
                    target: target.describe(),
                    report,
                    hints: Vec::new(),
                });
            }
            let mut report = tidy_report(&report);
            let mut hints = Vec::new();
            let mut names: Vec<&PyPkg> = tree.packages().into_iter().collect();
            names.sort();
            // Versions left out for their metadata, each with its reason
            // (the reason's hint among the hints).
            for ((name, version), why) in provider.unusable.borrow().iter() {
                let involved = names.iter().any(|p| match p {
                    PyPkg::Dist(n) | PyPkg::Extra(n, _) => n == name,
                    PyPkg::Root => false,
                });
                if !involved {
                    continue;
                }
                let (text, hint) = match why.split_once("\nhint: ") {
                    Some((t, h)) => (t, Some(h)),
                    None => (why.as_str(), None),
                };
                report.push_str(&format!("\n{name} {version} cannot be used: {text}"));
                if let Some(h) = hint
                    && !hints.iter().any(|x| x == h)
                {
                    hints.push(h.to_string());
                }
            }
            for pkg in names {
                let PyPkg::Dist(name) = pkg else { continue };
                if let Some(p) = provider.projects.borrow().get(name) {
                    for (v, why) in p.skipped.iter().take(1) {
                        hints.push(format!("`{name}` {v} {why}"));
                    }
                }
            }
            return Err(SolveError::NoSolution {
                context: None,
                target: target.describe(),
                report,
                hints,
            });
        }
        Err(PubGrubError::ErrorChoosingVersion { package, source })
        | Err(PubGrubError::ErrorRetrievingDependencies {
            package, source, ..
        }) => {
            let name = match package {
                PyPkg::Dist(n) | PyPkg::Extra(n, _) => n.to_string(),
                PyPkg::Root => "root".into(),
            };
            return Err(SolveError::Source { name, source });
        }
        Err(e) => return Err(SolveError::Internal(e.to_string())),
    };
    let solution: Vec<(PyPkg, Version)> = solution.into_iter().collect();
    let mut edges = provider.edges(&solution);
    let mut out = Vec::new();
    for (name, u) in &provider.unbuilt {
        out.push(PinnedPackage {
            name: name.clone(),
            version: u.version.clone(),
            source: PinnedSource::Unbuilt(u.clone()),
            requested: requested_text.get(name).cloned(),
            required_by: Vec::new(),
            passed_over: Vec::new(),
        });
    }
    for (pkg, version) in solution {
        let PyPkg::Dist(name) = pkg else { continue };
        let source = if let Some(d) = provider.direct.get(&name) {
            PinnedSource::Direct(d.clone())
        } else if provider.chosen_installed(&name, &version) {
            PinnedSource::Installed
        } else {
            let project = provider
                .project(&name)
                .map_err(|source| SolveError::Source {
                    name: name.to_string(),
                    source,
                })?;
            match project.versions.iter().find(|c| c.version == version) {
                Some(c) => PinnedSource::Index(c.file.clone()),
                None => return Err(SolveError::Internal(format!("`{name}` {version} vanished"))),
            }
        };
        let passed_over = provider
            .unusable
            .borrow()
            .iter()
            .filter(|((n, v), _)| *n == name && *v > version)
            .map(|((_, v), why)| (v.clone(), why.clone()))
            .collect();
        out.push(PinnedPackage {
            requested: requested_text.get(&name).cloned(),
            required_by: edges.remove(&name).into_iter().flatten().collect(),
            passed_over,
            name,
            version: Some(version),
            source,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
