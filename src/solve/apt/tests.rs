//! Resolution on small universes written as `Packages` stanzas, each case
//! the behaviour of apt it guards.

use std::collections::HashSet;

use super::deb822::paragraphs;
use super::*;

fn pkgs(text: &str) -> Vec<BinaryPackage> {
    paragraphs(text)
        .unwrap()
        .iter()
        .map(|p| BinaryPackage::from_paragraph(p).unwrap())
        .collect()
}

fn index(archive: &str, text: &str) -> PackageIndex {
    PackageIndex {
        file: PackageFileInfo {
            archive: archive.into(),
            codename: archive.into(),
            origin: "Debian".into(),
            uri: "http://deb.example/debian".into(),
            ..Default::default()
        },
        packages: pkgs(text),
    }
}

fn universe(
    status: &str,
    indexes: Vec<PackageIndex>,
    pins: &[Pin],
    options: AptOptions,
) -> Universe {
    Universe::new("amd64", &pkgs(status), indexes, pins, options).unwrap()
}

fn install(u: &Universe, words: &[&str]) -> Result<Vec<String>, SolveAptError> {
    let specs = words
        .iter()
        .map(|w| AptPackageSpec::parse(w).unwrap())
        .collect();
    let out = resolve(
        u,
        &AptCommand::new(AptRequest::Install(specs)),
        &HashSet::new(),
    )?;
    Ok(out
        .records
        .iter()
        .map(|r| {
            let tag = match r.action {
                AptAction::Install => "+",
                AptAction::Upgrade => "^",
                AptAction::Downgrade => "v",
                AptAction::Remove | AptAction::Purge => "-",
                AptAction::Keep => "=",
            };
            format!("{tag}{}:{}={}", r.name, r.architecture, r.version)
        })
        .collect())
}

const INSTALLED: &str = "Status: install ok installed\n";

#[test]
fn candidate_follows_pin_priorities_not_just_versions() {
    let main = index(
        "bookworm",
        "Package: a\nVersion: 1.0\nArchitecture: amd64\n",
    );
    let bpo = PackageIndex {
        file: PackageFileInfo {
            archive: "bookworm-backports".into(),
            not_automatic: true,
            but_automatic_upgrades: true,
            ..Default::default()
        },
        packages: pkgs("Package: a\nVersion: 2.0\nArchitecture: amd64\n"),
    };
    // Backports (NotAutomatic + ButAutomaticUpgrades) is 100 < 500.
    let u = universe(
        "",
        vec![main.clone(), bpo.clone()],
        &[],
        AptOptions::default(),
    );
    assert_eq!(install(&u, &["a"]).unwrap(), ["+a:amd64=1.0"]);
    // `-t bookworm-backports` makes it 990.
    let specs = vec![AptPackageSpec::parse("a").unwrap()];
    let mut cmd = AptCommand::new(AptRequest::Install(specs));
    cmd.target_release = Some("bookworm-backports".into());
    assert_eq!(
        resolve(&u, &cmd, &HashSet::new()).unwrap().records[0].version,
        "2.0"
    );
    // `a/bookworm-backports` and `a=2.0` select it too.
    assert_eq!(
        install(&u, &["a/bookworm-backports"]).unwrap(),
        ["+a:amd64=2.0"]
    );
    assert_eq!(install(&u, &["a=2.0"]).unwrap(), ["+a:amd64=2.0"]);
    // A preferences pin above 1000 allows a downgrade.
    let pin = sources::parse_preferences("Package: a\nPin: version 1.0\nPin-Priority: 1001\n", "p")
        .unwrap();
    let u = universe(
        &format!("Package: a\n{INSTALLED}Version: 2.0\nArchitecture: amd64\n"),
        vec![main, bpo],
        &pin,
        AptOptions::default(),
    );
    assert_eq!(install(&u, &["a"]).unwrap(), ["va:amd64=1.0"]);
    let err = install(&u, &["a=3.0"]).unwrap_err().to_string();
    assert!(
        err.starts_with("version `3.0` for `a` was not found"),
        "{err}"
    );
}

#[test]
fn first_installable_alternative_and_installed_alternatives_win() {
    let idx = index(
        "s",
        "Package: app\nVersion: 1\nArchitecture: amd64\nDepends: mta-a | mta-b, missing | lib\n\n\
         Package: mta-a\nVersion: 1\nArchitecture: amd64\n\n\
         Package: mta-b\nVersion: 1\nArchitecture: amd64\n\n\
         Package: lib\nVersion: 1\nArchitecture: amd64\n",
    );
    let u = universe("", vec![idx.clone()], &[], AptOptions::default());
    assert_eq!(
        install(&u, &["app"]).unwrap(),
        ["+app:amd64=1", "+lib:amd64=1", "+mta-a:amd64=1"]
    );
    // An installed second alternative satisfies the group.
    let u = universe(
        &format!("Package: mta-b\n{INSTALLED}Version: 1\nArchitecture: amd64\n"),
        vec![idx],
        &[],
        AptOptions::default(),
    );
    assert_eq!(
        install(&u, &["app"]).unwrap(),
        ["+app:amd64=1", "+lib:amd64=1"]
    );
}

#[test]
fn virtual_packages_one_provider_is_taken_several_are_an_error() {
    let idx = index(
        "s",
        "Package: mawk\nVersion: 1\nArchitecture: amd64\nProvides: awk\n\n\
         Package: gawk\nVersion: 1\nArchitecture: amd64\nProvides: awk\n\n\
         Package: exim\nVersion: 1\nArchitecture: amd64\nProvides: mail-transport-agent\n\n\
         Package: needs-awk\nVersion: 1\nArchitecture: amd64\nDepends: awk\n",
    );
    let u = universe("", vec![idx], &[], AptOptions::default());
    assert_eq!(
        install(&u, &["mail-transport-agent"]).unwrap(),
        ["+exim:amd64=1"]
    );
    let err = install(&u, &["awk"]).unwrap_err();
    assert_eq!(
        err,
        SolveAptError::AmbiguousVirtual {
            name: "awk".into(),
            providers: vec!["gawk 1".into(), "mawk 1".into()]
        }
    );
    // As a dependency, apt takes a provider (ties broken by apt's order).
    assert_eq!(install(&u, &["needs-awk"]).unwrap().len(), 2);
    assert!(matches!(
        install(&u, &["nothing"]),
        Err(SolveAptError::NotFound(_))
    ));
}

#[test]
fn recommends_follow_the_option_and_the_command_line() {
    let idx = index(
        "s",
        "Package: a\nVersion: 1\nArchitecture: amd64\nRecommends: r\nSuggests: s\n\nPackage: r\nVersion: 1\nArchitecture: amd64\n\nPackage: s\nVersion: 1\nArchitecture: amd64\n",
    );
    let u = universe("", vec![idx.clone()], &[], AptOptions::default());
    assert_eq!(install(&u, &["a"]).unwrap(), ["+a:amd64=1", "+r:amd64=1"]);
    let mut o = AptOptions::default();
    sources::apply_apt_conf(
        "APT::Install-Recommends \"0\";\nAPT::Install-Suggests \"1\";",
        &mut o,
    );
    let u = universe("", vec![idx], &[], o);
    assert_eq!(install(&u, &["a"]).unwrap(), ["+a:amd64=1", "+s:amd64=1"]);
}

#[test]
fn conflicts_remove_installed_packages_and_essential_ones_are_refused() {
    let idx = index(
        "s",
        "Package: new\nVersion: 1\nArchitecture: amd64\nConflicts: old\n\nPackage: bad\nVersion: 1\nArchitecture: amd64\nConflicts: base\n",
    );
    let status = format!(
        "Package: old\n{INSTALLED}Version: 1\nArchitecture: amd64\n\nPackage: base\n{INSTALLED}Essential: yes\nVersion: 1\nArchitecture: amd64\n"
    );
    let u = universe(&status, vec![idx], &[], AptOptions::default());
    assert_eq!(
        install(&u, &["new"]).unwrap(),
        ["+new:amd64=1", "-old:amd64=1"]
    );
    assert!(install(&u, &["bad"]).is_err());
    let out = resolve(
        &u,
        &AptCommand::new(AptRequest::Remove {
            packages: vec![AptPackageSpec::parse("base").unwrap()],
            purge: false,
        }),
        &HashSet::new(),
    );
    assert_eq!(out.unwrap_err(), SolveAptError::Essential("base".into()));
}

#[test]
fn multi_arch_foreign_satisfies_other_architectures_and_same_stays_in_step() {
    let mut o = AptOptions::default();
    o.foreign_architectures.push("i386".into());
    let amd = index(
        "s",
        "Package: tool\nVersion: 1\nArchitecture: amd64\nMulti-Arch: foreign\n\nPackage: lib\nVersion: 2\nArchitecture: amd64\nMulti-Arch: same\n\nPackage: py\nVersion: 1\nArchitecture: amd64\nMulti-Arch: allowed\n",
    );
    let i386 = index(
        "s",
        "Package: app\nVersion: 1\nArchitecture: i386\nDepends: tool, lib, py:any\n\nPackage: lib\nVersion: 2\nArchitecture: i386\nMulti-Arch: same\n\nPackage: tool\nVersion: 1\nArchitecture: i386\nMulti-Arch: foreign\n",
    );
    let status =
        format!("Package: lib\n{INSTALLED}Version: 1\nArchitecture: amd64\nMulti-Arch: same\n");
    let u = universe(&status, vec![amd, i386], &[], o);
    let got = install(&u, &["app:i386"]).unwrap();
    // tool: Multi-Arch: foreign, the native one is preferred; lib:i386
    // (same) brings lib:amd64 to the same version; py:any takes amd64.
    assert_eq!(
        got,
        [
            "+app:i386=1",
            "^lib:amd64=2",
            "+lib:i386=2",
            "+py:amd64=1",
            "+tool:amd64=1"
        ]
    );
}

#[test]
fn upgrade_keeps_back_what_needs_new_packages_and_dist_upgrade_does_not() {
    let idx = index(
        "s",
        "Package: a\nVersion: 2\nArchitecture: amd64\nDepends: n\n\nPackage: n\nVersion: 1\nArchitecture: amd64\n\nPackage: b\nVersion: 2\nArchitecture: amd64\n",
    );
    let status = format!(
        "Package: a\n{INSTALLED}Version: 1\nArchitecture: amd64\n\nPackage: b\n{INSTALLED}Version: 1\nArchitecture: amd64\n"
    );
    let u = universe(&status, vec![idx], &[], AptOptions::default());
    let names = |r: AptRequest| {
        resolve(&u, &AptCommand::new(r), &HashSet::new())
            .unwrap()
            .records
            .iter()
            .map(|r| r.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(AptRequest::Upgrade), ["b"]);
    assert_eq!(names(AptRequest::DistUpgrade), ["a", "b", "n"]);
}

#[test]
fn removal_takes_reverse_dependencies_and_autoremove_sweeps_automatic_ones() {
    let status = format!(
        "Package: app\n{INSTALLED}Version: 1\nArchitecture: amd64\nDepends: lib\n\nPackage: lib\n{INSTALLED}Version: 1\nArchitecture: amd64\nDepends: dep\n\nPackage: dep\n{INSTALLED}Version: 1\nArchitecture: amd64\n"
    );
    let u = universe(&status, vec![], &[], AptOptions::default());
    let rm = AptCommand::new(AptRequest::Remove {
        packages: vec![AptPackageSpec::parse("lib").unwrap()],
        purge: true,
    });
    let out = resolve(&u, &rm, &HashSet::new()).unwrap();
    let got: Vec<_> = out
        .records
        .iter()
        .map(|r| (r.name.as_str(), r.action))
        .collect();
    assert_eq!(got, [("app", AptAction::Remove), ("lib", AptAction::Purge)]);
    let auto: HashSet<_> = [("dep".to_string(), "amd64".to_string())].into();
    let mut cmd = rm.clone();
    cmd.auto_remove = true;
    let out = resolve(&u, &cmd, &auto).unwrap();
    assert_eq!(out.records.len(), 3);
}

#[test]
fn package_specs_parse_like_apt_get() {
    let s = AptPackageSpec::parse("curl:amd64=7.88.1-10+deb12u8").unwrap();
    assert_eq!(
        (s.arch.as_deref(), s.version.as_deref()),
        (Some("amd64"), Some("7.88.1-10+deb12u8"))
    );
    assert_eq!(
        AptPackageSpec::parse("git/bookworm-backports")
            .unwrap()
            .release
            .as_deref(),
        Some("bookworm-backports")
    );
    assert!(AptPackageSpec::parse("vim-").unwrap().remove);
    // `g++` is a package, not `g+` to install.
    let idx = index("s", "Package: g++\nVersion: 1\nArchitecture: amd64\n");
    let u = universe("", vec![idx], &[], AptOptions::default());
    assert_eq!(install(&u, &["g++"]).unwrap(), ["+g++:amd64=1"]);
    assert!(AptPackageSpec::parse("a b").is_err());
    assert!(AptPackageSpec::parse("x=").is_err());
}
