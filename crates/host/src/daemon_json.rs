//! The engine's `daemon.json`, kept at `<state dir>/daemon.json` (next to `config.json`) and
//! passed to the guest's engine at each VM start. It takes the keys the native engine accepts
//! (`insecure-registries`, `registry-mirrors`, `log-opts`, `runtimes`, …); the keys that
//! describe the VM itself are the host's, so they are dropped with a warning. What the host
//! must set on top (the registry mirrors reached through the host, the host-gateway address)
//! reaches the engine as flags, which the engine adds to the file's lists.
//!
//! An invalid file is refused by `berth start`, before anything starts, with the parser's
//! line and column.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{HostError, Result};
use crate::StateDir;

/// Keys the VM owns: where the engine listens and keeps its state, and how containers reach
/// the host. Set by the guest's PID 1; a value here would break the VM.
pub const VM_KEYS: &[&str] = &[
    "hosts",
    "data-root",
    "exec-root",
    "pidfile",
    "host-gateway-ip",
    "host-aliases",
];

/// Reads and checks `path`: a missing file is `None`; a file that is not a JSON object is an
/// error naming the file and the position of the fault.
pub fn load(path: &Path) -> Result<Option<Map<String, Value>>> {
    let text = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(HostError::io(path)(e)),
    };
    let invalid = |detail: String| HostError::DaemonJson {
        path: path.to_path_buf(),
        detail,
    };
    match serde_json::from_slice::<Value>(&text) {
        Ok(Value::Object(m)) => Ok(Some(m)),
        Ok(other) => Err(invalid(format!(
            "expected a JSON object ({{ \"key\": value, … }}), found {}",
            kind(&other)
        ))),
        Err(e) => Err(invalid(e.to_string())),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The file the guest gets: the user's settings without the VM's keys. `None` when the user
/// has no `daemon.json` (the guest then keeps the one on its data disk, if any).
pub fn for_guest(user: Option<Map<String, Value>>) -> Option<Map<String, Value>> {
    let mut m = user?;
    for k in VM_KEYS {
        if m.remove(*k).is_some() {
            tracing::warn!(key = k, "daemon.json: ignoring a key the VM sets itself");
        }
    }
    Some(m)
}

/// Loads `<state>/daemon.json`, and writes what the guest gets to `run/daemon.json`; returns
/// that path, or `None` without a user file.
pub fn prepare(state: &StateDir) -> Result<Option<PathBuf>> {
    let Some(m) = for_guest(load(&state.daemon_json())?) else {
        let _ = std::fs::remove_file(state.guest_daemon_json());
        return Ok(None);
    };
    let path = state.guest_daemon_json();
    let body = serde_json::to_vec_pretty(&Value::Object(m)).map_err(|e| HostError::DaemonJson {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    std::fs::write(&path, body).map_err(HostError::io(&path))?;
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, body: &str) -> PathBuf {
        let p = dir.join("daemon.json");
        std::fs::write(&p, body).unwrap();
        p
    }

    #[test]
    fn missing_file_is_none() {
        let d = tempfile::tempdir().unwrap();
        assert!(load(&d.path().join("daemon.json")).unwrap().is_none());
    }

    #[test]
    fn invalid_json_names_the_file_and_position() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), "{\n  \"insecure-registries\": [\"a:5000\",]\n}");
        let e = load(&p).unwrap_err().to_string();
        assert!(e.contains(&p.display().to_string()), "{e}");
        assert!(e.contains("line 2"), "{e}");
        let p = write(d.path(), "[1]");
        let e = load(&p).unwrap_err().to_string();
        assert!(
            e.contains("expected a JSON object") && e.contains("an array"),
            "{e}"
        );
    }

    #[test]
    fn the_vm_keys_are_dropped_the_rest_kept() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            r#"{"insecure-registries":["r.test:5000"],"hosts":["tcp://0.0.0.0:2375"],"data-root":"/x","log-opts":{"max-size":"10m"}}"#,
        );
        let m = for_guest(load(&p).unwrap()).unwrap();
        assert_eq!(m["insecure-registries"][0], "r.test:5000");
        assert_eq!(m["log-opts"]["max-size"], "10m");
        assert!(!m.contains_key("hosts") && !m.contains_key("data-root"));
    }

    #[test]
    fn prepare_writes_the_guest_copy_and_removes_a_stale_one() {
        let d = tempfile::tempdir().unwrap();
        let s = StateDir::new(d.path());
        s.create().unwrap();
        assert_eq!(prepare(&s).unwrap(), None);
        std::fs::write(s.daemon_json(), r#"{"debug": true, "pidfile": "/p"}"#).unwrap();
        let p = prepare(&s).unwrap().unwrap();
        let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(v, serde_json::json!({"debug": true}));
        std::fs::remove_file(s.daemon_json()).unwrap();
        assert_eq!(prepare(&s).unwrap(), None);
        assert!(!p.exists());
    }
}
