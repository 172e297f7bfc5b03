//! An image's coverage as its lock stands: which content-changing
//! instructions the lock pins (see [`crate::source::coverage`]).

use crate::config::ImageConfig;
use crate::lock::LockedImage;
use crate::source::coverage::{Coverage, CoverageInputs, InLock};
use crate::source::load::{SourceError, read_definition};
use crate::source::model::{Definition, InstallStep};

/// Coverage of `image` read from its definition, with `lock` (when there
/// is one) telling which install steps it pinned.
pub fn image_coverage(
    image: &ImageConfig,
    file: &str,
    lock: Option<&LockedImage>,
) -> Result<Coverage, SourceError> {
    let (definition, text) = read_definition(&image.file, &image.build_args)?;
    Ok(coverage_of(&definition, &text, image, file, lock))
}

/// [`image_coverage`] of a definition already read.
pub fn coverage_of(
    definition: &Definition,
    text: &str,
    image: &ImageConfig,
    file: &str,
    lock: Option<&LockedImage>,
) -> Coverage {
    let install_locked = |s: &InstallStep| -> Option<InLock> {
        let lock = lock?;
        let flat = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
        let step = lock.steps.iter().find(|l| {
            usize::try_from(l.line).is_ok_and(|l| l == s.line)
                && flat(&l.command) == flat(&s.command.text)
        });
        Some(match step {
            Some(l) if l.locked => InLock::Locked,
            Some(l) => InLock::NotLocked(l.reason.clone()),
            None => InLock::Missing,
        })
    };
    let image_locked = |reference: &str| -> Option<bool> {
        let lock = lock?;
        Some(lock.bases.iter().any(|b| {
            b.references.iter().any(|r| r.as_str() == reference) || b.name.as_str() == reference
        }))
    };
    let download_locked = |line: usize, url: &str| -> Option<bool> {
        let lock = lock?;
        Some(
            lock.stages
                .iter()
                .flat_map(|s| &s.downloads)
                .any(|d| usize::try_from(d.line).is_ok_and(|l| l == line) && d.url.as_str() == url),
        )
    };
    let git_locked = |line: usize, repository: &str| -> Option<InLock> {
        let lock = lock?;
        let url = crate::config::redact::redact_url(repository);
        let entry =
            lock.stages.iter().flat_map(|s| &s.git).find(|g| {
                usize::try_from(g.line).is_ok_and(|l| l == line) && g.url.as_str() == url
            });
        Some(match entry {
            Some(g) if g.commit.is_some() => InLock::Locked,
            Some(g) => InLock::NotLocked(g.reason.clone()),
            None => InLock::Missing,
        })
    };
    Coverage::of(
        definition,
        file,
        text,
        &CoverageInputs {
            install_locked: &install_locked,
            image_locked: &image_locked,
            download_locked: &download_locked,
            git_locked: &git_locked,
            accept: &image.accept_unlocked,
        },
    )
}
