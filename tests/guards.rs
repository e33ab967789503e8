//! Static guards of the workspace's shape (tier 0, no root, no network): the dependency edges
//! `docs/design.md` and `../shared/STYLE.md` §2 promise, read from `cargo metadata`, and the
//! reading test of `docker run`'s path ([`reading_path`]).
//!
//! `--no-deps` lists each member's declared dependencies for every platform without the
//! registry: enough, since a member can only reach another member through members.

#[path = "guards/reading_path.rs"]
mod reading_path;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// (package, packages it must never depend on, directly or through other members).
const FORBIDDEN: &[(&str, &[&str])] = &[
    // The host side talks to the engine over the Docker API only, never links it.
    (
        "berth-host",
        &["berth-engine", "berth-server", "berth-agent"],
    ),
    (
        "berth-cli",
        &["berth-engine", "berth-server", "berth-agent"],
    ),
    (
        "berth-app",
        &["berth-engine", "berth-server", "berth-agent"],
    ),
    // The engine stays transport-free; anyhow only at binary edges.
    (
        "berth-engine",
        &["axum", "hyper", "tauri", "clap", "anyhow", "berth-server"],
    ),
    // Wire types are serde-only leaves.
    ("berth-docker-api", &["tokio", "berth-engine"]),
    ("berth-agent-proto", &["berth-engine", "berth-host"]),
];

/// Each workspace member's normal and build dependencies (dev ones are for its tests; optional
/// ones count, whatever feature enables them).
fn member_edges() -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut edges = BTreeMap::new();
    for p in meta["packages"].as_array().expect("packages") {
        let deps = p["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .filter(|d| d["kind"].as_str() != Some("dev"))
            .map(|d| d["name"].as_str().expect("dependency name").to_string())
            .collect();
        edges.insert(p["name"].as_str().expect("name").to_string(), deps);
    }
    edges
}

/// Paths from `from` to every package it reaches through members, `from` first.
fn reach(edges: &BTreeMap<String, BTreeSet<String>>, from: &str) -> BTreeMap<String, Vec<String>> {
    let mut paths = BTreeMap::from([(from.to_string(), vec![from.to_string()])]);
    let mut todo = vec![from.to_string()];
    while let Some(pkg) = todo.pop() {
        let path = paths[&pkg].clone();
        for dep in edges.get(&pkg).into_iter().flatten() {
            if !paths.contains_key(dep) {
                let mut p = path.clone();
                p.push(dep.clone());
                paths.insert(dep.clone(), p);
                if edges.contains_key(dep) {
                    todo.push(dep.clone());
                }
            }
        }
    }
    paths
}

#[test]
fn dependency_edges_follow_the_layering() {
    let edges = member_edges();
    let mut broken = vec![];
    for (pkg, never) in FORBIDDEN {
        assert!(edges.contains_key(*pkg), "{pkg} is no workspace member");
        let paths = reach(&edges, pkg);
        broken.extend(
            never
                .iter()
                .filter_map(|n| paths.get(*n))
                .map(|p| p.join(" → ")),
        );
    }
    assert!(
        broken.is_empty(),
        "forbidden dependency edges:\n{}",
        broken.join("\n")
    );
}

#[test]
fn reach_follows_members_only() {
    let edges = BTreeMap::from([
        (
            "a".to_string(),
            BTreeSet::from(["b".to_string(), "x".to_string()]),
        ),
        ("b".to_string(), BTreeSet::from(["c".to_string()])),
    ]);
    let paths = reach(&edges, "a");
    assert_eq!(paths["c"], ["a", "b", "c"]);
    assert_eq!(paths["x"], ["a", "x"]);
    assert_eq!(paths.len(), 4);
}
