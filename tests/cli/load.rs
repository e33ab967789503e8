//! The correctness half of the load figures (`bench/load.py` measures them at full scale):
//! concurrent pulls of one image download each layer once, and concurrent `docker run`s
//! all succeed.

use std::thread;

use berth_test_support::{Engine, EngineOptions, FaultProxy, Registry};

/// Runs `docker args` from `n` threads at once; returns the failures.
fn all_at_once(e: &Engine, n: usize, args: &[&str]) -> Vec<String> {
    thread::scope(|s| {
        let runs: Vec<_> = (0..n).map(|_| s.spawn(|| e.docker(args))).collect();
        runs.into_iter()
            .map(|r| r.join().expect("docker thread"))
            .filter(|out| !out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stderr).into_owned())
            .collect()
    })
}

#[test]
fn concurrent_pulls_of_one_image_download_it_once() {
    let proxy = FaultProxy::start(&Registry::shared().addr);
    let e = Engine::start_with(EngineOptions {
        no_mirror: true,
        ..Default::default()
    });
    let image = format!("{}/berth-test/httpd:latest", proxy.addr);
    let failed = all_at_once(&e, 10, &["pull", &image]);
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(proxy.layer_gets(), 1, "one download of the one layer");
    let page = e.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        &image,
        "cat",
        "/www/index.html",
    ]);
    assert!(page.contains("berth-httpd-ok"), "{page}");
}

#[test]
fn concurrent_runs_all_succeed() {
    let e = Engine::start();
    e.docker_ok(&["pull", "busybox"]);
    let failed = all_at_once(&e, 20, &["run", "--rm", "busybox", "true"]);
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(e.docker_ok(&["ps", "-aq"]).trim(), "");
}
