//! The warm no-op freeze: an image whose lock is current for its inputs
//! (what `verify` checks) and was made by an earlier freeze under the same
//! settings is kept as it is, byte for byte, without resolving anything.
//!
//! "The same settings" is a fingerprint of everything beyond the inputs
//! that a freeze reads: this version, the freeze options, the image's entry
//! and the sections of `imagelock.toml` that steer resolution, the host's
//! pip, uv, conda and registry settings, and the locks of the repository
//! images it builds from. A freeze records, in the cache directory, that it
//! made the lock with a given `content-hash` under a given fingerprint (and
//! the warnings it gave); a later run that finds the lock on disk with that
//! `content-hash`, current, and the same fingerprint, keeps it. Without the
//! record (a cold cache, other settings) the image is frozen as usual.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::config::Config;
use crate::freeze::run::Frozen;
use crate::freeze::{FreezeOptions, ImageJob, platforms_of};
use crate::lock::LockedImage;
use crate::oci::Digest;
use crate::resolve::Session;

/// What a freeze records about a lock it made.
#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    /// The warnings the freeze gave for the image, given again when the
    /// lock is kept.
    warnings: Vec<String>,
}

/// Whether a freeze with `options` may keep current locks at all: one that
/// moves something, resolves as of a date or ignores the locks does not.
pub fn may_keep(options: &FreezeOptions) -> bool {
    options.update.is_empty()
        && !options.update_base
        && options.exclude_newer.is_none()
        && !options.ignore_locked
}

/// The settings beyond the inputs that `job` is frozen under, given the
/// locks of the repository images it builds from.
fn fingerprint(
    config: &Config,
    session: &Session,
    job: &ImageJob,
    options: &FreezeOptions,
    parents: &[&LockedImage],
) -> String {
    let options = FreezeOptions {
        // Offline or not, the same lock is the answer.
        offline: false,
        ..options.clone()
    };
    let parents: Vec<String> = parents
        .iter()
        .map(|l| l.computed_content_hash().to_string())
        .collect();
    let text = format!(
        "imagelock {}\n{options:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{parents:?}",
        env!("CARGO_PKG_VERSION"),
        job.config,
        platforms_of(job, &options),
        config.conda,
        config.pypi,
        config.registries,
        config.apt,
        config.steps,
        config.limits,
        session.channels,
        session.host_pip,
        session.host_uv,
        session.registries_conf,
    );
    Digest::sha256_of(text.as_bytes()).to_string()
}

/// Where the record for the lock of `job` with `content_hash` made under
/// `fingerprint` is kept.
fn record_path(
    config: &Config,
    job: &ImageJob,
    content_hash: &Digest,
    fingerprint: &str,
) -> PathBuf {
    let key = format!("{}\n{content_hash}\n{fingerprint}", job.lock_path.display());
    let digest = Digest::sha256_of(key.as_bytes());
    config
        .cache_dir
        .join("kept-locks-v1")
        .join(format!("{}.json", digest.hex()))
}

/// `job`'s lock on disk, kept as it is, when it is current for its inputs
/// and an earlier freeze made it under the same settings; `parents` are the
/// jobs of the repository images it builds from (themselves kept).
pub fn kept(
    config: &Config,
    session: &Session,
    job: &ImageJob,
    options: &FreezeOptions,
    parents: &[&ImageJob],
) -> Option<Frozen> {
    if !may_keep(options) || job.unreadable.is_some() {
        return None;
    }
    let lock = job.previous.as_ref()?;
    // Current, as `verify` sees it: the inputs hash as the lock says, and
    // the lock is as freeze wrote it (its content hashes to its
    // `content-hash`; the definition's steps and bases are in the inputs).
    let content = lock.computed_content_hash();
    if lock.image.content_hash.as_ref() != Some(&content)
        || job.inputs.hash() != lock.image.input_hash
    {
        return None;
    }
    // Bases read on this machine are not among the inputs: they must
    // still be what the lock pinned (and all be pinned).
    if !crate::freeze::local::local_bases_current(&job.definition, lock, &job.config.context) {
        return None;
    }
    let parent_locks: Vec<&LockedImage> = parents
        .iter()
        .map(|p| p.previous.as_ref())
        .collect::<Option<_>>()?;
    let fingerprint = fingerprint(config, session, job, options, &parent_locks);
    let text = fs_err::read_to_string(record_path(config, job, &content, &fingerprint)).ok()?;
    let record: Record = serde_json::from_str(&text).ok()?;
    // Kept byte for byte: a lock this version would write otherwise (an
    // older format) is made afresh.
    if fs_err::read_to_string(&job.lock_path).ok()? != lock.to_toml() {
        return None;
    }
    Some(Frozen {
        name: job.config.name.clone(),
        reference: job.config.reference.clone(),
        lock: lock.clone(),
        finals: BTreeMap::new(),
        warnings: record.warnings,
        // Drift, the one reader of these, never keeps a lock.
        apt_gone: Vec::new(),
        rpm_drift: Vec::new(),
        apk_drift: Vec::new(),
    })
}

/// Records that `frozen` was made for `job` under this run's settings, so a
/// later run may keep it. Failing to write is not an error of the freeze.
pub fn remember(
    config: &Config,
    session: &Session,
    job: &ImageJob,
    options: &FreezeOptions,
    frozen: &Frozen,
    parents: &[&Frozen],
) {
    if !may_keep(options) {
        return;
    }
    let parent_locks: Vec<&LockedImage> = parents.iter().map(|p| &p.lock).collect();
    let content = frozen.lock.computed_content_hash();
    let fingerprint = fingerprint(config, session, job, options, &parent_locks);
    let record = Record {
        warnings: frozen.warnings.clone(),
    };
    if let Ok(text) = serde_json::to_string(&record) {
        let _ = crate::lock::write_atomic(
            &record_path(config, job, &content, &fingerprint),
            text.as_bytes(),
        );
    }
}
