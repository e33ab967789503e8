//! Test support for Berth's end-to-end tests: a fresh `berth-agent` per test, the real docker
//! CLI pointed at it, a loopback registry filled with the offline fixtures, bounded waits and
//! cleanup of exactly the processes a test started.

mod engine;
#[cfg(feature = "engine")]
pub mod fake;
mod fault_proxy;
mod net_slot;
mod registry;
mod spec;
mod wait;

pub use engine::{docker_plugin_config, output_text, run_bounded, Engine, EngineOptions};
pub use fault_proxy::{Fault, FaultProxy, LAYER_MIN_BYTES};
pub use net_slot::NetSlot;
pub use registry::Registry;
pub use spec::assert_response;
pub use wait::{free_port, http_get, serve_http_once, wait_until, FROM_HOST};

use std::path::PathBuf;

/// The workspace root (for fixtures scripts).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where the set-up scripts install a client the tests drive: `$var` when set, else
/// `~/.cache/berth/<default>`.
pub fn berth_cache(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
        PathBuf::from(home).join(".cache/berth").join(default)
    })
}

/// `rel` inside [`berth_cache`]`(var, default)`, which must exist: else the panic says to run
/// `installer`.
pub fn installed(var: &str, default: &str, rel: &str, installer: &str) -> PathBuf {
    let path = berth_cache(var, default).join(rel);
    assert!(
        path.exists(),
        "{} is missing: run {installer} (scripts/test.sh does)",
        path.display()
    );
    path
}

/// Where `scripts/install-docker-plugins.sh` puts the docker CLI plugins, one folder each
/// (`compose/docker-compose`, `buildx/docker-buildx`): `$BERTH_PLUGINS`, else
/// `~/.cache/berth/docker-plugins`.
pub fn docker_plugins() -> PathBuf {
    berth_cache("BERTH_PLUGINS", "docker-plugins")
}

/// The `berth-agent` binary under test: `$BERTH_AGENT_BIN`, else the one cargo built next to
/// the running test binary (`target/<profile>/berth-agent`).
pub fn agent_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_AGENT_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current test binary");
    // target/<profile>/deps/<test>-<hash>
    let profile_dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target profile dir");
    let bin = profile_dir.join("berth-agent");
    assert!(
        bin.exists(),
        "{} not found: build it first (cargo build -p berth-agent) or set BERTH_AGENT_BIN",
        bin.display()
    );
    bin
}
