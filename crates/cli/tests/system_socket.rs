#![cfg(unix)]
//! `berth stop` removes the system socket link made at start, and only that (no VM needed: the
//! link is made through the library as `berth start --system-socket` does, at a temp path).

use std::process::Command;

use berth_host::system_socket::{self, Linked};
use berth_host::StateDir;

fn berth(home: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("--home")
        .arg(home)
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn stop_removes_only_its_own_system_socket_link() {
    let d = tempfile::tempdir().unwrap();
    let home = d.path().join("home");
    let state = StateDir::new(&home);
    state.create().unwrap();
    let sys = d.path().join("docker.sock");

    assert_eq!(
        system_socket::enable(&state, &sys).unwrap(),
        Linked::Created
    );
    let (ok, out) = berth(&home, &["stop"]);
    assert!(ok, "{out}");
    assert!(out.contains("removed the link"), "{out}");
    assert!(std::fs::symlink_metadata(&sys).is_err(), "link still there");

    // Replaced by someone else after start: left alone, and said so.
    assert_eq!(
        system_socket::enable(&state, &sys).unwrap(),
        Linked::Created
    );
    std::fs::remove_file(&sys).unwrap();
    let real = std::os::unix::net::UnixListener::bind(&sys).unwrap();
    let (ok, out) = berth(&home, &["stop"]);
    assert!(ok, "{out}");
    assert!(out.contains("left") && out.contains("a socket"), "{out}");
    assert!(std::fs::symlink_metadata(&sys).is_ok());
    drop(real);
}

#[test]
fn start_offers_the_system_socket_flag() {
    let d = tempfile::tempdir().unwrap();
    let (ok, out) = berth(d.path(), &["start", "--help"]);
    assert!(ok, "{out}");
    assert!(out.contains("--system-socket"), "{out}");
}
