//! The lockfile model, version 1.

use serde::{Deserialize, Serialize};

use crate::lock::value::{
    AptDate, CondaBuild, CondaName, CondaVersion, DebArch, DebName, DebVersion, GitCommit, LockUrl,
    Md5, PypiName, PypiVersion, RepoPath, Sha256, Subdir, Token, serde_oci,
};
use crate::oci::{Digest, Platform};

/// A locked image: what one definition file builds, pinned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LockedImage {
    /// Lockfile format version.
    #[cfg_attr(test, schemars(schema_with = "version_schema"))]
    pub version: u32,
    pub image: ImageMeta,
    /// Stages in file order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<LockedStage>,
    /// Every image the definition pulls (bases and `COPY --from` images), by
    /// canonical name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bases: Vec<LockedBase>,
    /// Install steps in build order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<LockedStep>,
}

#[cfg(test)]
fn version_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "integer", "const": crate::lock::LOCK_VERSION })
}

/// What the lock is of and what it was made from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ImageMeta {
    /// The image's name (configuration key or derived from the path).
    pub name: Token,
    /// The definition file, relative to the configuration's directory, with
    /// `/` separators.
    pub definition: RepoPath,
    /// `sha256:` over the normalized inputs (definition, referenced files,
    /// build args, configuration); see [`crate::source::inputs::InputHasher`].
    #[serde(with = "serde_oci::digest")]
    #[cfg_attr(test, schemars(schema_with = "serde_oci::digest_schema"))]
    pub input_hash: Digest,
    /// `sha256:` over this lock's own canonical text without this line, so
    /// a hand edit shows (see [`LockedImage::computed_content_hash`]).
    #[serde(
        default,
        with = "serde_oci::digest_opt",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(test, schemars(schema_with = "serde_oci::digest_opt_schema"))]
    pub content_hash: Option<Digest>,
    /// Platforms locked, `os/arch[/variant]`.
    #[serde(with = "serde_oci::platforms")]
    #[cfg_attr(test, schemars(schema_with = "serde_oci::platforms_schema"))]
    pub platforms: Vec<Platform>,
}

/// One stage of the definition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LockedStage {
    pub index: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Token>,
    /// The base as written after expansion (`python:3.11-slim`), `scratch`,
    /// or `stage:N` for an earlier stage.
    pub base: Token,
    /// The canonical name of the base when it is an image (a key of `bases`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_name: Option<Token>,
    /// Files the stage fetches from a fixed URL (`ADD <url>`, `curl -o`,
    /// `wget -O`), pinned by their content.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub downloads: Vec<LockedDownload>,
    /// Git repositories the stage clones (`git clone`, `ADD <git url>`),
    /// with the commit their ref named.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub git: Vec<LockedGit>,
}

/// A git repository a stage fetches, and the commit freeze found its ref
/// at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LockedGit {
    /// 1-based line of the `git clone` command or the `ADD`.
    pub line: u32,
    /// The repository's URL as written, without a `#ref` and without
    /// credentials.
    pub url: LockUrl,
    /// The branch or tag asked for as written (`--branch`, `#ref`), or
    /// `HEAD` for the repository's default branch.
    #[serde(rename = "ref")]
    pub reference: Token,
    /// The commit the ref named when the lock was made; absent when freeze
    /// could not learn it (`reason` says why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<GitCommit>,
    /// Why the commit is not locked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A file fetched from a fixed URL, as freeze found it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LockedDownload {
    /// 1-based line of the instruction or command in the definition.
    pub line: u32,
    /// The URL as written.
    pub url: LockUrl,
    /// sha256 of the file's bytes.
    pub sha256: Sha256,
    /// Its length in bytes.
    pub size: u64,
}

/// A pinned image reference.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LockedBase {
    /// Canonical name: `docker.io/library/python:3.11-slim`.
    pub name: Token,
    /// References as written in the definition that resolve to this name.
    pub references: Vec<Token>,
    /// The digest `docker pull` shows: the index digest for a multi-platform
    /// image, else the manifest digest.
    #[serde(with = "serde_oci::digest")]
    #[cfg_attr(test, schemars(schema_with = "serde_oci::digest_schema"))]
    pub digest: Digest,
    /// Media type of what `digest` names.
    pub media_type: Token,
    /// When the base is another image of the same repository: its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub built_from: Option<Token>,
    /// The Apptainer bootstrap agent when the base is not a registry image
    /// pulled by `docker` (or a Dockerfile's `FROM`; absent then). Read on
    /// this machine: `docker-daemon`, `docker-archive`, `oci-archive`, `oci`,
    /// `localimage`. Pinned where it is served: `oras` (the digests are the
    /// ORAS artifact's manifest, its empty config and its one SIF layer) or
    /// `library` (every digest is the sha256 of the SIF file the Library
    /// serves, its image hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<Token>,
    /// What `digest` is when it is not a registry's manifest or index
    /// digest: `image-id` (the Docker Engine's image ID), `file-sha256` (the
    /// sha256 of the file itself, as a `library` image hash is of the SIF)
    /// or `layout-manifest` (the entry of the layout's `index.json`).
    /// Absent: a registry digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned: Option<Token>,
    /// Per platform: the manifest builders use, and its layers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<LockedPlatformImage>,
}

impl LockedBase {
    /// Whether it was read on this machine (an Apptainer `docker-daemon`,
    /// `docker-archive`, `oci-archive`, `oci` or `localimage` base) rather
    /// than pinned where a service can be asked again: registry images and
    /// the `oras` and `library` agents' bases are not local. Decided by the
    /// one dispatch on the agent's name,
    /// [`crate::source::agents::agent_pin`].
    pub fn is_local(&self) -> bool {
        use crate::source::agents::{AgentPin, agent_pin};
        self.agent
            .as_deref()
            .is_some_and(|agent| matches!(agent_pin(agent), AgentPin::Local(_)))
    }
}

/// The image one platform gets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LockedPlatformImage {
    /// `os/arch[/variant]`.
    #[serde(with = "serde_oci::platform")]
    #[cfg_attr(test, schemars(schema_with = "serde_oci::platform_schema"))]
    pub platform: Platform,
    /// The platform's manifest digest.
    #[serde(with = "serde_oci::digest")]
    #[cfg_attr(test, schemars(schema_with = "serde_oci::digest_schema"))]
    pub digest: Digest,
    /// The config blob digest (the image ID).
    #[serde(with = "serde_oci::digest")]
    #[cfg_attr(test, schemars(schema_with = "serde_oci::digest_schema"))]
    pub config: Digest,
    /// Uncompressed layer digests, bottom first (`rootfs.diff_ids`).
    #[serde(with = "serde_oci::digests")]
    #[cfg_attr(test, schemars(schema_with = "serde_oci::digests_schema"))]
    pub diff_ids: Vec<Digest>,
}

/// One install command of a `RUN` instruction or `%post` section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LockedStep {
    /// Index of the stage the step runs in.
    pub stage: u32,
    /// The definition file (or a file it includes), like `ImageMeta::definition`.
    pub file: RepoPath,
    /// 1-based line of the command.
    pub line: u32,
    /// The command as written (one line; no control characters).
    #[cfg_attr(test, schemars(schema_with = "one_line_schema"))]
    pub command: String,
    /// `pip`, `uv-pip`, `conda`, `mamba`, `micromamba`, `apt-get`, `dnf`…
    pub manager: Token,
    /// `install`, `create`, `env-create`, `env-update`.
    pub action: Token,
    /// Where it installs: a conda prefix or environment, or a Python.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, schemars(schema_with = "one_line_schema"))]
    pub target: Option<String>,
    /// The specs the command asks for, as written after expansion
    /// (including those read from requirements or environment files).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(test, schemars(schema_with = "one_lines_schema"))]
    pub requested: Vec<String>,
    /// Conda channels in priority order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<LockUrl>,
    /// Python package indexes in order (the first is the main index).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<LockUrl>,
    /// pip's `--find-links` locations (HTML pages of links, directories of
    /// archives), searched beside the indexes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub find_links: Vec<LockUrl>,
    /// False for steps recorded but not locked (OS package managers).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub locked: bool,
    /// Why a step with `locked = false` is not locked (one line), so that
    /// `verify` and `drift` can say it without resolving again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, schemars(schema_with = "one_line_schema"))]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conda: Vec<CondaPackage>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pypi: Vec<PypiPackage>,
    /// apt steps: the archive sources apt read, per platform.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apt_sources: Vec<AptSource>,
    /// apt steps: every package the step installs, upgrades or removes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apt: Vec<AptPackage>,
    /// dnf, microdnf and yum steps: the repositories read, per platform.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rpm_repos: Vec<RpmRepo>,
    /// dnf, microdnf and yum steps: every package the step installs,
    /// upgrades or removes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rpm: Vec<RpmPackage>,
    /// apk steps: the repositories' signed indexes read, per platform.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apk_repos: Vec<ApkRepo>,
    /// apk steps: every package the step installs, upgrades or removes,
    /// and the virtual package it makes (`--virtual`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apk: Vec<ApkPackage>,
}

/// One Alpine repository an apk step read (a line of
/// `/etc/apk/repositories`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ApkRepo {
    /// The repository URL as the image names it (not the mirror's).
    pub url: LockUrl,
    /// The line's `@tag`, without `@`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<Token>,
    /// sha256 of `APKINDEX.tar.gz` as fetched.
    pub index_sha256: Sha256,
    /// The key (`/etc/apk/keys/…`) whose signature of the index was checked.
    pub key: Token,
    /// The index's `DESCRIPTION` (`v3.20.3-…`), when one word.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Token>,
    #[serde(with = "serde_oci::platforms")]
    #[cfg_attr(test, schemars(schema_with = "serde_oci::platforms_schema"))]
    pub platforms: Vec<Platform>,
}

/// An Alpine package an apk step changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ApkPackage {
    pub name: Token,
    /// Absent for a virtual package: apk stamps it with the time it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Token>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<Token>,
    /// `install`, `upgrade`, `downgrade`, `remove` or `virtual`.
    pub action: Token,
    /// The repository URL it comes from (absent for removals and virtuals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<LockUrl>,
    /// `C:` of the index as given: `Q1` and the base64 SHA-1 of the
    /// package's control segment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<Token>,
    /// `S:`, the `.apk` file's size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Why apk takes it: `requested`, `curl 8.9.1-r0` (a dependency of).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_by: Vec<String>,
    #[serde(with = "serde_oci::platforms")]
    #[cfg_attr(test, schemars(schema_with = "serde_oci::platforms_schema"))]
    pub platforms: Vec<Platform>,
}

impl ApkPackage {
    /// Whether the step leaves it installed.
    pub fn installed_after(&self) -> bool {
        self.action.as_str() != "remove"
    }
}

/// One RPM repository a dnf step read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RpmRepo {
    /// The repository id (`[baseos]` of its `.repo` file).
    pub id: Token,
    /// The base URL as the image names it, variables substituted (not the
    /// mirror's).
    pub baseurl: LockUrl,
    /// The `<revision>` of `repomd.xml`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<Token>,
    /// sha256 of `repomd.xml` as fetched.
    pub repomd_sha256: Sha256,
    /// `repomd.xml` was checked against its signature (`repo_gpgcheck`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub signed: bool,
    #[serde(with = "serde_oci::platforms")]
    #[cfg_attr(test, schemars(schema_with = "serde_oci::platforms_schema"))]
    pub platforms: Vec<Platform>,
}

/// An RPM package a dnf step changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RpmPackage {
    pub name: Token,
    /// Absent when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub epoch: u64,
    pub version: Token,
    pub release: Token,
    pub arch: Token,
    /// `install`, `upgrade` or `remove`.
    pub action: Token,
    /// The repository id it comes from (absent for removals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<Token>,
    /// `<location href>` under the repository's base URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<RepoPath>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Sha256>,
    /// Why dnf takes it: `requested`, `Requires of app`, `weak: app`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_by: Vec<String>,
    /// The installed packages (NEVRA) it upgrades or obsoletes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaces: Vec<String>,
    #[serde(with = "serde_oci::platforms")]
    #[cfg_attr(test, schemars(schema_with = "serde_oci::platforms_schema"))]
    pub platforms: Vec<Platform>,
}

impl RpmPackage {
    /// `name-[epoch:]version-release.arch`, the form dnf takes as a pin.
    pub fn nevra(&self) -> String {
        let epoch = if self.epoch == 0 {
            String::new()
        } else {
            format!("{}:", self.epoch)
        };
        format!(
            "{}-{epoch}{}-{}.{}",
            self.name, self.version, self.release, self.arch
        )
    }

    /// Whether the step leaves it installed.
    pub fn installed_after(&self) -> bool {
        self.action.as_str() != "remove"
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One archive source an apt step read (a `deb` line or `.sources` entry,
/// one suite).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AptSource {
    /// The archive URI as the image names it (not the mirror's).
    pub uri: LockUrl,
    /// `bookworm`, `bookworm-security`, `stable`…
    pub suite: Token,
    pub components: Vec<Token>,
    /// The distribution as the release names itself: the first word of
    /// its `Origin`, lowercase (`debian`, `ubuntu`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<Token>,
    /// The release's `Codename` (`bookworm`, `jammy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codename: Option<Token>,
    /// The `Date` of the signed `InRelease` (RFC 2822, UTC).
    pub date: AptDate,
    /// sha256 of the `InRelease` (or `Release`) file as fetched.
    pub release_sha256: Sha256,
    /// The snapshot timestamp (`YYYYMMDDTHHMMSSZ`) that reproduces this
    /// state: the release `Date` (apt's `--snapshot`, snapshot.debian.org).
    pub snapshot: Token,
    #[serde(with = "serde_oci::platforms")]
    #[cfg_attr(test, schemars(schema_with = "serde_oci::platforms_schema"))]
    pub platforms: Vec<Platform>,
}

/// A Debian package an apt step changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AptPackage {
    pub name: DebName,
    /// The version after the step (for a removal: the version removed).
    pub version: DebVersion,
    /// As the `.deb` names it (`amd64`, `all`).
    pub architecture: DebArch,
    /// `install`, `upgrade`, `downgrade`, `remove`, `purge`, or `keep`
    /// (asked for, already installed at the candidate).
    pub action: Token,
    /// The source package.
    pub source: DebName,
    /// The source version, when it differs from `version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<DebVersion>,
    /// The archive URI the `.deb` is fetched from (absent for removals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<LockUrl>,
    /// The suite whose index offered this version (`bookworm-security`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<Token>,
    /// The pool path under `uri` (`pool/main/c/curl/curl_…_amd64.deb`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<Token>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Sha256>,
    /// Why apt takes it: `requested`, `Depends of curl`, `Recommends of git`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_by: Vec<String>,
    /// A version of it was installed before the step.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_base: bool,
    #[serde(with = "serde_oci::platforms")]
    #[cfg_attr(test, schemars(schema_with = "serde_oci::platforms_schema"))]
    pub platforms: Vec<Platform>,
}

impl AptSource {
    /// The snapshot archive URI that serves this source as the lock read
    /// it, for the archives with a public snapshot service: Debian's
    /// (`snapshot.debian.org/archive/<archive>/<timestamp>/`) and Ubuntu's
    /// (`snapshot.ubuntu.com/ubuntu/<timestamp>/`). `None` for any other
    /// archive: imagelock does not guess where its history is kept. Plain
    /// HTTP, as the archives themselves: images seldom have CA
    /// certificates, and the signed `InRelease` carries the trust.
    pub fn snapshot_uri(&self) -> Option<String> {
        snapshot_uri(self.uri.as_str(), self.snapshot.as_str())
    }
}

/// See [`AptSource::snapshot_uri`].
pub fn snapshot_uri(uri: &str, timestamp: &str) -> Option<String> {
    let url = url::Url::parse(uri).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let host = url.host_str()?.to_ascii_lowercase();
    let path = url.path().trim_end_matches('/');
    let debian = host == "deb.debian.org"
        || host == "ftp.debian.org"
        || host == "http.debian.net"
        || host == "httpredir.debian.org"
        || host == "security.debian.org"
        || (host.starts_with("ftp.") && host.ends_with(".debian.org"));
    if debian {
        let archive = match path {
            "/debian" => "debian",
            "/debian-security" => "debian-security",
            // `security.debian.org bookworm-security` without a path.
            "" if host == "security.debian.org" => "debian-security",
            _ => return None,
        };
        return Some(format!(
            "http://snapshot.debian.org/archive/{archive}/{timestamp}/"
        ));
    }
    let ubuntu = host == "archive.ubuntu.com"
        || host == "security.ubuntu.com"
        || (host.ends_with(".archive.ubuntu.com") && !host.contains(".ports."));
    if ubuntu && path == "/ubuntu" {
        return Some(format!("http://snapshot.ubuntu.com/ubuntu/{timestamp}/"));
    }
    None
}

impl AptPackage {
    /// Whether the step leaves it installed.
    pub fn installed_after(&self) -> bool {
        !matches!(self.action.as_str(), "remove" | "purge")
    }
}

/// Free text the reader takes on one line, without control characters.
#[cfg(test)]
fn one_line_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "string", "pattern": "^[^\\u0000-\\u001f\\u007f]*$" })
}

#[cfg(test)]
fn one_lines_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let item = one_line_schema(g);
    schemars::json_schema!({ "type": "array", "items": item })
}

fn yes() -> bool {
    true
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's signature
fn is_true(b: &bool) -> bool {
    *b
}

/// A conda package a step installs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CondaPackage {
    pub name: CondaName,
    pub version: CondaVersion,
    pub build: CondaBuild,
    pub build_number: u64,
    /// Channel URL (`https://conda.anaconda.org/conda-forge`).
    pub channel: LockUrl,
    /// `linux-64`, `noarch`…
    pub subdir: Subdir,
    pub url: LockUrl,
    pub sha256: Sha256,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<Md5>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The spec that asked for it, when it was asked for by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<String>,
    /// Platforms that get this exact package.
    #[serde(with = "serde_oci::platforms")]
    #[cfg_attr(test, schemars(schema_with = "serde_oci::platforms_schema"))]
    pub platforms: Vec<Platform>,
}

/// A Python distribution a step installs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PypiPackage {
    /// Normalized name (PEP 503).
    pub name: PypiName,
    /// The version installed; absent only for VCS and local-directory
    /// requirements, whose version is known only after a build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<PypiVersion>,
    /// The requirement that asked for it, when it was asked for directly,
    /// as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<String>,
    /// Where it comes from: an index (the default, not written), a direct
    /// URL to a wheel or sdist, a VCS repository, or a local path.
    #[serde(default, skip_serializing_if = "PypiSource::is_index")]
    pub source: PypiSource,
    /// The chosen file's name (wheel or sdist); absent for VCS and paths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<Token>,
    /// The file's URL; for `vcs` the repository URL as given (with its
    /// `git+` scheme, without the revision); for `path` the path as given.
    pub url: Token,
    /// sha256 of the file; absent for VCS and paths, which are not
    /// content-hashed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Sha256>,
    /// `vcs`: the revision as requested (`v1.0`, `main`, a commit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<Token>,
    /// `vcs`: the commit, when the requested revision is a full commit id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<Token>,
    /// Why it is installed besides being requested: the packages whose
    /// dependencies pulled it in (`anyio`, `requests[socks]`), each with the
    /// requirement's environment marker when it had one
    /// (`anyio; python_version < "3.11"`). The marker held for the target,
    /// so it tells which change (a newer Python, another platform) would
    /// drop the edge.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_by: Vec<String>,
    /// Platforms that get this exact file.
    #[serde(with = "serde_oci::platforms")]
    #[cfg_attr(test, schemars(schema_with = "serde_oci::platforms_schema"))]
    pub platforms: Vec<Platform>,
}

/// Where a locked Python distribution comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum PypiSource {
    /// A file chosen from a package index.
    #[default]
    Index,
    /// A wheel or sdist named by URL (`pkg @ https://…`), fetched and hashed.
    Url,
    /// A VCS repository (`pkg @ git+https://…@rev`): recorded as given, not
    /// content-hashed.
    Vcs,
    /// A local directory or file in the image (`./src`, `pkg @ file:///…`):
    /// recorded as given, not content-hashed.
    Path,
}

impl PypiSource {
    #[allow(clippy::trivially_copy_pass_by_ref)] // serde's signature
    fn is_index(&self) -> bool {
        *self == PypiSource::Index
    }

    /// `url`, `vcs`, `path` (or `index`).
    pub fn as_str(self) -> &'static str {
        match self {
            PypiSource::Index => "index",
            PypiSource::Url => "url",
            PypiSource::Vcs => "vcs",
            PypiSource::Path => "path",
        }
    }
}

impl PypiPackage {
    /// Installed from what was written rather than chosen from an index.
    pub fn is_direct(&self) -> bool {
        self.source != PypiSource::Index
    }

    /// The version, or `?` when only a build would tell it.
    pub fn version_or_unknown(&self) -> &str {
        self.version.as_deref().unwrap_or("?")
    }
}

impl LockedImage {
    /// Puts everything in canonical order so equal locks write equal bytes.
    ///
    /// Stages and steps keep build order (it has meaning); everything that is
    /// a set is sorted.
    pub fn normalize(&mut self) {
        self.image.platforms.sort();
        self.image.platforms.dedup();
        self.stages.sort_by_key(|s| s.index);
        for stage in &mut self.stages {
            stage
                .downloads
                .sort_by(|a, b| (a.line, &a.url).cmp(&(b.line, &b.url)));
            stage.downloads.dedup();
            stage
                .git
                .sort_by(|a, b| (a.line, &a.url).cmp(&(b.line, &b.url)));
            stage.git.dedup();
        }
        self.bases.sort_by(|a, b| a.name.cmp(&b.name));
        for base in &mut self.bases {
            base.references.sort();
            base.references.dedup();
            base.platforms.sort_by(|a, b| a.platform.cmp(&b.platform));
        }
        self.steps.sort_by_key(|s| (s.stage, s.line));
        for step in &mut self.steps {
            for p in &mut step.conda {
                p.platforms.sort();
                p.platforms.dedup();
            }
            for p in &mut step.pypi {
                p.platforms.sort();
                p.platforms.dedup();
                p.required_by.sort();
                p.required_by.dedup();
            }
            step.conda.sort_by(|a, b| {
                (&a.name, &a.subdir, &a.url, &a.platforms).cmp(&(
                    &b.name,
                    &b.subdir,
                    &b.url,
                    &b.platforms,
                ))
            });
            for p in &mut step.apt {
                p.platforms.sort();
                p.platforms.dedup();
                p.required_by.sort();
                p.required_by.dedup();
            }
            for s in &mut step.apt_sources {
                s.platforms.sort();
                s.platforms.dedup();
            }
            for p in &mut step.rpm {
                p.platforms.sort();
                p.platforms.dedup();
                p.required_by.sort();
                p.required_by.dedup();
            }
            for r in &mut step.rpm_repos {
                r.platforms.sort();
                r.platforms.dedup();
            }
            for p in &mut step.apk {
                p.platforms.sort();
                p.platforms.dedup();
                p.required_by.sort();
                p.required_by.dedup();
            }
            for r in &mut step.apk_repos {
                r.platforms.sort();
                r.platforms.dedup();
            }
            step.apk.sort_by(|a, b| {
                (&a.name, &a.version, &a.action, &a.platforms).cmp(&(
                    &b.name,
                    &b.version,
                    &b.action,
                    &b.platforms,
                ))
            });
            step.rpm_repos.sort_by(|a, b| {
                (&a.id, &a.baseurl, &a.platforms).cmp(&(&b.id, &b.baseurl, &b.platforms))
            });
            step.rpm.sort_by(|a, b| {
                (&a.name, &a.arch, &a.platforms).cmp(&(&b.name, &b.arch, &b.platforms))
            });
            step.apt_sources.sort_by(|a, b| {
                (&a.uri, &a.suite, &a.platforms).cmp(&(&b.uri, &b.suite, &b.platforms))
            });
            step.apt.sort_by(|a, b| {
                (&a.name, &a.architecture, &a.version, &a.platforms).cmp(&(
                    &b.name,
                    &b.architecture,
                    &b.version,
                    &b.platforms,
                ))
            });
            step.pypi.sort_by(|a, b| {
                (&a.name, &a.version, &a.file, &a.url, &a.platforms).cmp(&(
                    &b.name,
                    &b.version,
                    &b.file,
                    &b.url,
                    &b.platforms,
                ))
            });
        }
    }
}
