//! The official Docker SDK for Python (docker-py) against a fresh engine: runs
//! `tests/sdk/python/test_sdk.py` (images, build, containers, exec, attach, archives, stats,
//! update, commit, networks, volumes, events, prune) and `fidelity.py` (behaviours that must
//! match dockerd's, one area per test), and `test_testcontainers.py` (testcontainers-python),
//! with the venv made by `tests/fixtures/python-sdk.sh`
//! (`$BERTH_PYTHON_SDK`, default `~/.cache/berth/python-sdk`).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_test_support::Engine;

const TIMEOUT: Duration = Duration::from_secs(180);

/// `tests/sdk/python` of this crate's own tree (the support crate may have been built from
/// another worktree sharing the target directory).
fn sdk_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sdk/python")
}

fn sdk_python() -> PathBuf {
    berth_test_support::installed(
        "BERTH_PYTHON_SDK",
        "python-sdk",
        "bin/python",
        "tests/fixtures/python-sdk.sh",
    )
}

#[test]
fn python_sdk_drives_the_engine() {
    run_checks("test_sdk.py", &[]);
}

/// Exec start: framing by the start request's `Tty`, on a raw socket, without `Upgrade`
/// headers, detach keys from the client's config file.
#[test]
fn python_sdk_exec_fidelity() {
    run_checks("fidelity.py", &["exec_"]);
}

/// Build: a Dockerfile outside the context, `.dockerignore`, `cachefrom`, `extrahosts`,
/// stderr in red.
#[test]
fn python_sdk_build_fidelity() {
    run_checks("fidelity.py", &["build_"]);
}

/// testcontainers-python: a container from the local registry, waits for a log line and the
/// mapped port, exec, a network alias, cleanup (Ryuk disabled: its image is not offline).
#[test]
fn python_testcontainers_start_wait_exec_cleanup() {
    run_checks("test_testcontainers.py", &[]);
}

/// Runs the checks of `tests/sdk/python/<script>` whose names start with one of `prefixes`
/// (all without any) against a fresh engine.
fn run_checks(script: &str, prefixes: &[&str]) {
    let python = sdk_python();
    let e = Engine::start();
    let registry = &berth_test_support::Registry::shared().addr;
    let log = e.scratch().join("python-sdk.log");
    let out = std::fs::File::create(&log).expect("sdk log");
    let mut child = Command::new(&python)
        .arg("-u")
        .arg(sdk_dir().join(script))
        .args(prefixes)
        .env("DOCKER_HOST", e.host())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("BERTH_TEST_REGISTRY", registry)
        .env("TESTCONTAINERS_RYUK_DISABLED", "true")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .env_remove("DOCKER_CONFIG")
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log fd"))
        .stderr(out)
        .spawn()
        .expect("run the Python SDK test");
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for the SDK test") {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    match status {
        Some(s) if s.success() => {
            assert!(output.contains("all checks passed"), "{output}");
        }
        Some(s) => panic!(
            "Python SDK test failed ({s}):\n{output}\n--- engine log ---\n{}",
            e.log_tail()
        ),
        None => panic!(
            "Python SDK test did not finish within {TIMEOUT:?}:\n{output}\n--- engine log ---\n{}",
            e.log_tail()
        ),
    }
}
