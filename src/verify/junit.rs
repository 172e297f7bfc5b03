//! JUnit XML for CI test views: a testsuite per image, a testcase per check.
//!
//! Two flavours. [`JunitFlavour::Common`] is what GitLab, Jenkins' JUnit
//! plugin and the GitHub JUnit reporters read: `file` and `line` on each
//! testcase, counts on `testsuites`. [`JunitFlavour::Strict`] leaves out
//! exactly those attributes, which the strict Ant schema and the Jenkins
//! xUnit schema do not allow, and is valid under both. Everything else
//! (`time`, `timestamp`, `hostname`, failure `type`, `properties`,
//! `system-out`) is in both. The checks of one image are made in one
//! pass, so each testcase has its image's time.

use std::fmt::Write as _;
use std::time::Duration;

use super::finding::{Ecosystem, Finding, FindingKind, ImageReport, Render, Report};
use super::report::describe;

/// Which command's report this is: verify's checks or drift's kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JunitRun {
    Verify,
    Drift,
}

impl JunitRun {
    fn command(self) -> &'static str {
        match self {
            JunitRun::Verify => "verify",
            JunitRun::Drift => "drift",
        }
    }
}

/// With `file` and `line` (common), or valid under the strict schemas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JunitFlavour {
    Common,
    Strict,
}

/// JUnit XML of a verify or drift report. Verify: per image a testcase
/// "lock is current", and per platform checked one per check (base, conda,
/// pip, not locked); a SIF built from another definition is one more.
/// Drift: per image a testcase per kind of drift.
pub struct PrintJunit {
    pub run: JunitRun,
    pub flavour: JunitFlavour,
}

/// A failed check: its `type` (the finding kinds), a short message, and
/// every finding, one per line.
struct Failure {
    kind: String,
    message: String,
    body: String,
}

struct Case {
    class: String,
    name: String,
    file: Option<String>,
    line: Option<u32>,
    failure: Option<Failure>,
    error: Option<Failure>,
    skipped: Option<String>,
}

impl Case {
    fn new(class: &str, name: &str, file: &str) -> Case {
        Case {
            class: class.to_string(),
            name: name.to_string(),
            file: Some(file.to_string()),
            line: None,
            failure: None,
            error: None,
            skipped: None,
        }
    }

    /// Fails the case with `findings`, located at the first one's line.
    fn fail_with(&mut self, image: &ImageReport, findings: &[&Finding], platform: Option<&str>) {
        let Some(first) = findings.first() else {
            return;
        };
        if let Some((file, line)) = first.place() {
            self.file = Some(image.path_of(file));
            self.line = Some(line);
        }
        let mut kinds: Vec<&str> = findings.iter().map(|f| f.kind.as_str()).collect();
        kinds.dedup();
        let lines: Vec<String> = findings
            .iter()
            .map(|f| format!("{}  {}", f.ecosystem.as_str(), describe(f)))
            .collect();
        let n = lines.len();
        let at = platform.map(|p| format!(" on {p}")).unwrap_or_default();
        self.failure = Some(Failure {
            kind: kinds.join(","),
            message: format!("{n} problem{}{at}", plural(n)),
            body: lines.join("\n"),
        });
    }
}

struct Suite {
    name: String,
    time: Duration,
    properties: Vec<(&'static str, String)>,
    cases: Vec<Case>,
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

impl Render for PrintJunit {
    fn render(&self, report: &Report) -> String {
        let suites: Vec<Suite> = report
            .images
            .iter()
            .map(|image| match self.run {
                JunitRun::Verify => verify_suite(image),
                JunitRun::Drift => drift_suite(image),
            })
            .collect();
        document(self.run.command(), self.flavour, &suites)
    }
}

/// The JUnit report of a run that ended in trouble (exit 2): one testcase
/// in error, saying why.
pub fn junit_error(run: JunitRun, flavour: JunitFlavour, message: &str) -> String {
    let first = message.lines().next().unwrap_or_default().to_string();
    let mut case = Case::new("imagelock", &format!("imagelock {} ran", run.command()), "");
    case.file = None;
    case.error = Some(Failure {
        kind: "trouble".into(),
        message: first,
        body: message.to_string(),
    });
    let suite = Suite {
        name: format!("imagelock {}", run.command()),
        time: Duration::ZERO,
        properties: Vec::new(),
        cases: vec![case],
    };
    document(run.command(), flavour, &[suite])
}

fn properties(image: &ImageReport) -> Vec<(&'static str, String)> {
    let mut out = vec![
        ("definition", image.definition.clone()),
        ("lock", image.lock.clone()),
    ];
    if let Some(reference) = &image.reference {
        out.push(("image", reference.clone()));
    }
    out
}

fn verify_suite(image: &ImageReport) -> Suite {
    let mut cases = Vec::new();
    let mut lock = Case::new(&image.image, "lock is current", &image.lock);
    if !image.stale.is_empty() {
        let body: Vec<String> = image.stale.iter().map(|s| s.describe()).collect();
        lock.failure = Some(Failure {
            kind: FindingKind::Stale.as_str().into(),
            message: format!(
                "the lock of {} is stale; re-run `imagelock freeze {}`",
                image.image, image.definition
            ),
            body: body.join("\n"),
        });
    }
    cases.push(lock);
    if let Some(sif) = &image.sif {
        let mut case = Case::new(&image.image, "built from its definition", &image.definition);
        if sif.is_problem() {
            case.failure = Some(Failure {
                kind: "sif-definition-differs".into(),
                message: format!("the SIF's definition differs from `{}`", image.definition),
                body: format!(
                    "the SIF {} was built from another definition than `{}`",
                    sif.summary.sha256, image.definition
                ),
            });
        }
        cases.push(case);
    }
    type Pick = fn(&Finding) -> bool;
    for p in &image.platforms {
        let class = format!("{}.{}", image.image, p.platform);
        let groups: [(&str, Pick, Option<&str>); 4] = [
            (
                "base",
                |f| f.kind == FindingKind::BaseMismatch,
                (!p.checked.base).then_some("the base could not be checked"),
            ),
            (
                "conda packages",
                |f| f.ecosystem == Ecosystem::Conda && f.kind != FindingKind::NotLocked,
                None,
            ),
            (
                "pip packages",
                |f| f.ecosystem == Ecosystem::Pip && f.kind != FindingKind::NotLocked,
                None,
            ),
            (
                "no packages outside the lock",
                |f| f.kind == FindingKind::NotLocked,
                (!p.checked.not_locked).then_some("the base's packages are unknown"),
            ),
        ];
        for (name, pick, skipped) in groups {
            let found: Vec<&Finding> = p.findings.iter().filter(|f| pick(f)).collect();
            let mut case = Case::new(&class, name, &image.definition);
            if found.is_empty() {
                case.skipped = skipped.map(str::to_string);
            } else {
                case.fail_with(image, &found, Some(&p.platform));
            }
            cases.push(case);
        }
    }
    Suite {
        name: image.image.clone(),
        time: image.elapsed.unwrap_or_default(),
        properties: properties(image),
        cases,
    }
}

fn drift_suite(image: &ImageReport) -> Suite {
    let mut cases = Vec::new();
    for kind in FindingKind::DRIFT {
        let found: Vec<&Finding> = image.findings.iter().filter(|f| f.kind == kind).collect();
        let mut case = Case::new(&image.image, kind.as_str(), &image.definition);
        case.fail_with(image, &found, None);
        cases.push(case);
    }
    Suite {
        name: image.image.clone(),
        time: image.elapsed.unwrap_or_default(),
        properties: properties(image),
        cases,
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

/// The host's name for `hostname`, `localhost` when it cannot be told (as
/// the Ant schema asks).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && !h.contains(char::is_whitespace))
        .unwrap_or_else(|| "localhost".into())
}

fn document(command: &str, flavour: JunitFlavour, suites: &[Suite]) -> String {
    let strict = flavour == JunitFlavour::Strict;
    // The Ant schema's timestamp has no zone; it is UTC.
    let timestamp = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let host = xml(&hostname());
    let mut body = String::new();
    let (mut tests, mut failures, mut errors) = (0, 0, 0);
    let mut total = Duration::ZERO;
    for (id, suite) in suites.iter().enumerate() {
        let n_fail = suite.cases.iter().filter(|c| c.failure.is_some()).count();
        let n_err = suite.cases.iter().filter(|c| c.error.is_some()).count();
        let n_skip = suite.cases.iter().filter(|c| c.skipped.is_some()).count();
        tests += suite.cases.len();
        failures += n_fail;
        errors += n_err;
        total += suite.time;
        let time = seconds(suite.time);
        let _ = writeln!(
            body,
            "  <testsuite name=\"{}\" package=\"imagelock.{command}\" id=\"{id}\" timestamp=\"{timestamp}\" hostname=\"{host}\" tests=\"{}\" failures=\"{n_fail}\" errors=\"{n_err}\" skipped=\"{n_skip}\" time=\"{time}\">",
            xml(&suite.name),
            suite.cases.len(),
        );
        body.push_str("    <properties>\n");
        for (name, value) in &suite.properties {
            let _ = writeln!(
                body,
                "      <property name=\"{name}\" value=\"{}\"/>",
                xml(value)
            );
        }
        body.push_str("    </properties>\n");
        for c in &suite.cases {
            let _ = write!(
                body,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{time}\"",
                xml(&c.class),
                xml(&c.name)
            );
            if !strict {
                if let Some(file) = c.file.as_deref().filter(|f| !f.is_empty()) {
                    let _ = write!(body, " file=\"{}\"", xml(file));
                }
                if let Some(line) = c.line {
                    let _ = write!(body, " line=\"{line}\"");
                }
            }
            let (element, outcome) = match (&c.failure, &c.error) {
                (Some(f), _) => ("failure", Some(f)),
                (None, Some(e)) => ("error", Some(e)),
                (None, None) => ("", None),
            };
            match (outcome, &c.skipped) {
                (Some(f), _) => {
                    let _ = writeln!(
                        body,
                        ">\n      <{element} type=\"{}\" message=\"{}\">{}</{element}>\n    </testcase>",
                        xml(&f.kind),
                        xml(&f.message),
                        xml(&f.body)
                    );
                }
                (None, Some(why)) => {
                    let _ = writeln!(
                        body,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                        xml(why)
                    );
                }
                (None, None) => body.push_str("/>\n"),
            }
        }
        body.push_str("    <system-out/>\n    <system-err/>\n  </testsuite>\n");
    }
    let head = if strict {
        "<testsuites>".to_string()
    } else {
        format!(
            "<testsuites name=\"imagelock {command}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{}\">",
            seconds(total)
        )
    };
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{head}\n{body}</testsuites>\n")
}

/// Text for an XML attribute or element: markup escaped, and the control
/// characters XML 1.0 cannot hold dropped.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push('\n'),
            '\t' => out.push('\t'),
            '\r' => out.push_str("&#13;"),
            c if (c as u32) < 0x20 || matches!(c, '\u{fffe}' | '\u{ffff}') => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::finding::{Checked, PlatformCheck};

    pub(crate) fn sample() -> Report {
        let mut image = ImageReport::new(
            "driver",
            "driver/Dockerfile".into(),
            "lockfiles/driver.lock".into(),
        );
        image.reference = Some("oci:build/driver".into());
        let mut f = Finding::new(FindingKind::VersionDiffers, Ecosystem::Pip, "numpy");
        f.expected = Some("2.3.4".into());
        f.found = Some("2.3.3 <&>".into());
        f.step = Some("driver/Dockerfile:12".into());
        image.platforms.push(PlatformCheck {
            platform: "linux/amd64".into(),
            config: "sha256:00".into(),
            checked: Checked {
                base: true,
                conda: 0,
                pip: 2,
                apt: 0,
                rpm: 0,
                apk: 0,
                not_locked: true,
                copied: 0,
            },
            findings: vec![f],
            notes: vec![],
        });
        Report {
            images: vec![image],
        }
    }

    #[test]
    fn counts_locates_and_escapes() {
        let common = PrintJunit {
            run: JunitRun::Verify,
            flavour: JunitFlavour::Common,
        }
        .render(&sample());
        assert!(common.contains("tests=\"5\" failures=\"1\""), "{common}");
        assert!(
            common.contains(
                "name=\"pip packages\" time=\"0.000\" file=\"driver/Dockerfile\" line=\"12\">\n      <failure type=\"version-differs\" message=\"1 problem on linux/amd64\">pip  numpy"
            ),
            "{common}"
        );
        assert!(common.contains("2.3.3 &lt;&amp;&gt;"), "{common}");
        let strict = PrintJunit {
            run: JunitRun::Verify,
            flavour: JunitFlavour::Strict,
        }
        .render(&sample());
        assert!(!strict.contains(" file=") && !strict.contains(" line="));
        assert!(strict.contains("\n<testsuites>\n"), "{strict}");
    }

    #[test]
    fn trouble_is_one_error() {
        let x = junit_error(
            JunitRun::Drift,
            JunitFlavour::Common,
            "cannot reach the index\nhint: check the proxy",
        );
        assert!(x.contains("tests=\"1\" failures=\"0\" errors=\"1\""), "{x}");
        assert!(
            x.contains("<error type=\"trouble\" message=\"cannot reach the index\">"),
            "{x}"
        );
    }
}
