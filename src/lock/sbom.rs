//! The SBOMs of a locked image, CycloneDX 1.6 and SPDX 2.3 (JSON): what
//! the final image holds. Only the stages that end in the image count (the
//! last one and the stages it builds `FROM`); on each platform a later
//! step's choice of a name replaces an earlier one; an in-repo parent's
//! packages are included from its own lock (the child's choices win), and
//! the parent is named, never given the digest of its lockfile as if it
//! were an image digest.

use std::collections::{BTreeMap, BTreeSet};

use crate::lock::{LockedImage, LockedStep, PypiPackage, PypiSource};

/// Looks up the lock of an image of this repository by name.
pub type ParentLocks<'a> = &'a dyn Fn(&str) -> Option<LockedImage>;

/// One component of the image.
#[derive(Clone, Debug)]
struct Item {
    bom_ref: String,
    container: bool,
    name: String,
    version: Option<String>,
    purl: Option<String>,
    sha256: Option<String>,
    /// Where it was fetched from (an absolute URL), for SPDX.
    download: Option<String>,
    platforms: BTreeSet<String>,
    /// `pypi:NAME`, `conda:TARGET:NAME`, `deb:NAME:ARCH`, `rpm:NAME:ARCH`, `oci:NAME`: a
    /// child's component replaces its parent's of the same key.
    key: String,
    /// The pypi packages whose dependencies pulled it in (normalized names).
    required_by: Vec<String>,
    properties: Vec<(String, String)>,
}

impl LockedImage {
    /// The indices of the stages whose content ends in the image: the last
    /// stage and, transitively, the stages it builds `FROM`.
    pub fn image_stages(&self) -> BTreeSet<u32> {
        let mut out = BTreeSet::new();
        let mut at = self.stages.iter().map(|s| s.index).max();
        while let Some(i) = at {
            if !out.insert(i) {
                break;
            }
            at = self
                .stages
                .iter()
                .find(|s| s.index == i)
                .and_then(|s| s.base.strip_prefix("stage:"))
                .and_then(|n| n.parse().ok());
        }
        out
    }

    /// The steps of the stages that end in the image, in order.
    pub fn image_steps(&self) -> impl Iterator<Item = &LockedStep> {
        let stages = self.image_stages();
        self.steps.iter().filter(move |s| self.in_image(&stages, s))
    }

    /// Whether `step` belongs to a stage of the final image.
    fn in_image(&self, stages: &BTreeSet<u32>, step: &LockedStep) -> bool {
        self.stages.is_empty() || stages.contains(&step.stage)
    }

    /// A CycloneDX 1.6 SBOM (JSON) of the final image, with the dependency
    /// graph the lock knows (pip's `required-by`; the image depends on its
    /// bases and on every package nothing else pulled in).
    pub fn to_cyclonedx(&self, parents: ParentLocks<'_>) -> String {
        let items = self.sbom_items(parents, 0);
        let root = format!("image:{}", self.image.name);
        let mut components = Vec::new();
        for i in &items {
            let mut c = serde_json::json!({
                "type": if i.container { "container" } else { "library" },
                "bom-ref": i.bom_ref,
                "name": i.name,
            });
            if let Some(v) = &i.version {
                c["version"] = v.as_str().into();
            }
            if let Some(p) = &i.purl {
                c["purl"] = p.as_str().into();
            }
            if let Some(h) = &i.sha256 {
                c["hashes"] = serde_json::json!([{"alg": "SHA-256", "content": h}]);
            }
            let mut props: Vec<serde_json::Value> = i
                .properties
                .iter()
                .map(|(n, v)| serde_json::json!({"name": n, "value": v}))
                .collect();
            if !i.platforms.is_empty() {
                let platforms: Vec<&str> = i.platforms.iter().map(String::as_str).collect();
                props.push(
                    serde_json::json!({"name": "imagelock:platforms", "value": platforms.join(",")}),
                );
            }
            if !props.is_empty() {
                c["properties"] = props.into();
            }
            components.push(c);
        }
        let dependencies: Vec<serde_json::Value> = dependency_graph(&root, &items)
            .into_iter()
            .map(|(r, on)| serde_json::json!({"ref": r, "dependsOn": on}))
            .collect();
        let bom = serde_json::json!({
            "bomFormat": "CycloneDX",
            "specVersion": "1.6",
            "version": 1,
            "metadata": {
                "tools": {"components": [{"type": "application", "name": "imagelock", "version": env!("CARGO_PKG_VERSION")}]},
                "component": {"type": "container", "name": self.image.name, "bom-ref": root},
                "properties": [{"name": "imagelock:input-hash", "value": self.image.input_hash}],
            },
            "components": components,
            "dependencies": dependencies,
        });
        let mut text = serde_json::to_string_pretty(&bom).unwrap_or_default();
        text.push('\n');
        text
    }

    /// An SPDX 2.3 document (JSON) of the final image; `created` is the
    /// document's creation time (`YYYY-MM-DDThh:mm:ssZ`).
    pub fn to_spdx(&self, parents: ParentLocks<'_>, created: &str) -> String {
        let items = self.sbom_items(parents, 0);
        let root = format!("image:{}", self.image.name);
        let ids: BTreeMap<&str, String> = std::iter::once((root.as_str(), "SPDXRef-Image".into()))
            .chain(
                items
                    .iter()
                    .enumerate()
                    .map(|(n, i)| (i.bom_ref.as_str(), format!("SPDXRef-Package-{}", n + 1))),
            )
            .collect();
        let mut packages = vec![serde_json::json!({
            "SPDXID": "SPDXRef-Image",
            "name": self.image.name,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "primaryPackagePurpose": "CONTAINER",
        })];
        for i in &items {
            let mut p = serde_json::json!({
                "SPDXID": ids[i.bom_ref.as_str()],
                "name": i.name,
                "downloadLocation": i.download.as_deref().unwrap_or("NOASSERTION"),
                "filesAnalyzed": false,
                "licenseConcluded": "NOASSERTION",
                "licenseDeclared": "NOASSERTION",
                "copyrightText": "NOASSERTION",
                "primaryPackagePurpose": if i.container { "CONTAINER" } else { "LIBRARY" },
            });
            if let Some(v) = &i.version {
                p["versionInfo"] = v.as_str().into();
            }
            if let Some(h) = &i.sha256 {
                p["checksums"] = serde_json::json!([{"algorithm": "SHA256", "checksumValue": h}]);
            }
            if let Some(purl) = &i.purl {
                p["externalRefs"] = serde_json::json!([{
                    "referenceCategory": "PACKAGE-MANAGER",
                    "referenceType": "purl",
                    "referenceLocator": purl,
                }]);
            }
            packages.push(p);
        }
        let mut relationships = vec![serde_json::json!({
            "spdxElementId": "SPDXRef-DOCUMENT",
            "relationshipType": "DESCRIBES",
            "relatedSpdxElement": "SPDXRef-Image",
        })];
        for i in &items {
            let kind = if i.container {
                "DESCENDANT_OF"
            } else {
                "CONTAINS"
            };
            relationships.push(serde_json::json!({
                "spdxElementId": "SPDXRef-Image",
                "relationshipType": kind,
                "relatedSpdxElement": ids[i.bom_ref.as_str()],
            }));
        }
        for (from, on) in dependency_graph(&root, &items) {
            if from == root {
                continue;
            }
            for to in on {
                relationships.push(serde_json::json!({
                    "spdxElementId": ids[from.as_str()],
                    "relationshipType": "DEPENDS_ON",
                    "relatedSpdxElement": ids[to.as_str()],
                }));
            }
        }
        let doc = serde_json::json!({
            "spdxVersion": "SPDX-2.3",
            "dataLicense": "CC0-1.0",
            "SPDXID": "SPDXRef-DOCUMENT",
            "name": self.image.name,
            "documentNamespace": format!(
                "https://spdx.org/spdxdocs/imagelock/{}-{}",
                self.image.name,
                self.image.input_hash.hex()
            ),
            "creationInfo": {
                "created": created,
                "creators": [format!("Tool: imagelock-{}", env!("CARGO_PKG_VERSION"))],
            },
            "documentDescribes": ["SPDXRef-Image"],
            "packages": packages,
            "relationships": relationships,
        });
        let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        text.push('\n');
        text
    }

    /// The components of the final image, in-repo parents' first (each
    /// replaced by the child's of the same key), in a stable order.
    fn sbom_items(&self, parents: ParentLocks<'_>, depth: usize) -> Vec<Item> {
        let stages = self.image_stages();
        let mut inherited = Vec::new();
        let mut own: Vec<Item> = Vec::new();
        // Bases of the stages in the image.
        for stage in self.stages.iter().filter(|s| stages.contains(&s.index)) {
            // A base read on this machine (an Apptainer file, layout or
            // daemon image) is found by its `From` as written.
            let Some(base) = stage
                .base_name
                .as_ref()
                .and_then(|n| self.bases.iter().find(|b| b.name == *n))
                .or_else(|| {
                    self.bases.iter().find(|b| {
                        b.is_local() && b.references.iter().any(|r| r.as_str() == &*stage.base)
                    })
                })
            else {
                continue;
            };
            let (repo, _) = super::export::split_tag(&base.name);
            let mut item = Item {
                bom_ref: String::new(),
                container: true,
                name: repo.to_string(),
                version: None,
                purl: None,
                sha256: None,
                download: None,
                platforms: BTreeSet::new(),
                key: format!("oci:{}", base.name),
                required_by: Vec::new(),
                properties: Vec::new(),
            };
            match &base.built_from {
                // No registry has it: no purl; its digest is what the lock
                // says it is (a file's sha256 only for a file).
                None if base.is_local() => {
                    item.bom_ref = format!("local:{}", base.name);
                    item.name = base.name.to_string();
                    item.version = Some(base.digest.to_string());
                    let pinned = base.pinned.as_deref().unwrap_or_default();
                    if pinned == "file-sha256" {
                        item.sha256 = Some(base.digest.hex().to_string());
                    }
                    item.properties = vec![
                        (
                            "imagelock:agent".into(),
                            base.agent.as_deref().unwrap_or_default().to_string(),
                        ),
                        ("imagelock:pinned".into(), pinned.to_string()),
                    ];
                }
                Some(parent) => {
                    // An image of this repository: its digest is not
                    // known here (the lock records its lockfile's).
                    item.bom_ref = format!("image:{parent}");
                    item.properties = vec![
                        ("imagelock:in-repo-image".into(), parent.to_string()),
                        ("imagelock:parent-lock".into(), base.digest.to_string()),
                    ];
                    if depth < 16
                        && let Some(lock) = parents(parent)
                    {
                        inherited.extend(lock.sbom_items(parents, depth + 1));
                    }
                }
                None if base.agent.as_deref().map(crate::source::agents::agent_pin)
                    == Some(crate::source::agents::AgentPin::Remote(
                        crate::source::agents::RemoteAgent::Library,
                    )) =>
                {
                    // A Library image is a SIF, not an OCI artifact: no
                    // purl type names it; its hash is the file's sha256.
                    item.bom_ref = format!("sif:{}", base.digest);
                    item.version = Some(base.digest.to_string());
                    item.sha256 = Some(base.digest.hex().to_string());
                    item.properties = vec![("imagelock:agent".into(), "library".into())];
                    item.platforms = base
                        .platforms
                        .iter()
                        .map(|p| p.platform.to_string())
                        .collect();
                }
                None => {
                    // An ORAS artifact is an OCI manifest at its registry.
                    let repo = repo.strip_prefix("oras://").unwrap_or(repo);
                    let last = repo.rsplit('/').next().unwrap_or(repo);
                    let purl = format!(
                        "pkg:oci/{last}@{}?repository_url={}",
                        purl_encode(&base.digest.to_string()),
                        purl_encode(repo)
                    );
                    if let Some(agent) = &base.agent {
                        item.properties = vec![("imagelock:agent".into(), agent.to_string())];
                    }
                    item.bom_ref.clone_from(&purl);
                    item.version = Some(base.digest.to_string());
                    item.purl = Some(purl);
                    item.sha256 = Some(base.digest.hex().to_string());
                    item.platforms = base
                        .platforms
                        .iter()
                        .map(|p| p.platform.to_string())
                        .collect();
                }
            }
            own.push(item);
        }
        // Packages: on each platform, the last step's choice of a key.
        for platform in &self.image.platforms {
            let pname = platform.to_string();
            let mut chosen: BTreeMap<String, Item> = BTreeMap::new();
            for step in self.steps.iter().filter(|s| self.in_image(&stages, s)) {
                for p in step.pypi.iter().filter(|p| p.platforms.contains(platform)) {
                    let item = pypi_item(p);
                    chosen.insert(item.key.clone(), item);
                }
                for p in step.conda.iter().filter(|p| p.platforms.contains(platform)) {
                    let purl = format!(
                        "pkg:conda/{}@{}?build={}&channel={}&subdir={}",
                        p.name,
                        purl_encode(&p.version),
                        purl_encode(&p.build),
                        purl_encode(&p.channel),
                        purl_encode(&p.subdir)
                    );
                    let key = format!(
                        "conda:{}:{}",
                        step.target.as_deref().unwrap_or_default(),
                        p.name
                    );
                    chosen.insert(
                        key.clone(),
                        Item {
                            bom_ref: purl.clone(),
                            container: false,
                            name: p.name.to_string(),
                            version: Some(format!("{}-{}", p.version, p.build)),
                            purl: Some(purl),
                            sha256: Some(p.sha256.to_string()),
                            download: absolute(&p.url),
                            platforms: BTreeSet::new(),
                            key,
                            required_by: Vec::new(),
                            properties: Vec::new(),
                        },
                    );
                }
                for p in step.apt.iter().filter(|p| p.platforms.contains(platform)) {
                    let key = format!("deb:{}:{}", p.name, p.architecture);
                    if !p.installed_after() {
                        chosen.remove(&key);
                        continue;
                    }
                    let source = p
                        .uri
                        .as_ref()
                        .and_then(|u| step.apt_sources.iter().find(|s| s.uri == *u));
                    let vendor = source.and_then(|s| s.vendor.as_deref()).unwrap_or("debian");
                    let distro = source
                        .and_then(|s| s.codename.as_deref())
                        .map(|c| format!("&distro={}", purl_encode(c)))
                        .unwrap_or_default();
                    let upstream = if p.source != p.name || p.source_version.is_some() {
                        format!(
                            "&upstream={}",
                            purl_encode(&match &p.source_version {
                                Some(v) => format!("{}@{}", p.source, v),
                                None => p.source.to_string(),
                            })
                        )
                    } else {
                        String::new()
                    };
                    let purl = format!(
                        "pkg:deb/{}/{}@{}?arch={}{distro}{upstream}",
                        purl_encode(vendor),
                        p.name,
                        purl_encode(&p.version),
                        p.architecture
                    );
                    chosen.insert(
                        key.clone(),
                        Item {
                            bom_ref: purl.clone(),
                            container: false,
                            name: p.name.to_string(),
                            version: Some(p.version.to_string()),
                            purl: Some(purl),
                            sha256: p.sha256.as_ref().map(ToString::to_string),
                            download: None,
                            platforms: BTreeSet::new(),
                            key,
                            required_by: Vec::new(),
                            properties: Vec::new(),
                        },
                    );
                }
                for p in step.rpm.iter().filter(|p| p.platforms.contains(platform)) {
                    let key = format!("rpm:{}:{}", p.name, p.arch);
                    if !p.installed_after() {
                        chosen.remove(&key);
                        continue;
                    }
                    // The purl's namespace is the vendor, which a repository
                    // does not say; it is left out rather than guessed.
                    let epoch = if p.epoch == 0 {
                        String::new()
                    } else {
                        format!("&epoch={}", p.epoch)
                    };
                    let repo = p
                        .repo
                        .as_ref()
                        .map(|r| format!("&repository_id={}", purl_encode(r)))
                        .unwrap_or_default();
                    let version = format!("{}-{}", p.version, p.release);
                    let purl = format!(
                        "pkg:rpm/{}@{}?arch={}{epoch}{repo}",
                        p.name,
                        purl_encode(&version),
                        p.arch
                    );
                    chosen.insert(
                        key.clone(),
                        Item {
                            bom_ref: purl.clone(),
                            container: false,
                            name: p.name.to_string(),
                            version: Some(version),
                            purl: Some(purl),
                            sha256: p.sha256.as_ref().map(ToString::to_string),
                            download: None,
                            platforms: BTreeSet::new(),
                            key,
                            required_by: Vec::new(),
                            properties: Vec::new(),
                        },
                    );
                }
            }
            for step in self.steps.iter().filter(|s| self.in_image(&stages, s)) {
                for p in step.apk.iter().filter(|p| p.platforms.contains(platform)) {
                    let key = format!("apk:{}", p.name);
                    if !p.installed_after() {
                        chosen.remove(&key);
                        continue;
                    }
                    // A virtual package (`--virtual`) is no package file.
                    let Some(version) = &p.version else { continue };
                    // The purl's namespace is the vendor: `alpine` for
                    // Alpine's own mirrors, else left out rather than
                    // guessed (Wolfi and others use apk too).
                    let alpine = p.repository.as_ref().is_some_and(|r| {
                        url::Url::parse(r.as_str())
                            .ok()
                            .and_then(|u| u.host_str().map(str::to_string))
                            .is_some_and(|h| {
                                h == "alpinelinux.org" || h.ends_with(".alpinelinux.org")
                            })
                    });
                    let namespace = if alpine { "alpine/" } else { "" };
                    let arch = p
                        .arch
                        .as_ref()
                        .map(|a| format!("?arch={a}"))
                        .unwrap_or_default();
                    let purl = format!(
                        "pkg:apk/{namespace}{}@{}{arch}",
                        p.name,
                        purl_encode(version)
                    );
                    let mut properties = Vec::new();
                    if let Some(c) = &p.checksum {
                        properties.push(("imagelock:apk-checksum".into(), c.to_string()));
                    }
                    chosen.insert(
                        key.clone(),
                        Item {
                            bom_ref: purl.clone(),
                            container: false,
                            name: p.name.to_string(),
                            version: Some(version.to_string()),
                            purl: Some(purl),
                            sha256: None,
                            download: None,
                            platforms: BTreeSet::new(),
                            key,
                            required_by: Vec::new(),
                            properties,
                        },
                    );
                }
            }
            for (_, mut item) in chosen {
                match own.iter_mut().find(|o| o.bom_ref == item.bom_ref) {
                    Some(o) => {
                        o.platforms.insert(pname.clone());
                    }
                    None => {
                        item.platforms.insert(pname.clone());
                        own.push(item);
                    }
                }
            }
        }
        let own_keys: BTreeSet<&str> = own.iter().map(|i| i.key.as_str()).collect();
        let mut out: Vec<Item> = Vec::new();
        for i in inherited
            .into_iter()
            .filter(|i| !own_keys.contains(i.key.as_str()))
        {
            if !out.iter().any(|o| o.bom_ref == i.bom_ref) {
                out.push(i);
            }
        }
        for i in own {
            if !out.iter().any(|o| o.bom_ref == i.bom_ref) {
                out.push(i);
            }
        }
        out
    }
}

fn pypi_item(p: &PypiPackage) -> Item {
    let mut qualifiers = Vec::new();
    match p.source {
        PypiSource::Index => {}
        PypiSource::Url => qualifiers.push(format!("download_url={}", purl_encode(&p.url))),
        PypiSource::Vcs => {
            let at = p.commit.as_deref().or(p.revision.as_deref());
            let vcs = match at {
                Some(at) => format!("{}@{at}", p.url),
                None => p.url.to_string(),
            };
            qualifiers.push(format!("vcs_url={}", purl_encode(&vcs)));
        }
        PypiSource::Path => {}
    }
    if let Some(f) = &p.file {
        qualifiers.push(format!("file_name={}", purl_encode(f)));
    }
    let mut purl = format!("pkg:pypi/{}", p.name);
    if let Some(v) = &p.version {
        purl.push('@');
        purl.push_str(&purl_encode(v));
    }
    if !qualifiers.is_empty() {
        qualifiers.sort();
        purl.push('?');
        purl.push_str(&qualifiers.join("&"));
    }
    let mut properties = vec![(
        "imagelock:source".to_string(),
        p.source.as_str().to_string(),
    )];
    if p.source == PypiSource::Path {
        properties.push(("imagelock:path".into(), p.url.to_string()));
    }
    let bom_ref = if p.source == PypiSource::Path && p.version.is_none() {
        format!("{purl}#{}", p.url)
    } else {
        purl.clone()
    };
    Item {
        bom_ref,
        container: false,
        name: p.name.to_string(),
        version: p.version.as_ref().map(ToString::to_string),
        purl: Some(purl),
        sha256: p.sha256.as_ref().map(ToString::to_string),
        download: matches!(p.source, PypiSource::Index | PypiSource::Url)
            .then(|| absolute(&p.url))
            .flatten(),
        platforms: BTreeSet::new(),
        key: format!("pypi:{}", p.name),
        required_by: p
            .required_by
            .iter()
            .map(|r| {
                let end = r
                    .find(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
                    .unwrap_or(r.len());
                r[..end].to_ascii_lowercase().replace(['_', '.'], "-")
            })
            .collect(),
        properties: if p.source == PypiSource::Index {
            Vec::new()
        } else {
            properties
        },
    }
}

/// `url` when it is an absolute URL.
fn absolute(url: &str) -> Option<String> {
    url.contains("://").then(|| url.to_string())
}

/// Each component's dependencies, and the image's (`root`): its bases and
/// every package nothing else pulled in. Every component has an entry.
fn dependency_graph(root: &str, items: &[Item]) -> Vec<(String, Vec<String>)> {
    let mut by_name: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for i in items.iter().filter(|i| i.key.starts_with("pypi:")) {
        by_name.entry(&i.key[5..]).or_default().push(&i.bom_ref);
    }
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut top = BTreeSet::new();
    for i in items {
        edges.entry(i.bom_ref.clone()).or_default();
        let parents: Vec<&str> = i
            .required_by
            .iter()
            .filter_map(|n| by_name.get(n.as_str()))
            .flatten()
            .copied()
            .collect();
        if parents.is_empty() {
            top.insert(i.bom_ref.clone());
        }
        for p in parents {
            edges
                .entry(p.to_string())
                .or_default()
                .insert(i.bom_ref.clone());
        }
    }
    std::iter::once((root.to_string(), top.into_iter().collect()))
        .chain(
            edges
                .into_iter()
                .map(|(r, on)| (r, on.into_iter().collect())),
        )
        .collect()
}

/// Percent-encodes what a purl's version or qualifier value may not hold
/// as is.
fn purl_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::lock::tests::sample;

    #[test]
    fn the_image_depends_on_its_bases_and_top_packages() {
        let lock = sample();
        let bom: serde_json::Value = serde_json::from_str(&lock.to_cyclonedx(&|_| None)).unwrap();
        assert_eq!(bom["specVersion"], "1.6");
        let deps = bom["dependencies"].as_array().unwrap();
        let comps = bom["components"].as_array().unwrap();
        assert_eq!(deps.len(), comps.len() + 1);
        assert!(comps.iter().all(|c| !c["version"].is_null()));
        let spdx: serde_json::Value =
            serde_json::from_str(&lock.to_spdx(&|_| None, "2026-01-01T00:00:00Z")).unwrap();
        assert_eq!(spdx["packages"].as_array().unwrap().len(), comps.len() + 1);
    }
}
