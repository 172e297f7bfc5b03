//! Pinning image references: `FROM`, `COPY --from`, `RUN --mount=from=`,
//! `# syntax=`, Apptainer `From:`, and the `ARG` defaults they come from.

use crate::diagnostic::Span;
use crate::lock::{LockedBase, LockedImage};
use crate::rewrite::edit::Edit;
use crate::source::agents::{AgentPin, RemoteAgent, agent_pin};
use crate::source::model::{BaseTarget, Definition, Expanded};

/// Edits and the references that could not be pinned (span and why).
#[derive(Debug, Default)]
pub(crate) struct BaseEdits {
    pub edits: Vec<Edit>,
    pub skipped: Vec<(Span, String, Option<String>)>,
    /// (stage index, the reference after rewriting), to update the lock.
    pub pinned_stages: Vec<(usize, String)>,
}

/// The reference without a digest: `python:3.11@sha256:…` → `python:3.11`.
fn without_digest(r: &str) -> &str {
    r.split_once('@').map_or(r, |(n, _)| n)
}

/// The locked base for a reference (as written or expanded).
fn find_base<'l>(
    lock: &'l LockedImage,
    stage: Option<usize>,
    e: &Expanded,
) -> Option<&'l LockedBase> {
    if let Some(name) = stage
        .and_then(|i| lock.stages.iter().find(|s| s.index as usize == i))
        .and_then(|s| s.base_name.as_deref())
        && let Some(b) = lock.bases.iter().find(|b| b.name == name)
    {
        return Some(b);
    }
    let wanted: Vec<&str> = [e.value.as_deref(), Some(e.written.as_str())]
        .into_iter()
        .flatten()
        .map(without_digest)
        .collect();
    lock.bases.iter().find(|b| {
        b.references
            .iter()
            .any(|r| wanted.contains(&without_digest(r)))
    })
}

/// The edit that puts `digest` on a literal reference written at `span`
/// (`text[span]` is the reference, possibly quoted), or `None` when it
/// already has it.
pub(crate) fn digest_edit(text: &str, span: Span, digest: &str) -> Option<Edit> {
    let written = text.get(span.start..span.end)?;
    let quote = written
        .chars()
        .next()
        .filter(|q| (*q == '"' || *q == '\'') && written.len() >= 2 && written.ends_with(*q));
    let inner_end = if quote.is_some() {
        span.end - 1
    } else {
        span.end
    };
    let inner_start = if quote.is_some() {
        span.start + 1
    } else {
        span.start
    };
    let inner = &text[inner_start..inner_end];
    match inner.find('@') {
        Some(at) => {
            let old = &inner[at + 1..];
            (old != digest).then(|| Edit::new(Span::new(inner_start + at + 1, inner_end), digest))
        }
        None => Some(Edit::insert(inner_end, format!("@{digest}"))),
    }
}

fn is_literal(written: &str) -> bool {
    !written.contains('$') && !written.contains("{{")
}

/// Edits pinning every image reference of `def` to its locked digest.
pub(crate) fn base_edits(
    def: &Definition,
    text: &str,
    lock: &LockedImage,
    build_args: &std::collections::BTreeMap<String, String>,
) -> BaseEdits {
    let mut out = BaseEdits::default();
    if let Some(syntax) = &def.syntax
        && let Some(base) = find_base(lock, None, syntax)
        && let Some(e) = digest_edit(text, syntax.span, &base.digest.to_string())
    {
        out.edits.push(e);
    }
    // ARG-default edits made for references ending in a variable.
    let mut at_args: Vec<(Span, &Expanded, String)> = Vec::new();
    for stage in def.stages.iter().filter(|s| !s.unused) {
        if let Some(note) = local_base_note(stage, lock) {
            out.skipped.push(note);
        }
        if let BaseTarget::Other { agent } = &stage.base.target
            && let AgentPin::Remote(remote) = agent_pin(agent)
        {
            agent_edit(text, lock, stage, remote, &mut out);
        }
        let mut refs: Vec<(Option<usize>, &Expanded)> = Vec::new();
        if matches!(stage.base.target, BaseTarget::Image { .. }) {
            refs.push((Some(stage.index), &stage.base.reference));
        }
        for u in &stage.image_uses {
            if matches!(u.target, BaseTarget::Image { .. }) {
                refs.push((None, &u.reference));
            }
        }
        for (stage_index, reference) in refs {
            let Some(base) = find_base(lock, stage_index, reference) else {
                out.skipped.push((
                    reference.span,
                    format!("`{}` has no digest in the lock", reference.written),
                    Some("run `imagelock freeze` to lock it".into()),
                ));
                continue;
            };
            if let Some(image) = &base.built_from {
                out.skipped.push((
                    reference.span,
                    format!(
                        "`{}` is built from image `{image}` of this repository; it is not pinned",
                        reference.written
                    ),
                    Some("its digest changes with every build of that image".into()),
                ));
                continue;
            }
            let edit = if is_literal(&reference.written) {
                digest_edit(text, reference.span, &base.digest.to_string()).map(Ok)
            } else {
                let from_arg = stage_index.and(stage.base.from_arg.as_deref());
                let digest = base.digest.to_string();
                let e = arg_edit(def, text, from_arg, reference, &digest, build_args);
                if let Ok(Some(edit)) = &e
                    && from_arg.is_none()
                    && !(reference.span.start <= edit.span.start
                        && edit.span.end <= reference.span.end)
                {
                    at_args.push((edit.span, reference, digest.clone()));
                }
                e.transpose()
            };
            match edit {
                Some(Ok(e)) => out.edits.push(e),
                Some(Err(why)) => {
                    out.skipped
                        .push(cannot_pin(reference, &why, &base.digest.to_string()));
                }
                None => {}
            }
            if let (Some(i), Some(v)) = (stage_index, reference.value.as_deref()) {
                out.pinned_stages
                    .push((i, format!("{}@{}", without_digest(v), base.digest)));
            }
        }
    }
    // One ARG giving several images different digests cannot be pinned at
    // the ARG: references ending in it get the digest after them instead.
    let clashing: Vec<Span> = out
        .edits
        .iter()
        .filter(|e| {
            out.edits
                .iter()
                .any(|o| o.span == e.span && o.replacement != e.replacement)
        })
        .map(|e| e.span)
        .collect();
    for span in clashing {
        if !out.edits.iter().any(|e| e.span == span) {
            continue;
        }
        out.edits.retain(|e| e.span != span);
        let mut handled = false;
        for (_, reference, digest) in at_args.iter().filter(|(s, _, _)| *s == span) {
            handled = true;
            match after_reference(text, reference, digest) {
                Ok(Some(e)) => out.edits.push(e),
                Ok(None) => {}
                Err(why) => out.skipped.push(cannot_pin(reference, &why, digest)),
            }
        }
        if !handled {
            out.skipped.push((
                span,
                "this ARG gives several images with different digests; it is not pinned".into(),
                None,
            ));
        }
    }
    out
}

/// A base Apptainer reads on this machine has no pinned `From` form it
/// accepts (a file has no digest syntax; the `docker-daemon` agent
/// documents no image-ID form): the line stays as written, and the lock's
/// hash is what `verify` and `freeze --check` compare it with.
fn local_base_note(
    stage: &crate::source::model::Stage,
    lock: &LockedImage,
) -> Option<(Span, String, Option<String>)> {
    let BaseTarget::Other { agent } = &stage.base.target else {
        return None;
    };
    let AgentPin::Local(local) = agent_pin(agent) else {
        return None;
    };
    let reference = &stage.base.reference;
    let from = reference.value.as_deref()?;
    let name = format!("{}:{from}", local.name());
    let base = lock
        .bases
        .iter()
        .find(|b| b.is_local() && b.name.as_str() == name);
    Some(match base {
        Some(b) => (
            reference.span,
            format!(
                "`{from}` (`Bootstrap: {agent}`) stays as written: Apptainer has no pinned form for it; the lock records its {} {}",
                local.pin_kind().as_str(),
                b.digest
            ),
            Some("`imagelock verify` and `freeze --check` say when it changes".into()),
        ),
        None => (
            reference.span,
            format!("`{from}` (`Bootstrap: {agent}`) is not locked"),
            Some("run `imagelock freeze` where the file (or the Docker Engine) is at hand".into()),
        ),
    })
}

/// Pins the `From:` of a stage an Apptainer agent other than `docker`
/// pulls, in the form that agent takes: `oras` a digest after the tag
/// (`REPO:TAG@sha256:…`, which Apptainer's ORAS client reads as the
/// digest), `library` the image hash in place of the tag
/// (`CONTAINER:sha256.HEX`, the Library's own form; it has no room for
/// both).
fn agent_edit(
    text: &str,
    lock: &LockedImage,
    stage: &crate::source::model::Stage,
    remote: RemoteAgent,
    out: &mut BaseEdits,
) {
    let agent = remote.name();
    let reference = &stage.base.reference;
    let Some(base) =
        find_base(lock, Some(stage.index), reference).filter(|b| b.agent.as_deref() == Some(agent))
    else {
        out.skipped.push((
            reference.span,
            format!(
                "`Bootstrap: {agent}` `{}` has no pin in the lock",
                reference.written
            ),
            Some("run `imagelock freeze` (online) to lock it".into()),
        ));
        return;
    };
    let Some(value) = reference.value.as_deref() else {
        return;
    };
    if !is_literal(&reference.written) {
        out.skipped.push((
            reference.span,
            format!(
                "`{}` cannot be pinned: it is built from a `{{{{ variable }}}}`",
                reference.written
            ),
            Some("write the image as a literal to let rewrite pin it".into()),
        ));
        return;
    }
    let pinned = match remote {
        RemoteAgent::Oras => {
            if let Some(e) = digest_edit(text, reference.span, &base.digest.to_string()) {
                out.edits.push(e);
            }
            format!("{}@{}", without_digest(value), base.digest)
        }
        RemoteAgent::Library => {
            let hashes: std::collections::BTreeSet<String> = base
                .platforms
                .iter()
                .map(|p| p.digest.to_string())
                .collect();
            if hashes.len() > 1 {
                out.skipped.push((
                    reference.span,
                    format!(
                        "`{}` cannot be pinned: the Library serves another image for each locked platform, and `From:` names one hash",
                        reference.written
                    ),
                    Some("lock one platform for this image, or keep the tag (the lock still pins each platform's hash)".into()),
                ));
                return;
            }
            let hash = format!("sha256.{}", base.digest.hex());
            let (edit, pinned) = library_tag_edit(reference.span, &reference.written, &hash);
            if let Some(e) = edit {
                out.edits.push(e);
            }
            pinned
        }
    };
    out.pinned_stages.push((stage.index, pinned));
}

/// The edit putting `hash` in place of the tag of a library reference
/// written (literally) at `span`, and the reference it makes.
fn library_tag_edit(span: Span, written: &str, hash: &str) -> (Option<Edit>, String) {
    let last = written.rfind('/').map_or(0, |i| i + 1);
    match written[last..].find(':') {
        Some(colon) => {
            let at = last + colon + 1;
            let pinned = format!("{}{hash}", &written[..at]);
            let edit = (&written[at..] != hash)
                .then(|| Edit::new(Span::new(span.start + at, span.end), hash));
            (edit, pinned)
        }
        None => (
            Some(Edit::insert(span.end, format!(":{hash}"))),
            format!("{written}:{hash}"),
        ),
    }
}

fn cannot_pin(reference: &Expanded, why: &str, digest: &str) -> (Span, String, Option<String>) {
    (
        reference.span,
        format!("`{}` cannot be pinned: {why}", reference.written),
        Some(format!(
            "write the digest yourself (`…@{digest}`) or make the reference a literal"
        )),
    )
}

/// Pins a reference built from variables.
///
/// A reference that is one variable (`FROM ${BASE}`) or literal text
/// ending in one (`FROM repo:${TAG}`) is pinned at the global `ARG`
/// default that gives it, when that is sound: the default is literal and
/// not overridden by a build arg, and the variable is used nowhere else in
/// the file. Any other reference with a variable in part
/// (`FROM python:${V}-slim`), and a trailing-variable reference whose ARG
/// cannot be pinned, gets the digest after the reference as written
/// (`FROM python:${V}-slim@sha256:…`): the variable stays, and the digest
/// is the one locked for the configured build args.
fn arg_edit(
    def: &Definition,
    text: &str,
    from_arg: Option<&str>,
    reference: &Expanded,
    digest: &str,
    build_args: &std::collections::BTreeMap<String, String>,
) -> Result<Option<Edit>, String> {
    let at_arg = match from_arg {
        Some(v) => Some(v.to_string()),
        None => trailing_variable(&reference.written),
    };
    let Some(var) = at_arg else {
        return after_reference(text, reference, digest);
    };
    // A reference that is a variable alone is the build arg's to pin.
    let whole = from_arg.is_some()
        || trailing_variable(&reference.written).is_some_and(|v| {
            let w = reference.written.as_str();
            w == format!("${v}") || w == format!("${{{v}}}")
        });
    match default_edit(def, text, &var, digest, build_args) {
        Ok(edit) => Ok(edit),
        Err(why) if whole => Err(why),
        Err(_) => after_reference(text, reference, digest),
    }
}

/// The digest after a reference written with variables, unless its value
/// already carries a digest (then it must be the locked one).
fn after_reference(text: &str, reference: &Expanded, digest: &str) -> Result<Option<Edit>, String> {
    if reference.written.contains('@') {
        return Ok(digest_edit(text, reference.span, digest));
    }
    match reference.value.as_deref().and_then(|v| v.split_once('@')) {
        Some((_, d)) if d == digest => Ok(None),
        Some(_) => Err("its digest comes from a variable".to_string()),
        None if reference.value.is_none() => Err(format!(
            "{} has no value here",
            reference
                .unresolved
                .iter()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        None => Ok(digest_edit(text, reference.span, digest)),
    }
}

/// Pins the default of the global `ARG var`.
fn default_edit(
    def: &Definition,
    text: &str,
    var: &str,
    digest: &str,
    build_args: &std::collections::BTreeMap<String, String>,
) -> Result<Option<Edit>, String> {
    if build_args.contains_key(var) {
        return Err(format!("`{var}` is set by a build arg"));
    }
    let Some(decl) = def.global_args.iter().rev().find(|a| a.name == var) else {
        return Err(format!("`{var}` is not a global ARG"));
    };
    let Some(default) = &decl.default else {
        return Err(format!("`ARG {var}` has no default"));
    };
    if !is_literal(&default.written) {
        return Err(format!("the default of `{var}` uses another variable"));
    }
    let uses = variable_uses(text, var);
    let from_uses = def
        .stages
        .iter()
        .filter(|s| variable_uses(&s.base.reference.written, var) > 0)
        .count();
    if uses != from_uses {
        return Err(format!("`{var}` is used elsewhere in the file"));
    }
    Ok(digest_edit(text, default.span, digest))
}

/// `prefix${VAR}` or `prefix$VAR` with a literal prefix: `VAR`.
fn trailing_variable(written: &str) -> Option<String> {
    let dollar = written.find('$')?;
    let rest = &written[dollar + 1..];
    let name = rest
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .unwrap_or(rest);
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then(|| name.to_string())
}

/// How often `$VAR` or `${VAR…}` occurs in `text`.
fn variable_uses(text: &str, var: &str) -> usize {
    let mut n = 0;
    for (i, _) in text.match_indices('$') {
        let rest = &text[i + 1..];
        let name = rest.strip_prefix('{').unwrap_or(rest);
        if let Some(after) = name.strip_prefix(var)
            && !after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        {
            n += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_goes_after_the_reference_or_replaces_the_old_one() {
        let t = "FROM python:3.11 AS b";
        let e = digest_edit(t, Span::new(5, 16), "sha256:ab").expect("edit");
        assert_eq!(e, Edit::insert(16, "@sha256:ab"));
        let t = "FROM python:3.11@sha256:00 AS b";
        let e = digest_edit(t, Span::new(5, 26), "sha256:ab").expect("edit");
        assert_eq!(e, Edit::new(Span::new(17, 26), "sha256:ab"));
        assert!(digest_edit(t, Span::new(5, 26), "sha256:00").is_none());
        let t = "ARG B=\"python:3\"";
        let e = digest_edit(t, Span::new(6, 16), "sha256:ab").expect("edit");
        assert_eq!(e, Edit::insert(15, "@sha256:ab"));
    }

    #[test]
    fn library_references_get_the_hash_in_place_of_the_tag() {
        let t = "From: library://lib/default/alpine:3.18";
        let (e, pinned) = library_tag_edit(Span::new(6, t.len()), &t[6..], "sha256.ab");
        assert_eq!(e, Some(Edit::new(Span::new(35, t.len()), "sha256.ab")));
        assert_eq!(pinned, "library://lib/default/alpine:sha256.ab");
        let (e, pinned) = library_tag_edit(Span::new(6, 12), "alpine", "sha256.ab");
        assert_eq!(e, Some(Edit::insert(12, ":sha256.ab")));
        assert_eq!(pinned, "alpine:sha256.ab");
        let (e, _) = library_tag_edit(Span::new(0, 16), "alpine:sha256.ab", "sha256.ab");
        assert_eq!(e, None);
    }

    /// A library base whose tag names another image per locked platform
    /// cannot be written as one hash: it is skipped, saying why; with one
    /// hash, the hash replaces the tag.
    #[test]
    fn a_library_base_is_pinned_only_when_every_platform_has_its_hash() {
        use crate::lock::{LockedPlatformImage, LockedStage};
        use crate::oci::Digest;
        use std::collections::BTreeMap;
        let text = "Bootstrap: library\nFrom: e/c/tool:1\n";
        let def =
            crate::source::apptainer::parse(std::path::Path::new("a.def"), text, &BTreeMap::new())
                .unwrap();
        let name = "library://lib/e/c/tool:1";
        let stage = LockedStage::new(0, None, "e/c/tool:1", Some(name)).unwrap();
        let platforms = ["linux/amd64".to_string(), "linux/arm64".to_string()];
        let mut lock = LockedImage::skeleton(
            "a",
            "a.def",
            Digest::sha256_of(b""),
            &platforms,
            vec![stage],
        )
        .unwrap();
        let h = |c: &str| -> Digest { format!("sha256:{}", c.repeat(64)).parse().unwrap() };
        let at = |p: &str, d: Digest| LockedPlatformImage {
            platform: p.parse().unwrap(),
            digest: d.clone(),
            config: d.clone(),
            diff_ids: vec![d],
        };
        lock.bases.push(LockedBase {
            name: name.parse().unwrap(),
            references: vec!["e/c/tool:1".parse().unwrap()],
            digest: h("a"),
            media_type: "application/vnd.sylabs.sif.layer.v1.sif".parse().unwrap(),
            built_from: None,
            agent: Some("library".parse().unwrap()),
            pinned: Some("file-sha256".parse().unwrap()),
            platforms: vec![at("linux/amd64", h("a")), at("linux/arm64", h("b"))],
        });
        let out = base_edits(&def, text, &lock, &BTreeMap::new());
        assert!(out.edits.is_empty());
        assert!(
            out.skipped[0]
                .1
                .contains("another image for each locked platform"),
            "{:?}",
            out.skipped
        );
        lock.bases[0].platforms.pop();
        let out = base_edits(&def, text, &lock, &BTreeMap::new());
        let hash = format!("sha256.{}", "a".repeat(64));
        assert_eq!(out.edits, vec![Edit::new(Span::new(34, 35), hash.clone())]);
        assert_eq!(out.pinned_stages, vec![(0, format!("e/c/tool:{hash}"))]);
    }

    #[test]
    fn variables_are_found_at_the_end_and_counted() {
        assert_eq!(trailing_variable("repo:${TAG}").as_deref(), Some("TAG"));
        assert_eq!(trailing_variable("repo:$TAG").as_deref(), Some("TAG"));
        assert_eq!(trailing_variable("python:${V}-slim"), None);
        assert_eq!(
            variable_uses("FROM a:${V}\nRUN echo $V $VV ${V:-x}", "V"),
            3
        );
    }
}
