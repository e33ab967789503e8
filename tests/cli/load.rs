//! The correctness half of the load figures (`bench/load.py` measures them at full scale):
//! concurrent pulls of one image download each layer once, concurrent `docker run`s all
//! succeed, many containers on one engine run, list, stop and go, and a big log comes back
//! whole through the attach stream and `docker logs`.

use std::thread;

use berth_test_support::{Engine, EngineOptions, FaultProxy, Registry};

use super::images::busybox_archive;

/// An engine that never talks to a registry, with busybox loaded.
fn offline_with_busybox() -> Engine {
    let e = Engine::start_offline();
    e.docker_ok(&["load", "-i", busybox_archive().to_str().unwrap()]);
    e
}

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

/// A busybox command that sleeps until `docker stop` and then exits 0 (a PID 1 ignores SIGTERM
/// unless it traps it), as `bench/load.py` runs them.
const SLEEPER: [&str; 3] = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"];

#[test]
fn many_containers_run_list_stop_and_go() {
    const N: usize = 24;
    const WORKERS: usize = 4;
    let e = offline_with_busybox();
    let names: Vec<String> = (0..N).map(|i| format!("many{i}")).collect();
    let failed: Vec<String> = thread::scope(|s| {
        let workers: Vec<_> = names
            .chunks(N / WORKERS)
            .map(|chunk| {
                let e = &e;
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|n| {
                            let mut args = vec!["run", "-d", "--name", n, "busybox"];
                            args.extend(SLEEPER);
                            e.docker(&args)
                        })
                        .filter(|out| !out.status.success())
                        .map(|out| String::from_utf8_lossy(&out.stderr).into_owned())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("docker thread"))
            .collect()
    });
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(e.docker_ok(&["ps", "-q"]).lines().count(), N);

    let all: Vec<&str> = names.iter().map(String::as_str).collect();
    let inspect = |format: &str| {
        let mut args = vec!["inspect", "-f", format];
        args.extend(&all);
        e.docker_ok(&args)
    };
    let states = inspect("{{.Name}} {{.State.Status}}");
    let want: Vec<String> = names.iter().map(|n| format!("/{n} running")).collect();
    assert_eq!(states.lines().collect::<Vec<_>>(), want);
    // Each stops on its SIGTERM (0), none is killed at the timeout (137).
    let mut stop = vec!["stop"];
    stop.extend(&all);
    e.docker_ok(&stop);
    let codes = inspect("{{.State.Status}} {{.State.ExitCode}}");
    assert!(codes.lines().all(|l| l == "exited 0"), "{codes}");
    let mut rm = vec!["rm"];
    rm.extend(&all);
    e.docker_ok(&rm);
    assert_eq!(e.docker_ok(&["ps", "-aq"]).trim(), "");
}

/// A `kB` field (`VmRSS`, `VmHWM`) of `/proc/<pid>/status`.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("status field")
}

/// Bytes per numbered log line: 10 digits, a space, padding and a newline.
const LINE_BYTES: usize = 1024;

/// A busybox `awk` program printing `n` numbered lines of [`LINE_BYTES`].
fn numbered_lines_program(n: usize) -> String {
    let pad = LINE_BYTES - 12;
    format!(
        "BEGIN {{ pad = sprintf(\"%{pad}s\", \"\"); gsub(/ /, \"x\", pad); \
         for (i = 1; i <= {n}; i++) printf \"%010d %s\\n\", i, pad }}"
    )
}

/// Checks that `out` holds lines 1..=n of [`numbered_lines_program`], each once, in order.
fn check_numbered_lines(out: &[u8], n: usize) -> Result<(), String> {
    let mut lines = 0;
    for (i, line) in out.split_inclusive(|b| *b == b'\n').enumerate() {
        let number = std::str::from_utf8(&line[..line.len().min(10)]).ok();
        let want = format!("{:010}", i + 1);
        if line.len() != LINE_BYTES || number != Some(want.as_str()) {
            let shown = String::from_utf8_lossy(&line[..line.len().min(20)]);
            return Err(format!("line {}: {shown:?} ({} bytes)", i + 1, line.len()));
        }
        lines += 1;
    }
    if lines == n {
        Ok(())
    } else {
        Err(format!("{lines} lines of {n}"))
    }
}

#[test]
fn numbered_lines_check_finds_a_lost_a_doubled_and_a_torn_line() {
    let lines: Vec<Vec<u8>> = (1..=4)
        .map(|i| format!("{i:010} {}\n", "x".repeat(LINE_BYTES - 12)).into_bytes())
        .collect();
    let join = |idx: &[usize]| {
        idx.iter()
            .flat_map(|&i| lines[i].clone())
            .collect::<Vec<u8>>()
    };
    assert_eq!(check_numbered_lines(&join(&[0, 1, 2, 3]), 4), Ok(()));
    assert!(check_numbered_lines(&join(&[0, 1, 3]), 4).is_err(), "lost");
    assert!(
        check_numbered_lines(&join(&[0, 1, 1, 2, 3]), 4).is_err(),
        "doubled"
    );
    assert!(check_numbered_lines(&join(&[0, 1, 2]), 4).is_err(), "short");
    let mut torn = join(&[0, 1, 2, 3]);
    torn.remove(LINE_BYTES + 500);
    assert!(check_numbered_lines(&torn, 4).is_err(), "torn");
}

#[test]
fn a_big_log_comes_back_whole() {
    const LINES: usize = 32 * 1024; // 32 MiB
    let e = offline_with_busybox();
    let prog = numbered_lines_program(LINES);
    let args = [
        "run",
        "--name",
        "biglog",
        "--network",
        "none",
        "busybox",
        "awk",
        &prog,
    ];
    let attached = e.docker_ok(&args);
    // The engine streams the log: its peak RSS while it sends 32 MiB grows by far less.
    let pid = e.pid().expect("engine pid");
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("reset the peak RSS");
    let before = status_kib(pid, "VmRSS");
    let logs = e.docker_ok(&["logs", "biglog"]);
    let grew = status_kib(pid, "VmHWM").saturating_sub(before);
    assert!(
        grew < 12 << 10,
        "engine RSS grew by {grew} KiB while sending the log"
    );
    for (how, out) in [("attached", attached), ("docker logs", logs)] {
        check_numbered_lines(out.as_bytes(), LINES)
            .map_err(|m| format!("{how}: {m}"))
            .unwrap();
    }
    e.docker_ok(&["rm", "biglog"]);
}
