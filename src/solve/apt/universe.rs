//! The package universe apt builds its cache from: the installed state
//! (dpkg `status`) and the `Packages` indexes, with apt's pin priorities and
//! candidate versions (`apt-pkg/policy.cc`), and dependency matching with
//! virtual packages and Multi-Arch.

use std::collections::HashMap;

use super::control::{BinaryPackage, MultiArch, Relation, compare_versions};
use super::sources::{AptOptions, Pin, PinTarget};

/// What apt knows about one package file (one `Packages` index, or the
/// status file): the Release fields pins match against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageFileInfo {
    pub origin: String,
    pub label: String,
    /// `Suite:` (apt's "archive", pin key `a`).
    pub archive: String,
    pub codename: String,
    pub version: String,
    pub component: String,
    pub architecture: String,
    /// The host of the archive URI (pin type `origin`).
    pub site: String,
    pub not_automatic: bool,
    pub but_automatic_upgrades: bool,
    /// The archive URI and the index path, for records and messages.
    pub uri: String,
    pub index: String,
}

/// One fetched and checked `Packages` index.
#[derive(Debug, Clone)]
pub struct PackageIndex {
    pub file: PackageFileInfo,
    pub packages: Vec<BinaryPackage>,
}

pub type PkgId = usize;
pub type VerId = usize;

/// A package as apt sees it: a name and an architecture (`all` packages
/// live under the native architecture).
#[derive(Debug, Clone)]
pub struct Pkg {
    pub name: String,
    pub arch: String,
    /// Newest first.
    pub versions: Vec<VerId>,
    pub current: Option<VerId>,
    pub candidate: Option<VerId>,
}

/// One version of a package and the files that offer it.
#[derive(Debug, Clone)]
pub struct Ver {
    pub pkg: PkgId,
    pub data: BinaryPackage,
    /// Indexes into [`Universe::files`]; the status file is file 0.
    pub files: Vec<usize>,
}

/// A pin or option apt would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UniverseError {
    #[error(
        "{location}: the pattern `{pattern}` is a regular expression, which imagelock does not evaluate\nhint: write the package names or a glob (`libfoo*`)"
    )]
    RegexPin { location: String, pattern: String },
    #[error(
        "the value `{0}` is invalid for APT::Default-Release as such a release is not available in the sources\nhint: name a suite or codename the sources offer"
    )]
    DefaultRelease(String),
}

/// The cache: packages, versions, files, priorities.
#[derive(Debug, Clone)]
pub struct Universe {
    pub native: String,
    /// Native first, then foreign architectures in configured order.
    pub archs: Vec<String>,
    pub files: Vec<PackageFileInfo>,
    pub file_priority: Vec<i32>,
    pub pkgs: Vec<Pkg>,
    pub vers: Vec<Ver>,
    /// Name → its packages, one per architecture (looked up without
    /// allocating: resolution asks this for every relation it follows).
    index: HashMap<String, Vec<PkgId>>,
    /// Virtual name → (providing version, provided version).
    provides: HashMap<String, Vec<(VerId, Option<String>)>>,
    version_pins: HashMap<VerId, i32>,
    /// Source package name → binary versions built from it.
    sources: HashMap<String, Vec<VerId>>,
    base_priority: Vec<i32>,
    pins: Vec<Pin>,
    pub options: AptOptions,
}

/// `*`/`?` glob match (apt's fnmatch for pins).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some((b'*', rest)) => (0..=t.len()).any(|i| go(rest, &t[i..])),
            Some((b'?', rest)) => !t.is_empty() && go(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && go(rest, &t[1..]),
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

fn file_matches(target: &PinTarget, f: &PackageFileInfo) -> bool {
    match target {
        PinTarget::Release(keys) => keys.iter().all(|(k, v)| {
            let field = match k {
                'a' => &f.archive,
                'n' => &f.codename,
                'v' => &f.version,
                'o' => &f.origin,
                'l' => &f.label,
                'c' => &f.component,
                'b' => &f.architecture,
                _ => return false,
            };
            !field.is_empty() && glob_match(v, field)
                || (*k == 'v' && !field.is_empty() && field.starts_with(v.as_str()))
        }),
        PinTarget::Origin(host) => {
            !f.site.is_empty() && glob_match(host, &f.site) || host.is_empty() && f.site.is_empty()
        }
        PinTarget::Version(_) => false,
    }
}

impl Universe {
    /// Builds the cache. `installed` is dpkg's status (entries that are not
    /// present are ignored), `indexes` the checked `Packages` files in
    /// sources order, `pins` the preferences in apt's reading order.
    pub fn new(
        native: &str,
        installed: &[BinaryPackage],
        indexes: Vec<PackageIndex>,
        pins: &[Pin],
        options: AptOptions,
    ) -> Result<Self, UniverseError> {
        let mut archs = vec![native.to_string()];
        for a in &options.foreign_architectures {
            if !archs.contains(a) {
                archs.push(a.clone());
            }
        }
        let mut u = Universe {
            native: native.to_string(),
            archs,
            files: vec![PackageFileInfo {
                archive: "now".into(),
                index: "/var/lib/dpkg/status".into(),
                ..Default::default()
            }],
            file_priority: vec![100],
            pkgs: Vec::new(),
            vers: Vec::new(),
            index: HashMap::new(),
            provides: HashMap::new(),
            version_pins: HashMap::new(),
            sources: HashMap::new(),
            base_priority: Vec::new(),
            pins: pins.to_vec(),
            options,
        };
        let mut by_version: HashMap<(PkgId, String), VerId> = HashMap::new();
        for p in installed.iter().filter(|p| p.is_present()) {
            if let Some(v) = u.add(p.clone(), 0, &mut by_version) {
                let pkg = u.vers[v].pkg;
                u.pkgs[pkg].current = Some(v);
            }
        }
        for index in indexes {
            let file = u.files.len();
            u.file_priority.push(
                if index.file.not_automatic && index.file.but_automatic_upgrades {
                    100
                } else if index.file.not_automatic {
                    1
                } else {
                    500
                },
            );
            u.files.push(index.file);
            for p in index.packages {
                u.add(p, file, &mut by_version);
            }
        }
        for pkg in &mut u.pkgs {
            let vers = &u.vers;
            pkg.versions
                .sort_by(|a, b| compare_versions(&vers[*b].data.version, &vers[*a].data.version));
        }
        for (id, v) in u.vers.iter().enumerate() {
            u.sources.entry(v.data.source.clone()).or_default().push(id);
            let arch = &u.pkgs[v.pkg].arch;
            for prov in &v.data.provides {
                if prov
                    .arch
                    .as_deref()
                    .is_some_and(|a| a != "any" && a != arch)
                {
                    continue;
                }
                u.provides
                    .entry(prov.name.clone())
                    .or_default()
                    .push((id, prov.version.as_ref().map(|(_, v)| v.clone())));
            }
        }
        u.base_priority = u.file_priority.clone();
        u.apply_policy()?;
        Ok(u)
    }

    /// The same universe under other options (`-t` changes priorities).
    pub fn rebuild(&self, options: AptOptions) -> Result<Universe, UniverseError> {
        let mut u = self.clone();
        u.options = options;
        u.apply_policy()?;
        Ok(u)
    }

    fn apply_policy(&mut self) -> Result<(), UniverseError> {
        self.file_priority = self.base_priority.clone();
        self.version_pins.clear();
        let pins = std::mem::take(&mut self.pins);
        let applied = self.apply_pins(&pins);
        self.pins = pins;
        applied?;
        for p in 0..self.pkgs.len() {
            self.pkgs[p].candidate = self.policy_candidate(p);
        }
        Ok(())
    }

    fn add(
        &mut self,
        data: BinaryPackage,
        file: usize,
        seen: &mut HashMap<(PkgId, String), VerId>,
    ) -> Option<VerId> {
        let arch = if data.arch == "all" {
            self.native.clone()
        } else if self.archs.contains(&data.arch) {
            data.arch.clone()
        } else {
            return None;
        };
        let pkg = match self.find(&data.name, &arch) {
            Some(p) => p,
            None => {
                self.pkgs.push(Pkg {
                    name: data.name.clone(),
                    arch,
                    versions: Vec::new(),
                    current: None,
                    candidate: None,
                });
                let id = self.pkgs.len() - 1;
                match self.index.get_mut(data.name.as_str()) {
                    Some(ids) => ids.push(id),
                    None => {
                        self.index.insert(data.name.clone(), vec![id]);
                    }
                }
                id
            }
        };
        if let Some(&v) = seen.get(&(pkg, data.version.clone())) {
            let ver = &mut self.vers[v];
            if !ver.files.contains(&file) {
                ver.files.push(file);
            }
            // The status file lacks Filename/SHA256: take them from the index.
            if ver.data.filename.is_empty() && !data.filename.is_empty() {
                let state = std::mem::take(&mut ver.data.state);
                ver.data = data;
                ver.data.state = state;
            }
            return Some(v);
        }
        seen.insert((pkg, data.version.clone()), self.vers.len());
        self.vers.push(Ver {
            pkg,
            data,
            files: vec![file],
        });
        self.pkgs[pkg].versions.push(self.vers.len() - 1);
        Some(self.vers.len() - 1)
    }

    // `fixed`, `files` and `file_priority` share one index.
    #[allow(clippy::needless_range_loop)]
    fn apply_pins(&mut self, pins: &[Pin]) -> Result<(), UniverseError> {
        for pin in pins {
            for pattern in &pin.packages {
                if pattern.len() > 1 && pattern.starts_with('/') && pattern.ends_with('/') {
                    return Err(UniverseError::RegexPin {
                        location: pin.location.clone(),
                        pattern: pattern.clone(),
                    });
                }
            }
        }
        // Per-file defaults: APT::Default-Release first, then `Package: *`
        // pins; the first that matches a file fixes its priority.
        let mut fixed = vec![false; self.files.len()];
        fixed[0] = true;
        if let Some(rel) = self.options.default_release.clone() {
            let target = PinTarget::Release(vec![('a', rel.clone())]);
            let by_codename = PinTarget::Release(vec![('n', rel.clone())]);
            let by_version = PinTarget::Release(vec![('v', rel.clone())]);
            let mut found = rel == "now";
            for f in 1..self.files.len() {
                if file_matches(&target, &self.files[f])
                    || file_matches(&by_codename, &self.files[f])
                    || file_matches(&by_version, &self.files[f])
                {
                    self.file_priority[f] = 990;
                    fixed[f] = true;
                    found = true;
                }
            }
            if !found {
                return Err(UniverseError::DefaultRelease(rel));
            }
        }
        for pin in pins.iter().filter(|p| p.packages.iter().any(|n| n == "*")) {
            for f in 1..self.files.len() {
                if (!fixed[f] || pin.priority < -32000) && file_matches(&pin.target, &self.files[f])
                {
                    self.file_priority[f] = pin.priority;
                    fixed[f] = true;
                }
            }
        }
        // Per-package pins: the first that matches a version wins.
        for pin in pins.iter().filter(|p| !p.packages.iter().any(|n| n == "*")) {
            for p in 0..self.pkgs.len() {
                let name = &self.pkgs[p].name;
                let full = format!("{name}:{}", self.pkgs[p].arch);
                if !pin
                    .packages
                    .iter()
                    .any(|pat| glob_match(pat, name) || glob_match(pat, &full))
                {
                    continue;
                }
                for &v in &self.pkgs[p].versions {
                    if self.version_pins.contains_key(&v) {
                        continue;
                    }
                    let ver = &self.vers[v];
                    let hit = match &pin.target {
                        PinTarget::Version(glob) => {
                            glob_match(glob, &ver.data.version)
                                || ver.data.version.starts_with(glob.trim_end_matches('*'))
                                    && glob.ends_with('*')
                        }
                        other => ver
                            .files
                            .iter()
                            .any(|&f| f != 0 && file_matches(other, &self.files[f])),
                    };
                    if hit {
                        self.version_pins.insert(v, pin.priority);
                    }
                }
            }
        }
        Ok(())
    }

    /// apt's `pkgPolicy::GetPriority(Ver)`.
    pub fn priority(&self, v: VerId) -> i32 {
        if let Some(&p) = self.version_pins.get(&v) {
            return p;
        }
        let ver = &self.vers[v];
        let current = self.pkgs[ver.pkg].current;
        ver.files
            .iter()
            .map(|&f| {
                if f == 0 && current != Some(v) {
                    -1
                } else {
                    self.file_priority[f]
                }
            })
            .max()
            .unwrap_or(0)
    }

    /// apt's `pkgPolicy::GetCandidateVer`: the first version (newest first)
    /// of the highest priority, never a downgrade below priority 1000.
    fn policy_candidate(&self, p: PkgId) -> Option<VerId> {
        let pkg = &self.pkgs[p];
        let mut best: Option<(VerId, i32)> = None;
        for &v in &pkg.versions {
            let prio = self.priority(v);
            if prio == 0 || best.is_some_and(|(_, b)| prio <= b) || best.is_none() && prio <= -1 {
                continue;
            }
            if let Some(cur) = pkg.current
                && prio < 1000
                && compare_versions(&self.vers[v].data.version, &self.vers[cur].data.version)
                    .is_lt()
            {
                continue;
            }
            best = Some((v, prio));
        }
        best.map(|(v, _)| v)
    }

    pub fn find(&self, name: &str, arch: &str) -> Option<PkgId> {
        self.index
            .get(name)?
            .iter()
            .copied()
            .find(|p| self.pkgs[*p].arch == arch)
    }

    /// `name:arch` as apt prints it (architecture only when foreign).
    pub fn full_name(&self, p: PkgId) -> String {
        let pkg = &self.pkgs[p];
        if pkg.arch == self.native {
            pkg.name.clone()
        } else {
            format!("{}:{}", pkg.name, pkg.arch)
        }
    }

    /// Binary versions built from a source package.
    pub fn by_source(&self, source: &str) -> &[VerId] {
        self.sources.get(source).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Providers of a virtual name (every version that provides it).
    pub fn providers(&self, name: &str) -> &[(VerId, Option<String>)] {
        self.provides.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The versions that satisfy `rel` written in a package of
    /// architecture `from_arch`, choosing per package the version `pick`
    /// returns (candidate, to-be-installed, current…). Direct matches come
    /// first, then providers.
    pub fn satisfiers(
        &self,
        rel: &Relation,
        from_arch: &str,
        pick: &dyn Fn(PkgId) -> Option<VerId>,
    ) -> Vec<VerId> {
        let mut out = Vec::new();
        let wanted_arch = match rel.arch.as_deref() {
            None => Some(from_arch),
            Some("native") => Some(self.native.as_str()),
            Some("any") => None,
            Some(a) => Some(a),
        };
        for arch in &self.archs {
            let Some(p) = self.find(&rel.name, arch) else {
                continue;
            };
            let Some(v) = pick(p) else { continue };
            let data = &self.vers[v].data;
            let arch_ok = match rel.arch.as_deref() {
                Some("any") => {
                    arch == from_arch
                        || matches!(data.multi_arch, MultiArch::Allowed | MultiArch::Foreign)
                        || data.arch == "all"
                }
                _ => {
                    wanted_arch == Some(arch.as_str())
                        || data.multi_arch == MultiArch::Foreign
                        || (data.arch == "all" && rel.arch.is_none())
                }
            };
            let version_ok = rel
                .version
                .as_ref()
                .is_none_or(|(op, want)| op.matches(&data.version, want));
            if arch_ok && version_ok {
                out.push(v);
            }
        }
        for (v, provided) in self.providers(&rel.name) {
            let ver = &self.vers[*v];
            if pick(ver.pkg) != Some(*v) {
                continue;
            }
            let arch = &self.pkgs[ver.pkg].arch;
            let arch_ok = match wanted_arch {
                None => true,
                Some(a) => a == arch || ver.data.multi_arch == MultiArch::Foreign,
            };
            let version_ok = match (&rel.version, provided) {
                (None, _) => true,
                (Some((op, want)), Some(have)) => op.matches(have, want),
                (Some(_), None) => false,
            };
            if arch_ok && version_ok && !out.contains(v) {
                out.push(*v);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("libcurl*", "libcurl4"));
        assert!(glob_match("7.88*", "7.88.1-10"));
        assert!(!glob_match("lib?", "lib"));
        assert!(glob_match("*", ""));
    }
}
