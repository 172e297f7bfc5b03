//! Many images at once: each starts as soon as the images of this
//! repository it builds `FROM` are frozen, within a limit of images in
//! flight. The result does not depend on which image finishes first.

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use crate::config::Config;
use crate::freeze::run::{FreezeProgress, Frozen, freeze_image_reporting};
use crate::freeze::steps::{BaseStates, Limits};
use crate::freeze::warm;
use crate::freeze::{FreezeError, FreezeOptions, ImageJob};
use crate::resolve::Session;

/// How one image ended.
enum Slot {
    Waiting,
    Running,
    Done(Box<Frozen>),
    Failed(FreezeError),
    /// An image it builds from failed: it was never started.
    Skipped,
}

/// Freezes `jobs` (in build order, as [`crate::freeze::prepare`] gives
/// them), running independent images concurrently, at most
/// `limits.images` at once, reading at most `limits.base_reads` base images
/// at once.
///
/// Returns the frozen images in build order. When images fail, the others
/// still run (except those built from a failed one) and the error returned
/// is the one of the first failed image in build order, so it is the same
/// whatever finished first.
pub async fn freeze_all(
    config: &Config,
    session: &Session,
    jobs: &[ImageJob],
    options: &FreezeOptions,
    limits: Limits,
    progress: &dyn FreezeProgress,
) -> Result<Vec<Frozen>, FreezeError> {
    let limit = limits.images.max(1);
    let bases = BaseStates::new(limits.base_reads);
    let bases = &bases;
    let parents: Vec<Vec<usize>> = jobs
        .iter()
        .map(|job| {
            job.builds_from
                .iter()
                .filter_map(|p| jobs.iter().position(|j| &j.config.name == p))
                .collect()
        })
        .collect();
    let mut slots: Vec<Slot> = kept_locks(config, session, jobs, options, &parents)
        .into_iter()
        .map(|k| match k {
            Some(f) => {
                progress.kept(&f.name);
                Slot::Done(Box::new(f))
            }
            None => Slot::Waiting,
        })
        .collect();
    let mut running = FuturesUnordered::new();
    loop {
        // Start what can start, in build order.
        for i in 0..jobs.len() {
            if running.len() >= limit {
                break;
            }
            if !matches!(slots[i], Slot::Waiting) {
                continue;
            }
            if parents[i]
                .iter()
                .any(|&p| matches!(slots[p], Slot::Failed(_) | Slot::Skipped))
            {
                slots[i] = Slot::Skipped;
                continue;
            }
            let repository: Option<Vec<Frozen>> = parents[i]
                .iter()
                .map(|&p| match &slots[p] {
                    Slot::Done(f) => Some((**f).clone()),
                    _ => None,
                })
                .collect();
            let Some(repository) = repository else {
                continue;
            };
            slots[i] = Slot::Running;
            let job = &jobs[i];
            progress.started(&job.config.name);
            running.push(async move {
                let result = freeze_image_reporting(
                    config,
                    session,
                    bases,
                    job,
                    options,
                    &repository,
                    progress,
                )
                .await;
                (i, result)
            });
        }
        let Some((i, result)) = running.next().await else {
            break;
        };
        progress.finished(&jobs[i].config.name, result.is_ok());
        if let Ok(frozen) = &result {
            let built_from: Vec<&Frozen> = parents[i]
                .iter()
                .filter_map(|&p| match &slots[p] {
                    Slot::Done(f) => Some(&**f),
                    _ => None,
                })
                .collect();
            warm::remember(config, session, &jobs[i], options, frozen, &built_from);
        }
        slots[i] = match result {
            Ok(frozen) => Slot::Done(Box::new(frozen)),
            Err(e) => Slot::Failed(e),
        };
    }
    // Skipped images have a failed parent before them in build order, so the
    // first failure in order is what the user must fix first.
    let mut frozen = Vec::with_capacity(jobs.len());
    for slot in slots {
        match slot {
            Slot::Done(f) => frozen.push(*f),
            Slot::Failed(e) => return Err(e),
            Slot::Skipped | Slot::Waiting | Slot::Running => {}
        }
    }
    Ok(frozen)
}

/// The images kept as they are ([`warm::kept`]). Images built from one
/// another are kept together or not at all: one frozen afresh needs the
/// state its parents end in, and may give its children another lock to
/// pin.
fn kept_locks(
    config: &Config,
    session: &Session,
    jobs: &[ImageJob],
    options: &FreezeOptions,
    parents: &[Vec<usize>],
) -> Vec<Option<Frozen>> {
    if !warm::may_keep(options) {
        return jobs.iter().map(|_| None).collect();
    }
    let mut kept: Vec<Option<Frozen>> = jobs
        .iter()
        .zip(parents)
        .map(|(job, ps)| {
            let ps: Vec<&ImageJob> = ps.iter().map(|&p| &jobs[p]).collect();
            warm::kept(config, session, job, options, &ps)
        })
        .collect();
    loop {
        let mut changed = false;
        for (i, ps) in parents.iter().enumerate() {
            for &p in ps {
                if kept[i].is_some() != kept[p].is_some() {
                    kept[i] = None;
                    kept[p] = None;
                    changed = true;
                }
            }
        }
        if !changed {
            return kept;
        }
    }
}
