//! A faulty registry ([`FaultProxy`] in front of the fixture registry): layer downloads that
//! stall, are reset or cut short are fetched again after a growing pause and the pull
//! succeeds; a blob whose bytes do not match its digest is refused at once and never kept; a
//! registry that keeps failing ends the pull with a Docker-style error after a bounded number
//! of attempts; every time the store holds only verified blobs and a later clean pull works.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use berth_test_support::{Engine, EngineOptions, Fault, FaultProxy, Registry};

use super::crash::{check_consistent, fixture_id, names};

/// An engine that treats 2 s without registry bytes as a stall, and a proxy for it to pull from.
fn engine_and_proxy() -> (Engine, FaultProxy) {
    let proxy = FaultProxy::start(&Registry::shared().addr);
    let e = Engine::start_with(EngineOptions {
        no_mirror: true,
        args: vec!["--registry-read-timeout".into(), "2".into()],
        ..Default::default()
    });
    (e, proxy)
}

/// Every kept blob hashes to its name: nothing unverified was stored.
fn assert_blobs_verified(root: &Path, ctx: &str) {
    let dir = root.join("image/blobs/sha256");
    for n in names(&dir).into_iter().filter(|n| !n.starts_with('.')) {
        let out = Command::new("sha256sum")
            .arg(dir.join(&n))
            .output()
            .unwrap();
        let sum = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            sum.split_whitespace().next(),
            Some(n.as_str()),
            "{ctx}: blob {n} does not match its digest"
        );
    }
}

fn busybox(proxy: &FaultProxy) -> String {
    format!("{}/busybox:latest", proxy.addr)
}

#[test]
fn broken_layer_downloads_are_retried_until_the_pull_succeeds() {
    let (e, proxy) = engine_and_proxy();
    let image = busybox(&proxy);
    for fault in [Fault::Reset, Fault::Truncate, Fault::Stall] {
        let ctx = format!("{fault:?}");
        let before = proxy.layer_gets();
        proxy.inject(fault, 2);
        let out = e.docker(&["pull", &image]);
        assert!(
            out.status.success(),
            "{ctx}: pull failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            e.log_tail()
        );
        let progress = String::from_utf8_lossy(&out.stdout);
        assert!(progress.contains("Retrying in"), "{ctx}: {progress}");
        assert_eq!(
            proxy.layer_gets() - before,
            3,
            "{ctx}: two broken, one whole"
        );
        let id = e.docker_ok(&["image", "inspect", "-f", "{{.Id}}", &image]);
        assert_eq!(id.trim(), fixture_id("busybox:latest"), "{ctx}");
        assert_blobs_verified(&e.data_root(), &ctx);
        check_consistent(&e, &ctx);
        e.docker_ok(&["rmi", &image]);
    }
}

#[test]
fn a_blob_that_does_not_match_its_digest_is_never_stored() {
    let (e, proxy) = engine_and_proxy();
    let image = busybox(&proxy);
    proxy.inject(Fault::Corrupt, 1);
    let err = e.docker_err(&["pull", &image]);
    assert!(err.contains("digest mismatch for layer sha256:"), "{err}");
    assert_eq!(
        proxy.layer_gets(),
        1,
        "content that fails verification is not retried"
    );
    assert!(e.docker_ok(&["images", "-q"]).trim().is_empty());
    assert_blobs_verified(&e.data_root(), "after the corrupt pull");
    check_consistent(&e, "after the corrupt pull");

    e.docker_ok(&["pull", &image]);
    assert_blobs_verified(&e.data_root(), "after the clean pull");
    assert_eq!(
        e.docker_ok(&["run", "--rm", "--network", "none", &image, "echo", "ok"])
            .trim(),
        "ok"
    );
}

#[test]
fn a_registry_that_keeps_failing_ends_the_pull_after_bounded_retries() {
    let (e, proxy) = engine_and_proxy();
    let image = busybox(&proxy);
    proxy.inject(Fault::Reset, 20);
    let t0 = Instant::now();
    let err = e.docker_err(&["pull", &image]);
    let took = t0.elapsed();
    assert!(err.contains("download failed after 5 attempts"), "{err}");
    assert_eq!(proxy.layer_gets(), 5);
    // Pauses of 0.5 + 1 + 2 + 4 s between the five attempts, and no more.
    assert!(
        took >= Duration::from_millis(7500) && took < Duration::from_secs(30),
        "{took:?}"
    );
    assert!(e.docker_ok(&["images", "-q"]).trim().is_empty());
    check_consistent(&e, "after the failed pull");

    proxy.heal();
    e.docker_ok(&["pull", &image]);
    assert_blobs_verified(&e.data_root(), "after the clean pull");
    check_consistent(&e, "after the clean pull");
}
