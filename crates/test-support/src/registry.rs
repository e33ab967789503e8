//! The loopback registry the tests pull from: Debian's docker-registry filled with the offline
//! fixture images by `tests/fixtures/registry.py`. One per test run: `$BERTH_TEST_REGISTRY`
//! when the runner started it, else started on first use and stopped when the process exits.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

pub struct Registry {
    /// `127.0.0.1:PORT`
    pub addr: String,
}

static SHARED: OnceLock<Registry> = OnceLock::new();
static STARTED_DIR: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn stop_started_registry() {
    if let Some(dir) = STARTED_DIR.get() {
        let _ = Command::new("python3")
            .arg(crate::repo_root().join("tests/fixtures/registry.py"))
            .args(["stop", "--dir"])
            .arg(dir)
            .status();
        let _ = std::fs::remove_dir_all(dir);
    }
}

impl Registry {
    /// The shared registry, filled with the fixture images.
    pub fn shared() -> &'static Registry {
        SHARED.get_or_init(|| {
            if let Ok(addr) = std::env::var("BERTH_TEST_REGISTRY") {
                return Registry { addr };
            }
            let dir = tempfile::Builder::new()
                .prefix("berth-registry-")
                .tempdir()
                .expect("registry dir")
                .keep();
            let script = crate::repo_root().join("tests/fixtures/registry.py");
            let out = Command::new("python3")
                .arg(&script)
                .args(["start", "--dir"])
                .arg(&dir)
                .output()
                .expect("run registry.py start");
            assert!(
                out.status.success(),
                "registry start failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let _ = STARTED_DIR.set(dir);
            // SAFETY: registering a plain extern "C" fn with no captured state.
            unsafe { libc::atexit(stop_started_registry) };
            let addr = String::from_utf8_lossy(&out.stdout)
                .lines()
                .last()
                .unwrap_or_default()
                .trim()
                .to_string();
            let fill = Command::new("python3")
                .arg(&script)
                .args(["fill", "--registry", &addr])
                .output()
                .expect("run registry.py fill");
            assert!(
                fill.status.success(),
                "registry fill failed: {}",
                String::from_utf8_lossy(&fill.stderr)
            );
            Registry { addr }
        })
    }
}
