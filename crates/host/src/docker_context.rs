//! The docker CLI's contexts, read and written as the CLI stores them, so the app and `berth`
//! need no docker binary to list or switch them: the config dir is `$DOCKER_CONFIG` or
//! `~/.docker`; `config.json`'s `currentContext` names the current one (absent or empty: the
//! implicit `default`); each context is `contexts/meta/<sha256 of its name>/meta.json`
//! (`{"Name", "Metadata": {"Description"}, "Endpoints": {"docker": {"Host", "SkipTLSVerify"}}}`).
//! Writing `config.json` keeps every other key (auths, plugins dirs, …) as it was.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{HostError, Result};

/// The context the CLI uses when none is named.
pub const DEFAULT: &str = "default";

/// One context as `docker context ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerContext {
    pub name: String,
    pub description: String,
    /// The Docker endpoint (`unix:///…`, `tcp://…`, `ssh://…`).
    pub host: String,
    pub current: bool,
}

/// What [`ContextStore::ensure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ensured {
    Created,
    Updated,
    Unchanged,
}

/// `meta.json` of a stored context (the fields the CLI writes; others are kept on update).
#[derive(Debug, Clone, Deserialize)]
struct Meta {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Metadata", default)]
    metadata: Value,
    #[serde(rename = "Endpoints", default)]
    endpoints: Value,
}

/// A docker CLI config dir.
#[derive(Debug, Clone)]
pub struct ContextStore {
    dir: PathBuf,
}

impl ContextStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The dir the docker CLI of this user reads: `$DOCKER_CONFIG`, else `~/.docker`.
    pub fn from_env() -> Self {
        if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
            return Self::new(d);
        }
        let home = std::env::var_os("HOME")
            .or_else(|| std::env::var_os("USERPROFILE"))
            .unwrap_or_else(|| "/root".into());
        Self::new(Path::new(&home).join(".docker"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn config_file(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    fn meta_dir(&self, name: &str) -> PathBuf {
        let id = format!("{:x}", Sha256::digest(name.as_bytes()));
        self.dir.join("contexts").join("meta").join(id)
    }

    /// `config.json` as an object (empty when there is none).
    fn read_config(&self) -> Result<Map<String, Value>> {
        let path = self.config_file();
        match std::fs::read(&path) {
            Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(Map::new()),
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|source| HostError::DockerConfig { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
            Err(e) => Err(HostError::io(&path)(e)),
        }
    }

    /// The current context's name (`default` when none is set).
    pub fn current(&self) -> Result<String> {
        Ok(self
            .read_config()?
            .get("currentContext")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or(DEFAULT)
            .to_string())
    }

    /// The stored contexts.
    fn stored(&self) -> Result<Vec<Meta>> {
        let root = self.dir.join("contexts").join("meta");
        let entries = match std::fs::read_dir(&root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(HostError::io(&root)(e)),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path().join("meta.json");
            match std::fs::read(&path) {
                Ok(b) => out.push(
                    serde_json::from_slice(&b)
                        .map_err(|source| HostError::DockerConfig { path, source })?,
                ),
                // A directory without meta.json is not a context (the CLI skips it too).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(HostError::io(&path)(e)),
            }
        }
        Ok(out)
    }

    /// `default` (its endpoint: `DOCKER_HOST` or the system socket) and the stored contexts,
    /// by name, the current one marked.
    pub fn list(&self) -> Result<Vec<DockerContext>> {
        let current = self.current()?;
        let default_host = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unix:///var/run/docker.sock".into());
        let mut list = vec![DockerContext {
            name: DEFAULT.into(),
            description: "Current DOCKER_HOST based configuration".into(),
            host: default_host,
            current: current == DEFAULT,
        }];
        let mut stored: Vec<DockerContext> = self
            .stored()?
            .into_iter()
            .map(|m| DockerContext {
                current: m.name == current,
                description: str_at(&m.metadata, &["Description"]),
                host: str_at(&m.endpoints, &["docker", "Host"]),
                name: m.name,
            })
            .collect();
        stored.sort_by(|a, b| a.name.cmp(&b.name));
        list.extend(stored);
        Ok(list)
    }

    /// Makes `name` the current context, as `docker context use` does.
    pub fn use_context(&self, name: &str) -> Result<()> {
        if name != DEFAULT && !self.meta_dir(name).join("meta.json").exists() {
            return Err(HostError::NoSuchContext(name.to_string()));
        }
        let mut config = self.read_config()?;
        if name == DEFAULT {
            config.remove("currentContext");
        } else {
            config.insert("currentContext".into(), Value::String(name.into()));
        }
        self.write_json(&self.config_file(), &Value::Object(config))?;
        tracing::info!(context = name, dir = %self.dir.display(), "docker context switched");
        Ok(())
    }

    /// Creates context `name` with Docker endpoint `host`, or points an existing one there.
    pub fn ensure(&self, name: &str, host: &str, description: &str) -> Result<Ensured> {
        let dir = self.meta_dir(name);
        let path = dir.join("meta.json");
        let existing: Option<Map<String, Value>> = match std::fs::read(&path) {
            Ok(b) => {
                Some(
                    serde_json::from_slice(&b).map_err(|source| HostError::DockerConfig {
                        path: path.clone(),
                        source,
                    })?,
                )
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(HostError::io(&path)(e)),
        };
        let outcome = if existing.is_some() {
            Ensured::Updated
        } else {
            Ensured::Created
        };
        let mut meta = existing.unwrap_or_default();
        let endpoint = serde_json::json!({ "Host": host, "SkipTLSVerify": false });
        let docker = meta.get("Endpoints").and_then(|e| e.get("docker")).cloned();
        if outcome == Ensured::Updated && docker.as_ref() == Some(&endpoint) {
            return Ok(Ensured::Unchanged);
        }
        meta.insert("Name".into(), Value::String(name.into()));
        meta.entry("Metadata")
            .or_insert_with(|| serde_json::json!({ "Description": description }));
        let endpoints = meta
            .entry("Endpoints")
            .or_insert_with(|| Value::Object(Map::new()));
        if !endpoints.is_object() {
            *endpoints = Value::Object(Map::new());
        }
        if let Some(e) = endpoints.as_object_mut() {
            e.insert("docker".into(), endpoint);
        }
        std::fs::create_dir_all(&dir).map_err(HostError::io(&dir))?;
        self.write_json(&path, &Value::Object(meta))?;
        Ok(outcome)
    }

    fn write_json(&self, path: &Path, v: &Value) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(HostError::io(&self.dir))?;
        let body = serde_json::to_vec_pretty(v).map_err(|source| HostError::DockerConfig {
            path: path.to_path_buf(),
            source,
        })?;
        crate::state::write_atomic(path, &body)
    }
}

/// The string at `path` in `v`, empty when absent.
fn str_at(v: &Value, path: &[&str]) -> String {
    path.iter()
        .try_fold(v, |v, k| v.get(*k))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, ContextStore) {
        let d = tempfile::tempdir().unwrap();
        let s = ContextStore::new(d.path().join("docker"));
        (d, s)
    }

    #[test]
    fn an_empty_store_has_only_default_as_current() {
        let (_d, s) = store();
        let l = s.list().unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!((l[0].name.as_str(), l[0].current), (DEFAULT, true));
    }

    #[test]
    fn ensure_writes_the_clis_layout_and_use_switches_keeping_other_keys() {
        let (_d, s) = store();
        std::fs::create_dir_all(s.dir()).unwrap();
        std::fs::write(
            s.dir().join("config.json"),
            r#"{"auths": {"r.test": {"auth": "eA=="}}, "cliPluginsExtraDirs": ["/p"]}"#,
        )
        .unwrap();
        let host = "unix:///home/u/.berth/run/docker.sock";
        assert_eq!(s.ensure("berth", host, "Berth").unwrap(), Ensured::Created);
        // The CLI's directory name: the sha256 of the name (`printf berth | sha256sum`).
        let written = s
            .dir()
            .join("contexts/meta/5c2f64c7f21efd5fb5e3d6a499abe5eacb248ae6f6f0085387c9a056d10ef5fd");
        let v: Value =
            serde_json::from_slice(&std::fs::read(written.join("meta.json")).unwrap()).unwrap();
        assert_eq!(v["Name"], "berth");
        assert_eq!(v["Endpoints"]["docker"]["Host"], host);
        assert_eq!(
            s.ensure("berth", host, "Berth").unwrap(),
            Ensured::Unchanged
        );
        assert_eq!(
            s.ensure("berth", "unix:///x", "Berth").unwrap(),
            Ensured::Updated
        );

        s.use_context("berth").unwrap();
        assert_eq!(s.current().unwrap(), "berth");
        let l = s.list().unwrap();
        let names: Vec<_> = l.iter().map(|c| (c.name.as_str(), c.current)).collect();
        assert_eq!(names, [(DEFAULT, false), ("berth", true)]);
        assert_eq!(l[1].host, "unix:///x");
        let config: Value =
            serde_json::from_slice(&std::fs::read(s.dir().join("config.json")).unwrap()).unwrap();
        assert_eq!(config["auths"]["r.test"]["auth"], "eA==");
        assert_eq!(config["cliPluginsExtraDirs"][0], "/p");

        s.use_context(DEFAULT).unwrap();
        assert_eq!(s.current().unwrap(), DEFAULT);
    }

    #[test]
    fn switching_to_a_missing_context_is_refused_and_changes_nothing() {
        let (_d, s) = store();
        let e = s.use_context("nope").unwrap_err();
        assert_eq!(e.to_string(), "context \"nope\" does not exist");
        assert!(!s.dir().join("config.json").exists());
    }

    #[test]
    fn a_broken_config_json_is_an_error_naming_it() {
        let (_d, s) = store();
        std::fs::create_dir_all(s.dir()).unwrap();
        std::fs::write(s.dir().join("config.json"), "{").unwrap();
        let e = s.current().unwrap_err();
        assert!(e.to_string().contains("config.json"), "{e}");
    }
}
