//! One Dockerfile built as several images, one per build-arg set, whose
//! `FROM` expands to a different image for each (`FROM
//! python:${PYTHON_VERSION}-slim` with `PYTHON_VERSION` 3.11 and 3.12).
//!
//! One pinned `FROM` cannot serve them all, and a digest passed as another
//! build arg would silently build the wrong base when a build forgets it
//! (a registry resolves `name:tag@digest` by the digest alone). Instead the
//! `FROM` is split: a stage per variant, each pinned to its own locked
//! digest and named after the variables' values, and the original `FROM`
//! choosing among them by the same variables:
//!
//! ```text
//! ARG PYTHON_VERSION=3.11
//! # imagelock: one stage per build-arg set of `python:${PYTHON_VERSION}-slim`; …
//! FROM python:3.11-slim@sha256:… AS imagelock-python-3.11
//! FROM python:3.12-slim@sha256:… AS imagelock-python-3.12
//! FROM imagelock-python-${PYTHON_VERSION}
//! ```
//!
//! BuildKit and buildah resolve the expanded name to the stage and skip
//! the others; a value the locks do not know names no stage, and the build
//! fails instead of pulling an unpinned image. Each variant's lock is
//! re-keyed to the new text (stage indexes and lines shift) to be exactly
//! what `freeze` makes of it, so `verify` and `freeze --check` agree after
//! the rewrite. Once split, the variant stages are literal references,
//! pinned again here when their locks move.

use std::collections::BTreeMap;
use std::path::Path;

use crate::diagnostic::{LineIndex, Span};
use crate::lock::{LockedImage, LockedStage};
use crate::rewrite::edit::{self, Edit};
use crate::source::inputs::{Inputs, load_inputs_with};
use crate::source::model::{BaseTarget, Definition, DefinitionKind};

/// One image of a definition shared by several.
pub struct Variant<'a> {
    pub name: &'a str,
    pub definition: &'a Definition,
    pub inputs: &'a Inputs,
    pub lock: &'a LockedImage,
    pub context: &'a Path,
}

/// The definition with a stage per variant, and per variant (in the order
/// given) the definition parsed from it, its inputs and its lock.
#[derive(Debug)]
pub struct Split {
    pub text: String,
    pub variants: Vec<(Definition, Inputs, LockedImage)>,
}

/// A base of one stage split per variant.
struct SplitStage {
    stage: usize,
    /// `(stage name, pinned reference)` per distinct base, in the order the
    /// variants name them.
    entries: Vec<(String, String)>,
    selector: String,
}

/// The split form of a definition shared by `variants`, when their bases
/// differ (or it is split already and a variant's digest moved); `None`
/// when one text serves them all as it is rewritten today (and whenever
/// a lock is stale: the rewrite says so). `Err` says why no split form
/// exists; the caller refuses then.
pub fn split_bases(variants: &[Variant<'_>]) -> Result<Option<Split>, String> {
    let Some(first) = variants.first() else {
        return Ok(None);
    };
    if variants.len() < 2 || first.definition.kind != DefinitionKind::Dockerfile {
        return Ok(None);
    }
    let text = first.inputs.definition.as_str();
    if variants.iter().any(|v| {
        v.inputs.definition != text
            || v.inputs.hash() != v.lock.image.input_hash
            || v.definition.stages.len() != first.definition.stages.len()
    }) {
        return Ok(None);
    }

    let mut splits: Vec<SplitStage> = Vec::new();
    let mut edits: Vec<Edit> = Vec::new();
    let mut needed = false;
    for s in 0..first.definition.stages.len() {
        // (variant, the reference without digest, pinned reference).
        let mut users: Vec<(&Variant<'_>, String, String)> = Vec::new();
        for v in variants {
            let stage = &v.definition.stages[s];
            if stage.unused || !matches!(stage.base.target, BaseTarget::Image { .. }) {
                continue;
            }
            let Some(pinned) = pinned_base(v.lock, s, stage.base.reference.value.as_deref()) else {
                // Not locked, or an image of this repository: the
                // rewrite says so, per image.
                return Ok(None);
            };
            let bare = pinned
                .split_once('@')
                .map_or(&*pinned, |(n, _)| n)
                .to_string();
            users.push((v, bare, pinned));
        }
        let Some((_, _, pinned0)) = users.first() else {
            continue;
        };
        let reference = &first.definition.stages[s].base.reference;
        let all_same = users.iter().all(|(_, _, p)| p == pinned0);
        if users.len() < variants.len() {
            // A stage only some variants build: split already.
            needed = true;
        }
        if reference.written.contains('$') {
            let bare0 = &users[0].1;
            if users.iter().all(|(_, b, _)| b == bare0) {
                if !all_same {
                    return Err(format!(
                        "`{}` is the same image for every variant but their locks pin different digests; freeze them again together",
                        reference.written
                    ));
                }
                continue;
            }
            needed = true;
            splits.push(split_stage(variants, s, &users)?);
        } else if !all_same {
            return Err(format!(
                "`{}` is pinned to different digests by the variants' locks; freeze them again together",
                reference.written
            ));
        } else if users.len() < variants.len() {
            let digest = pinned0.split_once('@').map_or("", |(_, d)| d);
            if let Some(e) = super::bases::digest_edit(text, reference.span, digest) {
                edits.push(e);
            }
        }
    }
    if !needed {
        return Ok(None);
    }

    let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let lines = LineIndex::new(text);
    // (1-based line of the split FROM, lines inserted before it).
    let mut shifts: Vec<(u32, u32)> = Vec::new();
    // (old stage index, stages inserted before it).
    let mut inserted: Vec<(usize, usize)> = Vec::new();
    for split in &splits {
        let stage = &first.definition.stages[split.stage];
        let reference = &stage.base.reference;
        let line_start = text[..stage.span.start].rfind('\n').map_or(0, |i| i + 1);
        let head = &text[stage.span.start..reference.span.start];
        let Some(keyword_end) = head
            .to_ascii_uppercase()
            .find("FROM")
            .map(|i| stage.span.start + i + 4)
        else {
            return Err("the `FROM` instruction could not be read again".into());
        };
        if text[line_start..reference.span.end].contains('\n') {
            return Err(format!(
                "`FROM … {}` is written over several lines; write it on one line",
                reference.written
            ));
        }
        let mut block = format!(
            "# imagelock: one stage per build-arg set of `{}`; a set not listed here fails the build{eol}",
            reference.written
        );
        for (name, pinned) in &split.entries {
            block.push_str(&format!("{head}{pinned} AS {name}{eol}"));
        }
        edits.push(Edit::insert(line_start, block));
        edits.push(Edit::new(
            Span::new(keyword_end, reference.span.end),
            format!(" {}", split.selector),
        ));
        let line = u32::try_from(lines.line_col(text, stage.span.start).line).unwrap_or(u32::MAX);
        shifts.push((line, u32::try_from(split.entries.len() + 1).unwrap_or(0)));
        inserted.push((split.stage, split.entries.len()));
    }
    let new_text = edit::apply(text, &edits).map_err(|e| e.to_string())?;
    let new_index = |old: usize| -> usize {
        old + inserted
            .iter()
            .filter(|(s, _)| *s <= old)
            .map(|(_, n)| n)
            .sum::<usize>()
    };
    let new_line = |old: u32| -> u32 {
        old + shifts
            .iter()
            .filter(|(l, _)| *l <= old)
            .map(|(_, n)| n)
            .sum::<u32>()
    };

    let mut out = Vec::new();
    for v in variants {
        let def = super::parse_definition(
            v.definition.kind,
            &v.definition.path,
            &new_text,
            &v.inputs.build_args,
            &v.definition.wrappers,
        )?;
        if def.stages.len() != new_index(v.definition.stages.len() - 1) + 1 {
            return Err("the split definition has unexpected stages".into());
        }
        for split in &splits {
            let old = &v.definition.stages[split.stage];
            if old.unused {
                continue;
            }
            let selected = match def.stages[new_index(split.stage)].base.target {
                BaseTarget::Stage { index } => def.stages.get(index),
                _ => None,
            };
            let want = pinned_base(v.lock, split.stage, old.base.reference.value.as_deref());
            if selected.and_then(|s| s.base.reference.value.clone()) != want {
                return Err(format!(
                    "`{}` would not select its own base for `{}`",
                    split.selector, v.name
                ));
            }
        }
        let read = |p: &Path| fs_err::read_to_string(p);
        let inputs = load_inputs_with(&def, &new_text, v.context, &v.inputs.build_args, &read)
            .map_err(|e| e.to_string())?;
        let lock = rekey(v.lock, &def, &inputs, &new_index, &new_line)?;
        out.push((def, inputs, lock));
    }
    Ok(Some(Split {
        text: new_text,
        variants: out,
    }))
}

/// The reference a variant's lock pins stage `s` to (`value@digest`).
fn pinned_base(lock: &LockedImage, s: usize, value: Option<&str>) -> Option<String> {
    let name = lock
        .stages
        .iter()
        .find(|l| l.index as usize == s)?
        .base_name
        .as_deref()?;
    let base = lock.bases.iter().find(|b| b.name == name)?;
    if base.built_from.is_some() || base.agent.is_some() {
        return None;
    }
    let value = value?;
    let bare = value.split_once('@').map_or(value, |(n, _)| n);
    Some(format!("{bare}@{}", base.digest))
}

/// The stage names and selector of stage `s`, whose reference expands to a
/// different image for some variants.
fn split_stage(
    variants: &[Variant<'_>],
    s: usize,
    users: &[(&Variant<'_>, String, String)],
) -> Result<SplitStage, String> {
    let first = &variants[0].definition.stages[s];
    let written = &first.base.reference.written;
    let exprs = variable_expressions(written).ok_or_else(|| {
        format!("`{written}` uses variables in a form imagelock does not write a stage name from")
    })?;
    // The repository's last path segment (`python` of
    // `host:5000/lib/python:${V}`).
    let repo = written
        .split('@')
        .next()
        .and_then(|r| r.rsplit('/').next())
        .and_then(|r| r.split(':').next())
        .filter(|r| !r.contains('$') && stage_name_ok(r))
        .map_or_else(|| format!("stage{s}"), str::to_string);
    let prefix = format!("imagelock-{repo}");
    let selector = format!("{prefix}-{}", exprs.join("-"));
    let existing: Vec<String> = variants[0]
        .definition
        .stages
        .iter()
        .filter_map(|st| st.name.as_ref().map(|n| n.to_ascii_lowercase()))
        .collect();
    let mut entries: Vec<(String, String)> = Vec::new();
    for (v, _, pinned) in users {
        let name = expand(&selector, v)
            .ok_or_else(|| format!("`{selector}` has no value for `{}`", v.name))?;
        if !stage_name_ok(&name) {
            return Err(format!(
                "the values of `{written}` for `{}` make `{name}`, which is not a valid stage name (lowercase letters, digits, `.`, `_` and `-`)",
                v.name
            ));
        }
        if existing.contains(&name) {
            return Err(format!("a stage is already named `{name}`"));
        }
        match entries.iter().find(|(n, _)| *n == name) {
            Some((_, p)) if p != pinned => {
                return Err(format!(
                    "two variants select the stage `{name}` but their locks pin different images ({p} and {pinned})"
                ));
            }
            Some(_) => {}
            None => entries.push((name, pinned.clone())),
        }
    }
    Ok(SplitStage {
        stage: s,
        entries,
        selector,
    })
}

/// `$NAME` and `${…}` expressions of `written`, in order; `None` when it
/// escapes a `$` or nests braces.
fn variable_expressions(written: &str) -> Option<Vec<String>> {
    if written.contains('\\') {
        return None;
    }
    let bytes = written.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        if bytes.get(i + 1) == Some(&b'{') {
            let close = written[i..].find('}')? + i;
            if written[i + 2..close].contains(['$', '{']) {
                return None;
            }
            out.push(written[i..=close].to_string());
            i = close + 1;
        } else {
            let len = written[i + 1..]
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
            if len == 0 {
                return None;
            }
            // `$A` followed by a name character would read as one longer
            // name once joined: always write the braced form.
            out.push(format!("${{{}}}", &written[i + 1..=i + len]));
            i += 1 + len;
        }
    }
    (!out.is_empty()).then_some(out)
}

/// `selector` expanded with the variant's ARG values, by parsing a
/// one-line Dockerfile with the variant's global ARGs.
fn expand(selector: &str, v: &Variant<'_>) -> Option<String> {
    let mut probe = String::new();
    for arg in &v.definition.global_args {
        match &arg.default {
            Some(d) => probe.push_str(&format!("ARG {}={}\n", arg.name, d.written)),
            None => probe.push_str(&format!("ARG {}\n", arg.name)),
        }
    }
    probe.push_str(&format!("FROM {selector}\n"));
    let def = crate::source::dockerfile::parse_with(
        &v.definition.path,
        &probe,
        &v.inputs.build_args,
        &v.definition.wrappers,
    )
    .ok()?;
    let reference = &def.stages.first()?.base.reference;
    reference
        .unresolved
        .is_empty()
        .then(|| reference.value.clone())
        .flatten()
}

/// BuildKit's stage names: a lowercase letter, then lowercase letters,
/// digits, `.`, `_` and `-`.
fn stage_name_ok(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
}

/// `lock` for the split text: stages as `freeze` records them for `def`
/// (every stage, with its base as expanded), steps, downloads and git
/// sources moved to their new stages and lines, base references as the
/// new text writes them, and the input hash over the new inputs.
fn rekey(
    lock: &LockedImage,
    def: &Definition,
    inputs: &Inputs,
    new_index: &dyn Fn(usize) -> usize,
    new_line: &dyn Fn(u32) -> u32,
) -> Result<LockedImage, String> {
    let mut out = lock.clone();
    let old_of: BTreeMap<usize, &LockedStage> = lock
        .stages
        .iter()
        .map(|l| (new_index(l.index as usize), l))
        .collect();
    let mut stages = Vec::new();
    for st in &def.stages {
        let (base, base_name) = match &st.base.target {
            BaseTarget::Stage { index } => (format!("stage:{index}"), None),
            BaseTarget::Scratch => ("scratch".to_string(), None),
            BaseTarget::Image { .. } | BaseTarget::Other { .. } => {
                let written = st
                    .base
                    .reference
                    .value
                    .clone()
                    .unwrap_or_else(|| st.base.reference.written.clone());
                let name = crate::oci::ImageRef::parse(&written)
                    .ok()
                    .map(|r| crate::resolve::registry::canonical_name(&r));
                (written, name)
            }
        };
        let mut entry = LockedStage::new(st.index, st.name.as_deref(), &base, base_name.as_deref())
            .map_err(|e| e.to_string())?;
        if let Some(old) = old_of.get(&st.index) {
            entry.downloads.clone_from(&old.downloads);
            entry.git.clone_from(&old.git);
            for d in &mut entry.downloads {
                d.line = new_line(d.line);
            }
            for g in &mut entry.git {
                g.line = new_line(g.line);
            }
        }
        stages.push(entry);
    }
    out.stages = stages;
    for step in &mut out.steps {
        step.stage = u32::try_from(new_index(step.stage as usize)).unwrap_or(u32::MAX);
        if step.file == lock.image.definition {
            step.line = new_line(step.line);
        }
    }
    super::refresh_references(&mut out, def);
    out.image.input_hash = inputs.hash();
    out.normalize();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_read_in_order_and_braced() {
        assert_eq!(
            variable_expressions("python:${PYTHON_VERSION}-slim").unwrap(),
            ["${PYTHON_VERSION}"]
        );
        assert_eq!(
            variable_expressions("$REG/python:$V-${FLAVOR:-slim}").unwrap(),
            ["${REG}", "${V}", "${FLAVOR:-slim}"]
        );
        assert!(variable_expressions("python:3.11").is_none());
        assert!(variable_expressions("python:${A:-${B}}").is_none());
        assert!(variable_expressions(r"python:\$V").is_none());
    }

    #[test]
    fn stage_names_follow_buildkit() {
        assert!(stage_name_ok("imagelock-python-3.11"));
        assert!(!stage_name_ok("imagelock-Python-3.11"));
        assert!(!stage_name_ok("imagelock-python:3.11"));
        assert!(!stage_name_ok("3.11"));
    }
}
