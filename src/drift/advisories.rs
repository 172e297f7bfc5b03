//! Security advisories of locked pip packages, as the index publishes them:
//! PyPI's JSON API (`/pypi/NAME/VERSION/json`, beside `/simple`) lists the
//! advisories of each release in its `vulnerabilities` field (OSV ids,
//! aliases, fixed versions). A package with advisories is a `vulnerable`
//! finding. Where advisories cannot be read (an index without that API, a
//! local directory, offline, an error), drift says so: no finding is not
//! "no advisory".

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::config::Config;
use crate::freeze::steps::index_url;
use crate::lock::LockedImage;
use crate::resolve::Session;
use crate::verify::{Ecosystem, Finding, FindingKind as Kind};

/// The largest JSON API answer read.
const MAX_ANSWER: u64 = 16 << 20;

/// What the advisories say, and what could not be checked.
#[derive(Debug, Default)]
pub struct Advisories {
    pub findings: Vec<Finding>,
    pub warnings: Vec<String>,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    vulnerabilities: Vec<Vulnerability>,
}

#[derive(Clone, Deserialize)]
struct Vulnerability {
    id: String,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    details: Option<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    fixed_in: Vec<String>,
    #[serde(default)]
    withdrawn: Option<String>,
}

/// The JSON API beside a simple index: `…/simple/` → `…/pypi/`, for
/// HTTP(S) indexes whose path ends in `simple`.
pub fn json_api(index: &str) -> Option<String> {
    let url = url::Url::parse(index).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let text = url.as_str().trim_end_matches('/');
    let base = text.strip_suffix("/simple")?;
    Some(format!("{base}/pypi/"))
}

/// The advisories of every locked pip package of `locked`, from its step's
/// main index.
pub async fn advisories(config: &Config, session: &Session, locked: &LockedImage) -> Advisories {
    let mut out = Advisories::default();
    let image = locked.image.name.to_string();
    if session.offline() {
        if locked.steps.iter().any(|s| !s.pypi.is_empty()) {
            out.warnings.push(format!(
                "image `{image}`: security advisories are not checked offline"
            ));
        }
        return out;
    }
    let mut unchecked: BTreeSet<String> = BTreeSet::new();
    for step in &locked.steps {
        let Some(index) = step.indexes.first() else {
            continue;
        };
        if step.pypi.is_empty() {
            continue;
        }
        let Some(api) = json_api(&index_url(config, index)) else {
            unchecked.insert(index.to_string());
            continue;
        };
        for p in &step.pypi {
            let Some(version) = p.version.as_ref() else {
                continue;
            };
            if p.is_direct() {
                continue;
            }
            let name = p.name.to_string();
            let url = format!("{api}{name}/{version}/json");
            let Ok(parsed) = url.parse() else {
                continue;
            };
            // With the index's credentials, for a private index.
            let request = session.index_get(index.as_str(), &parsed, MAX_ANSWER);
            let answer = session.http().send(request).await;
            let body = match answer {
                Ok(r) if r.status.is_success() => r.body,
                Ok(r) => {
                    out.warnings.push(format!(
                        "image `{image}`: the advisories of {name} {version} are unknown: {} answered {} for `{url}`",
                        index,
                        r.status.as_u16()
                    ));
                    continue;
                }
                Err(e) => {
                    out.warnings.push(format!(
                        "image `{image}`: the advisories of {name} {version} are unknown: {e}"
                    ));
                    continue;
                }
            };
            let answer: Answer = match serde_json::from_slice(&body) {
                Ok(a) => a,
                Err(e) => {
                    out.warnings.push(format!(
                        "image `{image}`: the advisories of {name} {version} are unknown: `{url}` is not the JSON API's answer ({e})"
                    ));
                    continue;
                }
            };
            if let Some(f) = finding(&name, version.as_ref(), &answer.vulnerabilities)
                && !out.findings.contains(&f)
            {
                out.findings.push(f);
            }
        }
    }
    for index in unchecked {
        out.warnings.push(format!(
            "image `{image}`: the advisories of packages from `{index}` are not checked: only an index with PyPI's JSON API (`…/pypi/` beside `…/simple/`) publishes them"
        ));
    }
    out
}

/// One finding for a package's advisories: aliases of one another count
/// once; withdrawn ones not at all.
fn finding(name: &str, version: &str, vulnerabilities: &[Vulnerability]) -> Option<Finding> {
    let live: Vec<&Vulnerability> = vulnerabilities
        .iter()
        .filter(|v| v.withdrawn.is_none())
        .collect();
    // Group advisories that name each other (PYSEC-… and GHSA-… of one CVE).
    let mut groups: Vec<BTreeSet<String>> = Vec::new();
    let mut first: BTreeMap<String, &Vulnerability> = BTreeMap::new();
    for v in &live {
        let names: BTreeSet<String> = std::iter::once(v.id.clone())
            .chain(v.aliases.iter().cloned())
            .collect();
        match groups.iter_mut().find(|g| !g.is_disjoint(&names)) {
            Some(g) => g.extend(names),
            None => {
                first.insert(v.id.clone(), v);
                groups.push(names);
            }
        }
    }
    if groups.is_empty() {
        return None;
    }
    let mut fixed: BTreeSet<String> = BTreeSet::new();
    let mut lines = Vec::new();
    for (id, v) in &first {
        let group = groups.iter().find(|g| g.contains(id))?;
        let aliases: Vec<&str> = group
            .iter()
            .map(String::as_str)
            .filter(|a| a != id)
            .collect();
        let fixes: BTreeSet<&String> = live
            .iter()
            .filter(|w| group.contains(&w.id))
            .flat_map(|w| &w.fixed_in)
            .collect();
        fixed.extend(fixes.iter().map(|s| (*s).clone()));
        let what = v
            .summary
            .as_deref()
            .or(v.details.as_deref())
            .and_then(|t| t.lines().next())
            .unwrap_or("");
        let fix = if fixes.is_empty() {
            "no fixed version".to_string()
        } else {
            format!(
                "fixed in {}",
                fixes.into_iter().cloned().collect::<Vec<_>>().join(", ")
            )
        };
        lines.push(format!("{id} ({}): {what} ({fix})", aliases.join(", ")));
    }
    let mut f = Finding::new(Kind::Vulnerable, Ecosystem::Pip, name);
    f.expected = Some(version.to_string());
    f.found = (!fixed.is_empty()).then(|| fixed.into_iter().collect::<Vec<_>>().join(", "));
    f.detail = Some(lines.join("\n"));
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_api_is_beside_simple() {
        assert_eq!(
            json_api("https://pypi.org/simple").as_deref(),
            Some("https://pypi.org/pypi/")
        );
        assert_eq!(
            json_api("http://127.0.0.1:8080/simple/").as_deref(),
            Some("http://127.0.0.1:8080/pypi/")
        );
        assert_eq!(json_api("file:///srv/simple"), None);
        assert_eq!(json_api("https://example.org/packages/"), None);
    }

    #[test]
    fn aliases_count_once_and_withdrawn_not_at_all() {
        let v = |id: &str, aliases: &[&str], fixed: &[&str], withdrawn: bool| Vulnerability {
            id: id.into(),
            aliases: aliases.iter().map(|s| s.to_string()).collect(),
            details: Some(format!("{id} details")),
            summary: None,
            fixed_in: fixed.iter().map(|s| s.to_string()).collect(),
            withdrawn: withdrawn.then(|| "2024-01-01".into()),
        };
        let f = finding(
            "requests",
            "2.31.0",
            &[
                v("PYSEC-1", &["CVE-1", "GHSA-1"], &["2.32.0"], false),
                v("GHSA-1", &["CVE-1", "PYSEC-1"], &["2.32.0"], false),
                v("PYSEC-2", &[], &[], true),
            ],
        )
        .unwrap();
        assert_eq!(f.found.as_deref(), Some("2.32.0"));
        let detail = f.detail.unwrap();
        assert_eq!(detail.lines().count(), 1, "{detail}");
        assert!(
            detail.starts_with("GHSA-1 (CVE-1, PYSEC-1)") || detail.starts_with("PYSEC-1"),
            "{detail}"
        );
        assert!(finding("x", "1", &[v("W", &[], &[], true)]).is_none());
    }
}
