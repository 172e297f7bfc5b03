//! The only place records become lock entries: conda records, pinned
//! Python packages and resolved base images are converted here (each value
//! checked to its grammar on the way in), and the per-platform results of a
//! freeze are merged into one lock.
//!
//! Solvers and resolvers return their own record types and know nothing of
//! the lock; `freeze` hands their results to a [`LockBuilder`].

use crate::lock::value::{InvalidValue, serde_oci};
use crate::lock::{
    ApkPackage, ApkRepo, AptPackage, AptSource, CondaPackage, LockedBase, LockedDownload,
    LockedGit, LockedImage, LockedPlatformImage, LockedStage, LockedStep, PypiPackage, PypiSource,
    RpmPackage, RpmRepo, Sha256,
};
use crate::oci::ResolvedImage;
use crate::oci::{Digest, Platform};
use crate::solve::conda::{CondaRecord, CondaSolution};
use crate::solve::python::{DirectKind, PinnedPackage, PinnedSource};

/// A record that cannot be written into a lock: a channel, index or
/// registry gave a value outside its grammar.
#[derive(Debug, thiserror::Error)]
#[error("cannot lock {what}: {field} {source}")]
pub struct LockBuildError {
    /// What was being locked (`conda package `zlib``).
    pub what: String,
    /// The lock key the value was for.
    pub field: &'static str,
    #[source]
    pub source: InvalidValue,
}

fn check<T>(
    what: &dyn Fn() -> String,
    field: &'static str,
    value: impl AsRef<str>,
) -> Result<T, LockBuildError>
where
    T: for<'a> TryFrom<&'a str, Error = InvalidValue>,
{
    T::try_from(value.as_ref()).map_err(|source| LockBuildError {
        what: what(),
        field,
        source,
    })
}

/// A lock platform from freeze's spelling of it.
pub fn lock_platform(platform: &str) -> Result<Platform, LockBuildError> {
    serde_oci::parse_platform(platform).map_err(|source| LockBuildError {
        what: format!("platform `{}`", platform.escape_debug()),
        field: "platforms",
        source,
    })
}

impl CondaPackage {
    /// The entry for one conda record installed on `platform`.
    pub fn from_record(
        record: &CondaRecord,
        requested: Option<&str>,
        platform: &Platform,
    ) -> Result<CondaPackage, LockBuildError> {
        let what = || format!("conda package `{}`", record.name().escape_debug());
        let sha256 = record.sha256().ok_or_else(|| LockBuildError {
            what: what(),
            field: "sha256",
            source: InvalidValue(
                "is missing: the channel lists no sha256 for it\nhint: use a channel whose repodata carries sha256 hashes".into(),
            ),
        })?;
        Ok(CondaPackage {
            name: check(&what, "name", record.name())?,
            version: check(&what, "version", record.version())?,
            build: check(&what, "build", record.build())?,
            build_number: record.build_number(),
            // Channel tokens never enter a lock.
            channel: check(
                &what,
                "channel",
                crate::config::redact::redact_url(record.channel()),
            )?,
            subdir: check(&what, "subdir", record.subdir())?,
            url: check(
                &what,
                "url",
                crate::config::redact::redact_url(record.url()),
            )?,
            sha256: check(&what, "sha256", sha256)?,
            md5: record.md5().map(|m| check(&what, "md5", m)).transpose()?,
            size: record.size(),
            requested: requested.map(str::to_string),
            platforms: vec![platform.clone()],
        })
    }

    /// Entries for what a conda step installs (new or changed packages).
    pub fn from_solution(
        solution: &CondaSolution,
        platform: &Platform,
    ) -> Result<Vec<CondaPackage>, LockBuildError> {
        solution
            .packages
            .iter()
            .filter(|p| !p.unchanged)
            .map(|p| CondaPackage::from_record(&p.record, p.requested.as_deref(), platform))
            .collect()
    }
}

impl PypiPackage {
    /// The entry for one pinned Python package on `platform`; `None` for
    /// packages that were already installed (they are not part of the
    /// step).
    pub fn from_pin(
        pin: &PinnedPackage,
        platform: &Platform,
    ) -> Result<Option<PypiPackage>, LockBuildError> {
        let what = || format!("Python package `{}`", pin.name);
        let (source, file, url, sha256, revision, commit) = match &pin.source {
            PinnedSource::Index(f) => (
                PypiSource::Index,
                Some(&f.filename),
                &f.url,
                f.sha256.as_ref(),
                None,
                None,
            ),
            PinnedSource::Direct(d) => (
                PypiSource::Url,
                Some(&d.filename),
                &d.url,
                d.sha256.as_ref(),
                None,
                None,
            ),
            PinnedSource::Unbuilt(u) => (
                match u.kind {
                    DirectKind::Vcs => PypiSource::Vcs,
                    DirectKind::Archive | DirectKind::Path => PypiSource::Path,
                },
                None,
                &u.url,
                None,
                u.revision.as_ref(),
                u.commit.as_ref(),
            ),
            PinnedSource::Installed => return Ok(None),
        };
        Ok(Some(PypiPackage {
            name: check(&what, "name", &pin.name)?,
            version: pin
                .version
                .as_ref()
                .map(|v| check(&what, "version", v.to_string()))
                .transpose()?,
            requested: pin.requested.clone(),
            source,
            file: file.map(|f| check(&what, "file", f)).transpose()?,
            url: check(&what, "url", url)?,
            sha256: sha256
                .map(|h| check::<Sha256>(&what, "sha256", h))
                .transpose()?,
            revision: revision.map(|r| check(&what, "revision", r)).transpose()?,
            commit: commit.map(|c| check(&what, "commit", c)).transpose()?,
            required_by: pin.required_by.clone(),
            platforms: vec![platform.clone()],
        }))
    }
}

impl LockedBase {
    /// The entry for a resolved image; `references` are the spellings the
    /// definition uses for it.
    pub fn from_resolved(
        image: &ResolvedImage,
        references: &[String],
    ) -> Result<LockedBase, LockBuildError> {
        let what = || format!("image `{}`", image.name.escape_debug());
        Ok(LockedBase {
            name: check(&what, "name", &image.name)?,
            references: references
                .iter()
                .map(|r| check(&what, "references", r))
                .collect::<Result<_, _>>()?,
            digest: image.digest.clone(),
            media_type: check(&what, "media-type", &image.media_type)?,
            built_from: None,
            agent: None,
            pinned: None,
            platforms: image
                .platforms
                .iter()
                .map(|p| {
                    // A registry always names the platform's manifest; an
                    // image read without one cannot be pinned.
                    let digest = p.manifest_digest.clone().ok_or_else(|| LockBuildError {
                        what: what(),
                        field: "platforms.digest",
                        source: InvalidValue(format!(
                            "has no manifest digest for `{}`",
                            p.platform
                        )),
                    })?;
                    Ok(LockedPlatformImage {
                        platform: p.platform.clone(),
                        digest,
                        config: p.config_digest.clone(),
                        diff_ids: p.config.diff_ids.clone(),
                    })
                })
                .collect::<Result<_, LockBuildError>>()?,
        })
    }
}

impl AptPackage {
    /// The entry for one package an apt step changes on `platform`.
    pub fn from_record(
        record: &crate::solve::apt::AptRecord,
        suite: Option<&str>,
        platform: &Platform,
    ) -> Result<AptPackage, LockBuildError> {
        use crate::solve::apt::AptAction;
        let what = || format!("Debian package `{}`", record.name.escape_debug());
        let action = match record.action {
            AptAction::Install => "install",
            AptAction::Upgrade => "upgrade",
            AptAction::Downgrade => "downgrade",
            AptAction::Remove => "remove",
            AptAction::Purge => "purge",
            AptAction::Keep => "keep",
        };
        let fetched = matches!(
            record.action,
            AptAction::Install | AptAction::Upgrade | AptAction::Downgrade
        );
        let source = if record.source.is_empty() {
            record.name.as_str()
        } else {
            record.source.as_str()
        };
        Ok(AptPackage {
            name: check(&what, "name", &record.name)?,
            version: check(&what, "version", &record.version)?,
            architecture: check(&what, "architecture", &record.architecture)?,
            action: check(&what, "action", action)?,
            source: check(&what, "source", source)?,
            source_version: (!record.source_version.is_empty()
                && record.source_version != record.version)
                .then(|| check(&what, "source-version", &record.source_version))
                .transpose()?,
            uri: fetched
                .then(|| {
                    check(
                        &what,
                        "uri",
                        crate::config::redact::redact_url(&record.archive_uri),
                    )
                })
                .transpose()?,
            suite: suite
                .filter(|s| fetched && !s.is_empty())
                .map(|s| check(&what, "suite", s))
                .transpose()?,
            filename: fetched
                .then(|| check(&what, "filename", &record.filename))
                .transpose()?,
            size: fetched.then_some(record.size),
            sha256: fetched
                .then(|| check(&what, "sha256", &record.sha256))
                .transpose()?,
            required_by: vec![record.reason.clone()]
                .into_iter()
                .filter(|r| !r.is_empty() && !crate::lock::value::has_control(r))
                .collect(),
            in_base: record.in_base,
            platforms: vec![platform.clone()],
        })
    }
}

impl RpmPackage {
    /// The entry for one package a dnf step changes on `platform`:
    /// `fetched` is what the repository offers for an install or upgrade
    /// (with the repository id), `None` for a removal.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &str,
        evr: &crate::solve::rpm::Evr,
        arch: &str,
        action: &str,
        fetched: Option<(&crate::solve::rpm::RpmPackage, &str)>,
        required_by: Option<String>,
        replaces: Vec<String>,
        platform: &Platform,
    ) -> Result<RpmPackage, LockBuildError> {
        let what = || format!("RPM package `{}`", name.escape_debug());
        let sha256 = match fetched {
            Some((p, _)) if p.checksum.0 == "sha256" => {
                Some(check(&what, "sha256", &p.checksum.1)?)
            }
            _ => None,
        };
        Ok(RpmPackage {
            name: check(&what, "name", name)?,
            epoch: evr.epoch,
            version: check(&what, "version", &evr.version)?,
            release: check(&what, "release", &evr.release)?,
            arch: check(&what, "arch", arch)?,
            action: check(&what, "action", action)?,
            repo: fetched.map(|(_, r)| check(&what, "repo", r)).transpose()?,
            location: fetched
                .map(|(p, _)| check(&what, "location", &p.location))
                .transpose()?,
            size: fetched.map(|(p, _)| p.size),
            sha256,
            required_by: required_by
                .into_iter()
                .filter(|r| !r.is_empty() && !crate::lock::value::has_control(r))
                .collect(),
            replaces: replaces
                .into_iter()
                .filter(|r| !crate::lock::value::has_control(r))
                .collect(),
            platforms: vec![platform.clone()],
        })
    }
}

impl RpmRepo {
    /// The entry for one repository read on `platform`.
    pub fn new(
        repo: &crate::resolve::rpm::FetchedRepo,
        platform: &Platform,
    ) -> Result<RpmRepo, LockBuildError> {
        let what = || format!("RPM repository `{}`", repo.id.escape_debug());
        Ok(RpmRepo {
            id: check(&what, "id", &repo.id)?,
            baseurl: check(
                &what,
                "baseurl",
                crate::config::redact::redact_url(&repo.baseurl),
            )?,
            revision: repo
                .repomd
                .revision
                .as_deref()
                .filter(|r| !r.is_empty())
                .map(|r| check(&what, "revision", r))
                .transpose()?,
            repomd_sha256: check(&what, "repomd-sha256", &repo.repomd_sha256)?,
            signed: repo.signed,
            platforms: vec![platform.clone()],
        })
    }
}

impl AptSource {
    /// The entry for one archive source read on `platform`: `uri` as the
    /// image names it, the signed release's `date` and sha256.
    pub fn new(
        uri: &str,
        suite: &str,
        components: &[String],
        release: &crate::solve::apt::release::ReleaseFile,
        release_sha256: &str,
        platform: &Platform,
    ) -> Result<AptSource, LockBuildError> {
        let date = release.date.as_str();
        let vendor = release
            .origin
            .split_whitespace()
            .next()
            .map(str::to_ascii_lowercase);
        let codename = Some(release.codename.as_str()).filter(|c| !c.is_empty());
        let what = || {
            format!(
                "apt source `{} {}`",
                uri.escape_debug(),
                suite.escape_debug()
            )
        };
        let date: crate::lock::AptDate = check(&what, "date", date)?;
        let seconds = crate::solve::apt::release::parse_release_date(&date).unwrap_or_default();
        let snapshot = jiff::Timestamp::from_second(seconds)
            .map(|t| t.strftime("%Y%m%dT%H%M%SZ").to_string())
            .unwrap_or_default();
        Ok(AptSource {
            uri: check(&what, "uri", crate::config::redact::redact_url(uri))?,
            suite: check(&what, "suite", suite)?,
            components: components
                .iter()
                .map(|c| check(&what, "components", c))
                .collect::<Result<_, _>>()?,
            vendor: vendor.map(|v| check(&what, "vendor", v)).transpose()?,
            codename: codename.map(|c| check(&what, "codename", c)).transpose()?,
            date,
            release_sha256: check(&what, "release-sha256", release_sha256)?,
            snapshot: check(&what, "snapshot", snapshot)?,
            platforms: vec![platform.clone()],
        })
    }
}

impl ApkPackage {
    /// The entry for one package an apk step changes on `platform`:
    /// `record` with the repository URL it comes from (`None` for a
    /// removal), or a virtual package (`record` `None`, action `virtual`).
    pub fn new(
        name: &str,
        record: Option<(&crate::solve::apk::ApkRecord, Option<&str>)>,
        action: &str,
        required_by: Option<String>,
        platform: &Platform,
    ) -> Result<ApkPackage, LockBuildError> {
        let what = || format!("apk package `{}`", name.escape_debug());
        let r = record.map(|(r, _)| r);
        Ok(ApkPackage {
            name: check(&what, "name", name)?,
            version: r.map(|r| check(&what, "version", &r.version)).transpose()?,
            arch: r
                .filter(|r| !r.arch.is_empty())
                .map(|r| check(&what, "arch", &r.arch))
                .transpose()?,
            action: check(&what, "action", action)?,
            repository: record
                .and_then(|(_, u)| u)
                .filter(|_| action != "remove")
                .map(|u| check(&what, "repository", u))
                .transpose()?,
            checksum: r
                .filter(|_| action != "remove")
                .and_then(|r| r.checksum.as_ref())
                .map(|c| check(&what, "checksum", c))
                .transpose()?,
            size: r.filter(|_| action != "remove").and_then(|r| r.size),
            required_by: required_by
                .into_iter()
                .filter(|r| !r.is_empty() && !crate::lock::value::has_control(r))
                .collect(),
            platforms: vec![platform.clone()],
        })
    }
}

impl ApkRepo {
    /// The entry for one repository index read on `platform`.
    pub fn new(
        index: &crate::resolve::apk::FetchedApkIndex,
        platform: &Platform,
    ) -> Result<ApkRepo, LockBuildError> {
        let what = || format!("apk repository `{}`", index.repo.url.escape_debug());
        Ok(ApkRepo {
            url: check(&what, "url", &index.repo.url)?,
            tag: index
                .repo
                .tag
                .as_ref()
                .map(|t| check(&what, "tag", t))
                .transpose()?,
            index_sha256: check(&what, "index-sha256", &index.sha256)?,
            key: check(&what, "key", &index.key)?,
            description: index
                .description
                .as_ref()
                .filter(|d| {
                    !d.is_empty() && !d.contains(char::is_whitespace) && !d.starts_with('-')
                })
                .map(|d| check(&what, "description", d))
                .transpose()?,
            platforms: vec![platform.clone()],
        })
    }
}

impl LockedStep {
    /// Adds one platform's apk entry: the same package (or removal) on
    /// another platform is one entry with both platforms.
    pub fn merge_apk(&mut self, p: ApkPackage) {
        match self.apk.iter_mut().find(|q| {
            q.name == p.name
                && q.version == p.version
                && q.arch == p.arch
                && q.action == p.action
                && q.checksum == p.checksum
        }) {
            Some(q) => {
                q.platforms.extend(p.platforms);
                q.required_by.extend(p.required_by);
            }
            None => self.apk.push(p),
        }
    }

    /// Adds one platform's apk repository, likewise.
    pub fn merge_apk_repo(&mut self, r: ApkRepo) {
        match self
            .apk_repos
            .iter_mut()
            .find(|q| q.url == r.url && q.index_sha256 == r.index_sha256)
        {
            Some(q) => q.platforms.extend(r.platforms),
            None => self.apk_repos.push(r),
        }
    }

    /// Adds one platform's apt entry: the same `.deb` (or the same removal)
    /// on another platform is one entry with both platforms.
    pub fn merge_apt(&mut self, p: AptPackage) {
        match self.apt.iter_mut().find(|q| {
            q.name == p.name
                && q.version == p.version
                && q.architecture == p.architecture
                && q.action == p.action
                && q.sha256 == p.sha256
        }) {
            Some(q) => {
                q.platforms.extend(p.platforms);
                q.required_by.extend(p.required_by);
                q.in_base &= p.in_base;
            }
            None => self.apt.push(p),
        }
    }

    /// Adds one platform's RPM entry: the same package (or the same
    /// removal) on another platform is one entry with both platforms.
    pub fn merge_rpm(&mut self, p: RpmPackage) {
        match self.rpm.iter_mut().find(|q| {
            q.name == p.name
                && q.epoch == p.epoch
                && q.version == p.version
                && q.release == p.release
                && q.arch == p.arch
                && q.action == p.action
                && q.sha256 == p.sha256
        }) {
            Some(q) => {
                q.platforms.extend(p.platforms);
                q.required_by.extend(p.required_by);
            }
            None => self.rpm.push(p),
        }
    }

    /// Adds one platform's RPM repository, likewise.
    pub fn merge_rpm_repo(&mut self, r: RpmRepo) {
        match self
            .rpm_repos
            .iter_mut()
            .find(|q| q.id == r.id && q.baseurl == r.baseurl && q.repomd_sha256 == r.repomd_sha256)
        {
            Some(q) => q.platforms.extend(r.platforms),
            None => self.rpm_repos.push(r),
        }
    }

    /// Adds one platform's archive source, likewise.
    pub fn merge_apt_source(&mut self, s: AptSource) {
        match self
            .apt_sources
            .iter_mut()
            .find(|q| q.uri == s.uri && q.suite == s.suite && q.release_sha256 == s.release_sha256)
        {
            Some(q) => {
                q.platforms.extend(s.platforms);
                for c in s.components {
                    if !q.components.contains(&c) {
                        q.components.push(c);
                    }
                }
            }
            None => self.apt_sources.push(s),
        }
    }

    /// Adds one platform's conda entry: the same file on another platform
    /// is one entry with both platforms.
    pub fn merge_conda(&mut self, p: CondaPackage) {
        match self
            .conda
            .iter_mut()
            .find(|q| q.url == p.url && q.sha256 == p.sha256)
        {
            Some(q) => q.platforms.extend(p.platforms),
            None => self.conda.push(p),
        }
    }

    /// Adds one platform's Python entry, likewise.
    pub fn merge_pypi(&mut self, p: PypiPackage) {
        match self
            .pypi
            .iter_mut()
            .find(|q| q.url == p.url && q.sha256 == p.sha256 && q.version == p.version)
        {
            Some(q) => {
                // Edges may differ by platform; the entry keeps every
                // reason it is there.
                q.platforms.extend(p.platforms);
                q.required_by.extend(p.required_by);
            }
            None => self.pypi.push(p),
        }
    }
}

/// Assembles one image's lock from what each platform resolved, and
/// collects what the lock cannot promise (step warnings and what could not
/// be read from base images) in a fixed order, without repeats.
#[derive(Debug)]
pub struct LockBuilder {
    lock: LockedImage,
    warnings: Vec<String>,
}

impl LockBuilder {
    /// Starts from the lock's skeleton (image, stages).
    pub fn new(skeleton: LockedImage) -> Self {
        Self {
            lock: skeleton,
            warnings: Vec::new(),
        }
    }

    pub fn bases(&mut self, bases: Vec<LockedBase>) -> &mut Self {
        self.lock.bases = bases;
        self
    }

    /// Records warnings, keeping the first of repeats.
    pub fn warn(&mut self, warnings: impl IntoIterator<Item = String>) -> &mut Self {
        for w in warnings {
            if !self.warnings.contains(&w) {
                self.warnings.push(w);
            }
        }
        self
    }

    /// Records a file fetched by stage `stage` (a stage of the skeleton).
    pub fn download(&mut self, stage: usize, download: LockedDownload) -> &mut Self {
        if let Some(s) = self
            .lock
            .stages
            .iter_mut()
            .find(|s| usize::try_from(s.index).is_ok_and(|i| i == stage))
        {
            s.downloads.push(download);
        }
        self
    }

    /// Records a git repository fetched by stage `stage`.
    pub fn git(&mut self, stage: usize, git: LockedGit) -> &mut Self {
        if let Some(s) = self
            .lock
            .stages
            .iter_mut()
            .find(|s| usize::try_from(s.index).is_ok_and(|i| i == stage))
        {
            s.git.push(git);
        }
        self
    }

    /// Adds a step whose entries were merged over its platforms.
    pub fn step(&mut self, step: LockedStep) -> &mut Self {
        self.lock.steps.push(step);
        self
    }

    /// The lock in canonical order, with its content hash, and the
    /// warnings.
    pub fn finish(self) -> (LockedImage, Vec<String>) {
        let mut lock = self.lock;
        lock.normalize();
        lock.image.content_hash = Some(lock.computed_content_hash());
        (lock, self.warnings)
    }
}

/// What a step is, before its entries: where it is and what it asked for.
#[derive(Clone, Copy, Debug)]
pub struct StepHeader<'a> {
    pub stage: usize,
    pub file: &'a str,
    pub line: usize,
    pub command: &'a str,
    pub manager: &'a str,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub requested: &'a [String],
    pub channels: &'a [String],
    pub indexes: &'a [String],
    pub find_links: &'a [String],
    pub locked: bool,
    /// Why it is not locked, when it is not.
    pub reason: Option<&'a str>,
}

impl LockedStep {
    /// A step without entries yet ([`Self::merge_conda`],
    /// [`Self::merge_pypi`] add them).
    pub fn header(h: StepHeader<'_>) -> Result<LockedStep, LockBuildError> {
        let what = || format!("the step at `{}`:{}", h.file.escape_debug(), h.line);
        let one_line = |field: &'static str, text: &str| {
            if crate::lock::value::has_control(text) {
                Err(LockBuildError {
                    what: what(),
                    field,
                    source: InvalidValue(format!(
                        "contains a control character: {}",
                        crate::lock::value::shown(text)
                    )),
                })
            } else {
                Ok(text.to_string())
            }
        };
        Ok(LockedStep {
            stage: u32::try_from(h.stage).unwrap_or(u32::MAX),
            file: check(&what, "file", h.file)?,
            line: u32::try_from(h.line).unwrap_or(u32::MAX),
            command: one_line("command", h.command)?,
            manager: check(&what, "manager", h.manager)?,
            action: check(&what, "action", h.action)?,
            target: h.target.map(|t| one_line("target", t)).transpose()?,
            requested: h
                .requested
                .iter()
                .map(|r| one_line("requested", r))
                .collect::<Result<_, _>>()?,
            channels: h
                .channels
                .iter()
                .map(|c| check(&what, "channels", c))
                .collect::<Result<_, _>>()?,
            indexes: h
                .indexes
                .iter()
                .map(|i| check(&what, "indexes", i))
                .collect::<Result<_, _>>()?,
            find_links: h
                .find_links
                .iter()
                .map(|i| check(&what, "find-links", i))
                .collect::<Result<_, _>>()?,
            locked: h.locked,
            reason: h.reason.map(|r| one_line("reason", r)).transpose()?,
            conda: Vec::new(),
            pypi: Vec::new(),
            apt_sources: Vec::new(),
            apt: Vec::new(),
            rpm_repos: Vec::new(),
            apk_repos: Vec::new(),
            apk: Vec::new(),
            rpm: Vec::new(),
        })
    }
}

impl LockedStage {
    /// One stage: `base` as written after expansion (`scratch`, `stage:N`),
    /// `base_name` the canonical name when it is an image.
    pub fn new(
        index: usize,
        name: Option<&str>,
        base: &str,
        base_name: Option<&str>,
    ) -> Result<LockedStage, LockBuildError> {
        let what = || format!("stage {index}");
        Ok(LockedStage {
            index: u32::try_from(index).unwrap_or(u32::MAX),
            name: name.map(|n| check(&what, "name", n)).transpose()?,
            base: check(&what, "base", base)?,
            base_name: base_name
                .map(|n| check(&what, "base-name", n))
                .transpose()?,
            downloads: Vec::new(),
            git: Vec::new(),
        })
    }
}

impl LockedDownload {
    /// The entry for the file fetched from `url` at `line` of stage
    /// `stage`.
    pub fn new(
        stage: usize,
        line: usize,
        url: &str,
        sha256: &str,
        size: u64,
    ) -> Result<LockedDownload, LockBuildError> {
        let what = || format!("the download at line {line} of stage {stage}");
        Ok(LockedDownload {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            url: check(&what, "url", url)?,
            sha256: check(&what, "sha256", sha256)?,
            size,
        })
    }
}

impl LockedGit {
    /// The entry for the repository `url` (credentials are dropped) cloned
    /// at `line` asking for `reference`: `Ok(commit)` as found, or why it
    /// could not be.
    pub fn new(
        stage: usize,
        line: usize,
        url: &str,
        reference: &str,
        commit: Result<&str, &str>,
    ) -> Result<LockedGit, LockBuildError> {
        let what = || format!("the git repository at line {line} of stage {stage}");
        let url = crate::config::redact::redact_url(url);
        Ok(LockedGit {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            url: check(&what, "url", &url)?,
            reference: check(&what, "ref", reference)?,
            commit: commit.ok().map(|c| check(&what, "commit", c)).transpose()?,
            // One line: a lock string holds no control characters.
            reason: commit.err().map(|r| {
                r.split(|c: char| c.is_whitespace() || c.is_control())
                    .filter(|w| !w.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ")
            }),
        })
    }
}

impl LockedImage {
    /// A lock without bases or steps: what the image is and what it was
    /// made from.
    pub fn skeleton(
        name: &str,
        definition: &str,
        input_hash: Digest,
        platforms: &[String],
        stages: Vec<LockedStage>,
    ) -> Result<LockedImage, LockBuildError> {
        let what = || format!("image `{}`", name.escape_debug());
        Ok(LockedImage {
            version: crate::lock::LOCK_VERSION,
            image: crate::lock::ImageMeta {
                name: check(&what, "name", name)?,
                definition: check(&what, "definition", definition)?,
                input_hash,
                content_hash: None,
                platforms: platforms
                    .iter()
                    .map(|p| lock_platform(p))
                    .collect::<Result<_, _>>()?,
            },
            stages,
            bases: Vec::new(),
            steps: Vec::new(),
        })
    }
}

impl LockedBase {
    /// The entry for a base that is another image of this repository,
    /// `parent`, locked as `lock`: its digest is the sha256 of that
    /// lockfile, since the image is built from it and has no digest before
    /// the build.
    pub fn from_repository_lock(
        name: &str,
        references: &[String],
        parent: &str,
        lock: &LockedImage,
    ) -> Result<LockedBase, LockBuildError> {
        let what = || format!("image `{}`", name.escape_debug());
        Ok(LockedBase {
            name: check(&what, "name", name)?,
            references: references
                .iter()
                .map(|r| check(&what, "references", r))
                .collect::<Result<_, _>>()?,
            digest: Digest::sha256_of(lock.to_toml().as_bytes()),
            media_type: check(&what, "media-type", LOCK_MEDIA_TYPE)?,
            built_from: Some(check(&what, "built-from", parent)?),
            agent: None,
            pinned: None,
            platforms: Vec::new(),
        })
    }
}

impl LockedBase {
    /// The entry for a base read on this machine (an Apptainer
    /// `docker-daemon`, archive, layout or `localimage` base): `name` is
    /// where it was read (`docker-archive:base.tar`), `digest` what pins it
    /// (of kind `pinned`), `media_type` what that digest names.
    pub fn local(
        name: &str,
        references: &[String],
        agent: &str,
        pinned: &str,
        digest: Digest,
        media_type: &str,
    ) -> Result<LockedBase, LockBuildError> {
        let what = || format!("image `{}`", name.escape_debug());
        Ok(LockedBase {
            name: check(&what, "name", name)?,
            references: references
                .iter()
                .map(|r| check(&what, "references", r))
                .collect::<Result<_, _>>()?,
            digest,
            media_type: check(&what, "media-type", media_type)?,
            built_from: None,
            agent: Some(check(&what, "agent", agent)?),
            pinned: Some(check(&what, "pinned", pinned)?),
            platforms: Vec::new(),
        })
    }
}

/// The media type recorded for a base that is another image of this
/// repository (see [`LockedBase::from_repository_lock`]).
pub const LOCK_MEDIA_TYPE: &str = "application/vnd.imagelock.lock.v1+toml";
