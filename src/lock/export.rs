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
    #[error(
        "image `{image}` has conda packages in several environments ({envs}); one explicit file describes one\nhint: pick one with `--env NAME`"
    )]
    SeveralEnvironments { image: String, envs: String },
    #[error("image `{image}` has no conda environment `{env}`\nhint: its environments: {envs}")]
    NoEnvironment {
        image: String,
        env: String,
        envs: String,
    },
    #[error(
        "image `{image}` locks `{url}` from a local channel or package index, relative to its configuration, which was not found\nhint: export by image name with `--config`, so the URL can be made absolute"
    )]
    RelativeUrl { image: String, url: String },
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
        for step in self.image_steps() {
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

    /// The Alpine packages the image has on `platform` after every locked
    /// apk step, by name, each with the step that decided it; removed
    /// packages are left out.
    pub fn final_apk(&self, platform: &str) -> Vec<(&LockedStep, &crate::lock::ApkPackage)> {
        let mut by_name: BTreeMap<&str, (&LockedStep, &crate::lock::ApkPackage)> = BTreeMap::new();
        for step in &self.steps {
            for p in &step.apk {
                if p.platforms.iter().any(|l| platform_matches(l, platform)) {
                    by_name.insert(p.name.as_str(), (step, p));
                }
            }
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
            // Every file locked for this release, on any platform: pip
            // accepts any of them, so the file can be fetched for another
            // platform too (as pip-compile and uv write it).
            let mut hashes: Vec<&str> = self
                .image_steps()
                .flat_map(|s| &s.pypi)
                .filter(|q| {
                    q.name == p.name
                        && q.version == p.version
                        && q.source == p.source
                        && (p.source == PypiSource::Index || q.url == p.url)
                })
                .filter_map(|q| q.sha256.as_deref())
                .collect();
            hashes.push(sha256);
            hashes.sort_unstable();
            hashes.dedup();
            let _ = write!(out, "{pin}");
            for h in hashes {
                let _ = write!(out, " \\\n    --hash=sha256:{h}");
            }
            out.push('\n');
        }
        Ok(out)
    }

    /// A PEP 751 lock file (`pylock.toml`) covering every locked platform:
    /// one `[[packages]]` per name and version, with the wheel or sdist of
    /// each platform. Files of a local index, which the lock keeps relative
    /// to the configuration, get absolute `file://` URLs against `root`.
    pub fn to_pylock(&self, root: Option<&std::path::Path>) -> Result<String, ExportError> {
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
                file.insert("url", self.absolute_url(f.url.to_string(), root)?.into());
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

    /// A conda explicit file (`@EXPLICIT`, CEP 23) for one platform and one
    /// environment (`env`, needed when the image has several): each
    /// package URL with its hash, in step order, a later step's choice of
    /// a name replacing an earlier one. md5 is the anchor every conda
    /// client reads; the sha256 is given where no md5 is locked. URLs of
    /// local channels, which the lock keeps relative to the configuration,
    /// are made absolute against `root`.
    pub fn to_conda_explicit(
        &self,
        platform: &str,
        env: Option<&str>,
        root: Option<&std::path::Path>,
    ) -> Result<String, ExportError> {
        let mut envs: BTreeMap<&str, BTreeMap<&str, &crate::lock::CondaPackage>> = BTreeMap::new();
        for step in self.image_steps() {
            for p in &step.conda {
                if p.platforms.iter().any(|l| platform_matches(l, platform)) {
                    envs.entry(step.target.as_deref().unwrap_or_default())
                        .or_default()
                        .insert(&p.name, p);
                }
            }
        }
        let names = || {
            envs.keys()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (target, by_name) = match env {
            Some(e) => {
                let found = envs.iter().find(|(k, _)| {
                    **k == e || std::path::Path::new(k).file_name().is_some_and(|n| n == e)
                });
                match found {
                    Some((k, v)) => (*k, v),
                    None => {
                        return Err(ExportError::NoEnvironment {
                            image: self.image.name.to_string(),
                            env: e.to_string(),
                            envs: names(),
                        });
                    }
                }
            }
            None if envs.len() > 1 => {
                return Err(ExportError::SeveralEnvironments {
                    image: self.image.name.to_string(),
                    envs: names(),
                });
            }
            None => match envs.iter().next() {
                Some((k, v)) => (*k, v),
                None => return Err(self.no_conda(platform)),
            },
        };
        let subdir = by_name
            .values()
            .map(|p| p.subdir.as_str())
            .find(|s| *s != "noarch")
            .unwrap_or("noarch");
        let env_line = if target.is_empty() {
            String::new()
        } else {
            format!("# environment: {target}\n")
        };
        let mut out = format!(
            "# Conda packages of image `{}` for {platform}, from its imagelock lockfile.\n\
             {env_line}# platform: {subdir}\n@EXPLICIT\n",
            self.image.name
        );
        for p in by_name.values() {
            // A lock written before redaction may still hold a token.
            let url = crate::config::redact::redact_url(&p.url);
            let url = self.absolute_url(url, root)?;
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

    /// A CycloneDX SBOM (JSON) of the final image, without the packages
    /// of in-repo parents (see [`Self::to_cyclonedx`]).
    pub fn to_sbom(&self) -> String {
        self.to_cyclonedx(&|_| None)
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

    /// `url` as an absolute URL: a local channel or index, which the lock
    /// keeps relative to the configuration, becomes a `file://` URL under
    /// `root`; without `root` that is said, never written relative.
    fn absolute_url(
        &self,
        url: String,
        root: Option<&std::path::Path>,
    ) -> Result<String, ExportError> {
        if url.contains("://") {
            return Ok(url);
        }
        let Some(root) = root else {
            return Err(ExportError::RelativeUrl {
                image: self.image.name.to_string(),
                url,
            });
        };
        let mut path = std::path::PathBuf::new();
        for c in root.join(&url).components() {
            match c {
                std::path::Component::ParentDir => {
                    path.pop();
                }
                std::path::Component::CurDir => {}
                c => path.push(c),
            }
        }
        Ok(format!("file://{}", path.display()))
    }

    fn no_conda(&self, platform: &str) -> ExportError {
        ExportError::NoConda {
            image: self.image.name.to_string(),
            platform: platform.to_string(),
            locked: joined(&self.image.platforms),
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

pub(super) fn split_tag(name: &str) -> (&str, Option<&str>) {
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[slash..].rfind(':') {
        Some(i) => (&name[..slash + i], Some(&name[slash + i + 1..])),
        None => (name, None),
    }
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
        insta::assert_snapshot!(sample().to_conda_explicit("linux/amd64", None, None).unwrap(), @r"
        # Conda packages of image `driver` for linux/amd64, from its imagelock lockfile.
        # environment: /opt/conda
        # platform: linux-64
        @EXPLICIT
        https://conda.anaconda.org/conda-forge/linux-64/numpy-1.26.4-py311h64a7726_0.conda#a502d7aad449a1206efb366d6a12c52d
        ");
    }

    #[test]
    fn pylock_is_valid_toml_with_files() {
        let text = sample().to_pylock(None).unwrap();
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
