//! Named volumes (`local` driver): `<data_root>/volumes/<name>/_data` plus `meta.json`.
//! A volume created with `-o type=… -o device=…` has that mounted over `_data` while
//! containers use it (see `mount`).

mod mount;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_docker_api::volume::{Volume, VolumeCreateOptions};

use crate::fsutil::{read_json, write_json_atomic};
use crate::{EngineConfig, EngineError, EventBus, Result};

pub struct VolumeService {
    config: Arc<EngineConfig>,
    events: EventBus,
    /// Serialises create/remove so two requests never race on one name.
    lock: Mutex<()>,
}

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// Removes what a crash cut short: volumes being deleted (`.rm-*`) and temp files of
/// `meta.json` writes.
fn remove_leftovers(dir: &std::path::Path) -> Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.file_name().to_string_lossy().starts_with(".rm-") {
            tracing::info!(path = %e.path().display(), "removing interrupted volume removal");
            if let Err(err) = std::fs::remove_dir_all(e.path()) {
                tracing::warn!(path = %e.path().display(), error = %err, "cannot remove");
            }
        } else {
            crate::fsutil::remove_interrupted_writes(&e.path());
        }
    }
    Ok(())
}

impl VolumeService {
    pub async fn open(config: Arc<EngineConfig>, events: EventBus) -> Result<Self> {
        let dir = config.data_root.join("volumes");
        crate::fsutil::create_hierarchy_root(&dir)?;
        remove_leftovers(&dir)?;
        Ok(Self {
            config,
            events,
            lock: Mutex::new(()),
        })
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.config.data_root.join("volumes").join(name)
    }

    /// The host directory mounted into containers.
    pub fn data_path(&self, name: &str) -> PathBuf {
        self.dir(name).join("_data")
    }

    /// Creates a volume, or returns the existing one of that name (Docker's behaviour).
    pub fn create(&self, opts: VolumeCreateOptions) -> Result<Volume> {
        let name = if opts.name.is_empty() {
            crate::id::new_id()
        } else {
            opts.name.clone()
        };
        if !valid_name(&name) {
            return Err(EngineError::invalid(format!(
                "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
            )));
        }
        if !opts.driver.is_empty() && opts.driver != "local" {
            return Err(EngineError::not_found(format!(
                "create {name}: error looking up volume plugin {}: plugin \"{}\" not found",
                opts.driver, opts.driver
            )));
        }
        mount::validate(&opts.driver_opts)?;
        if let Some(m) = mount::MountOpts::of(&opts.driver_opts) {
            mount::precheck(&m, &self.data_path(&name))?;
        }
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(v) = self.inspect(&name) {
            return Ok(v);
        }
        std::fs::create_dir_all(self.data_path(&name))?;
        let v = Volume {
            name: name.clone(),
            driver: "local".into(),
            mountpoint: self.data_path(&name).display().to_string(),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            status: None,
            labels: opts.labels,
            scope: "local".into(),
            options: opts.driver_opts,
            usage_data: None,
        };
        write_json_atomic(&self.dir(&name).join("meta.json"), &v)?;
        self.events.publish(
            "volume",
            "create",
            &name,
            BTreeMap::from([("driver".into(), "local".into())]),
        );
        Ok(v)
    }

    pub fn inspect(&self, name: &str) -> Result<Volume> {
        if valid_name(name) {
            if let Some(v) = read_json::<Volume>(&self.dir(name).join("meta.json"))? {
                return Ok(v);
            }
        }
        Err(EngineError::not_found(format!(
            "get {name}: no such volume"
        )))
    }

    pub fn list(&self) -> Result<Vec<Volume>> {
        let mut out = vec![];
        for e in std::fs::read_dir(self.config.data_root.join("volumes"))? {
            let name = e?.file_name().to_string_lossy().into_owned();
            match self.inspect(&name) {
                Ok(v) => out.push(v),
                Err(e) if e.kind() != crate::ErrorKind::NotFound => {
                    tracing::error!(volume = %name, error = %e, "unreadable volume skipped")
                }
                Err(_) => {}
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Removes a volume; the caller checks that no container uses it.
    pub fn remove(&self, name: &str) -> Result<()> {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = self.inspect(name) {
            // A torn `meta.json` (power cut) must not pin the volume forever.
            if e.kind() == crate::ErrorKind::NotFound {
                return Err(e);
            }
            tracing::warn!(volume = %name, error = %e, "removing a volume with unreadable metadata");
        }
        let dir = self.dir(name);
        // Never delete through a mount: the device's files are not the volume's to remove.
        mount::unmount(&self.data_path(name));
        if crate::mount::is_mounted(&self.data_path(name)) {
            return Err(EngineError::internal(format!(
                "remove {name}: cannot unmount the volume's device"
            )));
        }
        let trash = self
            .config
            .data_root
            .join("volumes")
            .join(format!(".rm-{}", crate::id::new_id()));
        std::fs::rename(&dir, &trash)?;
        std::fs::remove_dir_all(&trash)?;
        self.events.publish(
            "volume",
            "destroy",
            name,
            BTreeMap::from([("driver".into(), "local".into())]),
        );
        Ok(())
    }

    /// Mounts a volume's device over its `_data` before a container starts with it (no-op for
    /// plain volumes and when already mounted).
    pub fn acquire(&self, name: &str) -> Result<()> {
        let v = self.inspect(name)?;
        if let Some(m) = mount::MountOpts::of(&v.options) {
            let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            let target = self.data_path(name);
            mount::precheck(&m, &target)?;
            m.mount(&target)?;
        }
        Ok(())
    }

    /// Unmounts a volume's device once no running container uses it (the caller knows).
    pub fn release(&self, name: &str) {
        let Ok(v) = self.inspect(name) else { return };
        if mount::MountOpts::of(&v.options).is_some() {
            let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            mount::unmount(&self.data_path(name));
            tracing::info!(volume = %name, "volume unmounted: no running user left");
        }
    }

    /// Size in bytes of a volume's data.
    pub fn size(&self, name: &str) -> i64 {
        crate::fsutil::dir_size(&self.data_path(name)) as i64
    }

    /// `/system/df` volume entries (`Volume` objects with `UsageData`). Reference counts are
    /// filled in by the caller, which knows the containers.
    pub async fn disk_usage(&self) -> Result<Vec<serde_json::Value>> {
        let mut out = vec![];
        for mut v in self.list()? {
            v.usage_data = Some(berth_docker_api::volume::VolumeUsage {
                size: self.size(&v.name),
                ref_count: 0,
            });
            out.push(serde_json::to_value(v)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn create_inspect_remove() {
        let d = tempfile::tempdir().unwrap();
        let cfg = Arc::new(EngineConfig::new(d.path().to_path_buf()));
        let s = VolumeService::open(cfg, EventBus::new()).await.unwrap();
        let v = s
            .create(VolumeCreateOptions {
                name: "data".into(),
                ..Default::default()
            })
            .unwrap();
        assert!(std::path::Path::new(&v.mountpoint).is_dir());
        assert_eq!(
            s.create(VolumeCreateOptions {
                name: "data".into(),
                ..Default::default()
            })
            .unwrap()
            .created_at,
            v.created_at
        );
        assert_eq!(s.list().unwrap().len(), 1);
        s.remove("data").unwrap();
        assert_eq!(
            s.inspect("data").unwrap_err().kind(),
            crate::ErrorKind::NotFound
        );
        assert!(s
            .create(VolumeCreateOptions {
                name: "/bad".into(),
                ..Default::default()
            })
            .is_err());
    }

    #[tokio::test]
    async fn crash_leftovers_go_and_torn_volumes_can_be_removed() {
        let d = tempfile::tempdir().unwrap();
        let cfg = Arc::new(EngineConfig::new(d.path().to_path_buf()));
        let s = VolumeService::open(cfg.clone(), EventBus::new())
            .await
            .unwrap();
        for n in ["torn", "fine"] {
            s.create(VolumeCreateOptions {
                name: n.into(),
                ..Default::default()
            })
            .unwrap();
        }
        let vols = d.path().join("volumes");
        std::fs::create_dir_all(vols.join(".rm-x/_data")).unwrap();
        std::fs::write(vols.join("fine/.tmp-meta.json-1-0"), b"{").unwrap();
        std::fs::write(vols.join("torn/meta.json"), b"{\"Name\": \"to").unwrap();
        let s = VolumeService::open(cfg, EventBus::new()).await.unwrap();
        assert!(!vols.join(".rm-x").exists());
        assert!(!vols.join("fine/.tmp-meta.json-1-0").exists());
        let names: Vec<_> = s.list().unwrap().into_iter().map(|v| v.name).collect();
        assert_eq!(names, ["fine"]);
        s.remove("torn").unwrap();
        assert!(!vols.join("torn").exists());
        assert_eq!(
            s.remove("torn").unwrap_err().kind(),
            crate::ErrorKind::NotFound
        );
    }
}
