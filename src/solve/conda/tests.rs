use std::path::PathBuf;

use super::*;

fn channel_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/conda")
        .join(name)
}

/// Loads fixture channels (in priority order) for `platform` and noarch.
fn repodata(channels: &[&str], platform: &str) -> CondaRepodata {
    let mut data = CondaRepodata::new();
    for name in channels {
        let dir = channel_dir(name);
        let url = format!("file://{}", dir.display());
        for subdir in [platform, "noarch"] {
            let path = dir.join(subdir).join("repodata.json");
            if let Ok(text) = fs_err::read_to_string(&path) {
                data.push_repodata_json(&url, &text)
                    .expect("valid repodata");
            }
        }
    }
    data
}

fn specs(texts: &[&str]) -> Vec<CondaSpec> {
    texts
        .iter()
        .map(|t| CondaSpec::parse(t).expect("valid spec"))
        .collect()
}

fn linux64() -> CondaTarget {
    CondaTarget::new("linux-64")
        .expect("known")
        .with_glibc("2.28")
}

fn find<'a>(solution: &'a CondaSolution, name: &str) -> &'a SolvedCondaPackage {
    solution
        .packages
        .iter()
        .find(|p| p.record.name() == name)
        .unwrap_or_else(|| panic!("{name} in the solution"))
}

#[test]
fn solves_python_and_numpy_from_conda_forge() {
    let data = repodata(&["conda-forge"], "linux-64");
    let request = CondaSolveRequest::new(specs(&["python=3.12", "numpy<2"]), linux64());
    let solution = solve(&request, &data).expect("solvable");
    assert!(
        find(&solution, "python")
            .record
            .version()
            .starts_with("3.12.")
    );
    assert_eq!(find(&solution, "numpy").record.version(), "1.26.4");
    assert_eq!(
        find(&solution, "numpy").requested.as_deref(),
        Some("numpy<2")
    );
    assert_eq!(find(&solution, "libzlib").requested, None);
    assert!(
        solution
            .python_version()
            .is_some_and(|v| v.starts_with("3.12"))
    );
    assert!(solution.packages.iter().all(|p| !p.unchanged));
    assert!(solution.packages.iter().all(|p| {
        p.record.sha256().is_some_and(|h| h.len() == 64) && p.record.url().starts_with("file://")
    }));
}

#[test]
fn strict_priority_takes_the_first_channel_flexible_the_best_version() {
    let data = repodata(&["pytorch-2023", "conda-forge"], "linux-64");
    let mut request = CondaSolveRequest::new(specs(&["libjpeg-turbo"]), linux64());
    let strict = solve(&request, &data).expect("solvable");
    let jpeg = &find(&strict, "libjpeg-turbo").record;
    assert_eq!(jpeg.version(), "2.0.0");
    assert!(
        jpeg.channel().ends_with("pytorch-2023"),
        "{}",
        jpeg.channel()
    );

    // Flexible (conda's meaning): pytorch has it, so pytorch's it is.
    request.channel_priority = ChannelPriority::Flexible;
    let flexible = solve(&request, &data).expect("solvable");
    let jpeg = &find(&flexible, "libjpeg-turbo").record;
    assert_eq!(jpeg.version(), "2.0.0");
    assert!(jpeg.channel().ends_with("pytorch-2023"));

    // Disabled: the newest version wins, from any channel.
    request.channel_priority = ChannelPriority::Disabled;
    let disabled = solve(&request, &data).expect("solvable");
    let jpeg = &find(&disabled, "libjpeg-turbo").record;
    assert!(jpeg.version().starts_with("3."), "{}", jpeg.version());
    assert!(jpeg.channel().ends_with("conda-forge"));
}

#[test]
fn channel_bound_spec_takes_that_channel() {
    let data = repodata(&["pytorch-2023", "conda-forge"], "linux-64");
    let mut spec = CondaSpec::parse("conda-forge::libjpeg-turbo").expect("valid");
    let url = format!("file://{}", channel_dir("conda-forge").display());
    spec.bind_channel(&url).expect("valid url");
    let request = CondaSolveRequest {
        channel_priority: ChannelPriority::Flexible,
        ..CondaSolveRequest::new(vec![spec], linux64())
    };
    let solution = solve(&request, &data).expect("solvable");
    assert!(
        find(&solution, "libjpeg-turbo")
            .record
            .channel()
            .ends_with("conda-forge")
    );
}

#[test]
fn older_glibc_excludes_records_that_need_a_newer_one() {
    let data = repodata(&["conda-forge"], "linux-64");
    // c-ares 1.33.1 is the one build of the subset that needs glibc 2.28.
    let new = solve(
        &CondaSolveRequest::new(specs(&["c-ares=1.33.1"]), linux64()),
        &data,
    )
    .expect("solvable");
    assert_eq!(find(&new, "c-ares").record.version(), "1.33.1");
    let old_target = CondaTarget::new("linux-64")
        .expect("known")
        .with_glibc("2.17");
    let err = solve(
        &CondaSolveRequest::new(specs(&["c-ares=1.33.1"]), old_target.clone()),
        &data,
    )
    .expect_err("needs a newer glibc");
    assert!(err.to_string().contains("__glibc"), "{err}");
    // Without a pin, the newest build that runs on glibc 2.17 is chosen.
    let any = solve(
        &CondaSolveRequest::new(specs(&["c-ares"]), old_target),
        &data,
    )
    .expect("solvable");
    assert!(
        !find(&any, "c-ares")
            .record
            .depends()
            .iter()
            .any(|d| d.contains("2.28"))
    );
}

#[test]
fn linux_aarch64_uses_its_own_subdir() {
    let data = repodata(&["conda-forge"], "linux-aarch64");
    let target = CondaTarget::new("linux-aarch64")
        .expect("known")
        .with_glibc("2.28");
    let solution =
        solve(&CondaSolveRequest::new(specs(&["python"]), target), &data).expect("solvable");
    assert_eq!(find(&solution, "python").record.subdir(), "linux-aarch64");
    assert!(
        solution
            .packages
            .iter()
            .all(|p| ["linux-aarch64", "noarch"].contains(&p.record.subdir()))
    );
}

#[test]
fn install_into_a_prefix_keeps_what_it_holds() {
    let data = repodata(&["conda-forge"], "linux-64");
    let base = solve(
        &CondaSolveRequest::new(specs(&["python=3.11", "numpy=1.26"]), linux64()),
        &data,
    )
    .expect("solvable");
    let mut request = CondaSolveRequest::new(specs(&["requests"]), linux64());
    request.installed = base.records();
    let next = solve(&request, &data).expect("solvable");
    // The installed python and numpy stay although newer ones exist.
    assert!(find(&next, "python").record.version().starts_with("3.11."));
    assert!(find(&next, "python").unchanged);
    assert_eq!(find(&next, "numpy").record.version(), "1.26.4");
    assert!(!find(&next, "requests").unchanged);
    let installed: Vec<&str> = next
        .packages
        .iter()
        .filter(|p| !p.unchanged)
        .map(|p| p.record.name())
        .collect();
    assert!(installed.contains(&"requests"));
    assert!(!installed.contains(&"python"));
    // A fresh environment takes the newest python instead.
    let fresh = solve(
        &CondaSolveRequest::new(specs(&["requests"]), linux64()),
        &data,
    )
    .expect("solvable");
    assert!(!find(&fresh, "python").record.version().starts_with("3.11."));
}

#[test]
fn exclude_newer_uses_timestamps_and_keeps_records_without() {
    let data = repodata(&["defaults-2018"], "linux-64");
    let target = CondaTarget::new("linux-64")
        .expect("known")
        .with_glibc("2.17");
    let mut request = CondaSolveRequest::new(specs(&["numpy", "python=3.6"]), target);
    let latest = solve(&request, &data).expect("solvable");
    request.exclude_newer = Some(parse_exclude_newer("2018-01-01").expect("date"));
    let old = solve(&request, &data).expect("solvable");
    let (latest_np, old_np) = (
        find(&latest, "numpy").record.clone(),
        find(&old, "numpy").record.clone(),
    );
    assert_ne!(latest_np.version(), old_np.version());
    let cutoff = parse_exclude_newer("2018-01-01")
        .expect("date")
        .timestamp_millis();
    assert!(
        old.packages
            .iter()
            .all(|p| p.record.timestamp_millis().is_none_or(|t| t <= cutoff))
    );
}

#[test]
fn exclude_newer_parses_dates_and_times() {
    assert!(parse_exclude_newer("2024-05-01").is_ok());
    assert!(parse_exclude_newer("2024-05-01T12:00:00Z").is_ok());
    let err = parse_exclude_newer("last tuesday").expect_err("invalid");
    assert!(err.to_string().contains("hint:"));
}

#[test]
fn unsatisfiable_request_explains_itself() {
    let data = repodata(&["conda-forge"], "linux-64");
    let mut request = CondaSolveRequest::new(specs(&["python=3.12", "numpy=1.25"]), linux64());
    request.context = Some(SolveContext {
        image: "notebook".into(),
        file: "Dockerfile".into(),
        line: 7,
    });
    let err = solve(&request, &data).expect_err("unsatisfiable");
    insta::assert_snapshot!(err.to_string());
}

/// `channel/subdir::name` (pangeo's `conda-forge/linux-64::cupy`) keeps
/// the subdir through the solve: only that subdir's records match.
#[test]
fn a_channel_subdir_spec_takes_only_that_subdir() {
    let data = repodata(&["conda-forge"], "linux-64");
    let request = CondaSolveRequest::new(
        specs(&["python=3.12", "conda-forge/linux-64::numpy<2"]),
        linux64(),
    );
    let solution = solve(&request, &data).expect("solvable");
    let numpy = find(&solution, "numpy");
    assert_eq!(numpy.record.version(), "1.26.4");
    assert!(
        numpy.record.url().contains("/linux-64/"),
        "{}",
        numpy.record.url()
    );
    // numpy is built per platform: conda-forge's noarch has none.
    let request = CondaSolveRequest::new(
        specs(&["python=3.12", "conda-forge/noarch::numpy<2"]),
        linux64(),
    );
    assert!(solve(&request, &data).is_err());
}

/// conda, mamba and micromamba add `pip` to python's dependencies unless
/// `add_pip_as_python_dependency` is off; the locked python record stays
/// as the channel publishes it.
#[test]
fn python_brings_pip_as_the_installers_make_it() {
    let data = repodata(&["conda-forge"], "linux-64");
    let mut request = CondaSolveRequest::new(specs(&["python=3.12"]), linux64());
    assert!(
        request.add_pip_as_python_dependency,
        "the installers' default"
    );
    let solution = solve(&request, &data).expect("solvable");
    let pip = find(&solution, "pip");
    assert!(pip.requested.is_none());
    let python = find(&solution, "python");
    assert!(
        !python.record.depends().iter().any(|d| d == "pip"),
        "{:?}",
        python.record.depends()
    );
    request.add_pip_as_python_dependency = false;
    let without = solve(&request, &data).expect("solvable");
    assert!(without.packages.iter().all(|p| p.record.name() != "pip"));
    assert_eq!(find(&without, "python").record, python.record);
}

/// The answer kept for a solve is the answer: the second solve of the same
/// request over the same records is taken from the memo and equal; another
/// request, or other records, is not answered from it.
#[test]
fn kept_answers_are_reused_only_for_the_same_question() {
    let dir = tempfile::tempdir().unwrap();
    let memo = memo::SolveMemo::new(dir.path());
    let data = repodata(&["conda-forge"], "linux-64");
    let request = CondaSolveRequest::new(specs(&["python=3.11", "numpy<2"]), linux64());
    let fresh = solve_with(&request, &data, Some(&memo)).expect("solvable");
    assert_eq!(memo.hits(), 0);
    assert_eq!(
        fs_err::read_dir(dir.path().join(memo::DIR))
            .unwrap()
            .count(),
        1
    );
    let kept = solve_with(&request, &data, Some(&memo)).expect("solvable");
    assert_eq!(memo.hits(), 1);
    assert_eq!(kept, fresh);
    assert_eq!(kept, solve(&request, &data).unwrap());
    // The same records in another order within each part (the gateway
    // hands them over as its lookups finish): the same question.
    let mut shuffled = CondaRepodata::new();
    for part in data.parts() {
        shuffled
            .parts
            .push(Part::Owned(part.into_iter().rev().cloned().collect()));
    }
    assert_eq!(solve_with(&request, &shuffled, Some(&memo)).unwrap(), fresh);
    assert_eq!(memo.hits(), 2);
    // Another spec, another target, another add-pip setting: solved.
    let other = CondaSolveRequest::new(specs(&["python=3.11", "numpy>=2"]), linux64());
    let answer = solve_with(&other, &data, Some(&memo)).expect("solvable");
    assert_eq!(memo.hits(), 2);
    assert_eq!(answer, solve(&other, &data).unwrap());
    let mut no_pip = request.clone();
    no_pip.add_pip_as_python_dependency = false;
    solve_with(&no_pip, &data, Some(&memo)).unwrap();
    assert_eq!(memo.hits(), 2);
    // The same request over other records (the channel without the numpy
    // the answer had): solved, and the answer is the solver's.
    let numpy = find(&fresh, "numpy").record.url().to_string();
    let mut fewer = CondaRepodata::new();
    for part in data.parts() {
        fewer.parts.push(Part::Owned(
            part.into_iter()
                .filter(|r| r.url.as_str() != numpy)
                .cloned()
                .collect(),
        ));
    }
    let moved = solve_with(&request, &fewer, Some(&memo)).expect("solvable");
    assert_eq!(memo.hits(), 2);
    assert_ne!(find(&moved, "numpy").record.url(), numpy);
    assert_eq!(moved, solve(&request, &fewer).unwrap());
    assert!(memo.dropped().is_empty());
}

/// An entry edited (its checksum no longer matching), or re-checksummed to
/// name a record the solve does not have, is dropped, named, and the step
/// solved again: the answer is the solver's.
#[test]
fn a_damaged_or_foreign_kept_answer_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let memo = memo::SolveMemo::new(dir.path());
    let data = repodata(&["conda-forge"], "linux-64");
    let request = CondaSolveRequest::new(specs(&["python=3.12", "numpy<2"]), linux64());
    let fresh = solve_with(&request, &data, Some(&memo)).expect("solvable");
    let entry = fs_err::read_dir(dir.path().join(memo::DIR))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let clean = fs_err::read_to_string(&entry).unwrap();
    // Edited: numpy 1.26.4 named as another version.
    fs_err::write(&entry, clean.replace("numpy-1.26.4", "numpy-1.26.3")).unwrap();
    assert_eq!(solve_with(&request, &data, Some(&memo)).unwrap(), fresh);
    assert_eq!(memo.hits(), 0);
    assert_eq!(memo.dropped().len(), 1, "{:?}", memo.dropped());
    assert!(
        memo.dropped()[0].contains("checksum"),
        "{:?}",
        memo.dropped()
    );
    // Re-checksummed to name a record that is not in the channel: still
    // not used.
    let mut value: serde_json::Value = serde_json::from_str(&clean).unwrap();
    let records = value["records"].as_array_mut().unwrap();
    records[0][0] = serde_json::Value::String("https://example.invalid/x-1-0.conda".into());
    let key = value["key"].as_str().unwrap().to_string();
    let pairs: Vec<(String, String)> = serde_json::from_value(value["records"].clone()).unwrap();
    value["checksum"] = serde_json::Value::String(memo::checksum_of(&key, &pairs));
    fs_err::write(&entry, serde_json::to_string(&value).unwrap()).unwrap();
    assert_eq!(solve_with(&request, &data, Some(&memo)).unwrap(), fresh);
    assert_eq!(memo.hits(), 0);
    assert_eq!(memo.dropped().len(), 2, "{:?}", memo.dropped());
    assert!(
        memo.dropped()[1].contains("not a record of this solve"),
        "{:?}",
        memo.dropped()
    );
    // Solved again, kept again: the next run takes it.
    assert_eq!(solve_with(&request, &data, Some(&memo)).unwrap(), fresh);
    assert_eq!(memo.hits(), 1);
}
