//! What a container persists under `<data_root>/containers/<id>/`: `config.json` (the
//! [`Record`]), `hostconfig.json`, `state.json` and `network.json`, each written atomically.

use std::path::{Path, PathBuf};

use berth_docker_api::container::{ContainerConfig, ContainerState, HostConfig, MountPoint};
use serde::{Deserialize, Serialize};

use crate::fsutil::{read_json, write_json_atomic};
use crate::network::{Attachment, EndpointRequest};
use crate::Result;

/// The container's identity and configuration; written at create, changed by rename and by
/// `network connect/disconnect`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    /// The image as the user named it.
    pub image: String,
    /// `sha256:…` of the image config.
    pub image_id: String,
    pub config: ContainerConfig,
    pub mounts: Vec<MountPoint>,
    /// Named volumes created for image `Volumes` (removed by `rm -v`).
    #[serde(default)]
    pub anonymous_volumes: Vec<String>,
    /// The networks joined at start, the one of `eth0` (default route) first, with their
    /// `--ip` and aliases. `None` in records made before multi-network support: then the
    /// network mode alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networks: Option<Vec<EndpointRequest>>,
}

/// Runtime state, rewritten at every transition.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StateRecord {
    pub state: ContainerState,
    pub restart_count: i64,
    /// Set by `stop`/`kill` from the user, so restart policies leave it stopped.
    pub manually_stopped: bool,
    pub has_been_started: bool,
}

impl StateRecord {
    /// The state of a container whose `state.json` was torn: taken as running, so that
    /// `restore` reconnects to its monitor if it has one and otherwise records it as exited.
    pub fn unknown() -> Self {
        let mut s = Self::default();
        s.state.running = true;
        s.state.status = "running".into();
        s.has_been_started = true;
        s.manually_stopped = true;
        s
    }
}

/// Paths of one container's files.
#[derive(Debug, Clone)]
pub struct Paths {
    pub dir: PathBuf,
}

impl Paths {
    pub fn new(data_root: &Path, id: &str) -> Self {
        Self {
            dir: data_root.join("containers").join(id),
        }
    }
    pub fn config(&self) -> PathBuf {
        self.dir.join("config.json")
    }
    pub fn host_config(&self) -> PathBuf {
        self.dir.join("hostconfig.json")
    }
    pub fn state(&self) -> PathBuf {
        self.dir.join("state.json")
    }
    pub fn network(&self) -> PathBuf {
        self.dir.join("network.json")
    }
    pub fn log(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}-json.log"))
    }
    pub fn hosts(&self) -> PathBuf {
        self.dir.join("hosts")
    }
    pub fn hostname(&self) -> PathBuf {
        self.dir.join("hostname")
    }
    pub fn resolv_conf(&self) -> PathBuf {
        self.dir.join("resolv.conf")
    }
    /// The OCI bundle (`config.json` of the runtime lives in `bundle/`).
    pub fn bundle(&self) -> PathBuf {
        self.dir.join("bundle")
    }
    pub fn exit_file(&self) -> PathBuf {
        self.dir.join("exit.json")
    }
    pub fn shim_config(&self) -> PathBuf {
        self.dir.join("shim.json")
    }
    pub fn shim_log(&self) -> PathBuf {
        self.dir.join("shim.log")
    }
    pub fn upper(&self) -> PathBuf {
        self.dir.join("fs/upper")
    }
    pub fn work(&self) -> PathBuf {
        self.dir.join("fs/work")
    }
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
}

/// Everything persisted about one container.
#[derive(Debug, Clone)]
pub struct Stored {
    pub record: Record,
    pub host: HostConfig,
    pub state: StateRecord,
    pub attachment: Option<Attachment>,
}

/// `State.StartedAt`/`FinishedAt` of a time not reached.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

impl Stored {
    /// The state of a container that has just started with init `pid`.
    pub fn mark_running(&mut self, pid: i32) {
        let s = &mut self.state.state;
        s.status = "running".into();
        s.running = true;
        s.paused = false;
        s.restarting = false;
        s.pid = i64::from(pid);
        s.exit_code = 0;
        s.error.clear();
        s.started_at = crate::shim::jsonlog::now_rfc3339();
        s.finished_at = ZERO_TIME.into();
        self.state.has_been_started = true;
        self.state.manually_stopped = false;
    }

    /// The networks to join at start (see [`Record::networks`]).
    pub fn network_plan(&self) -> Vec<EndpointRequest> {
        self.record.networks.clone().unwrap_or_else(|| {
            vec![EndpointRequest {
                network: self.host.network_mode.clone(),
                ..Default::default()
            }]
        })
    }

    /// Writes every file of a new container, `config.json` last: a directory without it is a
    /// create cut short ([`Stored::load`] says `None`), never a container with defaults.
    pub fn save_all(&self, p: &Paths) -> Result<()> {
        write_json_atomic(&p.host_config(), &self.host)?;
        self.save_state(p)?;
        write_json_atomic(&p.config(), &self.record)?;
        Ok(())
    }

    pub fn save_state(&self, p: &Paths) -> Result<()> {
        write_json_atomic(&p.state(), &self.state)?;
        match &self.attachment {
            Some(a) => write_json_atomic(&p.network(), a)?,
            None => {
                let _ = std::fs::remove_file(p.network());
            }
        }
        Ok(())
    }

    /// Loads a container; `None` when `config.json` is missing (a half-created directory).
    pub fn load(p: &Paths) -> Result<Option<Self>> {
        let Some(record) = read_json::<Record>(&p.config())? else {
            return Ok(None);
        };
        Ok(Some(Self {
            record,
            host: read_json(&p.host_config())?.unwrap_or_default(),
            state: read_json(&p.state())
                .unwrap_or_else(|e| {
                    tracing::error!(
                        error = %e,
                        "unreadable container state, asking its monitor whether it still runs"
                    );
                    Some(StateRecord::unknown())
                })
                .unwrap_or_default(),
            attachment: read_json(&p.network())?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_round_trips() {
        let d = tempfile::tempdir().unwrap();
        let p = Paths::new(d.path(), "abc");
        let mut s = Stored {
            record: Record {
                id: "abc".into(),
                name: "x".into(),
                created: "t".into(),
                path: "sh".into(),
                args: vec![],
                image: "busybox".into(),
                image_id: "sha256:1".into(),
                config: ContainerConfig::default(),
                mounts: vec![],
                anonymous_volumes: vec![],
                networks: None,
            },
            host: HostConfig::default(),
            state: StateRecord::default(),
            attachment: None,
        };
        s.state.state.exit_code = 3;
        s.save_all(&p).unwrap();
        let l = Stored::load(&p).unwrap().unwrap();
        assert_eq!(l.record, s.record);
        assert_eq!(l.state.state.exit_code, 3);
        assert!(Stored::load(&Paths::new(d.path(), "nope"))
            .unwrap()
            .is_none());
        // A torn state file does not lose the container.
        std::fs::write(p.state(), b"{\"state\": {\"Sta").unwrap();
        let l = Stored::load(&p).unwrap().unwrap();
        assert_eq!(l.record, s.record);
        assert!(l.state.state.running);
        // A torn config does (it is reported by `restore`), as with dockerd.
        std::fs::write(p.config(), b"{\"id\": \"a").unwrap();
        assert!(Stored::load(&p).is_err());
    }
}
