//! `imagelock graph`: build order of the repository's images.

use crate::common::{imagelock, repo_root, run};

fn graph(format: &str) -> (i32, String, String) {
    run(imagelock().current_dir(repo_root()).args([
        "--config",
        "fixtures/examples/imagelock.toml",
        "graph",
        "--format",
        format,
    ]))
}

#[test]
fn examples_in_build_order() {
    let (code, out, err) = graph("human");
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!(out, @r"
    1. base-notebook  (external: python:3.11-slim)
    2. base-notebook-py312  (external: python:3.12-slim)
    3. driver  (external: python:3.11-slim)
    4. driver-gpu  (external: nvcr.io/nvidia/clara/clara-parabricks:4.6.0-1, python:3.11-slim)
    5. longqc  (external: condaforge/miniforge3:24.3.0-0)
    6. scipy-ml-notebook  (builds from base-notebook)
    7. summation  (external: python:latest)
    8. workbench  (external: nvcr.io/nvidia/clara/clara-parabricks:4.6.0-1, quay.io/opendatahub/workbench-images:jupyter-minimal-ubi9-python-3.11-2024a)
    ");
    let (code, out, _) = graph("json");
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        json["edges"][0],
        serde_json::json!(["scipy-ml-notebook", "base-notebook"])
    );
    // External bases are shown too; an in-repo parent is not external.
    assert_eq!(
        json["external"]["driver"],
        serde_json::json!(["python:3.11-slim"])
    );
    assert_eq!(json["external"]["scipy-ml-notebook"], serde_json::json!([]));
    let (code, out, _) = graph("dot");
    assert_eq!(code, 0);
    assert!(
        out.contains("\"scipy-ml-notebook\" -> \"base-notebook\";"),
        "{out}"
    );
    assert!(
        out.contains("\"python:3.11-slim\" [shape=box];")
            && out.contains("\"driver\" -> \"python:3.11-slim\" [style=dashed];"),
        "{out}"
    );
    let (code, _, err) = graph("junit");
    assert_eq!(code, 2);
    assert!(err.contains("cannot print"), "{err}");
}

#[test]
fn a_cycle_is_an_error() {
    let (code, out, err) = run(imagelock().current_dir(repo_root()).args([
        "--config",
        "fixtures/bad/graph/imagelock.toml",
        "graph",
    ]));
    assert_eq!(code, 2);
    assert!(out.is_empty());
    insta::assert_snapshot!(err, @r"
    error: images build FROM each other in a cycle: a → b → a
    hint: one of them must start from a registry image
    ");
}
