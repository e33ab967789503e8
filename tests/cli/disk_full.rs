//! A full disk: the engine's data root on a small tmpfs the test makes. A pull that does not
//! fit, a container writing a big file and a volume filling up fail with "no space left on
//! device"; the engine stays up, the store stays whole (every listed image runs, no temp
//! files left), and everything works again once space returns. A container that fills the disk
//! and exits has its exit reported at once and written once space returns.

use std::process::Output;
use std::time::{Duration, Instant};

use berth_test_support::{run_bounded, wait_until, Engine, EngineOptions, Registry};

use super::crash::{check_consistent, leftovers};
use super::images::busybox_archive;

/// Room for busybox (2 MB) and some state, not for `berth-test/multilayer` (207 MB).
const SMALL_MIB: u64 = 40;

/// An engine whose data root is a tmpfs of [`SMALL_MIB`], with busybox loaded.
fn small_engine() -> Engine {
    let e = Engine::start_with(EngineOptions {
        no_mirror: true,
        data_root_mib: Some(SMALL_MIB),
        ..Default::default()
    });
    e.docker_ok(&["load", "-i", busybox_archive().to_str().unwrap()]);
    e
}

/// How long a `docker` command may take on a full disk before it counts as hanging (the
/// CLI's own bound is far longer).
const PROMPT: Duration = Duration::from_secs(30);

/// `docker args`, failing the test when it does not return within [`PROMPT`].
fn docker_prompt(e: &Engine, args: &[&str]) -> Output {
    let t0 = Instant::now();
    let out = run_bounded(e.docker_cmd(args), PROMPT);
    eprintln!("docker {args:?}: {:?} in {:?}", out.status, t0.elapsed());
    out
}

fn assert_out_of_space(err: &str, what: &str) {
    assert!(
        err.to_ascii_lowercase().contains("no space left on device"),
        "{what}: {err}"
    );
}

#[test]
fn a_full_data_root_fails_writes_cleanly_and_recovers() {
    let e = small_engine();

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
    // holds.
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

/// `State` of the container `id` as written in its `state.json`.
fn state_on_disk(e: &Engine, id: &str) -> Option<serde_json::Value> {
    let path = e.data_root().join("containers").join(id).join("state.json");
    let raw = std::fs::read(path).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&raw).ok()?;
    Some(v["state"].clone())
}

/// A container fills the data root, then exits with 3: neither its monitor nor the engine can
/// write the exit. `docker run` returns at once with 3, inspect and `ps -a` show it exited,
/// another run fails with Docker's error or succeeds, nothing half-written is left; once
/// space returns the exit is written, so a restarted engine still reports 3.
#[test]
fn an_exit_on_a_full_data_root_is_reported_at_once_and_written_when_space_returns() {
    let mut e = small_engine();
    let fill = "dd if=/dev/zero of=/big bs=1M count=100; exit 3";
    let args = [
        "run",
        "--name",
        "filler",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        fill,
    ];
    let out = docker_prompt(&e, &args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}\n{}", e.log_tail());
    assert_out_of_space(&err, "the container's dd");

    let id = e.docker_ok(&["inspect", "-f", "{{.Id}}", "filler"]);
    let id = id.trim();
    let shown = |e: &Engine| {
        let f = "{{.State.Status}} {{.State.Running}} {{.State.ExitCode}}";
        e.docker_ok(&["inspect", "-f", f, "filler"])
            .trim()
            .to_string()
    };
    assert_eq!(shown(&e), "exited false 3");
    let ps = e.docker_ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.trim().starts_with("filler Exited (3)"), "{ps}");
    // The fault did happen: the file still holds the start, and the log says why.
    let written = state_on_disk(&e, id).expect("state.json readable");
    assert_eq!(written["Running"], true, "{written}");
    let log = e.log();
    assert!(
        log.contains("cannot write the exit of the container")
            && log.to_ascii_lowercase().contains("no space left on device"),
        "{}",
        e.log_tail()
    );
    let left = leftovers(&e.data_root(), e.pid());
    assert!(left.is_empty(), "half-written files: {left:?}");

    // Another run on the full disk: a prompt answer, Docker's error if it fails.
    let out = docker_prompt(&e, &["run", "--rm", "--network", "none", "busybox", "true"]);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("Error response from daemon"), "{err}");
        assert_out_of_space(&err, "a run on the full disk");
    }
    let ps = e.docker_ok(&["ps", "-aq", "--no-trunc"]);
    assert_eq!(ps.trim(), id, "only the filler is left");

    // Space returns: the exit is written within the retry bound and survives a restart.
    e.resize_data_root(512);
    let landed = wait_until(Duration::from_secs(10), || {
        state_on_disk(&e, id).is_some_and(|s| s["Running"] == false && s["ExitCode"] == 3)
    });
    assert!(
        landed,
        "exit not written once space returned\n{}",
        e.log_tail()
    );
    e.restart();
    assert_eq!(shown(&e), "exited false 3");
    check_consistent(&e, "after space returned");
    e.docker_ok(&["rm", "filler"]);
}

/// Fills the data root with `<data root>/filler` until no page is left, then frees `pages`
/// pages of 4 KiB: room for some of the next writes and not for the rest.
fn fill_leaving(e: &Engine, pages: u64) {
    use std::io::Write;
    let path = e.data_root().join("filler");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .expect("filler");
    for chunk in [1 << 20, 4096] {
        let block = vec![0u8; chunk];
        // Bounded: the tmpfs holds SMALL_MIB at most.
        for _ in 0..(SMALL_MIB << 20) / chunk as u64 {
            if f.write_all(&block).is_err() {
                break;
            }
        }
    }
    let len = f.metadata().expect("filler size").len();
    f.set_len(len.saturating_sub(pages * 4096))
        .expect("free pages");
}

/// The hang found before: room for a `create` but not for the start's files. The failed start
/// could not be written, so `--rm` never removed the container and `docker run --rm` waited
/// for that removal for ever. Now each run returns at once, with Docker's error when it
/// failed, and its container goes. Swept over how much room is left, so the start fails at
/// each of its writes in turn.
#[test]
fn a_run_that_cannot_start_on_a_full_data_root_returns_and_is_removed() {
    let e = small_engine();
    let (mut failed, mut out_of_space) = (0, 0);
    for pages in 0..12 {
        fill_leaving(&e, pages);
        let out = docker_prompt(&e, &["run", "--rm", "--network", "none", "busybox", "true"]);
        if !out.status.success() {
            failed += 1;
            let err = String::from_utf8_lossy(&out.stderr);
            // Docker's shape; the runtime's own failure (it writes in the rootfs too) is
            // reported as dockerd does, without the cause.
            assert!(err.contains("Error response from daemon"), "{pages}: {err}");
            out_of_space += usize::from(err.to_ascii_lowercase().contains("no space left"));
        }
        let left = e.docker_ok(&["ps", "-aq"]);
        assert_eq!(
            left.trim(),
            "",
            "{pages} pages free: a --rm container was left"
        );
        let left = leftovers(&e.data_root(), e.pid());
        assert!(left.is_empty(), "half-written files: {left:?}");
    }
    assert!(
        out_of_space > 0,
        "no run ran out of space ({failed} failed)"
    );
    std::fs::remove_file(e.data_root().join("filler")).unwrap();
    e.docker_ok(&["run", "--rm", "--network", "none", "busybox", "true"]);
    check_consistent(&e, "after space returned");
}
