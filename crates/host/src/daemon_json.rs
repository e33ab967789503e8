//! The engine's `daemon.json`, kept at `<state dir>/daemon.json` (next to `config.json`) and
//! passed to the guest's engine at each VM start (and at `berth restart --engine`). It takes
//! the keys the engine reads (`insecure-registries`, `registry-mirrors`, `log-opts`,
//! `runtimes`, …); the keys that describe the VM itself are the host's, so they are dropped
//! with a warning. What the host must set on top (the registry mirrors reached through the
//! host, the host-gateway address) reaches the engine as flags, which the engine adds to the
//! file's lists.
//!
//! [`check`] is the one validation, used by `berth start`, `berth config daemon` and the app's
//! editor: the parser's line and column for bad JSON, a refusal for a known key of the wrong
//! type (the engine would not start), and warnings for the VM's keys and keys the engine does
//! not read (kept, ignored, as dockerd ignores keys of features it lacks).

use std::path::{Path, PathBuf};

use serde::Serialize;
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

/// The JSON shape the engine's parser wants for a key (`berth_engine::config::DaemonJson`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// A list of strings.
    Strings,
    /// A string (or null).
    Text,
    /// A boolean (or null).
    Flag,
    /// An object of strings.
    TextMap,
    /// `{"name": {"path": "…", "runtimeArgs": ["…"]}}`.
    Runtimes,
}

/// The keys the engine reads, with their shape.
const ENGINE_KEYS: &[(&str, Shape)] = &[
    ("registry-mirrors", Shape::Strings),
    ("insecure-registries", Shape::Strings),
    ("default-runtime", Shape::Text),
    ("runtimes", Shape::Runtimes),
    ("log-level", Shape::Text),
    ("log-driver", Shape::Text),
    ("log-opts", Shape::TextMap),
    ("bridge", Shape::Text),
    ("bip", Shape::Text),
    ("iptables", Shape::Flag),
];

/// A place in the text, 1-based (as the JSON parser counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// Why a text is refused, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invalid {
    pub message: String,
    pub at: Option<Position>,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.at {
            Some(p) => write!(f, "{} at line {} column {}", self.message, p.line, p.column),
            None => f.write_str(&self.message),
        }
    }
}

/// Something about an accepted text the user should know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub key: String,
    pub message: String,
    pub at: Option<Position>,
}

/// An accepted text: its settings, and what in it has no effect.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub settings: Map<String, Value>,
    pub warnings: Vec<Warning>,
}

/// Checks a `daemon.json` text as the engine will read it.
pub fn check(text: &str) -> std::result::Result<Checked, Invalid> {
    let value: Value = serde_json::from_str(text).map_err(|e| Invalid {
        // serde_json's message without its own " at line … column …" tail.
        message: e
            .to_string()
            .split(" at line ")
            .next()
            .unwrap_or_default()
            .to_string(),
        at: Some(Position {
            line: e.line(),
            column: e.column(),
        }),
    })?;
    let Value::Object(settings) = value else {
        return Err(Invalid {
            message: format!(
                "expected a JSON object ({{ \"key\": value, … }}), found {}",
                kind(&value)
            ),
            at: Some(Position { line: 1, column: 1 }),
        });
    };
    let mut warnings = Vec::new();
    for (key, v) in &settings {
        let at = key_position(text, key);
        if VM_KEYS.contains(&key.as_str()) {
            warnings.push(Warning {
                key: key.clone(),
                message: format!("`{key}` is set by Berth's VM; ignored"),
                at,
            });
            continue;
        }
        match ENGINE_KEYS.iter().find(|(k, _)| k == key) {
            Some((_, shape)) => {
                if let Some(why) = shape_error(*shape, v) {
                    return Err(Invalid {
                        message: format!("`{key}` {why}"),
                        at,
                    });
                }
            }
            None => warnings.push(Warning {
                key: key.clone(),
                message: format!("`{key}` is not read by Berth's engine; kept but ignored"),
                at,
            }),
        }
    }
    Ok(Checked { settings, warnings })
}

/// What is wrong with `v` for `shape`, if anything.
fn shape_error(shape: Shape, v: &Value) -> Option<String> {
    let strings = |v: &Value| v.as_array().is_some_and(|a| a.iter().all(Value::is_string));
    let ok = match shape {
        Shape::Strings => strings(v),
        Shape::Text => v.is_string() || v.is_null(),
        Shape::Flag => v.is_boolean() || v.is_null(),
        Shape::TextMap => v
            .as_object()
            .is_some_and(|m| m.values().all(Value::is_string)),
        Shape::Runtimes => {
            return match v.as_object() {
                None => Some(format!("must be an object of runtimes, found {}", kind(v))),
                Some(m) => m.iter().find_map(|(name, r)| {
                    let path_ok = r.get("path").is_some_and(Value::is_string);
                    let args_ok = r.get("runtimeArgs").is_none_or(strings);
                    (!(r.is_object() && path_ok && args_ok)).then(|| {
                        format!(
                            "entry `{name}` must be {{\"path\": \"…\", \"runtimeArgs\": [\"…\"]}}"
                        )
                    })
                }),
            };
        }
    };
    let want = match shape {
        Shape::Strings => "a list of strings",
        Shape::Text => "a string",
        Shape::Flag => "true or false",
        Shape::TextMap => "an object of strings",
        Shape::Runtimes => unreachable!("answered above"),
    };
    (!ok).then(|| format!("must be {want}, found {}", kind(v)))
}

/// Where `"key"` first appears in `text` (good enough to point the user at it).
fn key_position(text: &str, key: &str) -> Option<Position> {
    let offset = text.find(&format!("\"{key}\""))?;
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    Some(Position { line, column })
}

/// Reads and checks `path`: a missing file is `None`; a refused file is an error naming the
/// file and the position of the fault.
pub fn load(path: &Path) -> Result<Option<Checked>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(HostError::io(path)(e)),
    };
    check(&text)
        .map(Some)
        .map_err(|detail| HostError::DaemonJson {
            path: path.to_path_buf(),
            detail,
        })
}

/// What [`save`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Saved {
    /// The text was checked and written; its warnings.
    Written(Vec<Warning>),
    /// An empty text: the file was removed (the engine's defaults apply).
    Removed,
}

/// Checks `text` and writes it as `<state>/daemon.json` (atomically, as given: the user's
/// formatting is kept); an empty text removes the file. A refused text writes nothing.
pub fn save(state: &StateDir, text: &str) -> Result<Saved> {
    let path = state.daemon_json();
    if text.trim().is_empty() {
        return match std::fs::remove_file(&path) {
            Ok(()) => Ok(Saved::Removed),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Saved::Removed),
            Err(e) => Err(HostError::io(&path)(e)),
        };
    }
    let checked = check(text).map_err(|detail| HostError::DaemonJson {
        path: path.clone(),
        detail,
    })?;
    state.create()?;
    crate::state::write_atomic(&path, text.as_bytes())?;
    tracing::info!(path = %path.display(), warnings = checked.warnings.len(), "daemon.json saved");
    Ok(Saved::Written(checked.warnings))
}

/// The text of `<state>/daemon.json`, `None` without one.
pub fn read_text(state: &StateDir) -> Result<Option<String>> {
    let path = state.daemon_json();
    match std::fs::read_to_string(&path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(HostError::io(&path)(e)),
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
pub fn for_guest(user: Option<Checked>) -> Option<Map<String, Value>> {
    let mut m = user?.settings;
    for k in VM_KEYS {
        if m.remove(*k).is_some() {
            tracing::warn!(key = k, "daemon.json: ignoring a key the VM sets itself");
        }
    }
    Some(m)
}

/// The text the guest gets (see [`for_guest`]) from `<state>/daemon.json`; `None` without one.
pub fn guest_text(state: &StateDir) -> Result<Option<String>> {
    let Some(m) = for_guest(load(&state.daemon_json())?) else {
        return Ok(None);
    };
    serde_json::to_string_pretty(&Value::Object(m))
        .map(Some)
        .map_err(|e| HostError::DaemonJson {
            path: state.daemon_json(),
            detail: Invalid {
                message: e.to_string(),
                at: None,
            },
        })
}

/// Loads `<state>/daemon.json`, and writes what the guest gets to `run/daemon.json`; returns
/// that path, or `None` without a user file.
pub fn prepare(state: &StateDir) -> Result<Option<PathBuf>> {
    let Some(body) = guest_text(state)? else {
        let _ = std::fs::remove_file(state.guest_daemon_json());
        return Ok(None);
    };
    let path = state.guest_daemon_json();
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
        assert!(e.contains("at line 2 column "), "{e}");
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
    #[test]
    fn check_gives_the_parsers_line_and_column() {
        let e = check("{\n  \"debug\": true\n  \"x\": 1\n}").unwrap_err();
        assert_eq!(e.at, Some(Position { line: 3, column: 3 }), "{e}");
        assert!(e.message.contains("expected `,`"), "{e}");
        assert!(e.to_string().ends_with("at line 3 column 3"), "{e}");
        let e = check("\"text\"").unwrap_err();
        assert!(e.message.contains("a string"), "{e}");
    }

    #[test]
    fn check_refuses_known_keys_of_the_wrong_shape_where_they_are() {
        let e = check("{\n \"log-level\": \"info\",\n \"registry-mirrors\": \"http://m\"\n}")
            .unwrap_err();
        assert_eq!(e.at, Some(Position { line: 3, column: 2 }));
        assert_eq!(
            e.message,
            "`registry-mirrors` must be a list of strings, found a string"
        );
        for bad in [
            r#"{"iptables": "yes"}"#,
            r#"{"log-opts": {"max-size": 10}}"#,
            r#"{"runtimes": {"crun": {"runtimeArgs": []}}}"#,
            r#"{"runtimes": []}"#,
        ] {
            assert!(check(bad).is_err(), "{bad} accepted");
        }
        let good = r#"{"runtimes": {"crun": {"path": "/usr/bin/crun", "runtimeArgs": ["--x"]}},
            "log-driver": null, "iptables": false, "log-opts": {"max-size": "10m"},
            "insecure-registries": ["r.test:5000"]}"#;
        let c = check(good).unwrap();
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn check_warns_of_vm_keys_and_keys_the_engine_does_not_read() {
        let c = check("{\"debug\": true,\n\"data-root\": \"/x\"}").unwrap();
        let w: Vec<_> = c.warnings.iter().map(|w| (w.key.as_str(), w.at)).collect();
        assert_eq!(
            w,
            [
                ("data-root", Some(Position { line: 2, column: 1 })),
                ("debug", Some(Position { line: 1, column: 2 })),
            ]
        );
        assert!(c.warnings[0].message.contains("set by Berth's VM"));
        assert!(c.warnings[1].message.contains("not read"));
    }

    #[test]
    fn save_writes_good_text_as_given_refuses_bad_text_and_empty_removes() {
        let d = tempfile::tempdir().unwrap();
        let s = StateDir::new(d.path().join("berth"));
        let good = "{\n  \"insecure-registries\": [\"r.test:5000\"],\n  \"debug\": true\n}\n";
        match save(&s, good).unwrap() {
            Saved::Written(w) => assert_eq!(w.len(), 1),
            other => panic!("{other:?}"),
        }
        assert_eq!(read_text(&s).unwrap().as_deref(), Some(good));
        let e = save(&s, "{\"iptables\": 1}").unwrap_err();
        assert!(matches!(e, HostError::DaemonJson { .. }), "{e}");
        assert_eq!(read_text(&s).unwrap().as_deref(), Some(good));
        let leftovers: Vec<_> = std::fs::read_dir(s.root())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
        assert_eq!(save(&s, " \n").unwrap(), Saved::Removed);
        assert_eq!(read_text(&s).unwrap(), None);
    }
}
