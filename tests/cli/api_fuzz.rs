//! The API fuzz smoke: `tests/fuzz/api.py` (Schemathesis from Docker's v1.50 spec, a few
//! hundred generated requests in about a minute) against a fresh offline engine. Passes when
//! no request got a 5xx and the engine still answers. The long run is the same script with
//! `--long` (docs/dev/testing.md, "API fuzzing").

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Command, Output};

use berth_test_support::Engine;

/// Runs `tests/fuzz/api.py` against `e` with `args` after `--socket`.
fn api_py(e: &Engine, args: &[&OsStr]) -> Output {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/api.py");
    let host = e.host();
    let sock = host.strip_prefix("unix://").expect("unix socket");
    Command::new("python3")
        .arg(&script)
        .args(["--socket", sock])
        .args(args)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run tests/fuzz/api.py")
}

/// The fuzzer's loopback forwarder must hand the client every answer, also one the engine
/// sends before reading the request's body (then closing): it once lost such answers, and the
/// smoke failed about one CI run in several with "connection closed without response".
#[test]
fn the_fuzz_forwarder_relays_answers_sent_before_the_body_was_read() {
    let e = Engine::start_offline();
    let out = api_py(&e, &["--forwarder-check".as_ref(), "200".as_ref()]);
    let text = berth_test_support::output_text(&out);
    assert!(out.status.success(), "{text}");
}

#[test]
fn api_fuzz_smoke_finds_no_server_error() {
    let e = Engine::start_offline();
    let reports = e.scratch().join("fuzz-report");
    let out = api_py(
        &e,
        &[
            "--max-time".as_ref(),
            "60".as_ref(),
            "--report-dir".as_ref(),
            reports.as_os_str(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let tail: Vec<&str> = stdout.lines().rev().take(80).collect();
    assert!(
        out.status.success(),
        "api fuzz failed ({}):\n{}\n{}",
        out.status,
        tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
}
