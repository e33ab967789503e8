//! A full disk: the engine's data root on a small tmpfs the test makes. A pull that does not
//! fit, a container writing a big file and a volume filling up fail with "no space left on
//! device"; the engine stays up, the store stays whole (every listed image runs, no temp
//! files left), and everything works again once space returns.

use berth_test_support::{Engine, EngineOptions, Registry};

use super::crash::check_consistent;
use super::images::busybox_archive;

/// Room for busybox (2 MB) and some state, not for `berth-test/multilayer` (207 MB).
const SMALL_MIB: u64 = 40;

fn assert_out_of_space(err: &str, what: &str) {
    assert!(
        err.to_ascii_lowercase().contains("no space left on device"),
        "{what}: {err}"
    );
}

#[test]
fn a_full_data_root_fails_writes_cleanly_and_recovers() {
    let e = Engine::start_with(EngineOptions {
        no_mirror: true,
        data_root_mib: Some(SMALL_MIB),
        ..Default::default()
    });
    e.docker_ok(&["load", "-i", busybox_archive().to_str().unwrap()]);

    let big = format!("{}/berth-test/multilayer:latest", Registry::shared().addr);
    let err = e.docker_err(&["pull", &big]);
    assert_out_of_space(&err, "pull");
    e.docker_ok(&["version"]);
    check_consistent(&e, "after the pull that did not fit");

    // A container's own files, then a volume (the container's `--rm` as well).
    for (what, dir, mount) in [("container", "/", None), ("volume", "/v", Some("full:/v"))] {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend(mount.iter().flat_map(|m| ["-v", *m]));
        let target = format!("of={dir}/big");
        args.extend([
            "busybox",
            "dd",
            "if=/dev/zero",
            &target,
            "bs=1M",
            "count=100",
        ]);
        let out = e.docker(&args);
        assert!(!out.status.success(), "{what}: a 100 MB file fitted");
        assert_out_of_space(&String::from_utf8_lossy(&out.stderr), what);
    }
    // The disk stays full (the volume keeps its 36 MB): the engine answers and lists what it
    // holds. (Starting a container now hangs the CLI: docs/reliability.md, "Found and left".)
    e.docker_ok(&["volume", "inspect", "full"]);
    let listed = e.docker_ok(&["images", "-q", "--no-trunc"]);
    let ids: std::collections::BTreeSet<&str> = listed.split_whitespace().collect();
    assert_eq!(
        ids,
        [super::crash::fixture_id("busybox:latest").as_str()].into(),
        "{listed}"
    );
    assert_eq!(e.docker_ok(&["ps", "-aq"]).trim(), "");

    // Space returns: the same work succeeds, and every image runs.
    e.resize_data_root(512);
    e.docker_ok(&["pull", &big]);
    let script = "dd if=/dev/zero of=/v/big bs=1M count=100 2>/dev/null && wc -c < /v/big";
    let out = e.docker_ok(&[
        "run", "--rm", "-v", "full:/v", "busybox", "sh", "-c", script,
    ]);
    assert_eq!(out.trim(), "104857600");
    check_consistent(&e, "after space returned");
}
