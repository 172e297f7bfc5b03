//! A locked image in other formats: pip requirements with hashes, PEP 751
//! `pylock.toml`, a CycloneDX SBOM. Pure functions of the lock.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::lock::{CondaPackage, LockedImage, LockedStep, PypiPackage, PypiSource};
use crate::oci::Platform;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(
        "image `{image}` has no Python packages for `{platform}`\nhint: locked platforms: {locked}"
    )]
    NoPython {
        image: String,
        platform: String,
        locked: String,
    },
    #[error(
        "image `{image}` has no conda packages for `{platform}`\nhint: locked platforms: {locked}"
    )]
    NoConda {
        image: String,
        platform: String,
        locked: String,
    },
    #[error(
        "image `{image}` installs `{requested}`, which has no hash: pip refuses VCS and path requirements with --require-hashes\nhint: export `--format pylock`, or install it from a wheel URL"
    )]
    NotHashable { image: String, requested: String },
    #[error(
        "image `{image}` installs `{requested}` at a revision that is not a commit id; pylock.toml needs the commit\nhint: pin a full commit id (`@<sha>`) and run `imagelock freeze`"
    )]
    NoCommit { image: String, requested: String },
    #[error("image `{image}` is not locked for `{platform}`\nhint: locked platforms: {locked}")]
    UnknownPlatform {
        image: String,
        platform: String,
        locked: String,
    },
}

impl LockedImage {
    /// The platform to export: the one asked for, or the first locked.
    pub fn export_platform(&self, asked: Option<&str>) -> Result<String, ExportError> {
        let locked = joined(&self.image.platforms);
        match asked {
            Some(p) if self.image.platforms.iter().any(|l| platform_matches(l, p)) => {
                Ok(p.to_string())
            }
            Some(p) => Err(ExportError::UnknownPlatform {
                image: self.image.name.to_string(),
                platform: p.to_string(),
                locked,
            }),
            None => Ok(self
                .image
                .platforms
                .first()
                .map(ToString::to_string)
                .unwrap_or_default()),
        }
    }

    /// The Python distributions the finished image has on `platform`: a
    /// later step's choice of a name replaces an earlier one, as a later
    /// `pip install` does.
    pub fn final_pypi(&self, platform: &str) -> Vec<&PypiPackage> {
        let mut by_name: BTreeMap<&str, &PypiPackage> = BTreeMap::new();
        for step in &self.steps {
            for p in &step.pypi {
                if p.platforms.iter().any(|l| platform_matches(l, platform)) {
                    by_name.insert(&p.name, p);
                }
            }
        }
        by_name.into_values().collect()
    }

    /// The conda packages the finished image has on `platform`, with the
    /// step that decided each: a later step's choice of a name (in the same
    /// target) replaces an earlier one, as a later `conda install` does.
    pub fn final_conda(&self, platform: &str) -> Vec<(&LockedStep, &CondaPackage)> {
        let mut by_name: BTreeMap<(Option<&str>, &str), (&LockedStep, &CondaPackage)> =
            BTreeMap::new();
        for step in &self.steps {
            for p in &step.conda {
                if p.platforms.iter().any(|l| platform_matches(l, platform)) {
                    by_name.insert((step.target.as_deref(), &p.name), (step, p));
                }
            }
        }
        by_name.into_values().collect()
    }

    /// The Debian packages the image has on `platform` after every locked
    /// apt step, by (name, architecture), each with the step that decided
    /// it; a package a later step removed is left out.
    pub fn final_apt(&self, platform: &str) -> Vec<(&LockedStep, &crate::lock::AptPackage)> {
        let mut by_name: BTreeMap<(&str, &str), (&LockedStep, &crate::lock::AptPackage)> =
            BTreeMap::new();
        for step in &self.steps {
            for p in &step.apt {
                if p.platforms.iter().any(|l| platform_matches(l, platform)) {
                    by_name.insert((&p.name, &p.architecture), (step, p));
                }
            }
        }
        by_name
            .into_values()
            .filter(|(_, p)| p.installed_after())
            .collect()
    }

    /// The RPM packages the image has on `platform` after every locked dnf
    /// step, by (name, arch), each with the step that decided it; removed
    /// and replaced packages are left out.
    pub fn final_rpm(&self, platform: &str) -> Vec<(&LockedStep, &crate::lock::RpmPackage)> {
        let mut by_name: BTreeMap<(&str, &str), (&LockedStep, &crate::lock::RpmPackage)> =
            BTreeMap::new();
        for step in &self.steps {
            for p in &step.rpm {
                if p.platforms.iter().any(|l| platform_matches(l, platform)) {
                    by_name.insert((p.name.as_str(), p.arch.as_str()), (step, p));
                }
            }
            // What a later package replaced (obsoleted) is gone.
            let replaced: Vec<String> = step
                .rpm
                .iter()
                .filter(|p| p.platforms.iter().any(|l| platform_matches(l, platform)))
                .flat_map(|p| p.replaces.iter().cloned())
                .collect();
            by_name.retain(|_, (_, p)| !replaced.contains(&p.nevra()));
        }
        by_name
            .into_values()
            .filter(|(_, p)| p.installed_after())
            .collect()
    }

    /// [`Self::final_pypi`] with the step that decided each package.
    pub fn final_pypi_steps(&self, platform: &str) -> Vec<(&LockedStep, &PypiPackage)> {
        let mut by_name: BTreeMap<&str, (&LockedStep, &PypiPackage)> = BTreeMap::new();
        for step in &self.steps {
            for p in &step.pypi {
                if p.platforms.iter().any(|l| platform_matches(l, platform)) {
                    by_name.insert(&p.name, (step, p));
                }
            }
        }
        by_name.into_values().collect()
    }

    /// A requirements file for `pip install --require-hashes --no-deps -r`.
    pub fn to_requirements(&self, platform: &str) -> Result<String, ExportError> {
        let packages = self.final_pypi(platform);
        if packages.is_empty() {
            return Err(self.no_python(platform));
        }
        let mut out = format!(
            "# Python packages of image `{}` for {platform}, from its imagelock lockfile.\n\
             # Install with: pip install --require-hashes --no-deps -r <this file>\n",
            self.image.name
        );
        for p in packages {
            let (Some(sha256), Some(version)) = (&p.sha256, &p.version) else {
                return Err(ExportError::NotHashable {
                    image: self.image.name.to_string(),
                    requested: p.requested.clone().unwrap_or_else(|| p.url.to_string()),
                });
            };
            let pin = if p.source == PypiSource::Url {
                format!("{} @ {}", p.name, p.url)
            } else {
                format!("{}=={version}", p.name)
            };
            let _ = writeln!(out, "{pin} \\\n    --hash=sha256:{sha256}");
        }
        Ok(out)
    }

    /// A PEP 751 lock file (`pylock.toml`) covering every locked platform:
    /// one `[[packages]]` per name and version, with the wheel or sdist of
    /// each platform.
    pub fn to_pylock(&self) -> Result<String, ExportError> {
        let mut doc = toml_edit::DocumentMut::new();
        doc["lock-version"] = toml_edit::value("1.0");
        doc["created-by"] = toml_edit::value("imagelock");
        let mut grouped: BTreeMap<(&str, Option<&str>), Vec<&PypiPackage>> = BTreeMap::new();
        for platform in &self.image.platforms {
            for p in self.final_pypi(&platform.to_string()) {
                let files = grouped.entry((&p.name, p.version.as_deref())).or_default();
                if !files.iter().any(|f| f.file == p.file && f.url == p.url) {
                    files.push(p);
                }
            }
        }
        if grouped.is_empty() {
            let platform = joined(&self.image.platforms);
            return Err(self.no_python(&platform));
        }
        let all: std::collections::BTreeSet<String> =
            self.image.platforms.iter().map(machine_of).collect();
        let mut packages = toml_edit::ArrayOfTables::new();
        for ((name, version), files) in grouped {
            let mut t = toml_edit::Table::new();
            t["name"] = toml_edit::value(name);
            if let Some(version) = version {
                t["version"] = toml_edit::value(version);
            }
            // A package not every platform gets is limited to those that do.
            let machines: std::collections::BTreeSet<String> = files
                .iter()
                .flat_map(|f| f.platforms.iter())
                .map(machine_of)
                .collect();
            if machines != all {
                let marker: Vec<String> = machines
                    .iter()
                    .map(|m| format!("platform_machine == '{m}'"))
                    .collect();
                t["marker"] = toml_edit::value(marker.join(" or "));
            }
            let mut wheels = toml_edit::Array::new();
            for f in &files {
                if f.is_direct() {
                    let (key, table) = self.pylock_direct(f)?;
                    t[key] = toml_edit::value(toml_edit::Value::InlineTable(table));
                    continue;
                }
                let sha256 = f.sha256.as_deref().unwrap_or_default();
                let filename = f.file.as_deref().unwrap_or_default();
                let mut hashes = toml_edit::InlineTable::new();
                hashes.insert("sha256", sha256.into());
                let mut file = toml_edit::InlineTable::new();
                file.insert("name", filename.into());
                file.insert("url", f.url.as_str().into());
                file.insert("hashes", toml_edit::Value::InlineTable(hashes));
                if filename.ends_with(".whl") {
                    wheels.push(toml_edit::Value::InlineTable(file));
                } else {
                    t["sdist"] = toml_edit::value(toml_edit::Value::InlineTable(file));
                }
            }
            if !wheels.is_empty() {
                wheels.set_trailing_comma(true);
                for w in wheels.iter_mut() {
                    w.decor_mut().set_prefix("\n    ");
                }
                wheels.set_trailing("\n");
                t["wheels"] = toml_edit::value(wheels);
            }
            packages.push(t);
        }
        doc["packages"] = toml_edit::Item::ArrayOfTables(packages);
        Ok(doc.to_string())
    }

    /// A conda explicit file (`@EXPLICIT`, CEP 23) for one platform: each
    /// package URL with its hash, in step order, a later step's choice of a
    /// name replacing an earlier one. md5 is the anchor every conda client
    /// reads; the sha256 is given where no md5 is locked.
    pub fn to_conda_explicit(&self, platform: &str) -> Result<String, ExportError> {
        let mut by_name: BTreeMap<&str, &crate::lock::CondaPackage> = BTreeMap::new();
        for step in &self.steps {
            for p in &step.conda {
                if p.platforms.iter().any(|l| platform_matches(l, platform)) {
                    by_name.insert(&p.name, p);
                }
            }
        }
        if by_name.is_empty() {
            return Err(ExportError::NoConda {
                image: self.image.name.to_string(),
                platform: platform.to_string(),
                locked: joined(&self.image.platforms),
            });
        }
        let subdir = by_name
            .values()
            .map(|p| p.subdir.as_str())
            .find(|s| *s != "noarch")
            .unwrap_or("noarch");
        let mut out = format!(
            "# Conda packages of image `{}` for {platform}, from its imagelock lockfile.\n\
             # platform: {subdir}\n@EXPLICIT\n",
            self.image.name
        );
        for p in by_name.values() {
            // A lock written before redaction may still hold a token.
            let url = crate::config::redact::redact_url(&p.url);
            match &p.md5 {
                Some(md5) => {
                    let _ = writeln!(out, "{url}#{md5}");
                }
                None => {
                    let _ = writeln!(out, "{url}#sha256:{}", p.sha256);
                }
            }
        }
        Ok(out)
    }

    /// A CycloneDX 1.5 SBOM (JSON) of the image's base images and packages.
    pub fn to_sbom(&self) -> String {
        let mut components = Vec::new();
        for base in &self.bases {
            let (repo, _) = split_tag(&base.name);
            components.push(serde_json::json!({
                "type": "container",
                "bom-ref": format!("{}@{}", repo, base.digest),
                "name": repo,
                "version": base.digest,
                "purl": format!("pkg:oci/{}@{}?repository_url={}", repo.rsplit('/').next().unwrap_or(repo), base.digest.to_string().replace(':', "%3A"), repo),
                "hashes": [{"alg": "SHA-256", "content": base.digest.hex()}],
            }));
        }
        let mut seen = std::collections::BTreeSet::new();
        for step in &self.steps {
            for p in &step.conda {
                if seen.insert(p.url.to_string()) {
                    components.push(serde_json::json!({
                        "type": "library",
                        "bom-ref": p.url,
                        "name": p.name,
                        "version": format!("{}-{}", p.version, p.build),
                        "purl": format!("pkg:conda/{}@{}?build={}&channel={}&subdir={}", p.name, p.version, p.build, p.channel, p.subdir),
                        "hashes": [{"alg": "SHA-256", "content": p.sha256}],
                        "properties": [{"name": "imagelock:platforms", "value": joined(&p.platforms).replace(", ", ",")}],
                    }));
                }
            }
            for p in &step.pypi {
                if seen.insert(p.url.to_string()) {
                    components.push(serde_json::json!({
                        "type": "library",
                        "bom-ref": p.url,
                        "name": p.name,
                        "version": p.version,
                        "purl": format!("pkg:pypi/{}@{}{}", p.name, p.version_or_unknown(), p.file.as_ref().map(|f| format!("?file_name={f}")).unwrap_or_default()),
                        "hashes": p.sha256.iter().map(|h| serde_json::json!({"alg": "SHA-256", "content": h})).collect::<Vec<_>>(),
                        "properties": [{"name": "imagelock:platforms", "value": joined(&p.platforms).replace(", ", ",")}],
                    }));
                }
            }
        }
        for step in &self.steps {
            for p in step.apt.iter().filter(|p| p.installed_after()) {
                let Some(sha256) = &p.sha256 else { continue };
                if !seen.insert(format!("deb:{sha256}")) {
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
                let source_q = if p.source != p.name || p.source_version.is_some() {
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
                components.push(serde_json::json!({
                    "type": "library",
                    "bom-ref": format!("deb:{}:{}@{}", p.name, p.architecture, p.version),
                    "name": p.name,
                    "version": p.version,
                    "purl": format!(
                        "pkg:deb/{}/{}@{}?arch={}{distro}{source_q}",
                        purl_encode(vendor),
                        p.name,
                        purl_encode(&p.version),
                        p.architecture
                    ),
                    "hashes": [{"alg": "SHA-256", "content": sha256}],
                    "properties": [{"name": "imagelock:platforms", "value": joined(&p.platforms).replace(", ", ",")}],
                }));
            }
        }
        for step in &self.steps {
            for p in step.rpm.iter().filter(|p| p.installed_after()) {
                let Some(sha256) = &p.sha256 else { continue };
                if !seen.insert(format!("rpm:{sha256}")) {
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
                components.push(serde_json::json!({
                    "type": "library",
                    "bom-ref": format!("rpm:{}", p.nevra()),
                    "name": p.name,
                    "version": format!("{}-{}", p.version, p.release),
                    "purl": format!(
                        "pkg:rpm/{}@{}?arch={}{epoch}{repo}",
                        p.name,
                        purl_encode(&format!("{}-{}", p.version, p.release)),
                        p.arch
                    ),
                    "hashes": [{"alg": "SHA-256", "content": sha256}],
                    "properties": [{"name": "imagelock:platforms", "value": joined(&p.platforms).replace(", ", ",")}],
                }));
            }
        }
        let bom = serde_json::json!({
            "bomFormat": "CycloneDX",
            "specVersion": "1.5",
            "version": 1,
            "metadata": {
                "tools": {"components": [{"type": "application", "name": "imagelock", "version": env!("CARGO_PKG_VERSION")}]},
                "component": {"type": "container", "name": self.image.name, "bom-ref": self.image.name},
                "properties": [{"name": "imagelock:input-hash", "value": self.image.input_hash}],
            },
            "components": components,
        });
        let mut text = serde_json::to_string_pretty(&bom).unwrap_or_default();
        text.push('\n');
        text
    }

    /// The PEP 751 source of a direct URL, VCS or path requirement:
    /// `archive`, `vcs` or `directory`.
    fn pylock_direct(
        &self,
        p: &PypiPackage,
    ) -> Result<(&'static str, toml_edit::InlineTable), ExportError> {
        let requested = || p.requested.clone().unwrap_or_else(|| p.url.to_string());
        let mut t = toml_edit::InlineTable::new();
        match p.source {
            PypiSource::Url => {
                t.insert("url", p.url.as_str().into());
                let mut hashes = toml_edit::InlineTable::new();
                hashes.insert("sha256", p.sha256.as_deref().unwrap_or_default().into());
                t.insert("hashes", toml_edit::Value::InlineTable(hashes));
                Ok(("archive", t))
            }
            PypiSource::Vcs => {
                let commit = p.commit.as_deref().ok_or_else(|| ExportError::NoCommit {
                    image: self.image.name.to_string(),
                    requested: requested(),
                })?;
                let (kind, url) = p.url.split_once('+').unwrap_or(("git", &p.url));
                let (url, fragment) = url.split_once('#').unwrap_or((url, ""));
                t.insert("type", kind.into());
                t.insert("url", url.into());
                if let Some(r) = &p.revision {
                    t.insert("requested-revision", r.as_str().into());
                }
                t.insert("commit-id", commit.into());
                if let Some(sub) = fragment
                    .split('&')
                    .find_map(|f| f.strip_prefix("subdirectory="))
                {
                    t.insert("subdirectory", sub.into());
                }
                Ok(("vcs", t))
            }
            PypiSource::Path if p.version.is_none() => {
                t.insert("path", p.url.trim_start_matches("file://").into());
                Ok(("directory", t))
            }
            // A wheel or sdist file in the image: pylock wants its hash.
            PypiSource::Path | PypiSource::Index => Err(ExportError::NotHashable {
                image: self.image.name.to_string(),
                requested: requested(),
            }),
        }
    }

    fn no_python(&self, platform: &str) -> ExportError {
        ExportError::NoPython {
            image: self.image.name.to_string(),
            platform: platform.to_string(),
            locked: joined(&self.image.platforms),
        }
    }
}

/// `linux/arm64` and `linux/arm64/v8` name the same platform.
fn platform_matches(locked: &Platform, asked: &str) -> bool {
    asked.parse::<Platform>().is_ok_and(|a| a == *locked)
}

/// Platforms for a message: `linux/amd64, linux/arm64`.
fn joined(platforms: &[Platform]) -> String {
    platforms
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `platform_machine` inside a container of `platform`; an unknown
/// platform keeps its own text so that no other platform's marker matches it.
pub(crate) fn machine_of(platform: &Platform) -> String {
    platform
        .python_machine()
        .map_or_else(|| platform.to_string(), str::to_string)
}

fn split_tag(name: &str) -> (&str, Option<&str>) {
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[slash..].rfind(':') {
        Some(i) => (&name[..slash + i], Some(&name[slash + i + 1..])),
        None => (name, None),
    }
}

/// Percent-encodes what a purl's version or qualifier value may not hold
/// as is (`:` of an epoch, `+`, `~`, `@`, `&`…).
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
    fn requirements_have_hashes_for_the_platform() {
        let lock = sample();
        insta::assert_snapshot!(lock.to_requirements("linux/arm64/v8").unwrap(), @r"
        # Python packages of image `driver` for linux/arm64/v8, from its imagelock lockfile.
        # Install with: pip install --require-hashes --no-deps -r <this file>
        six==1.0 \
            --hash=sha256:abababababababababababababababababababababababababababababababab
        ");
        assert!(lock.export_platform(Some("linux/s390x")).is_err());
    }

    #[test]
    fn conda_explicit_has_urls_with_hashes() {
        insta::assert_snapshot!(sample().to_conda_explicit("linux/amd64").unwrap(), @r"
        # Conda packages of image `driver` for linux/amd64, from its imagelock lockfile.
        # platform: linux-64
        @EXPLICIT
        https://conda.anaconda.org/conda-forge/linux-64/numpy-1.26.4-py311h64a7726_0.conda#a502d7aad449a1206efb366d6a12c52d
        ");
    }

    #[test]
    fn pylock_is_valid_toml_with_files() {
        let text = sample().to_pylock().unwrap();
        let doc: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(doc["lock-version"].as_str(), Some("1.0"));
        let packages = doc["packages"].as_array().unwrap();
        assert_eq!(packages.len(), 2);
        insta::assert_snapshot!(text);
    }

    #[test]
    fn sbom_lists_bases_and_packages() {
        let bom: serde_json::Value = serde_json::from_str(&sample().to_sbom()).unwrap();
        let comps = bom["components"].as_array().unwrap();
        assert_eq!(comps.len(), 4);
        assert_eq!(comps[0]["type"], "container");
    }
}
