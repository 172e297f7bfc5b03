//! apt's classic marking, ported from `apt-pkg/depcache.cc` (apt 2.6,
//! Debian 12) and `apt-private/private-install.cc`: command-line packages
//! are marked first, then each is auto-installed depth first, dependency
//! by dependency in control-file order (Pre-Depends, Depends, then
//! Recommends), each or-group satisfied by the first alternative that can
//! be installed, installed providers preferred.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashSet};

use super::control::{MultiArch, OrGroup, Relation};
use super::universe::{PkgId, Universe, VerId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Keep,
    Install,
    Delete { purge: bool },
}

#[derive(Debug, Clone)]
struct State {
    mode: Mode,
    install: Option<VerId>,
    candidate: Option<VerId>,
    protect: bool,
    /// Who needed this package (for the records).
    reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DepKind {
    PreDepends,
    Depends,
    Conflicts,
    Breaks,
    Recommends,
    Suggests,
}

impl DepKind {
    fn label(self) -> &'static str {
        match self {
            DepKind::PreDepends => "PreDepends",
            DepKind::Depends => "Depends",
            DepKind::Conflicts => "Conflicts",
            DepKind::Breaks => "Breaks",
            DepKind::Recommends => "Recommends",
            DepKind::Suggests => "Suggests",
        }
    }
    fn critical(self) -> bool {
        matches!(self, DepKind::PreDepends | DepKind::Depends)
    }
    fn negative(self) -> bool {
        matches!(self, DepKind::Conflicts | DepKind::Breaks)
    }
}

/// One changed package: `(pkg, old, new, purge, reason)`.
pub type Change = (PkgId, Option<VerId>, Option<VerId>, bool, Option<String>);

/// Saved marks ([`DepCache::snapshot`]).
pub struct Snapshot(Vec<State>);

/// The marking state over a [`Universe`].
pub struct DepCache<'u> {
    pub u: &'u Universe,
    st: Vec<State>,
    install_recommends: bool,
    install_suggests: bool,
    /// Set when a broken state needed apt's problem resolver, which is only
    /// approximated here (see [`DepCache::fix_broken`]).
    pub used_problem_resolver: bool,
}

fn deps(v: &super::control::BinaryPackage) -> impl Iterator<Item = (DepKind, &OrGroup)> {
    [
        (DepKind::PreDepends, &v.pre_depends),
        (DepKind::Depends, &v.depends),
        (DepKind::Conflicts, &v.conflicts),
        (DepKind::Breaks, &v.breaks),
        (DepKind::Recommends, &v.recommends),
        (DepKind::Suggests, &v.suggests),
    ]
    .into_iter()
    .flat_map(|(k, groups)| groups.iter().map(move |g| (k, g)))
}

impl<'u> DepCache<'u> {
    pub fn new(u: &'u Universe, install_recommends: bool, install_suggests: bool) -> Self {
        let st = u
            .pkgs
            .iter()
            .map(|p| State {
                mode: Mode::Keep,
                install: p.current,
                candidate: p.candidate,
                protect: false,
                reason: None,
            })
            .collect();
        DepCache {
            u,
            st,
            install_recommends,
            install_suggests,
            used_problem_resolver: false,
        }
    }

    /// The marks, to go back to after a trial.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot(self.st.clone())
    }

    pub fn restore(&mut self, s: Snapshot) {
        self.st = s.0;
    }

    pub fn candidate(&self, p: PkgId) -> Option<VerId> {
        self.st[p].candidate
    }

    pub fn set_candidate(&mut self, p: PkgId, v: VerId) {
        self.st[p].candidate = Some(v);
    }

    /// The version that will be on the system: marked, kept or none.
    pub fn inst_ver(&self, p: PkgId) -> Option<VerId> {
        match self.st[p].mode {
            Mode::Keep => self.u.pkgs[p].current,
            Mode::Install => self.st[p].install,
            Mode::Delete { .. } => None,
        }
    }

    fn important(&self, k: DepKind) -> bool {
        match k {
            DepKind::PreDepends | DepKind::Depends => true,
            DepKind::Recommends => self.install_recommends,
            DepKind::Suggests => self.install_suggests,
            _ => false,
        }
    }

    fn arch_of(&self, v: VerId) -> &str {
        &self.u.pkgs[self.u.vers[v].pkg].arch
    }

    /// Targets of `rel` from version `from` that are not `from`'s own
    /// package (a package never conflicts with itself).
    fn sat(
        &self,
        from: VerId,
        rel: &Relation,
        pick: &dyn Fn(PkgId) -> Option<VerId>,
    ) -> Vec<VerId> {
        let me = self.u.vers[from].pkg;
        let mut v = self.u.satisfiers(rel, self.arch_of(from), pick);
        v.retain(|&x| self.u.vers[x].pkg != me);
        v
    }

    fn group_satisfied_install(&self, from: VerId, g: &OrGroup) -> bool {
        g.iter()
            .any(|r| !self.sat(from, r, &|p| self.inst_ver(p)).is_empty())
    }

    fn group_satisfied_current(&self, from: VerId, g: &OrGroup) -> bool {
        g.iter()
            .any(|r| !self.sat(from, r, &|p| self.u.pkgs[p].current).is_empty())
    }

    fn group_satisfiable_candidate(&self, from: VerId, g: &OrGroup) -> bool {
        g.iter()
            .any(|r| !self.sat(from, r, &|p| self.st[p].candidate).is_empty())
    }

    /// apt's InstBroken: the version to be installed has a critical
    /// dependency that the install state does not satisfy.
    fn inst_broken(&self, p: PkgId) -> bool {
        let Some(v) = self.inst_ver(p) else {
            return false;
        };
        deps(&self.u.vers[v].data).any(|(k, g)| k.critical() && !self.group_satisfied_install(v, g))
    }

    /// apt's `CompareProviders`: true when `a` should be tried before `b`.
    fn compare_providers(&self, target: &str, a: VerId, b: VerId) -> Ordering {
        let (pa, pb) = (self.u.vers[a].pkg, self.u.vers[b].pkg);
        let (va, vb) = (&self.u.vers[a].data, &self.u.vers[b].data);
        let (ka, kb) = (&self.u.pkgs[pa], &self.u.pkgs[pb]);
        let first = |x: bool, y: bool| {
            if x == y {
                None
            } else if x {
                Some(Ordering::Less)
            } else {
                Some(Ordering::Greater)
            }
        };
        let group_installed = |name: &str| {
            self.u.archs.iter().any(|a| {
                self.u
                    .find(name, a)
                    .is_some_and(|p| self.u.pkgs[p].current.is_some())
            })
        };
        if let Some(o) = first(self.st[pa].protect, self.st[pb].protect) {
            return o;
        }
        if va.multi_arch == MultiArch::Same || vb.multi_arch == MultiArch::Same {
            let ia = va.multi_arch == MultiArch::Same && group_installed(&ka.name);
            let ib = vb.multi_arch == MultiArch::Same && group_installed(&kb.name);
            if let Some(o) = first(ia, ib) {
                return o;
            }
        }
        if let Some(o) = first(ka.current.is_some(), kb.current.is_some()) {
            return o;
        }
        if ka.name != kb.name
            && let Some(o) = first(ka.name == target, kb.name == target)
        {
            return o;
        }
        if let Some(o) = first(va.essential, vb.essential) {
            return o;
        }
        if let Some(o) = first(va.important, vb.important) {
            return o;
        }
        if ka.arch != kb.arch {
            if let Some(o) = first(ka.arch == self.u.native, kb.arch == self.u.native) {
                return o;
            }
            let pos = |a: &str| self.u.archs.iter().position(|x| x == a);
            return pos(&ka.arch).cmp(&pos(&kb.arch));
        }
        if va.priority != vb.priority {
            return va.priority.cmp(&vb.priority);
        }
        // apt's last resort is its cache's package ID, which depends on hash
        // table layout; the reverse index order is the stable stand-in.
        pb.cmp(&pa)
    }

    /// apt's `getAllPossibleSolutions(…, CANDIDATE, sorted)`.
    fn solutions(&self, from: VerId, g: &OrGroup) -> Vec<VerId> {
        let (mut upgrade, mut new) = (Vec::new(), Vec::new());
        for r in g {
            let mut list = self.sat(from, r, &|p| self.st[p].candidate);
            list.sort_by(|&a, &b| self.compare_providers(&r.name, a, b));
            for v in list {
                if self.u.pkgs[self.u.vers[v].pkg].current.is_some() {
                    upgrade.push(v);
                } else {
                    new.push(v);
                }
            }
        }
        upgrade.extend(new);
        let mut seen = HashSet::new();
        upgrade.retain(|v| seen.insert(*v));
        upgrade.retain(|&v| {
            let s = &self.st[self.u.vers[v].pkg];
            !(s.protect
                && (matches!(s.mode, Mode::Delete { .. })
                    || s.mode == Mode::Keep && self.u.pkgs[self.u.vers[v].pkg].current.is_none()))
        });
        upgrade
    }

    fn state_change(&mut self, p: PkgId, reason: Option<String>) {
        let s = &mut self.st[p];
        s.mode = Mode::Install;
        s.install = s.candidate;
        if s.reason.is_none() {
            s.reason = reason;
        }
    }

    fn discard_install(&mut self, p: PkgId) {
        let cur = self.u.pkgs[p].current;
        let s = &mut self.st[p];
        s.mode = Mode::Keep;
        s.install = cur;
        s.candidate = cur;
    }

    /// apt's `IsInstallOk`: Multi-Arch: same siblings stay at one version,
    /// and an automatic install needs every critical dependency satisfiable.
    fn install_ok(&mut self, p: PkgId, auto: bool) -> bool {
        let Some(cand) = self.st[p].candidate else {
            return false;
        };
        let data = &self.u.vers[cand].data;
        if data.multi_arch == MultiArch::Same {
            let name = &self.u.pkgs[p].name;
            for a in &self.u.archs {
                let Some(q) = self.u.find(name, a) else {
                    continue;
                };
                if q == p {
                    continue;
                }
                if let Some(iv) = self.inst_ver(q)
                    && self.u.vers[iv].data.version != data.version
                    && self.st[q]
                        .candidate
                        .is_none_or(|c| self.u.vers[c].data.version != data.version)
                {
                    return false;
                }
            }
        }
        if !auto || Some(cand) == self.u.pkgs[p].current {
            return true;
        }
        let broken = deps(data).any(|(k, g)| {
            k.critical()
                && !self.group_satisfied_install(cand, g)
                && !self.group_satisfiable_candidate(cand, g)
        });
        if broken && !self.st[p].protect {
            let cur = self.u.pkgs[p].current;
            self.st[p].candidate = cur;
            if !matches!(self.st[p].mode, Mode::Delete { .. }) {
                self.st[p].mode = Mode::Keep;
                self.st[p].install = cur;
            }
            return false;
        }
        !broken
    }

    /// Marks a package for removal (apt's `MarkDelete`).
    pub fn mark_delete(&mut self, p: PkgId, purge: bool, reason: Option<String>) -> bool {
        if self.u.pkgs[p].current.is_none() {
            self.st[p].mode = Mode::Keep;
            self.st[p].install = None;
            return true;
        }
        self.st[p].mode = Mode::Delete { purge };
        self.st[p].install = None;
        if self.st[p].reason.is_none() {
            self.st[p].reason = reason;
        }
        true
    }

    pub fn protect(&mut self, p: PkgId) {
        self.st[p].protect = true;
    }

    /// apt's `pkgDepCache::MarkInstall`.
    pub fn mark_install(
        &mut self,
        p: PkgId,
        auto: bool,
        depth: usize,
        from_user: bool,
        reason: Option<String>,
    ) -> bool {
        if depth > 3000 {
            return false;
        }
        let cur = self.u.pkgs[p].current;
        let Some(cand) = self.st[p].candidate else {
            return false;
        };
        // A package marked for removal by a protected decision stays so.
        if self.st[p].protect && matches!(self.st[p].mode, Mode::Delete { .. }) && !from_user {
            return false;
        }
        if !self.st[p].protect && !self.inst_broken(p) {
            if Some(cand) == cur {
                if matches!(self.st[p].mode, Mode::Delete { .. }) {
                    self.st[p].mode = Mode::Keep;
                    self.st[p].install = cur;
                }
                return true;
            } else if self.st[p].mode == Mode::Install {
                return true;
            }
        }
        if !self.install_ok(p, auto) {
            return false;
        }
        if from_user {
            self.state_change(p, reason.clone());
        }
        if !auto {
            if !from_user {
                self.state_change(p, reason);
            }
            return true;
        }
        let u: &'u Universe = self.u;
        let fail_early = !self.st[p].protect && !from_user;
        let mut failed = false;
        // Collect what to install and what to remove.
        let data = &u.vers[cand].data;
        let mut to_install: Vec<(DepKind, &'u OrGroup)> = Vec::new();
        let mut to_remove: Vec<(DepKind, &'u Relation)> = Vec::new();
        for (k, g) in deps(data) {
            if k.negative() {
                to_remove.extend(g.iter().map(|r| (k, r)));
            } else if self.important(k) && !self.group_satisfied_install(cand, g) {
                to_install.push((k, g));
            }
        }
        // Conflicts and Breaks: upgrade or remove what is in the way.
        let mut to_upgrade: Vec<PkgId> = Vec::new();
        let mut delayed_remove: Vec<PkgId> = Vec::new();
        let mut bad_candidate: Vec<PkgId> = Vec::new();
        for (_, r) in &to_remove {
            for v in self.sat(cand, r, &|q| self.st[q].candidate) {
                let q = self.u.vers[v].pkg;
                if self.u.pkgs[q].current != Some(v) {
                    if self.st[q].mode == Mode::Install {
                        // apt's MarkKeep of a package already marked: its
                        // candidate stays, a later dependency may still
                        // ask for it.
                        if self.st[q].protect {
                            failed = true;
                        } else {
                            self.st[q].mode = Mode::Keep;
                            self.st[q].install = self.u.pkgs[q].current;
                        }
                    } else {
                        bad_candidate.push(q);
                    }
                } else if !matches!(self.st[q].mode, Mode::Delete { .. }) {
                    if self.st[q].protect || self.u.vers[v].data.essential {
                        failed = true;
                    } else {
                        delayed_remove.push(q);
                    }
                }
                if failed && fail_early {
                    return false;
                }
            }
            for v in self.sat(cand, r, &|q| self.u.pkgs[q].current) {
                let q = self.u.vers[v].pkg;
                let qc = self.st[q].candidate;
                if qc != Some(v) && qc.is_some() && !bad_candidate.contains(&q) {
                    to_upgrade.push(q);
                } else if qc == self.u.pkgs[q].current {
                } else if !matches!(self.st[q].mode, Mode::Delete { .. }) {
                    if self.st[q].protect || self.u.vers[v].data.essential {
                        failed = true;
                    } else {
                        delayed_remove.push(q);
                    }
                }
                if failed && fail_early {
                    return false;
                }
            }
        }
        // Installed packages whose dependency on this one the new version
        // would no longer satisfy get upgraded with it.
        if let Some(cv) = cur {
            let me = self.u.pkgs[p].name.clone();
            for q in 0..self.u.pkgs.len() {
                let Some(qv) = self.u.pkgs[q].current else {
                    continue;
                };
                if self.st[q].mode == Mode::Install || to_upgrade.contains(&q) {
                    continue;
                }
                let hit = deps(&self.u.vers[qv].data).any(|(k, g)| {
                    !k.negative()
                        && self.important(k)
                        && g.iter().any(|r| {
                            (r.name == me
                                || self.u.vers[cv]
                                    .data
                                    .provides
                                    .iter()
                                    .any(|pr| pr.name == r.name))
                                && self
                                    .u
                                    .satisfiers(r, self.arch_of(qv), &|x| (x == p).then_some(cv))
                                    .contains(&cv)
                                && !self
                                    .u
                                    .satisfiers(r, self.arch_of(qv), &|x| (x == p).then_some(cand))
                                    .contains(&cand)
                        })
                });
                if hit {
                    to_upgrade.push(q);
                }
            }
        }
        if !from_user {
            self.state_change(p, reason);
        }
        let already_protected = self.st[p].protect;
        self.st[p].protect = true;
        let who = self.u.full_name(p);
        // apt's MarkInstall_UpgradeOtherBinaries: installed binaries of the
        // same source whose candidate is this source version come along.
        let mut others: Vec<PkgId> = Vec::new();
        for &ov in u.by_source(&u.vers[cand].data.source) {
            let q = u.vers[ov].pkg;
            let od = &u.vers[ov].data;
            if q == p || u.pkgs[q].current.is_none() || u.pkgs[q].current == Some(ov) {
                continue;
            }
            if self.st[q].mode == Mode::Install && self.st[q].install == Some(ov) {
                continue;
            }
            if od.source_version != u.vers[cand].data.source_version
                || self.st[q].candidate != Some(ov)
            {
                continue;
            }
            if !others.contains(&q) {
                others.push(q);
            }
        }
        others.sort_unstable();
        for &q in &others {
            self.mark_install(
                q,
                false,
                depth + 1,
                false,
                Some(format!("same source as {who}")),
            );
        }
        for &q in &others {
            self.mark_install(
                q,
                true,
                depth + 1,
                false,
                Some(format!("same source as {who}")),
            );
        }
        for q in to_upgrade {
            if self.st[q].mode != Mode::Install
                && !self.mark_install(
                    q,
                    true,
                    depth + 1,
                    false,
                    Some(format!("upgraded for {who}")),
                )
            {
                if fail_early {
                    self.st[p].protect = already_protected;
                    self.discard_install(p);
                    return false;
                }
                failed = true;
            }
        }
        for (k, g) in to_install {
            if self.group_satisfied_install(cand, g) {
                continue;
            }
            let critical = k.critical();
            if let Some(cv) = cur
                && !critical
            {
                // A Recommends the installed version already had and that
                // was not satisfied then stays unsatisfied (bug #470115).
                let target = &g[0].name;
                let old = &u.vers[cv].data;
                let mut new_dep = true;
                let mut previously = false;
                for (ok, og) in deps(old) {
                    if ok.critical() || !self.important(ok) || og[0].name != *target {
                        continue;
                    }
                    new_dep = false;
                    if self.group_satisfied_current(cv, og) {
                        previously = true;
                        break;
                    }
                }
                if !new_dep && !previously {
                    continue;
                }
            }
            let mut found = false;
            for v in self.solutions(cand, g) {
                let q = self.u.vers[v].pkg;
                if self.st[q].candidate != Some(v) {
                    continue;
                }
                if !self.mark_install(
                    q,
                    true,
                    depth + 1,
                    false,
                    Some(format!("{} of {who}", k.label())),
                ) {
                    continue;
                }
                found = true;
                break;
            }
            if !found && critical {
                failed = true;
                if !from_user && !already_protected {
                    break;
                }
            }
        }
        self.st[p].protect = already_protected;
        if failed && fail_early {
            self.discard_install(p);
            return false;
        }
        for q in delayed_remove {
            self.mark_delete(q, false, Some(format!("in the way of {who}")));
        }
        !failed
    }

    /// Installed or marked packages whose critical dependencies or whose
    /// conflicts the final state violates.
    pub fn broken(&self) -> Vec<PkgId> {
        (0..self.u.pkgs.len())
            .filter(|&p| {
                let Some(v) = self.inst_ver(p) else {
                    return false;
                };
                deps(&self.u.vers[v].data).any(|(k, g)| {
                    if k.critical() {
                        !self.group_satisfied_install(v, g)
                    } else if k.negative() {
                        g.iter()
                            .any(|r| !self.sat(v, r, &|q| self.inst_ver(q)).is_empty())
                    } else {
                        false
                    }
                })
            })
            .collect()
    }

    /// A stand-in for apt's `pkgProblemResolver` for the common case it
    /// meets after an install or removal: packages left broken are upgraded
    /// when their candidate fixes them, else removed (never a package the
    /// user asked for, never an Essential one). Returns the packages still
    /// broken.
    pub fn fix_broken(&mut self, requested: &BTreeSet<PkgId>) -> Vec<PkgId> {
        for _ in 0..100 {
            let broken = self.broken();
            if broken.is_empty() {
                return broken;
            }
            self.used_problem_resolver = true;
            let mut changed = false;
            for p in broken {
                if requested.contains(&p) || self.st[p].mode == Mode::Install {
                    continue;
                }
                let cur = self.u.pkgs[p].current;
                if self.st[p].candidate != cur
                    && self.mark_install(p, true, 0, false, Some("fixed by upgrade".into()))
                    && !self.broken().contains(&p)
                {
                    changed = true;
                    continue;
                }
                if cur.is_some() && !self.u.vers[cur.unwrap_or_default()].data.essential {
                    self.mark_delete(p, false, Some("its dependencies are removed".into()));
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        self.broken()
    }

    /// apt's mark-and-sweep: installed automatic packages that nothing
    /// manual (or Essential, or Protected) needs through Depends,
    /// Pre-Depends, Recommends or Suggests.
    pub fn garbage(&self, auto_installed: &HashSet<(String, String)>) -> Vec<PkgId> {
        let mut marked = vec![false; self.u.pkgs.len()];
        let mut stack: Vec<PkgId> = (0..self.u.pkgs.len())
            .filter(|&p| {
                let Some(v) = self.inst_ver(p) else {
                    return false;
                };
                let k = &self.u.pkgs[p];
                let d = &self.u.vers[v].data;
                d.essential
                    || d.important
                    || !auto_installed.contains(&(k.name.clone(), k.arch.clone()))
                        && (k.current.is_some() || self.st[p].mode == Mode::Install)
            })
            .collect();
        while let Some(p) = stack.pop() {
            if std::mem::replace(&mut marked[p], true) {
                continue;
            }
            let Some(v) = self.inst_ver(p) else { continue };
            for (k, g) in deps(&self.u.vers[v].data) {
                if k.negative() {
                    continue;
                }
                for r in g {
                    for t in self.sat(v, r, &|q| self.inst_ver(q)) {
                        let q = self.u.vers[t].pkg;
                        if !marked[q] {
                            stack.push(q);
                        }
                    }
                }
            }
        }
        (0..self.u.pkgs.len())
            .filter(|&p| !marked[p] && self.inst_ver(p).is_some())
            .collect()
    }

    /// What changes, per package: `(pkg, old, new, purge, reason)`.
    pub fn changes(&self) -> Vec<Change> {
        let mut out = Vec::new();
        for (p, s) in self.st.iter().enumerate() {
            let cur = self.u.pkgs[p].current;
            match s.mode {
                Mode::Keep => {}
                Mode::Install if s.install != cur => {
                    out.push((p, cur, s.install, false, s.reason.clone()))
                }
                Mode::Install => {}
                Mode::Delete { purge } if cur.is_some() => {
                    out.push((p, cur, None, purge, s.reason.clone()))
                }
                Mode::Delete { .. } => {}
            }
        }
        out
    }
}
