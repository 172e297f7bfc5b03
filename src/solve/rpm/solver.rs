//! What `dnf install`, `upgrade` and `remove` change, decided the way
//! libsolv (dnf's solver) decides it for the cases it meets in image
//! definitions:
//!
//! - jobs first: each command-line spec (name, `name.arch`, NEVRA forms,
//!   a capability, a file) picks its best candidate (best arch, highest
//!   EVR; a package some other package obsoletes gives way to that one);
//!   a spec already satisfied by an installed package does nothing;
//! - then every `Requires` of a package being installed, in rounds until
//!   nothing changes: satisfied by what is (to be) installed, else the
//!   provider libsolv's policy picks: names in alphabetical order, best
//!   arch, highest EVR, skipping candidates that conflict, are obsoleted,
//!   would be a downgrade, or need an installed package to change (libsolv
//!   keeps installed packages before it decides dependencies);
//! - rich dependencies (`or`, `and`, `if`, `unless`, with `else`);
//! - weak dependencies (`Recommends`, `Supplements`) when enabled, never
//!   failing the transaction;
//! - `Obsoletes` replace installed packages; a same-name package of the
//!   same arch (or a noarch/arch switch) is an upgrade.
//!
//! The result is checked as a whole (every requirement satisfied, no
//! conflict); a transaction this model cannot make consistent is an error
//! rather than a guess.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::rich::{Rich, parse_evr, parse_rich};
use super::{DepFlag, Dependency, Evr, InstalledRpm, RpmPackage};

/// Why a transaction cannot be decided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpmSolveError {
    #[error("no package matches `{0}`")]
    NoMatch(String),
    /// No package matches, and modular filtering hides some of that name.
    #[error("no package matches `{spec}`: dnf's modular filtering hides {why}")]
    Filtered { spec: String, why: String },
    #[error("`{0}` uses a glob, which imagelock does not expand yet")]
    Glob(String),
    #[error("nothing provides `{dep}` needed by {package}")]
    Unsatisfiable { package: String, dep: String },
    #[error("{package} conflicts with {with}")]
    Conflict { package: String, with: String },
    #[error("{package}: `{dep}`: {message}")]
    Rich {
        package: String,
        dep: String,
        message: String,
    },
    #[error(
        "removing {removed} leaves {candidates} unneeded; dnf removes such packages when its history database (`/var/lib/dnf/history.sqlite`) says they came in as dependencies, which imagelock does not read"
    )]
    CleanRequirements { removed: String, candidates: String },
    #[error(
        "the result is not consistent ({0}); dnf's solver would search further than imagelock's model of it"
    )]
    Inconsistent(String),
}

/// What a command asks dnf for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RpmRequest {
    Install(Vec<String>),
    /// `upgrade`/`update` of the named packages, or of all when empty.
    Upgrade(Vec<String>),
    Remove(Vec<String>),
}

/// Options of a dnf command that change what it resolves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpmSolveOptions {
    /// dnf's `$basearch` (`x86_64`, `aarch64`, ...).
    pub basearch: String,
    /// `install_weak_deps` (dnf's default is on).
    pub install_weak_deps: bool,
}

/// Why a package is installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RpmReason {
    /// Named on the command line.
    Job,
    /// An upgrade or an obsoleting package of `upgrade`.
    Upgrade,
    /// Required by the package named.
    Dependency(String),
    /// Recommended or supplemented.
    Weak(String),
}

/// One package the transaction installs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpmInstall {
    /// Index into the available packages given to [`solve`].
    pub available: usize,
    pub reason: RpmReason,
    /// NEVRAs of installed packages it upgrades or obsoletes.
    pub replaces: Vec<String>,
}

/// The outcome of a request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RpmTransaction {
    pub install: Vec<RpmInstall>,
    /// NEVRAs of installed packages removed (not replaced).
    pub remove: Vec<String>,
    /// NEVRAs of every package installed afterwards.
    pub after: BTreeSet<String>,
}

struct Pkg<'a> {
    name: &'a str,
    evr: &'a Evr,
    arch: &'a str,
    provides: &'a [Dependency],
    requires: &'a [Dependency],
    conflicts: &'a [Dependency],
    obsoletes: &'a [Dependency],
    recommends: &'a [Dependency],
    supplements: &'a [Dependency],
    files: &'a [String],
    installed: bool,
}

impl Pkg<'_> {
    fn nevra(&self) -> String {
        if self.arch.is_empty() {
            format!("{}-{}", self.name, self.evr)
        } else {
            format!("{}-{}.{}", self.name, self.evr, self.arch)
        }
    }

    fn satisfies(&self, dep: &Dependency) -> bool {
        if dep.name.starts_with('/') && self.files.contains(&dep.name) {
            return true;
        }
        if dep.name == self.name && dep.matched_by(&Some((DepFlag::Eq, self.evr.clone()))) {
            return true;
        }
        self.provides
            .iter()
            .any(|p| p.name == dep.name && dep.matched_by(&p.constraint))
    }

    /// Whether `dep` (an Obsoletes) names this package: by name and EVR.
    fn obsoleted_by(&self, dep: &Dependency) -> bool {
        dep.name == self.name && dep.matched_by(&Some((DepFlag::Eq, self.evr.clone())))
    }
}

/// Multilib arches a base arch installs beside its own.
fn arch_score(basearch: &str, arch: &str) -> Option<u8> {
    if arch == "noarch" || arch == basearch {
        return Some(0);
    }
    let secondary: &[&str] = match basearch {
        "x86_64" => &["athlon", "i686", "i586", "i486", "i386"],
        "ppc64" => &["ppc"],
        "s390x" => &["s390"],
        _ => &[],
    };
    secondary
        .iter()
        .position(|a| *a == arch)
        .map(|i| 1 + i as u8)
}

fn skipped(dep: &Dependency) -> bool {
    dep.name.starts_with("rpmlib(")
}

struct Solver<'a> {
    pkgs: Vec<Pkg<'a>>,
    n_installed: usize,
    by_name: HashMap<&'a str, Vec<usize>>,
    by_provide: HashMap<&'a str, Vec<usize>>,
    by_file: HashMap<&'a str, Vec<usize>>,
    basearch: &'a str,
    present: Vec<bool>,
    new: Vec<usize>,
    reasons: HashMap<usize, RpmReason>,
    replaced_by: HashMap<usize, Vec<usize>>,
}

impl<'a> Solver<'a> {
    fn new(installed: &'a [InstalledRpm], available: &'a [RpmPackage], basearch: &'a str) -> Self {
        let mut pkgs = Vec::new();
        for p in installed {
            pkgs.push(Pkg {
                name: &p.name,
                evr: &p.evr,
                arch: &p.arch,
                provides: &p.provides,
                requires: &p.requires,
                conflicts: &p.conflicts,
                obsoletes: &p.obsoletes,
                recommends: &[],
                supplements: &[],
                files: &p.files,
                installed: true,
            });
        }
        for p in available {
            pkgs.push(Pkg {
                name: &p.name,
                evr: &p.evr,
                arch: &p.arch,
                provides: &p.provides,
                requires: &p.requires,
                conflicts: &p.conflicts,
                obsoletes: &p.obsoletes,
                recommends: &p.recommends,
                supplements: &p.supplements,
                files: &p.files,
                installed: false,
            });
        }
        let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut by_provide: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut by_file: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, p) in pkgs.iter().enumerate() {
            by_name.entry(p.name).or_default().push(i);
            by_provide.entry(p.name).or_default().push(i);
            for d in p.provides {
                by_provide.entry(d.name.as_str()).or_default().push(i);
            }
            for f in p.files {
                by_file.entry(f.as_str()).or_default().push(i);
            }
        }
        for v in by_provide.values_mut() {
            v.dedup();
        }
        let n = pkgs.len();
        let mut present = vec![false; n];
        for p in present.iter_mut().take(installed.len()) {
            *p = true;
        }
        Solver {
            pkgs,
            n_installed: installed.len(),
            by_name,
            by_provide,
            by_file,
            basearch,
            present,
            new: Vec::new(),
            reasons: HashMap::new(),
            replaced_by: HashMap::new(),
        }
    }

    fn providers(&self, dep: &Dependency) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        for map in [&self.by_provide, &self.by_file] {
            if let Some(v) = map.get(dep.name.as_str()) {
                out.extend(v.iter().copied().filter(|i| self.pkgs[*i].satisfies(dep)));
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    fn sat(&self, dep: &Dependency) -> bool {
        self.providers(dep).into_iter().any(|i| self.present[i])
    }

    fn rich_sat(&self, r: &Rich) -> bool {
        match r {
            Rich::Dep(d) => self.sat(d),
            Rich::And(v) => v.iter().all(|x| self.rich_sat(x)),
            Rich::Or(v) => v.iter().any(|x| self.rich_sat(x)),
            Rich::If(a, c, e) => {
                if self.rich_sat(c) {
                    self.rich_sat(a)
                } else {
                    e.as_ref().is_none_or(|e| self.rich_sat(e))
                }
            }
            Rich::Unless(a, c, e) => {
                if !self.rich_sat(c) {
                    self.rich_sat(a)
                } else {
                    e.as_ref().is_none_or(|e| self.rich_sat(e))
                }
            }
            Rich::With(v) => (0..self.pkgs.len()).any(|i| {
                self.present[i]
                    && v.iter().all(|x| match x {
                        Rich::Dep(d) => self.pkgs[i].satisfies(d),
                        other => self.rich_sat(other),
                    })
            }),
            Rich::Without(a, b) => (0..self.pkgs.len()).any(|i| {
                self.present[i]
                    && matches!(&**a, Rich::Dep(d) if self.pkgs[i].satisfies(d))
                    && !matches!(&**b, Rich::Dep(d) if self.pkgs[i].satisfies(d))
            }),
        }
    }

    fn dep_sat(&self, owner: usize, dep: &Dependency) -> Result<bool, RpmSolveError> {
        if dep.is_rich() {
            Ok(self.rich_sat(&self.rich(owner, dep)?))
        } else {
            Ok(self.sat(dep))
        }
    }

    fn rich(&self, owner: usize, dep: &Dependency) -> Result<Rich, RpmSolveError> {
        parse_rich(&dep.name).map_err(|message| RpmSolveError::Rich {
            package: self.pkgs[owner].nevra(),
            dep: dep.name.clone(),
            message,
        })
    }

    /// Whether installing `a` would replace installed-or-new `b` (same name,
    /// same arch or a noarch switch).
    fn same_slot(&self, a: usize, b: usize) -> bool {
        let (a, b) = (&self.pkgs[a], &self.pkgs[b]);
        a.name == b.name && (a.arch == b.arch || a.arch == "noarch" || b.arch == "noarch")
    }

    fn conflict_with(&self, c: usize) -> Option<usize> {
        let p = &self.pkgs[c];
        (0..self.pkgs.len()).find(|&i| {
            self.present[i]
                && i != c
                && !self.same_slot(c, i)
                && (p.conflicts.iter().any(|d| self.pkgs[i].satisfies(d))
                    || self.pkgs[i].conflicts.iter().any(|d| p.satisfies(d)))
        })
    }

    /// Whether `c` (available) can be added without undoing a decision.
    fn installable(&self, c: usize) -> bool {
        let p = &self.pkgs[c];
        if p.installed || self.present[c] || arch_score(self.basearch, p.arch).is_none() {
            return false;
        }
        for &i in self.by_name.get(p.name).into_iter().flatten() {
            if !self.present[i] || !self.same_slot(c, i) {
                continue;
            }
            // Another version already chosen, or a downgrade.
            if !self.pkgs[i].installed || self.pkgs[i].evr.compare(p.evr).is_gt() {
                return false;
            }
        }
        let obsoleted = (0..self.pkgs.len()).any(|i| {
            self.present[i]
                && !self.pkgs[i].installed
                && self.pkgs[i].obsoletes.iter().any(|d| p.obsoleted_by(d))
        });
        !obsoleted && self.conflict_with(c).is_none()
    }

    /// Whether `c` needs an installed package to change for one of its
    /// plain requirements (or cannot have it at all).
    fn blocked(&self, c: usize) -> bool {
        let p = &self.pkgs[c];
        p.requires.iter().any(|r| {
            if skipped(r) || r.is_rich() || p.satisfies(r) || self.sat(r) {
                return false;
            }
            // libsolv prunes the providers to the best arch before it
            // looks further (a 32-bit twin does not rescue a candidate).
            let cands: Vec<usize> = self
                .providers(r)
                .into_iter()
                .filter(|&i| self.installable(i))
                .collect();
            let best = cands
                .iter()
                .filter_map(|&i| arch_score(self.basearch, self.pkgs[i].arch))
                .min();
            !cands.into_iter().any(|i| {
                arch_score(self.basearch, self.pkgs[i].arch) == best
                    && !self
                        .by_name
                        .get(self.pkgs[i].name)
                        .into_iter()
                        .flatten()
                        .any(|&j| self.pkgs[j].installed && self.present[j] && self.same_slot(i, j))
            })
        })
    }

    /// libsolv's choice among candidates: alphabetical by name, then best
    /// arch, then highest EVR; candidates that need no change to installed
    /// packages first.
    fn pick(&self, mut cands: Vec<usize>) -> Option<usize> {
        cands.retain(|&c| self.installable(c));
        cands.sort_by(|&a, &b| {
            let (pa, pb) = (&self.pkgs[a], &self.pkgs[b]);
            pa.name
                .cmp(pb.name)
                .then_with(|| {
                    arch_score(self.basearch, pa.arch).cmp(&arch_score(self.basearch, pb.arch))
                })
                .then_with(|| pb.evr.compare(pa.evr))
        });
        cands
            .iter()
            .copied()
            .find(|&c| !self.blocked(c))
            .or_else(|| cands.first().copied())
    }

    fn leaves<'r>(r: &'r Rich, out: &mut Vec<&'r Dependency>) -> bool {
        match r {
            Rich::Dep(d) => {
                out.push(d);
                true
            }
            Rich::Or(v) => v.iter().all(|x| Self::leaves(x, out)),
            _ => false,
        }
    }

    /// Packages to add so that `r` holds; empty when it cannot.
    fn fulfil(
        &self,
        owner: usize,
        dep: &Dependency,
        r: &Rich,
    ) -> Result<Vec<usize>, RpmSolveError> {
        let unsupported = |what: &str| RpmSolveError::Rich {
            package: self.pkgs[owner].nevra(),
            dep: dep.name.clone(),
            message: format!("imagelock does not resolve `{what}` terms yet"),
        };
        if self.rich_sat(r) {
            return Ok(vec![]);
        }
        match r {
            Rich::Dep(d) => Ok(self.pick(self.providers(d)).into_iter().collect()),
            Rich::Or(_) => {
                let mut leaves = Vec::new();
                if !Self::leaves(r, &mut leaves) {
                    return Err(unsupported("or` of nested `and/if"));
                }
                let cands = leaves.iter().flat_map(|d| self.providers(d)).collect();
                Ok(self.pick(cands).into_iter().collect())
            }
            Rich::And(v) => {
                let mut out = Vec::new();
                for x in v {
                    if !self.rich_sat(x) {
                        let got = self.fulfil(owner, dep, x)?;
                        if got.is_empty() {
                            return Ok(vec![]);
                        }
                        out.extend(got);
                    }
                }
                Ok(out)
            }
            Rich::If(a, c, e) => {
                if self.rich_sat(c) {
                    self.fulfil(owner, dep, a)
                } else {
                    match e {
                        Some(e) => self.fulfil(owner, dep, e),
                        None => Ok(vec![]),
                    }
                }
            }
            Rich::Unless(a, c, e) => {
                if !self.rich_sat(c) {
                    self.fulfil(owner, dep, a)
                } else {
                    match e {
                        Some(e) => self.fulfil(owner, dep, e),
                        None => Ok(vec![]),
                    }
                }
            }
            Rich::With(_) => Err(unsupported("with")),
            Rich::Without(..) => Err(unsupported("without")),
        }
    }

    fn add(&mut self, c: usize, reason: RpmReason) {
        self.present[c] = true;
        self.new.push(c);
        self.reasons.insert(c, reason);
        let mut replaced = Vec::new();
        for i in 0..self.n_installed {
            if !self.present[i] {
                continue;
            }
            let slot = self.same_slot(c, i);
            let obsoleted = self.pkgs[c]
                .obsoletes
                .iter()
                .any(|d| self.pkgs[i].obsoleted_by(d));
            if slot || obsoleted {
                self.present[i] = false;
                replaced.push(i);
            }
        }
        self.replaced_by.insert(c, replaced);
    }

    fn requires_round(&mut self) -> Result<bool, RpmSolveError> {
        let mut changed = false;
        let mut k = 0;
        while k < self.new.len() {
            let i = self.new[k];
            k += 1;
            if !self.present[i] {
                continue;
            }
            for dep in self.pkgs[i].requires {
                if skipped(dep) || self.dep_sat(i, dep)? {
                    continue;
                }
                let picks = if dep.is_rich() {
                    let r = self.rich(i, dep)?;
                    self.fulfil(i, dep, &r)?
                } else {
                    self.pick(self.providers(dep)).into_iter().collect()
                };
                if picks.is_empty() {
                    return Err(RpmSolveError::Unsatisfiable {
                        package: self.pkgs[i].nevra(),
                        dep: dep.to_string(),
                    });
                }
                let who = self.pkgs[i].nevra();
                for p in picks {
                    self.add(p, RpmReason::Dependency(who.clone()));
                }
                changed = true;
            }
        }
        Ok(changed)
    }

    fn weak_round(&mut self, tried: &mut HashSet<(usize, usize)>) -> Result<bool, RpmSolveError> {
        let mut changed = false;
        for k in 0..self.new.len() {
            let i = self.new[k];
            if !self.present[i] {
                continue;
            }
            for (n, dep) in self.pkgs[i].recommends.iter().enumerate() {
                if !tried.insert((i, n)) || self.dep_sat(i, dep)? {
                    continue;
                }
                let picks = if dep.is_rich() {
                    let r = self.rich(i, dep)?;
                    self.fulfil(i, dep, &r).unwrap_or_default()
                } else {
                    self.pick(self.providers(dep)).into_iter().collect()
                };
                // A weak dependency is skipped when it cannot be had as is.
                if picks.iter().any(|&p| self.blocked(p)) {
                    continue;
                }
                let who = self.pkgs[i].nevra();
                for p in picks {
                    self.add(p, RpmReason::Weak(who.clone()));
                    changed = true;
                }
            }
        }
        // Supplements: packages that ask to come along with a new package.
        let mut names: Vec<&str> = Vec::new();
        for i in self.n_installed..self.pkgs.len() {
            if !self.pkgs[i].supplements.is_empty() && !names.contains(&self.pkgs[i].name) {
                names.push(self.pkgs[i].name);
            }
        }
        names.sort_unstable();
        for name in names {
            if self.by_name[name].iter().any(|&i| self.present[i]) {
                continue;
            }
            let cands: Vec<usize> = self.by_name[name]
                .iter()
                .copied()
                .filter(|&c| {
                    self.pkgs[c].supplements.iter().any(|d| {
                        self.new
                            .iter()
                            .any(|&n| self.present[n] && self.pkgs[n].satisfies(d))
                    })
                })
                .collect();
            if let Some(c) = self.pick(cands).filter(|&c| !self.blocked(c)) {
                let who = self.pkgs[c]
                    .supplements
                    .iter()
                    .find_map(|d| {
                        self.new
                            .iter()
                            .find(|&&n| self.present[n] && self.pkgs[n].satisfies(d))
                    })
                    .map(|&n| self.pkgs[n].nevra())
                    .unwrap_or_default();
                self.add(c, RpmReason::Weak(who));
                changed = true;
            }
        }
        Ok(changed)
    }

    /// The packages a command-line spec names, the way dnf reads it.
    fn match_spec(&self, spec: &str) -> Result<Vec<usize>, RpmSolveError> {
        if spec.contains(['*', '?', '[']) {
            return Err(RpmSolveError::Glob(spec.to_string()));
        }
        if spec.starts_with('/') {
            return Ok(self.providers(&Dependency::unversioned(spec)));
        }
        let named = |n: &str| -> Vec<usize> { self.by_name.get(n).cloned().unwrap_or_default() };
        let m = named(spec);
        if !m.is_empty() {
            return Ok(m);
        }
        let known_arch = |a: &str| a == "noarch" || arch_score(self.basearch, a).is_some();
        // name.arch
        if let Some((n, a)) = spec.rsplit_once('.')
            && known_arch(a)
        {
            let m: Vec<usize> = named(n)
                .into_iter()
                .filter(|&i| self.pkgs[i].arch == a)
                .collect();
            if !m.is_empty() {
                return Ok(m);
            }
        }
        // name-[epoch:]version-release[.arch], then name-[epoch:]version.
        let evr_match = |i: usize, want: &Evr, has_epoch: bool| {
            let e = self.pkgs[i].evr;
            (!has_epoch || e.epoch == want.epoch)
                && e.version == want.version
                && (want.release.is_empty() || e.release == want.release)
        };
        let (body, arch) = match spec.rsplit_once('.') {
            Some((b, a)) if known_arch(a) => (b, Some(a)),
            _ => (spec, None),
        };
        for (text, arch) in [(body, arch), (spec, None)] {
            if let Some((nv, rel)) = text.rsplit_once('-')
                && let Some((n, v)) = nv.rsplit_once('-')
            {
                let evr = parse_evr(&format!("{v}-{rel}"));
                let m: Vec<usize> = named(n)
                    .into_iter()
                    .filter(|&i| {
                        evr_match(i, &evr, v.contains(':'))
                            && arch.is_none_or(|a| self.pkgs[i].arch == a)
                    })
                    .collect();
                if !m.is_empty() {
                    return Ok(m);
                }
            }
        }
        if let Some((n, v)) = spec.rsplit_once('-') {
            let evr = parse_evr(v);
            let m: Vec<usize> = named(n)
                .into_iter()
                .filter(|&i| evr_match(i, &evr, v.contains(':')))
                .collect();
            if !m.is_empty() {
                return Ok(m);
            }
        }
        let m = self.providers(&Dependency::unversioned(spec));
        if m.is_empty() {
            return Err(RpmSolveError::NoMatch(spec.to_string()));
        }
        Ok(m)
    }

    fn install_job(&mut self, spec: &str) -> Result<(), RpmSolveError> {
        let m = self.match_spec(spec)?;
        // Already installed: dnf says so and does nothing.
        if m.iter().any(|&i| self.pkgs[i].installed && self.present[i]) {
            return Ok(());
        }
        let obsoleted_by_installed = m.iter().any(|&c| {
            (0..self.n_installed).any(|i| {
                self.present[i]
                    && self.pkgs[i]
                        .obsoletes
                        .iter()
                        .any(|d| self.pkgs[c].obsoleted_by(d))
            })
        });
        if obsoleted_by_installed || m.iter().any(|&i| self.present[i]) {
            return Ok(());
        }
        let mut cands: Vec<usize> = m
            .into_iter()
            .filter(|&i| arch_score(self.basearch, self.pkgs[i].arch).is_some())
            .collect();
        if cands.is_empty() {
            return Err(RpmSolveError::NoMatch(spec.to_string()));
        }
        // The best of each name, then the first name.
        cands.sort_by(|&a, &b| {
            let (pa, pb) = (&self.pkgs[a], &self.pkgs[b]);
            pa.name
                .cmp(pb.name)
                .then_with(|| {
                    arch_score(self.basearch, pa.arch).cmp(&arch_score(self.basearch, pb.arch))
                })
                .then_with(|| pb.evr.compare(pa.evr))
        });
        let mut c = cands[0];
        // A package obsoleted by another available one: dnf installs that.
        let obsoleter = (self.n_installed..self.pkgs.len())
            .filter(|&o| {
                o != c
                    && arch_score(self.basearch, self.pkgs[o].arch).is_some()
                    && self.pkgs[o]
                        .obsoletes
                        .iter()
                        .any(|d| self.pkgs[c].obsoleted_by(d))
            })
            .min_by(|&a, &b| {
                let (pa, pb) = (&self.pkgs[a], &self.pkgs[b]);
                pa.name.cmp(pb.name).then_with(|| pb.evr.compare(pa.evr))
            });
        if let Some(o) = obsoleter {
            c = o;
        }
        if let Some(w) = self.conflict_with(c) {
            return Err(RpmSolveError::Conflict {
                package: self.pkgs[c].nevra(),
                with: self.pkgs[w].nevra(),
            });
        }
        self.add(c, RpmReason::Job);
        Ok(())
    }

    fn upgrade_job(&mut self, names: &[String]) -> Result<(), RpmSolveError> {
        let targets: Vec<usize> = if names.is_empty() {
            (0..self.n_installed).filter(|&i| self.present[i]).collect()
        } else {
            let mut t = Vec::new();
            for n in names {
                let m: Vec<usize> = self
                    .match_spec(n)?
                    .into_iter()
                    .filter(|&i| self.pkgs[i].installed && self.present[i])
                    .collect();
                if m.is_empty() {
                    return Err(RpmSolveError::NoMatch(n.clone()));
                }
                t.extend(m);
            }
            t
        };
        // Packages obsoleting an installed one come in its place.
        for i in self.n_installed..self.pkgs.len() {
            let obs = targets.iter().any(|&t| {
                self.present[t]
                    && self.pkgs[i]
                        .obsoletes
                        .iter()
                        .any(|d| self.pkgs[t].obsoleted_by(d))
            });
            if obs && self.installable(i) {
                let best = self.by_name[self.pkgs[i].name]
                    .iter()
                    .copied()
                    .filter(|&j| self.installable(j) && self.same_slot(i, j))
                    .max_by(|&a, &b| self.pkgs[a].evr.compare(self.pkgs[b].evr));
                if best == Some(i) {
                    self.add(i, RpmReason::Upgrade);
                }
            }
        }
        for t in targets {
            if !self.present[t] || self.pkgs[t].arch.is_empty() {
                continue;
            }
            let best = self.by_name[self.pkgs[t].name]
                .iter()
                .copied()
                .filter(|&j| {
                    !self.pkgs[j].installed
                        && self.same_slot(t, j)
                        && self.pkgs[j].evr.compare(self.pkgs[t].evr).is_gt()
                        && self.installable(j)
                })
                .max_by(|&a, &b| self.pkgs[a].evr.compare(self.pkgs[b].evr));
            if let Some(b) = best {
                self.add(b, RpmReason::Upgrade);
            }
        }
        Ok(())
    }

    fn remove_job(&mut self, specs: &[String]) -> Result<Vec<usize>, RpmSolveError> {
        let mut removed = Vec::new();
        for s in specs {
            let m: Vec<usize> = self
                .match_spec(s)
                .unwrap_or_default()
                .into_iter()
                .filter(|&i| self.pkgs[i].installed && self.present[i])
                .collect();
            if m.is_empty() {
                return Err(RpmSolveError::NoMatch(s.clone()));
            }
            for i in m {
                self.present[i] = false;
                removed.push(i);
            }
        }
        // Installed packages that need what went away go too.
        loop {
            let mut more = Vec::new();
            for i in 0..self.n_installed {
                if !self.present[i] {
                    continue;
                }
                for d in self.pkgs[i].requires {
                    if !skipped(d) && !self.dep_sat(i, d)? {
                        more.push(i);
                        break;
                    }
                }
            }
            if more.is_empty() {
                break;
            }
            for i in more {
                self.present[i] = false;
                removed.push(i);
            }
        }
        // What only the removed packages needed: dnf may remove it too.
        let mut orphans = BTreeSet::new();
        for &r in &removed {
            for d in self.pkgs[r].requires {
                if skipped(d) || d.is_rich() {
                    continue;
                }
                for p in self.providers(d) {
                    if !self.present[p] || !self.pkgs[p].installed {
                        continue;
                    }
                    let needed = (0..self.n_installed).any(|i| {
                        self.present[i]
                            && i != p
                            && self.pkgs[i]
                                .requires
                                .iter()
                                .any(|q| self.pkgs[p].satisfies(q))
                    });
                    if !needed {
                        orphans.insert(self.pkgs[p].nevra());
                    }
                }
            }
        }
        if !orphans.is_empty() {
            return Err(RpmSolveError::CleanRequirements {
                removed: removed
                    .iter()
                    .map(|&i| self.pkgs[i].nevra())
                    .collect::<Vec<_>>()
                    .join(", "),
                candidates: orphans.into_iter().collect::<Vec<_>>().join(", "),
            });
        }
        Ok(removed)
    }

    /// The whole result must hold: requirements of what is installed
    /// afterwards (those the base already had unmet excepted) and no
    /// conflicts among the new packages.
    fn check(&self, unmet_before: &HashSet<(usize, usize)>) -> Result<(), RpmSolveError> {
        for i in 0..self.pkgs.len() {
            if !self.present[i] {
                continue;
            }
            for (n, d) in self.pkgs[i].requires.iter().enumerate() {
                if skipped(d) || unmet_before.contains(&(i, n)) {
                    continue;
                }
                if !self.dep_sat(i, d)? {
                    return Err(RpmSolveError::Inconsistent(format!(
                        "{} needs `{d}`",
                        self.pkgs[i].nevra()
                    )));
                }
            }
        }
        for &c in &self.new {
            if self.present[c]
                && let Some(w) = self.conflict_with(c)
            {
                return Err(RpmSolveError::Conflict {
                    package: self.pkgs[c].nevra(),
                    with: self.pkgs[w].nevra(),
                });
            }
        }
        Ok(())
    }
}

/// Decides what `request` changes on top of `installed` (an image's rpm
/// database) with `available` (the enabled repositories' packages, in
/// repository order).
pub fn solve(
    installed: &[InstalledRpm],
    available: &[RpmPackage],
    request: &RpmRequest,
    options: &RpmSolveOptions,
) -> Result<RpmTransaction, RpmSolveError> {
    let mut s = Solver::new(installed, available, &options.basearch);
    let mut unmet_before = HashSet::new();
    for i in 0..s.n_installed {
        for (n, d) in s.pkgs[i].requires.iter().enumerate() {
            if !skipped(d) && !s.dep_sat(i, d)? {
                unmet_before.insert((i, n));
            }
        }
    }
    let mut removed = Vec::new();
    match request {
        RpmRequest::Install(specs) => {
            for spec in specs {
                s.install_job(spec)?;
            }
        }
        RpmRequest::Upgrade(names) => s.upgrade_job(names)?,
        RpmRequest::Remove(specs) => removed = s.remove_job(specs)?,
    }
    let mut tried = HashSet::new();
    loop {
        while s.requires_round()? {}
        if !options.install_weak_deps || !s.weak_round(&mut tried)? {
            break;
        }
    }
    s.check(&unmet_before)?;
    let n = s.n_installed;
    let install = s
        .new
        .iter()
        .filter(|&&c| s.present[c])
        .map(|&c| RpmInstall {
            available: c - n,
            reason: s.reasons[&c].clone(),
            replaces: s.replaced_by[&c]
                .iter()
                .map(|&i| s.pkgs[i].nevra())
                .collect(),
        })
        .collect();
    let after = (0..s.pkgs.len())
        .filter(|&i| s.present[i])
        .map(|i| s.pkgs[i].nevra())
        .collect();
    Ok(RpmTransaction {
        install,
        remove: removed.iter().map(|&i| s.pkgs[i].nevra()).collect(),
        after,
    })
}
