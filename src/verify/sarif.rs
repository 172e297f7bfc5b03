//! SARIF 2.1.0 for code-scanning views (GitHub, GitLab, IDEs): one rule per
//! finding kind, one result per finding, located at the definition line or
//! the lock it is about, with a fingerprint that stays the same from run to
//! run while the finding does.

use serde_json::{Value, json};

use super::finding::{Finding, FindingKind, ImageReport, Render, Report, Severity, finding_id};
use super::stale::Staleness;

/// The SARIF 2.1.0 schema's URI, as the document names it.
pub const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// The rule of a SIF built from another definition than the one checked.
const SIF_RULE: &str = "sif-definition-differs";

/// The key of imagelock's fingerprint in `partialFingerprints`.
const FINGERPRINT: &str = "imagelockFinding/v1";

/// SARIF 2.1.0 of a verify or drift report.
pub struct PrintSarif;

/// One result before it is written: its rule, level, message and place.
struct Item {
    rule: &'static str,
    severity: Severity,
    message: String,
    file: String,
    line: Option<u32>,
    id: String,
    image: String,
}

impl Render for PrintSarif {
    fn render(&self, report: &Report) -> String {
        let results: Vec<Value> = items(report).iter().map(result).collect();
        document(results, None)
    }
}

/// A SARIF log of a run that ended in trouble (exit 2): no results, and an
/// invocation that did not succeed, with why.
pub fn sarif_error(message: &str) -> String {
    document(Vec::new(), Some(message))
}

fn document(results: Vec<Value>, error: Option<&str>) -> String {
    let mut invocation = json!({ "executionSuccessful": error.is_none() });
    if let Some(message) = error {
        invocation["exitCode"] = json!(2);
        invocation["toolExecutionNotifications"] = json!([{
            "level": "error",
            "message": { "text": message },
        }]);
    }
    let value = json!({
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "imagelock",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules(),
            }},
            "invocations": [invocation],
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    });
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

fn rules() -> Vec<Value> {
    let mut rules: Vec<Value> = FindingKind::ALL
        .iter()
        .map(|k| {
            json!({
                "id": k.as_str(),
                "shortDescription": { "text": k.meaning() },
                "defaultConfiguration": { "level": level(k.severity()) },
                "properties": { "severity": k.severity().as_str() },
            })
        })
        .collect();
    rules.push(json!({
        "id": SIF_RULE,
        "shortDescription": { "text": "The SIF was built from another definition than the one checked." },
        "defaultConfiguration": { "level": "error" },
        "properties": { "severity": "high" },
    }));
    rules
}

fn result(item: &Item) -> Value {
    let mut region = json!({});
    if let Some(line) = item.line {
        region = json!({ "startLine": line });
    }
    let mut physical = json!({
        "artifactLocation": { "uri": uri(&item.file), "uriBaseId": "%SRCROOT%" },
    });
    if item.line.is_some() {
        physical["region"] = region;
    }
    json!({
        "ruleId": item.rule,
        "level": level(item.severity),
        "message": { "text": item.message },
        "locations": [{ "physicalLocation": physical }],
        "partialFingerprints": { FINGERPRINT: item.id },
        "properties": { "image": item.image, "severity": item.severity.as_str() },
    })
}

/// A relative path as a URI reference: `/` separators, spaces and other
/// characters a URI cannot hold percent-encoded.
fn uri(path: &str) -> String {
    let mut out = String::new();
    for b in path.replace('\\', "/").bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Every finding of the report as a result.
fn items(report: &Report) -> Vec<Item> {
    let mut out = Vec::new();
    for image in &report.images {
        for s in &image.stale {
            out.push(stale_item(image, s));
        }
        if image.sif.as_ref().is_some_and(super::SifReport::is_problem) {
            out.push(Item {
                rule: SIF_RULE,
                severity: Severity::High,
                message: format!(
                    "{}: the SIF's definition differs from `{}`: the image was built from another definition",
                    image.image, image.definition
                ),
                file: image.definition.clone(),
                line: None,
                id: finding_id(&[&image.image, SIF_RULE]),
                image: image.image.clone(),
            });
        }
        for p in &image.platforms {
            for f in &p.findings {
                out.push(finding_item(image, Some(&p.platform), f));
            }
        }
        for f in &image.findings {
            out.push(finding_item(image, None, f));
        }
    }
    out
}

fn finding_item(image: &ImageReport, platform: Option<&str>, f: &Finding) -> Item {
    let (file, line) = match f.place() {
        Some((file, line)) => (image.path_of(file), Some(line)),
        None => (image.definition.clone(), None),
    };
    let at = platform.map(|p| format!(" {p}")).unwrap_or_default();
    Item {
        rule: f.kind.as_str(),
        severity: f.severity(),
        message: format!(
            "{}{at}: {} {}",
            image.image,
            f.ecosystem.as_str(),
            super::report::describe(f)
        ),
        file,
        line,
        id: f.id(&image.image, platform),
        image: image.image.clone(),
    }
}

fn stale_item(image: &ImageReport, s: &Staleness) -> Item {
    // A missing or hand-edited lock is about the lock; the rest about the
    // definition.
    let file = match s {
        Staleness::MissingLock { .. } | Staleness::HandEdited { .. } => image.lock.clone(),
        _ => image.definition.clone(),
    };
    let reason = serde_json::to_value(s)
        .ok()
        .and_then(|v| v.get("kind").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default();
    Item {
        rule: FindingKind::Stale.as_str(),
        severity: FindingKind::Stale.severity(),
        message: format!(
            "{}: {}; re-run `imagelock freeze {}`",
            image.image,
            s.describe(),
            image.definition
        ),
        file,
        line: None,
        id: finding_id(&[&image.image, "stale", &reason]),
        image: image.image.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::verify::finding::{Ecosystem, Finding};

    fn drift_report(found: &str) -> Report {
        let mut image = ImageReport::new(
            "driver",
            "driver/Dockerfile".into(),
            "lockfiles/driver.lock".into(),
        );
        let mut f = Finding::new(FindingKind::Outdated, Ecosystem::Pip, "certifi");
        f.expected = Some("2026.10.18".into());
        f.found = Some(found.into());
        f.step = Some("driver/Dockerfile:12".into());
        image.findings.push(f);
        let mut g = Finding::new(FindingKind::Yanked, Ecosystem::Pip, "pyyaml");
        g.expected = Some("6.0.2".into());
        image.findings.push(g);
        Report {
            images: vec![image],
        }
    }

    #[test]
    fn results_are_located_and_fingerprinted() {
        let a: Value = serde_json::from_str(&PrintSarif.render(&drift_report("2099.1.1"))).unwrap();
        let results = a["runs"][0]["results"].as_array().unwrap();
        assert_eq!(results[0]["ruleId"], "outdated");
        assert_eq!(results[0]["level"], "note");
        let place = &results[0]["locations"][0]["physicalLocation"];
        assert_eq!(place["artifactLocation"]["uri"], "driver/Dockerfile");
        assert_eq!(place["region"]["startLine"], 12);
        assert_eq!(results[1]["ruleId"], "yanked");
        assert_eq!(results[1]["level"], "error");
        assert!(results[1]["locations"][0]["physicalLocation"]["region"].is_null());
        let print = |v: &Value| {
            v["runs"][0]["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["partialFingerprints"][FINGERPRINT].clone())
                .collect::<Vec<_>>()
        };
        // A newer release keeps the finding's fingerprint; findings differ.
        let b: Value = serde_json::from_str(&PrintSarif.render(&drift_report("2100.1.1"))).unwrap();
        assert_eq!(print(&a), print(&b));
        assert_ne!(print(&a)[0], print(&a)[1]);
    }

    #[test]
    fn uris_are_encoded() {
        assert_eq!(uri("a b/Dockerfile"), "a%20b/Dockerfile");
        assert_eq!(uri("app/Dockerfile"), "app/Dockerfile");
    }
}
