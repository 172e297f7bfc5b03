//! Alpine's apk: versions compared as apk-tools compares them, the records
//! of `APKINDEX` and `/lib/apk/db/installed`, dependencies (`D:`, world
//! entries, `apk add` arguments) and a resolver for the cases imagelock
//! can decide exactly.
//!
//! The resolver follows apk-tools' provider order (prefer the installed
//! package on `apk add`, then the highest version by the requested name,
//! then by the principal name, then `provider_priority`, then the first
//! repository). It accumulates constraints until they are stable; when the
//! result depends on a choice apk makes by backtracking, on `install_if`,
//! or on several providers with nothing to order them, it says so instead
//! of answering ([`ApkSolveError::Undecided`]).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Token {
    InitialDigit,
    Digit,
    Letter,
    Suffix,
    SuffixNo,
    CommitHash,
    RevisionNo,
    End,
    Invalid,
}

/// `alpha`…`rc` sort below no suffix, `cvs`…`p` above (apk-tools' order).
fn suffix_rank(s: &str) -> Option<u8> {
    Some(match s {
        "alpha" => 1,
        "beta" => 2,
        "pre" => 3,
        "rc" => 4,
        "cvs" => 6,
        "svn" => 7,
        "git" => 8,
        "hg" => 9,
        "p" => 10,
        _ => return None,
    })
}
const SUFFIX_NONE: u8 = 5;

struct Tokens<'a> {
    rest: &'a str,
    token: Token,
    value: &'a str,
    number: u128,
    suffix: u8,
}

impl<'a> Tokens<'a> {
    fn new(v: &'a str) -> Self {
        let mut t = Tokens {
            rest: v,
            token: Token::InitialDigit,
            value: "",
            number: 0,
            suffix: 0,
        };
        t.digits();
        t
    }

    fn digits(&mut self) {
        let n = self
            .rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(self.rest.len());
        self.value = &self.rest[..n];
        self.number = self.value.parse().unwrap_or(u128::MAX);
        self.rest = &self.rest[n..];
        if n == 0 {
            self.token = Token::Invalid;
        }
    }

    fn next(&mut self) {
        let Some(c) = self.rest.chars().next() else {
            self.token = Token::End;
            return;
        };
        match c {
            'a'..='z' => {
                if self.token > Token::Digit {
                    self.token = Token::Invalid;
                    return;
                }
                self.value = &self.rest[..1];
                self.token = Token::Letter;
                self.rest = &self.rest[1..];
            }
            '.' | '0'..='9' => {
                if c == '.' {
                    if self.token > Token::Digit {
                        self.token = Token::Invalid;
                        return;
                    }
                    self.rest = &self.rest[1..];
                }
                self.token = match self.token {
                    Token::InitialDigit | Token::Digit => Token::Digit,
                    Token::Suffix => Token::SuffixNo,
                    _ => {
                        self.token = Token::Invalid;
                        return;
                    }
                };
                self.digits();
            }
            '_' => {
                if self.token > Token::SuffixNo {
                    self.token = Token::Invalid;
                    return;
                }
                self.rest = &self.rest[1..];
                let n = self
                    .rest
                    .find(|c: char| !c.is_ascii_lowercase())
                    .unwrap_or(self.rest.len());
                self.value = &self.rest[..n];
                self.rest = &self.rest[n..];
                match suffix_rank(self.value) {
                    Some(r) => {
                        self.suffix = r;
                        self.token = Token::Suffix;
                    }
                    None => self.token = Token::Invalid,
                }
            }
            '~' => {
                if self.token >= Token::CommitHash {
                    self.token = Token::Invalid;
                    return;
                }
                self.rest = &self.rest[1..];
                let n = self
                    .rest
                    .find(|c: char| !c.is_ascii_hexdigit())
                    .unwrap_or(self.rest.len());
                self.value = &self.rest[..n];
                self.rest = &self.rest[n..];
                self.token = if n == 0 {
                    Token::Invalid
                } else {
                    Token::CommitHash
                };
            }
            '-' => {
                if self.token >= Token::RevisionNo || !self.rest.starts_with("-r") {
                    self.token = Token::Invalid;
                    return;
                }
                self.rest = &self.rest[2..];
                self.token = Token::RevisionNo;
                self.digits();
            }
            _ => self.token = Token::Invalid,
        }
    }
}

fn token_cmp(a: &Tokens<'_>, b: &Tokens<'_>) -> Ordering {
    let string = || {
        // apk_blob_sort: bytes, then length.
        let n = a.value.len().min(b.value.len());
        a.value.as_bytes()[..n]
            .cmp(&b.value.as_bytes()[..n])
            .then(a.value.len().cmp(&b.value.len()))
    };
    match a.token {
        Token::Digit if a.value.starts_with('0') || b.value.starts_with('0') => string(),
        Token::Digit | Token::InitialDigit | Token::SuffixNo | Token::RevisionNo => {
            a.number.cmp(&b.number)
        }
        Token::Letter => a.value.cmp(b.value),
        Token::Suffix => a.suffix.cmp(&b.suffix),
        _ => string(),
    }
}

/// Whether apk accepts `v` as a version.
pub fn valid_version(v: &str) -> bool {
    let mut t = Tokens::new(v);
    while t.token < Token::End {
        t.next();
    }
    t.token == Token::End
}

/// Compares two apk versions as `apk_version_compare` does; `fuzzy`: `b`
/// matches as a prefix of `a` (the `~` operator).
fn compare_fuzzy(a: &str, b: &str, fuzzy: bool) -> Ordering {
    let mut ta = Tokens::new(a);
    let mut tb = Tokens::new(b);
    while ta.token == tb.token && ta.token < Token::End {
        let r = token_cmp(&ta, &tb);
        if r != Ordering::Equal {
            return r;
        }
        ta.next();
        tb.next();
    }
    if ta.token == tb.token || (tb.token == Token::End && fuzzy) {
        return Ordering::Equal;
    }
    if ta.token == Token::Suffix && ta.suffix < SUFFIX_NONE {
        return Ordering::Less;
    }
    if tb.token == Token::Suffix && tb.suffix < SUFFIX_NONE {
        return Ordering::Greater;
    }
    if ta.token > tb.token {
        return Ordering::Less;
    }
    if tb.token > ta.token {
        return Ordering::Greater;
    }
    Ordering::Equal
}

/// apk's version order.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    compare_fuzzy(a, b, false)
}

/// A version constraint: `=`, `<`, `>`, `<=`, `>=`, `~` (fuzzy), `><`
/// (checksum) or none.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct VersionReq {
    pub less: bool,
    pub equal: bool,
    pub greater: bool,
    pub fuzzy: bool,
    pub version: String,
}

impl VersionReq {
    pub fn matches(&self, version: &str) -> bool {
        let r = compare_fuzzy(version, &self.version, self.fuzzy);
        match r {
            Ordering::Less => self.less,
            Ordering::Equal => self.equal,
            Ordering::Greater => self.greater,
        }
    }

    fn op(&self) -> &'static str {
        match (self.less, self.equal, self.greater, self.fuzzy) {
            (true, false, false, _) => "<",
            (true, true, false, false) => "<=",
            (true, true, false, true) => "<~",
            (false, true, false, true) => "~",
            (false, true, false, false) => "=",
            (false, true, true, false) => ">=",
            (false, true, true, true) => ">~",
            (false, false, true, _) => ">",
            _ => "?",
        }
    }
}

/// One dependency: `name`, `name>=1.2`, `!name`, `name@tag`, `so:libz.so.1`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dep {
    pub name: String,
    pub req: Option<VersionReq>,
    pub conflict: bool,
    /// The repository tag of a world entry (`name@edge`).
    pub tag: Option<String>,
}

impl std::fmt::Display for Dep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.conflict {
            f.write_str("!")?;
        }
        f.write_str(&self.name)?;
        if let Some(t) = &self.tag {
            write!(f, "@{t}")?;
        }
        if let Some(r) = &self.req {
            write!(f, "{}{}", r.op(), r.version)?;
        }
        Ok(())
    }
}

impl Dep {
    /// Parses one dependency as apk writes it in `D:`, `/etc/apk/world`
    /// and on the command line. `None` for what imagelock does not read
    /// (`><` checksum pins, an invalid version).
    pub fn parse(text: &str) -> Option<Dep> {
        let text = text.trim();
        let (conflict, text) = match text.strip_prefix('!') {
            Some(t) => (true, t),
            None => (false, text),
        };
        let op_at = text.find(['<', '>', '=', '~']);
        let (head, req) = match op_at {
            None => (text, None),
            Some(i) => {
                let rest = &text[i..];
                let n = rest
                    .find(|c: char| !"<>=~".contains(c))
                    .unwrap_or(rest.len());
                let (op, version) = rest.split_at(n);
                let mut r = VersionReq {
                    less: false,
                    equal: false,
                    greater: false,
                    fuzzy: false,
                    version: version.to_string(),
                };
                for c in op.chars() {
                    match c {
                        '<' => r.less = true,
                        '>' => r.greater = true,
                        '=' => r.equal = true,
                        '~' => {
                            r.fuzzy = true;
                            r.equal = true;
                        }
                        _ => return None,
                    }
                }
                if (r.less && r.greater) || !valid_version(version) {
                    return None;
                }
                (&text[..i], Some(r))
            }
        };
        let (name, tag) = match head.split_once('@') {
            Some((n, t)) => (n, Some(t.to_string())),
            None => (head, None),
        };
        if name.is_empty() || name.contains(char::is_whitespace) {
            return None;
        }
        Some(Dep {
            name: name.to_string(),
            req,
            conflict,
            tag,
        })
    }

    /// Whether a provider of `self.name` at `version` (`None`: a provides
    /// without version) meets the version part.
    fn accepts(&self, version: Option<&str>) -> bool {
        match (&self.req, version) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(r), Some(v)) => r.matches(v),
        }
    }
}

/// One package record of an `APKINDEX` or of `/lib/apk/db/installed`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApkRecord {
    pub name: String,
    pub version: String,
    pub arch: String,
    /// `C:` as written (`Q1` + base64 of the SHA-1 of the control segment).
    pub checksum: Option<String>,
    /// `S:`, the `.apk` file's size.
    pub size: Option<u64>,
    /// `I:`, the installed size.
    pub installed_size: Option<u64>,
    pub origin: Option<String>,
    pub depends: Vec<Dep>,
    /// `p:` names with their version, if any.
    pub provides: Vec<(String, Option<String>)>,
    pub install_if: Vec<Dep>,
    /// `k:`.
    pub provider_priority: u64,
}

/// A record that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: record {record}: {message}")]
pub struct ApkIndexError {
    pub what: String,
    pub record: usize,
    pub message: String,
}

/// Reads the records of an `APKINDEX` or an installed database (`what`
/// names it in errors). A dependency or provides imagelock cannot read is
/// an error, never dropped.
pub fn parse_index(what: &str, text: &str) -> Result<Vec<ApkRecord>, ApkIndexError> {
    let mut out = Vec::new();
    for (i, block) in text.split("\n\n").enumerate() {
        let err = |message: String| ApkIndexError {
            what: what.to_string(),
            record: i + 1,
            message,
        };
        let mut fields: BTreeMap<char, Vec<&str>> = BTreeMap::new();
        for line in block.lines() {
            let mut chars = line.chars();
            if let (Some(k), Some(':')) = (chars.next(), chars.next()) {
                fields.entry(k).or_default().push(&line[2..]);
            }
        }
        let one = |k: char| fields.get(&k).and_then(|v| v.first()).copied();
        let Some(name) = one('P') else {
            if fields.is_empty() {
                continue;
            }
            return Err(err("no `P:` line".into()));
        };
        let version = one('V').ok_or_else(|| err(format!("`{name}` has no `V:` line")))?;
        if !valid_version(version) {
            return Err(err(format!(
                "`{name}` has version `{version}` apk does not read"
            )));
        }
        let deps = |k: char| -> Result<Vec<Dep>, ApkIndexError> {
            let mut v = Vec::new();
            for line in fields.get(&k).into_iter().flatten() {
                for w in line.split_whitespace() {
                    v.push(Dep::parse(w).ok_or_else(|| {
                        err(format!(
                            "`{name}`: dependency `{w}` is not one imagelock reads"
                        ))
                    })?);
                }
            }
            Ok(v)
        };
        let mut provides = Vec::new();
        for line in fields.get(&'p').into_iter().flatten() {
            for w in line.split_whitespace() {
                match w.split_once('=') {
                    Some((n, v)) if valid_version(v) => {
                        provides.push((n.to_string(), Some(v.to_string())))
                    }
                    Some(_) => {
                        return Err(err(format!(
                            "`{name}`: provides `{w}` has no valid version"
                        )));
                    }
                    None => provides.push((w.to_string(), None)),
                }
            }
        }
        let number = |k: char| -> Result<Option<u64>, ApkIndexError> {
            one(k)
                .map(|v| {
                    v.trim()
                        .parse()
                        .map_err(|_| err(format!("`{name}`: `{k}:{v}` is not a number")))
                })
                .transpose()
        };
        out.push(ApkRecord {
            name: name.to_string(),
            version: version.to_string(),
            arch: one('A').unwrap_or_default().to_string(),
            checksum: one('C').map(str::to_string),
            size: number('S')?,
            installed_size: number('I')?,
            origin: one('o').map(str::to_string),
            depends: deps('D')?,
            provides,
            install_if: deps('i')?,
            provider_priority: number('k')?.unwrap_or(0),
        });
    }
    Ok(out)
}

/// Reads `/etc/apk/world`: one dependency per word.
pub fn parse_world(text: &str) -> Result<Vec<Dep>, String> {
    text.split_whitespace()
        .map(|w| {
            Dep::parse(w)
                .ok_or_else(|| format!("`/etc/apk/world`: `{w}` is not an entry imagelock reads"))
        })
        .collect()
}

/// One candidate: an installed package or one a repository offers.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub record: ApkRecord,
    /// Index of the repository (in `/etc/apk/repositories` order), `None`
    /// for an installed package no repository offers at that version.
    pub repo: Option<usize>,
    pub installed: bool,
}

/// What the resolver is given.
#[derive(Clone, Debug, Default)]
pub struct ApkProblem {
    /// The repositories' tags (`None`: untagged), in order.
    pub repo_tags: Vec<Option<String>>,
    /// Every package, installed ones first; an installed package the
    /// repositories also offer appears once, with its repository.
    pub candidates: Vec<Candidate>,
    /// The world the step leaves (`/etc/apk/world`).
    pub world: Vec<Dep>,
}

/// Why the resolver gives no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApkSolveError {
    /// apk would refuse: nothing provides a name at an acceptable version.
    #[error("apk finds no package for `{dep}` (wanted by {by})")]
    Unsatisfiable { dep: String, by: String },
    /// apk would refuse: a conflict among what it must install.
    #[error("apk refuses: {0}")]
    Conflict(String),
    /// The answer depends on something imagelock's resolver does not decide.
    #[error("{0}")]
    Undecided(String),
}

/// The resolved installed set: indices into `ApkProblem::candidates`, each
/// with why it is there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApkSolution {
    pub chosen: BTreeMap<usize, String>,
}

fn provided_version<'a>(c: &'a ApkRecord, name: &str) -> Option<Option<&'a str>> {
    if c.name == name {
        return Some(Some(c.version.as_str()));
    }
    c.provides
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_deref())
}

/// A constraint with where it comes from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Need {
    dep: Dep,
    by: String,
    /// Tags allowed for this need (inherited from a tagged requirer).
    tags: BTreeSet<String>,
}

/// Resolves `problem` as `apk add`/`apk del` would (no `--upgrade`,
/// no `--latest`).
pub fn solve(problem: &ApkProblem) -> Result<ApkSolution, ApkSolveError> {
    let world: Vec<Need> = problem
        .world
        .iter()
        .map(|d| Need {
            dep: Dep {
                tag: None,
                ..d.clone()
            },
            by: "requested".into(),
            tags: d.tag.iter().cloned().collect(),
        })
        .collect();
    // Constraints only grow; a name is chosen again when a new one lands on
    // it. Bounded: every round adds a constraint or stops.
    let mut extra: BTreeSet<Need> = BTreeSet::new();
    for _ in 0..10_000 {
        let (chosen, needs) = select(problem, &world, &extra)?;
        let before = extra.len();
        extra.extend(needs.iter().cloned());
        if extra.len() == before {
            // Stable. Every constraint that shaped the answer must come
            // from the answer itself; one from a package chosen in an
            // earlier round only is a choice apk makes by backtracking.
            let (again, _) = select(problem, &world, &needs.iter().cloned().collect())?;
            if again != chosen {
                return Err(ApkSolveError::Undecided(
                    "the answer needs apk's backtracking (a dependency of a version imagelock first chose changes another choice)".into(),
                ));
            }
            check_final(problem, &chosen)?;
            return Ok(ApkSolution { chosen });
        }
    }
    Err(ApkSolveError::Undecided(
        "the resolution does not settle".into(),
    ))
}

/// One round: choose a provider for every name the world and `extra`
/// constrain, following dependencies; returns the choice and every
/// constraint the chosen packages put.
fn select(
    problem: &ApkProblem,
    world: &[Need],
    extra: &BTreeSet<Need>,
) -> Result<(BTreeMap<usize, String>, Vec<Need>), ApkSolveError> {
    let mut by_name: BTreeMap<&str, Vec<&Need>> = BTreeMap::new();
    for n in world.iter().chain(extra.iter()) {
        if !n.dep.conflict {
            by_name.entry(n.dep.name.as_str()).or_default().push(n);
        }
    }
    let mut chosen: BTreeMap<usize, String> = BTreeMap::new();
    // name → (candidate, version it provides the name at)
    let mut assigned: BTreeMap<String, (usize, Option<String>)> = BTreeMap::new();
    let mut queue: Vec<Need> = world.to_vec();
    let mut needs: Vec<Need> = Vec::new();
    let mut i = 0;
    while i < queue.len() {
        let need = queue[i].clone();
        i += 1;
        if need.dep.conflict {
            needs.push(need);
            continue;
        }
        needs.push(need.clone());
        let name = need.dep.name.as_str();
        if assigned.contains_key(name) {
            // Met, or a later constraint the earlier choice fails: the
            // next round chooses again with it.
            continue;
        }
        let all: Vec<&Need> = by_name.get(name).cloned().unwrap_or_default();
        let all: Vec<&Need> = if all.contains(&&need) {
            all
        } else {
            let mut a = all;
            a.push(&need);
            a
        };
        let tags: BTreeSet<&String> = all.iter().flat_map(|n| n.tags.iter()).collect();
        let pick = best_provider(problem, name, &all, &tags)?;
        let c = &problem.candidates[pick];
        chosen.entry(pick).or_insert_with(|| need.by.clone());
        for (pname, pver) in
            std::iter::once((c.record.name.clone(), Some(c.record.version.clone())))
                .chain(c.record.provides.iter().cloned())
        {
            match assigned.get(&pname) {
                Some((other, ov)) if *other != pick => {
                    if pver.is_some() || ov.is_some() {
                        return Err(ApkSolveError::Undecided(format!(
                            "`{}` and `{}` both provide `{pname}`; apk may choose other versions to avoid that, which imagelock does not search",
                            c.record.name, problem.candidates[*other].record.name
                        )));
                    }
                }
                Some(_) => {}
                None => {
                    assigned.insert(pname, (pick, pver));
                }
            }
        }
        let inherit: BTreeSet<String> = match c.repo.and_then(|r| problem.repo_tags[r].clone()) {
            Some(t) => need.tags.iter().cloned().chain([t]).collect(),
            None => need.tags.clone(),
        };
        for d in &c.record.depends {
            queue.push(Need {
                dep: d.clone(),
                by: format!("{} {}", c.record.name, c.record.version),
                tags: inherit.clone(),
            });
        }
    }
    Ok((chosen, needs))
}

fn best_provider(
    problem: &ApkProblem,
    name: &str,
    needs: &[&Need],
    tags: &BTreeSet<&String>,
) -> Result<usize, ApkSolveError> {
    let mut ok: Vec<(usize, Option<&str>)> = Vec::new();
    for (i, c) in problem.candidates.iter().enumerate() {
        let Some(v) = provided_version(&c.record, name) else {
            continue;
        };
        if !needs.iter().all(|n| n.dep.accepts(v)) {
            continue;
        }
        // Pinning: a tagged repository only for a tagged request.
        let tag_ok = c.installed
            || c.repo
                .and_then(|r| problem.repo_tags[r].as_ref())
                .is_none_or(|t| tags.contains(t));
        if !tag_ok {
            continue;
        }
        // A provides without version needs `provider_priority` to be
        // chosen automatically.
        if v.is_none() && c.record.name != name && c.record.provider_priority == 0 {
            let by_own_name = problem.candidates.iter().any(|o| o.record.name == name);
            if !by_own_name {
                return Err(ApkSolveError::Undecided(format!(
                    "`{name}` is provided only without a version and without `provider_priority` (by `{}`); apk asks the user to choose",
                    c.record.name
                )));
            }
            continue;
        }
        ok.push((i, v));
    }
    if ok.is_empty() {
        if needs.iter().any(|n| n.by != "requested") {
            // A package's dependency: apk may choose another version of
            // that package instead.
            return Err(ApkSolveError::Undecided(format!(
                "nothing provides {} at the version the highest candidates ask for; apk may choose older versions instead, which imagelock does not search",
                needs
                    .iter()
                    .map(|n| format!("`{}` (for {})", n.dep, n.by))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let by = needs.iter().map(|n| n.by.as_str()).collect::<BTreeSet<_>>();
        let dep = needs
            .iter()
            .map(|n| n.dep.to_string())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
            .join(", ");
        return Err(ApkSolveError::Unsatisfiable {
            dep,
            by: by.into_iter().collect::<Vec<_>>().join(", "),
        });
    }
    let cmp = |a: &(usize, Option<&str>), b: &(usize, Option<&str>)| -> Ordering {
        let (ca, cb) = (&problem.candidates[a.0], &problem.candidates[b.0]);
        // Prefer installed (no upgrade): same name or a versioned provides.
        if ca.record.name == cb.record.name || a.1.is_some() || b.1.is_some() {
            let r = ca.installed.cmp(&cb.installed);
            if r != Ordering::Equal {
                return r;
            }
        }
        let r = match (a.1, b.1) {
            (Some(x), Some(y)) => compare_versions(x, y),
            _ => Ordering::Equal,
        };
        if r != Ordering::Equal {
            return r;
        }
        if ca.record.name == cb.record.name {
            let r = compare_versions(&ca.record.version, &cb.record.version);
            if r != Ordering::Equal {
                return r;
            }
        }
        let r = ca
            .record
            .provider_priority
            .cmp(&cb.record.provider_priority);
        if r != Ordering::Equal {
            return r;
        }
        let r = ca.installed.cmp(&cb.installed);
        if r != Ordering::Equal {
            return r;
        }
        // The first repository wins.
        cb.repo
            .unwrap_or(usize::MAX)
            .cmp(&ca.repo.unwrap_or(usize::MAX))
    };
    ok.sort_by(|a, b| cmp(b, a));
    if ok.len() > 1 && cmp(&ok[0], &ok[1]) == Ordering::Equal {
        let (a, b) = (&problem.candidates[ok[0].0], &problem.candidates[ok[1].0]);
        return Err(ApkSolveError::Undecided(format!(
            "`{name}` is provided by `{}-{}` and `{}-{}` with nothing to order them",
            a.record.name, a.record.version, b.record.name, b.record.version
        )));
    }
    Ok(ok[0].0)
}

/// What apk checks of the result that the rounds do not: conflicts and
/// `install_if`.
fn check_final(
    problem: &ApkProblem,
    chosen: &BTreeMap<usize, String>,
) -> Result<(), ApkSolveError> {
    let provides = |name: &str, dep: &Dep| {
        chosen.keys().any(|&i| {
            provided_version(&problem.candidates[i].record, name).is_some_and(|v| dep.accepts(v))
        })
    };
    // Every dependency met by what was chosen (a name another package
    // provides keeps that package's version).
    let wanted = problem
        .world
        .iter()
        .map(|d| ("the world".to_string(), d))
        .chain(chosen.keys().flat_map(|&i| {
            let r = &problem.candidates[i].record;
            r.depends
                .iter()
                .map(move |d| (format!("{}-{}", r.name, r.version), d))
        }));
    for (by, d) in wanted {
        if !d.conflict && !provides(&d.name, d) {
            return Err(ApkSolveError::Undecided(format!(
                "`{d}` of {by} is not met by the packages imagelock chose; apk may choose others, which imagelock does not search"
            )));
        }
    }
    let mut conflicts: Vec<(String, &Dep)> = problem
        .world
        .iter()
        .filter(|d| d.conflict)
        .map(|d| ("the world".to_string(), d))
        .collect();
    for &i in chosen.keys() {
        let r = &problem.candidates[i].record;
        for d in r.depends.iter().filter(|d| d.conflict) {
            conflicts.push((format!("{}-{}", r.name, r.version), d));
        }
    }
    for (by, d) in conflicts {
        if provides(&d.name, d) {
            return Err(ApkSolveError::Undecided(format!(
                "{by} conflicts with `{}`, which the result installs; apk may choose other versions to avoid that, which imagelock does not search",
                d.name
            )));
        }
    }
    let names: BTreeSet<&str> = chosen
        .keys()
        .map(|&i| problem.candidates[i].record.name.as_str())
        .collect();
    for c in &problem.candidates {
        if c.record.install_if.is_empty() || names.contains(c.record.name.as_str()) {
            continue;
        }
        if c.record.install_if.iter().all(|d| {
            if d.conflict {
                !provides(&d.name, d)
            } else {
                provides(&d.name, d)
            }
        }) {
            return Err(ApkSolveError::Undecided(format!(
                "`{}` would be installed by its `install_if` ({}), which imagelock does not resolve yet",
                c.record.name,
                c.record
                    .install_if
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_as_apk_does() {
        use Ordering::*;
        for (a, b, want) in [
            ("1.0", "1.0", Equal),
            ("1.0", "1.0.1", Less),
            ("1.2.3-r0", "1.2.3-r1", Less),
            ("1.2.3_rc1", "1.2.3", Less),
            ("1.2.3_p1", "1.2.3", Greater),
            ("1.2.3a", "1.2.3", Greater),
            ("1.2.3a", "1.2.3b", Less),
            ("1.010", "1.01", Greater),
            ("1.10", "1.9", Greater),
            ("2.0_alpha1", "2.0_beta1", Less),
            ("1.36.1-r15", "1.36.1-r2", Greater),
            ("3.3.2-r0", "3.3.10-r0", Less),
        ] {
            assert_eq!(compare_versions(a, b), want, "{a} vs {b}");
        }
        assert!(valid_version("1.2.3_rc1-r4"));
        assert!(!valid_version("1.2-x"));
        assert!(
            Dep::parse("musl~1.2")
                .unwrap()
                .req
                .unwrap()
                .matches("1.2.4-r2")
        );
        assert!(
            !Dep::parse("musl~1.3")
                .unwrap()
                .req
                .unwrap()
                .matches("1.2.4-r2")
        );
    }

    #[test]
    fn dependencies_read_as_written() {
        let d = Dep::parse("so:libc.musl-x86_64.so.1").unwrap();
        assert_eq!(d.name, "so:libc.musl-x86_64.so.1");
        assert!(d.req.is_none());
        let d = Dep::parse("!tool<2").unwrap();
        assert!(d.conflict);
        assert_eq!(d.to_string(), "!tool<2");
        let d = Dep::parse("curl@edge>=8").unwrap();
        assert_eq!(d.tag.as_deref(), Some("edge"));
        assert_eq!(d.to_string(), "curl@edge>=8");
        assert!(Dep::parse("x><Q1abc").is_none());
    }

    fn rec(text: &str) -> ApkRecord {
        parse_index("test", text).unwrap().remove(0)
    }

    fn problem(installed: &[&str], repos: &[(Option<&str>, &[&str])], world: &str) -> ApkProblem {
        let mut p = ApkProblem::default();
        for t in installed {
            p.candidates.push(Candidate {
                record: rec(t),
                repo: None,
                installed: true,
            });
        }
        for (i, (tag, recs)) in repos.iter().enumerate() {
            p.repo_tags.push(tag.map(str::to_string));
            for t in *recs {
                p.candidates.push(Candidate {
                    record: rec(t),
                    repo: Some(i),
                    installed: false,
                });
            }
        }
        p.world = parse_world(world).unwrap();
        p
    }

    fn names(p: &ApkProblem, s: &ApkSolution) -> Vec<String> {
        s.chosen
            .keys()
            .map(|&i| {
                format!(
                    "{}-{}",
                    p.candidates[i].record.name, p.candidates[i].record.version
                )
            })
            .collect()
    }

    #[test]
    fn highest_version_installed_kept_provides_and_tags() {
        let repo: &[&str] = &[
            "P:musl\nV:1.2.5-r0\np:so:libc.musl-x86_64.so.1=1\n",
            "P:app\nV:2.0-r0\nD:so:libc.musl-x86_64.so.1 lib>=1.1\n",
            "P:app\nV:1.0-r0\nD:lib\n",
            "P:lib\nV:1.0-r0\n",
            "P:lib\nV:1.2-r0\n",
            "P:lib-compat\nV:9-r0\np:lib=1.5\n",
        ];
        let p = problem(
            &["P:musl\nV:1.2.4-r2\np:so:libc.musl-x86_64.so.1=1\n"],
            &[(None, repo)],
            "musl app",
        );
        let s = solve(&p).unwrap();
        // musl stays installed; lib: the provider with the higher version
        // of the name.
        assert_eq!(
            names(&p, &s),
            ["musl-1.2.4-r2", "app-2.0-r0", "lib-compat-9-r0"]
        );
        let p = problem(&[], &[(None, repo)], "app=1.0-r0 lib<1.2");
        assert_eq!(names(&p, &solve(&p).unwrap()), ["app-1.0-r0", "lib-1.0-r0"]);
        let tagged: &[&str] = &["P:lib\nV:3.0-r0\n"];
        let p = problem(&[], &[(None, repo), (Some("edge"), tagged)], "lib");
        assert_eq!(names(&p, &solve(&p).unwrap()), ["lib-compat-9-r0"]);
        let p = problem(&[], &[(None, repo), (Some("edge"), tagged)], "lib@edge");
        assert_eq!(names(&p, &solve(&p).unwrap()), ["lib-3.0-r0"]);
    }

    #[test]
    fn conflicts_missing_and_undecided_are_said() {
        let repo: &[&str] = &[
            "P:a\nV:1-r0\nD:!b\n",
            "P:b\nV:1-r0\n",
            "P:v1\nV:1-r0\np:virt\n",
            "P:v2\nV:1-r0\np:virt\n",
            "P:lang\nV:1-r0\ni:a b\n",
        ];
        let p = problem(&[], &[(None, repo)], "a b");
        assert!(
            matches!(solve(&p), Err(ApkSolveError::Undecided(e)) if e.contains("conflicts with `b`"))
        );
        let p = problem(&[], &[(None, repo)], "nope");
        assert!(matches!(
            solve(&p),
            Err(ApkSolveError::Unsatisfiable { .. })
        ));
        let p = problem(&[], &[(None, repo)], "virt");
        assert!(matches!(solve(&p), Err(ApkSolveError::Undecided(_))));
        let p = problem(&[], &[(None, repo)], "b");
        assert_eq!(names(&p, &solve(&p).unwrap()), ["b-1-r0"]);
        // `lib>=2` lands on a name `compat` already provides at 1.5.
        let provided: &[&str] = &[
            "P:compat\nV:1-r0\np:lib=1.5\n",
            "P:lib\nV:2-r0\n",
            "P:app\nV:1-r0\nD:lib>=2\n",
        ];
        let p = problem(&[], &[(None, provided)], "compat app");
        assert!(
            matches!(solve(&p), Err(ApkSolveError::Undecided(_))),
            "{:?}",
            solve(&p)
        );
        // The newest `tool` needs what nobody offers: apk would take the
        // older one; imagelock says it does not search.
        let tools: &[&str] = &["P:tool\nV:2-r0\nD:gone\n", "P:tool\nV:1-r0\n"];
        let p = problem(&[], &[(None, tools)], "tool");
        assert!(
            matches!(solve(&p), Err(ApkSolveError::Undecided(e)) if e.contains("`gone` (for tool 2-r0)"))
        );
        // `install_if` met by the result: not decided.
        let p = problem(
            &[],
            &[(
                None,
                &["P:a\nV:1-r0\n", "P:b\nV:1-r0\n", "P:lang\nV:1-r0\ni:a b\n"],
            )],
            "a b",
        );
        assert!(matches!(solve(&p), Err(ApkSolveError::Undecided(e)) if e.contains("install_if")));
    }
}
