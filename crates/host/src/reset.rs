//! Back to factory defaults: what a reset deletes from the state directory (the VM's data disk
//! with every image, container and volume, Berth's `config.json` and `daemon.json`, the logs and
//! leftover runtime files), each with what it holds, and the reset itself. A reset stops
//! nothing: it refuses while the VM's supervisor (or a QEMU it left) runs. The VM image and
//! tools (`image_dir`, `tools_dir`, outside the state dir) are kept: they are downloads, not
//! state.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{HostError, Result};
use crate::StateDir;

/// One thing a reset deletes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    pub path: PathBuf,
    /// What it holds, in words.
    pub what: String,
}

/// What a reset of `state` deletes now: only what exists, in deletion order.
pub fn plan(state: &StateDir) -> Vec<Item> {
    [
        (
            state.disk_dir(),
            "the VM's data disk: every image, container, volume and build cache",
        ),
        (
            state.config_file(),
            "Berth's settings (CPUs, memory, disk size, shared folders)",
        ),
        (state.daemon_json(), "the engine's daemon.json"),
        (
            state.logs_dir(),
            "the logs (VM console, supervisor, QEMU, helpers)",
        ),
        (
            state.run_dir(),
            "runtime files a stopped VM left (status, pid files)",
        ),
    ]
    .into_iter()
    .filter(|(p, _)| p.symlink_metadata().is_ok())
    .map(|(path, what)| Item {
        path,
        what: what.into(),
    })
    .collect()
}

/// Why a reset cannot run now: the supervisor or QEMU is alive.
pub fn refusal(state: &StateDir) -> Option<String> {
    ["supervisor", "qemu"].into_iter().find_map(|name| {
        crate::process::live_pid(&state.pid_file(name)).map(|pid| {
            format!("Berth's VM is running ({name} pid {pid}): stop it (berth stop) before a reset")
        })
    })
}

/// Removes a file or a whole directory; one already gone is not an error.
fn remove(path: &Path) -> std::io::Result<()> {
    let r = match path.symlink_metadata() {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    };
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// Deletes what [`plan`] lists; returns it. Refuses while the VM runs ([`refusal`]).
pub fn reset(state: &StateDir) -> Result<Vec<Item>> {
    if let Some(why) = refusal(state) {
        return Err(HostError::VmRunning(why));
    }
    let items = plan(state);
    for item in &items {
        remove(&item.path).map_err(HostError::io(&item.path))?;
    }
    tracing::warn!(home = %state.root().display(), deleted = items.len(), "reset to factory defaults");
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home() -> (tempfile::TempDir, StateDir) {
        let d = tempfile::tempdir().unwrap();
        let s = StateDir::new(d.path().join("berth"));
        s.create().unwrap();
        (d, s)
    }

    #[test]
    fn the_plan_lists_what_exists_and_says_what_it_holds() {
        let (_d, s) = home();
        std::fs::write(s.config_file(), "{}").unwrap();
        std::fs::write(s.data_disk(), "qcow").unwrap();
        let plan = plan(&s);
        let paths: Vec<&Path> = plan.iter().map(|i| i.path.as_path()).collect();
        assert_eq!(
            paths,
            [s.disk_dir(), s.config_file(), s.logs_dir(), s.run_dir()]
        );
        assert!(plan[0].what.contains("every image"), "{plan:?}");
    }

    #[test]
    fn reset_deletes_the_plan_and_nothing_else() {
        let (d, s) = home();
        std::fs::write(s.data_disk(), "qcow").unwrap();
        std::fs::write(s.daemon_json(), "{}").unwrap();
        std::fs::write(s.console_log(), "boot\n").unwrap();
        let other = s.root().join("keep.txt");
        std::fs::write(&other, "mine").unwrap();
        let done = reset(&s).unwrap();
        assert_eq!(done.len(), 4, "{done:?}");
        for item in &done {
            assert!(!item.path.exists(), "{} left", item.path.display());
        }
        assert!(other.exists(), "a file the plan does not list stays");
        assert!(plan(&s).is_empty(), "nothing left to reset");
        drop(d);
    }

    #[test]
    fn reset_refuses_while_the_supervisor_runs() {
        let (_d, s) = home();
        std::fs::write(s.data_disk(), "qcow").unwrap();
        std::fs::write(s.pid_file("supervisor"), std::process::id().to_string()).unwrap();
        let err = reset(&s).unwrap_err();
        assert!(matches!(err, HostError::VmRunning(_)), "{err}");
        assert!(err.to_string().contains("berth stop"), "{err}");
        assert!(s.data_disk().exists(), "nothing deleted");
    }
}
