//! Layers merged in order (whiteouts applied) into what an image contains:
//! OS, libc, Pythons, conda prefixes, Python distributions, OS packages.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::formats::{
    header, normalize_name, parse_apk, parse_conda_history, parse_headers, parse_os_release,
    parse_paragraphs, parse_record,
};
use super::layer::{CollectedFile, FileContent, LayerCollection, LayerStats, is_libc_name};
use crate::oci::{Platform, ResolvedPlatform};

/// What an image contains, as far as imagelock cares. Every list is sorted,
/// so equal images give equal catalogues.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Catalogue {
    pub image: ResolvedPlatform,
    pub platform: Platform,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_release: Option<OsRelease>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub libc: Option<Libc>,
    pub pythons: Vec<PythonInstall>,
    pub conda_prefixes: Vec<CondaPrefix>,
    pub python_dists: Vec<PythonDist>,
    pub os_packages: Vec<OsPackage>,
    /// apt's and dpkg's state files (absolute paths): status, sources,
    /// pins, `apt.conf.d`, keyrings; see [`crate::image::dpkg`].
    #[serde(skip)]
    pub apt_files: std::collections::BTreeMap<String, Vec<u8>>,
    /// conda's configuration files (`.condarc`, `condarc`, `condarc.d/*.yml`
    /// wherever they are), each prefix's `conda-meta/pinned`, and
    /// `/etc/passwd`, by absolute path; links followed.
    #[serde(skip)]
    pub conda_files: std::collections::BTreeMap<String, String>,
    /// Per layer counts, bottom first.
    pub layers: Vec<LayerStats>,
    /// Files that were found but could not be read (a broken conda record,
    /// a METADATA without a name).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// `/etc/os-release` (or `/usr/lib/os-release`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsRelease {
    pub id: Option<String>,
    pub id_like: Option<String>,
    pub version_id: Option<String>,
    pub version_codename: Option<String>,
    pub pretty_name: Option<String>,
}

/// Which C library the image has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Libc {
    pub kind: LibcKind,
    /// `2.36`; unknown when neither a banner nor a versioned name was found.
    pub version: Option<String>,
    /// Where it was learnt from.
    pub path: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LibcKind {
    Glibc,
    Musl,
}

/// A Python installation: `PREFIX/bin/python3.X` and/or `PREFIX/lib/python3.X/`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PythonInstall {
    pub prefix: String,
    /// `major.minor`.
    pub version: String,
    /// `PREFIX/bin/python3.X` when present.
    pub executable: Option<String>,
    /// Symlinks in `PREFIX/bin` that lead to it (`python3 -> python3.11`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    /// Its `site-packages` (and Debian `dist-packages`) directories.
    pub site_packages: Vec<String>,
}

/// A conda prefix: a directory with `conda-meta/`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CondaPrefix {
    pub path: String,
    pub records: Vec<CondaMetaRecord>,
    /// Specs the user asked for, from `conda-meta/history`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requested_specs: Vec<String>,
}

impl Eq for CondaPrefix {}

/// One `conda-meta/*.json` record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CondaMetaRecord {
    pub name: String,
    pub version: String,
    pub build: String,
    #[serde(default)]
    pub build_number: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Files the package installed, relative to the prefix.
    #[serde(default)]
    pub files: Vec<String>,
    /// The record as written, for solvers that need every field
    /// (`depends`, `constrains`…).
    #[serde(skip)]
    pub raw: String,
}

/// An installed Python distribution (`*.dist-info` or `*.egg-info`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PythonDist {
    /// As written in METADATA.
    pub name: String,
    /// PEP 503 normalized.
    pub normalized_name: String,
    pub version: String,
    /// The `site-packages` directory it is in.
    pub site_packages: String,
    /// The `*.dist-info` / `*.egg-info` path.
    pub path: String,
    /// `INSTALLER`, trimmed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub installer: Option<String>,
    /// `Tag:` lines of `WHEEL`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub wheel_tags: Vec<String>,
    /// Paths in `RECORD`, relative to `site_packages`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub record: Vec<String>,
    /// `direct_url.json` (PEP 610), when installed from a URL or path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direct_url: Option<serde_json::Value>,
    pub owner: Owner,
}

/// Who installed a Python distribution: conda's files are not also pip's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Owner {
    /// Listed in a conda record's `files`, or `INSTALLER` is `conda`.
    Conda {
        prefix: String,
        /// The record's package name when a record lists the files.
        #[serde(skip_serializing_if = "Option::is_none")]
        package: Option<String>,
    },
    /// `INSTALLER` is `pip` or `uv`.
    Pip { installer: String },
    /// Anything else: OS packages (no or a distribution's `INSTALLER`),
    /// egg-info from `setup.py install`, other tools.
    Other { installer: Option<String> },
}

/// A package of the OS package manager.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OsPackage {
    pub source: OsPackageSource,
    pub name: String,
    pub version: String,
    pub arch: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OsPackageSource {
    Dpkg,
    Apk,
    /// The rpm database (`rpmdb.sqlite`); the version is `[epoch:]version-release`.
    Rpm,
}

/// A path in the merged filesystem.
enum Node {
    File(CollectedFile),
    Symlink(String),
    Dir,
}

/// The merged view of the collected paths.
#[derive(Default)]
struct Tree {
    nodes: BTreeMap<String, Node>,
}

impl Tree {
    /// Removes everything below `path`, and `path` itself when asked.
    fn remove(&mut self, path: &str, itself: bool) {
        if itself {
            self.nodes.remove(path);
        }
        let below: Vec<String> = if path.is_empty() {
            self.nodes.keys().cloned().collect()
        } else {
            let start = format!("{path}/");
            self.nodes
                .range(start.clone()..)
                .take_while(|(k, _)| k.starts_with(&start))
                .map(|(k, _)| k.clone())
                .collect()
        };
        for k in below {
            self.nodes.remove(&k);
        }
    }

    /// Applies one layer above what is there: its whiteouts and opaque
    /// directories hide lower paths, then its entries land.
    fn apply(&mut self, layer: &LayerCollection) {
        for w in &layer.whiteouts {
            self.remove(w, true);
        }
        for o in &layer.opaque_dirs {
            self.remove(o, false);
        }
        for d in &layer.dirs {
            self.nodes.entry(d.clone()).or_insert(Node::Dir);
        }
        for (p, f) in &layer.files {
            self.remove(p, false);
            self.nodes.insert(p.clone(), Node::File(f.clone()));
        }
        for (p, t) in &layer.symlinks {
            self.remove(p, false);
            self.nodes.insert(p.clone(), Node::Symlink(t.clone()));
        }
    }

    fn text(&self, path: &str) -> Option<&str> {
        match self.nodes.get(path)? {
            Node::File(CollectedFile {
                content: FileContent::Text(t),
                ..
            }) => Some(t),
            _ => None,
        }
    }

    /// A file's text, following symlinks (`etc/os-release ->
    /// ../usr/lib/os-release`).
    fn text_following(&self, path: &str) -> Option<&str> {
        let mut path = path.to_string();
        for _ in 0..8 {
            match self.nodes.get(&path)? {
                Node::Symlink(target) => path = resolve_link(&path, target),
                _ => return self.text(&path),
            }
        }
        None
    }
}

fn resolve_link(path: &str, target: &str) -> String {
    if target.starts_with('/') {
        super::layer::normalize(target)
    } else {
        super::layer::normalize(&format!("{}/{target}", parent(path)))
    }
}

fn parent(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Paths are shown absolute.
fn abs(path: &str) -> String {
    format!("/{path}")
}

/// Merges layer collections (bottom first) into a catalogue.
pub(crate) fn merge(
    image: ResolvedPlatform,
    platform: Platform,
    layers: Vec<LayerCollection>,
) -> Catalogue {
    let mut tree = Tree::default();
    for layer in &layers {
        tree.apply(layer);
    }
    let mut warnings = Vec::new();
    let conda_prefixes = conda_prefixes(&tree, &mut warnings);
    // Package caches (`PREFIX/pkgs/…`) hold unpacked packages that look like
    // installs; they are not.
    let caches: Vec<String> = conda_prefixes
        .iter()
        .map(|c| {
            format!("{}/pkgs/", c.path.trim_start_matches('/'))
                .trim_start_matches('/')
                .to_string()
        })
        .collect();
    let in_cache = |p: &str| caches.iter().any(|c| p.starts_with(c.as_str()));
    let mut os_packages = os_packages(&tree);
    let apt_files = apt_files(&tree);
    match crate::image::rpmdb::read_rpmdb(&apt_files) {
        Ok(Some(rpms)) => {
            os_packages.extend(rpms.into_iter().map(|p| OsPackage {
                source: OsPackageSource::Rpm,
                version: p.evr.to_string(),
                arch: (!p.arch.is_empty()).then_some(p.arch),
                name: p.name,
            }));
            os_packages.sort();
            os_packages.dedup();
        }
        Ok(None) => {}
        Err(e) => warnings.push(e.to_string()),
    }
    let conda_files = tree
        .nodes
        .keys()
        .filter(|p| crate::image::layer::is_conda_config_file(p))
        .filter_map(|p| Some((format!("/{p}"), tree.text_following(p)?.to_string())))
        .collect();
    Catalogue {
        apt_files,
        conda_files,
        os_release: tree
            .text_following("etc/os-release")
            .or_else(|| tree.text_following("usr/lib/os-release"))
            .map(|t| {
                let mut m = parse_os_release(t);
                OsRelease {
                    id: m.remove("ID"),
                    id_like: m.remove("ID_LIKE"),
                    version_id: m.remove("VERSION_ID"),
                    version_codename: m.remove("VERSION_CODENAME"),
                    pretty_name: m.remove("PRETTY_NAME"),
                }
            }),
        libc: libc(&tree, &os_packages),
        pythons: pythons(&tree, &in_cache),
        python_dists: python_dists(&tree, &conda_prefixes, &in_cache, &mut warnings),
        conda_prefixes,
        os_packages,
        layers: layers.into_iter().map(|l| l.stats).collect(),
        warnings,
        image,
        platform,
    }
}

fn conda_prefixes(tree: &Tree, warnings: &mut Vec<String>) -> Vec<CondaPrefix> {
    let mut prefixes: BTreeMap<String, CondaPrefix> = BTreeMap::new();
    for (path, node) in &tree.nodes {
        let dir = if basename(path) == "conda-meta" && matches!(node, Node::Dir) {
            path.as_str()
        } else if basename(parent(path)) == "conda-meta" {
            parent(path)
        } else {
            continue;
        };
        let prefix = parent(dir);
        if dir != "conda-meta" && !dir.ends_with("/conda-meta") {
            continue;
        }
        let entry = prefixes
            .entry(prefix.to_string())
            .or_insert_with(|| CondaPrefix {
                path: abs(prefix),
                records: Vec::new(),
                requested_specs: Vec::new(),
            });
        let Node::File(CollectedFile {
            content: FileContent::Text(text),
            ..
        }) = node
        else {
            continue;
        };
        if basename(path) == "history" {
            entry.requested_specs = parse_conda_history(text);
        } else {
            match serde_json::from_str::<CondaMetaRecord>(text) {
                Ok(mut r) => {
                    r.files.sort();
                    r.raw = text.to_string();
                    entry.records.push(r);
                }
                Err(e) => warnings.push(format!("`{}` is not a conda record: {e}", abs(path))),
            }
        }
    }
    let mut out: Vec<CondaPrefix> = prefixes.into_values().collect();
    for p in &mut out {
        p.records
            .sort_by(|a, b| (&a.name, &a.version, &a.build).cmp(&(&b.name, &b.version, &b.build)));
    }
    out
}

fn pythons(tree: &Tree, in_cache: &dyn Fn(&str) -> bool) -> Vec<PythonInstall> {
    let mut found: BTreeMap<(String, String), Option<String>> = BTreeMap::new();
    for (path, node) in &tree.nodes {
        if in_cache(path) {
            continue;
        }
        let name = basename(path);
        let Some(minor) = name.strip_prefix("python3.") else {
            continue;
        };
        if minor.is_empty() || !minor.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let dir = parent(path);
        let version = format!("3.{minor}");
        let (prefix, exe) = match (basename(dir), node) {
            ("bin", Node::File(_) | Node::Symlink(_)) => (parent(dir), Some(abs(path))),
            ("lib", Node::Dir) => (parent(dir), None),
            _ => continue,
        };
        let slot = found.entry((prefix.to_string(), version)).or_default();
        if exe.is_some() {
            *slot = exe;
        }
    }
    found
        .into_iter()
        .map(|((prefix, version), executable)| {
            let join = |rest: &str| {
                if prefix.is_empty() {
                    rest.to_string()
                } else {
                    format!("{prefix}/{rest}")
                }
            };
            let mut site_packages: Vec<String> = [
                join(&format!("lib/python{version}/site-packages")),
                join(&format!("lib/python{version}/dist-packages")),
                join("lib/python3/dist-packages"),
                join(&format!("local/lib/python{version}/dist-packages")),
            ]
            .into_iter()
            .filter(|d| matches!(tree.nodes.get(d), Some(Node::Dir)))
            .map(|d| abs(&d))
            .collect();
            site_packages.sort();
            let links = executable
                .as_deref()
                .map(|exe| {
                    links_to(
                        tree,
                        parent(exe.trim_start_matches('/')),
                        exe.trim_start_matches('/'),
                    )
                })
                .unwrap_or_default();
            PythonInstall {
                prefix: abs(&prefix),
                version,
                executable,
                links,
                site_packages,
            }
        })
        .collect()
}

/// Symlinks named `python*` in `dir` whose chain ends at `target`.
fn links_to(tree: &Tree, dir: &str, target: &str) -> Vec<String> {
    let start = format!("{dir}/python");
    tree.nodes
        .range(start.clone()..)
        .take_while(|(k, _)| k.starts_with(&start))
        .filter(|(k, n)| !k[dir.len() + 1..].contains('/') && matches!(n, Node::Symlink(_)))
        .filter(|(k, _)| {
            let mut path = (*k).clone();
            for _ in 0..8 {
                match tree.nodes.get(&path) {
                    Some(Node::Symlink(t)) => path = resolve_link(&path, t),
                    _ => break,
                }
            }
            path == target
        })
        .map(|(k, _)| abs(k))
        .collect()
}

fn python_dists(
    tree: &Tree,
    conda: &[CondaPrefix],
    in_cache: &dyn Fn(&str) -> bool,
    warnings: &mut Vec<String>,
) -> Vec<PythonDist> {
    // Files conda records list, by absolute path; only metadata directories
    // are needed to decide ownership.
    let mut conda_files: BTreeMap<String, (&str, &str)> = BTreeMap::new();
    for prefix in conda {
        for r in &prefix.records {
            for f in &r.files {
                if f.contains(".dist-info/") || f.contains(".egg-info") {
                    let full = format!("{}/{}", prefix.path.trim_end_matches('/'), f);
                    conda_files.insert(full, (prefix.path.as_str(), r.name.as_str()));
                }
            }
        }
    }
    let mut out = Vec::new();
    for (path, node) in &tree.nodes {
        if in_cache(path) {
            continue;
        }
        let Node::File(CollectedFile {
            content: FileContent::Text(text),
            ..
        }) = node
        else {
            continue;
        };
        let name = basename(path);
        let (meta_dir, site) = if (name == "METADATA" && parent(path).ends_with(".dist-info"))
            || (name == "PKG-INFO" && parent(path).ends_with(".egg-info"))
        {
            (parent(path), parent(parent(path)))
        } else if name.ends_with(".egg-info") {
            (path.as_str(), parent(path))
        } else {
            continue;
        };
        if !matches!(basename(site), "site-packages" | "dist-packages") {
            continue;
        }
        let headers = parse_headers(text);
        let (Some(dist_name), Some(version)) =
            (header(&headers, "Name"), header(&headers, "Version"))
        else {
            warnings.push(format!("`{}` has no name or version", abs(path)));
            continue;
        };
        let sibling = |file: &str| tree.text(&format!("{meta_dir}/{file}"));
        let installer = sibling("INSTALLER")
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        let wheel_tags = sibling("WHEEL")
            .map(|t| {
                parse_headers(t)
                    .into_iter()
                    .filter(|(k, _)| k == "Tag")
                    .map(|(_, v)| v)
                    .collect()
            })
            .unwrap_or_default();
        let record = sibling("RECORD").map(parse_record).unwrap_or_default();
        let direct_url = sibling("direct_url.json").and_then(|t| serde_json::from_str(t).ok());
        let abs_path = abs(path);
        let owner = if let Some((prefix, package)) = conda_files.get(&abs_path) {
            Owner::Conda {
                prefix: (*prefix).to_string(),
                package: Some((*package).to_string()),
            }
        } else {
            match installer.as_deref() {
                Some("conda") => Owner::Conda {
                    prefix: conda
                        .iter()
                        .filter(|c| {
                            abs_path.starts_with(&format!("{}/", c.path.trim_end_matches('/')))
                        })
                        .map(|c| c.path.clone())
                        .max_by_key(String::len)
                        .unwrap_or_else(|| "/".into()),
                    package: None,
                },
                Some(i @ ("pip" | "uv")) => Owner::Pip {
                    installer: i.to_string(),
                },
                other => Owner::Other {
                    installer: other.map(str::to_string),
                },
            }
        };
        out.push(PythonDist {
            name: dist_name.to_string(),
            normalized_name: normalize_name(dist_name),
            version: version.to_string(),
            site_packages: abs(site),
            path: abs(meta_dir),
            installer,
            wheel_tags,
            record,
            direct_url,
            owner,
        });
    }
    out.sort_by(|a, b| {
        (&a.site_packages, &a.normalized_name, &a.version).cmp(&(
            &b.site_packages,
            &b.normalized_name,
            &b.version,
        ))
    });
    out
}

fn apt_files(tree: &Tree) -> std::collections::BTreeMap<String, Vec<u8>> {
    tree.nodes
        .iter()
        .filter_map(|(path, node)| {
            let abs = format!("/{path}");
            // The OS package state: apt's, dnf's and apk's files.
            if !crate::image::dpkg::is_apt_state_file(&abs)
                && !crate::image::rpmdb::is_rpm_state_file(&abs)
                && !crate::image::formats::is_apk_state_file(&abs)
            {
                return None;
            }
            // Keyrings are often links (`trusted.gpg.d/x.gpg ->
            // /usr/share/keyrings/x.gpg`): the content is the target's.
            let mut node = node;
            let mut at = path.clone();
            for _ in 0..8 {
                let Node::Symlink(target) = node else { break };
                at = resolve_link(&at, target);
                node = tree.nodes.get(&at)?;
            }
            match node {
                Node::File(CollectedFile {
                    content: FileContent::Text(t),
                    ..
                }) => Some((abs, t.as_bytes().to_vec())),
                Node::File(CollectedFile {
                    content: FileContent::Bytes(b),
                    ..
                }) => Some((abs, b.clone())),
                _ => None,
            }
        })
        .collect()
}

fn os_packages(tree: &Tree) -> Vec<OsPackage> {
    let mut out = BTreeSet::new();
    let mut dpkg = |text: &str, need_status: bool| {
        for p in parse_paragraphs(text) {
            let installed = p
                .get("Status")
                .is_some_and(|s| s.split_whitespace().nth(2) == Some("installed"));
            if need_status && !installed {
                continue;
            }
            if let (Some(name), Some(version)) = (p.get("Package"), p.get("Version")) {
                out.insert(OsPackage {
                    source: OsPackageSource::Dpkg,
                    name: name.clone(),
                    version: version.clone(),
                    arch: p.get("Architecture").cloned(),
                });
            }
        }
    };
    if let Some(text) = tree.text("var/lib/dpkg/status") {
        dpkg(text, true);
    }
    for (path, _) in tree
        .nodes
        .range("var/lib/dpkg/status.d/".to_string()..)
        .take_while(|(k, _)| k.starts_with("var/lib/dpkg/status.d/"))
    {
        // Distroless writes one paragraph per file, without `Status`.
        if let Some(text) = tree.text(path) {
            dpkg(text, false);
        }
    }
    if let Some(text) = tree.text("lib/apk/db/installed") {
        for p in parse_apk(text) {
            if let (Some(name), Some(version)) = (p.get(&'P'), p.get(&'V')) {
                out.insert(OsPackage {
                    source: OsPackageSource::Apk,
                    name: name.clone(),
                    version: version.clone(),
                    arch: p.get(&'A').cloned(),
                });
            }
        }
    }
    out.into_iter().collect()
}

/// `libc-2.31.so` / `ld-2.31.so` → `2.31`.
fn version_in_name(name: &str) -> Option<String> {
    let v = name
        .strip_prefix("libc-")
        .or_else(|| name.strip_prefix("ld-"))?
        .strip_suffix(".so")?;
    (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b == b'.')).then(|| v.to_string())
}

fn libc(tree: &Tree, os_packages: &[OsPackage]) -> Option<Libc> {
    let mut banner: Option<Libc> = None;
    let mut named: Option<Libc> = None;
    let mut musl: Option<Libc> = None;
    for (path, node) in &tree.nodes {
        let name = basename(path);
        match node {
            Node::File(CollectedFile {
                content: FileContent::Glibc(version),
                ..
            }) if banner.as_ref().is_none_or(|b| b.version.is_none()) => {
                banner = Some(Libc {
                    kind: LibcKind::Glibc,
                    version: version.clone(),
                    path: abs(path),
                });
            }
            _ if name.starts_with("ld-musl-") && is_libc_name(name) => {
                musl.get_or_insert_with(|| Libc {
                    kind: LibcKind::Musl,
                    version: os_packages
                        .iter()
                        .find(|p| p.source == OsPackageSource::Apk && p.name == "musl")
                        .map(|p| {
                            p.version
                                .split('-')
                                .next()
                                .unwrap_or(&p.version)
                                .to_string()
                        }),
                    path: abs(path),
                });
            }
            _ if is_libc_name(name) => {
                let from_name = version_in_name(name).or_else(|| match node {
                    Node::Symlink(target) => version_in_name(basename(target)),
                    _ => None,
                });
                if let Some(version) = from_name
                    && named.is_none()
                {
                    named = Some(Libc {
                        kind: LibcKind::Glibc,
                        version: Some(version),
                        path: abs(path),
                    });
                }
            }
            _ => {}
        }
    }
    match (banner, named) {
        (Some(b), _) if b.version.is_some() => Some(b),
        (_, Some(n)) => Some(n),
        (Some(b), None) => Some(b),
        (None, None) => musl,
    }
}
