//! `local` driver options (`type`, `device`, `o`): dockerd's validation at create, and the
//! mount of `device` over the volume's `_data` while containers use it.

use std::collections::BTreeMap;
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::mount::is_mounted;
use crate::{EngineError, Result};

/// What `docker volume create -o` accepts for the `local` driver (dockerd's `validOpts`).
const VALID: [&str; 3] = ["type", "o", "device"];
/// Options that need others (dockerd's `mandatoryOpts`), checked in this order.
const MANDATORY: [(&str, &[&str]); 3] = [
    ("device", &["type"]),
    ("o", &["device", "type"]),
    ("type", &["device"]),
];

/// The parsed options of a volume that mounts something (`type`/`device` given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountOpts {
    pub(crate) typ: String,
    pub(crate) device: String,
    flags: MsFlags,
    data: String,
}

impl MountOpts {
    /// `None` for a plain volume (no options).
    pub(crate) fn of(opts: &BTreeMap<String, String>) -> Option<Self> {
        let device = opts.get("device")?;
        let (flags, data) = parse_o(opts.get("o").map(String::as_str).unwrap_or_default());
        Some(Self {
            typ: opts.get("type").cloned().unwrap_or_default(),
            device: device.clone(),
            flags,
            data,
        })
    }

    fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }

    /// dockerd's text for a failed mount (`failed to mount local volume: mount <dev>:<path>,
    /// flags: 0x…, data: …: <errno>`).
    fn error(&self, target: &Path, err: impl std::fmt::Display) -> EngineError {
        let mut m = format!(
            "failed to mount local volume: mount {}:{}, flags: {:#x}",
            self.device,
            target.display(),
            self.flags.bits()
        );
        if !self.data.is_empty() {
            m.push_str(&format!(", data: {}", self.data));
        }
        EngineError::internal(format!("{m}: {err}"))
    }

    /// Mounts over `target` unless something is mounted there already.
    pub(crate) fn mount(&self, target: &Path) -> Result<()> {
        if is_mounted(target) {
            return Ok(());
        }
        let typ = (!self.typ.is_empty() && self.typ != "none").then_some(self.typ.as_str());
        let data = (!self.data.is_empty()).then_some(self.data.as_str());
        mount(Some(self.device.as_str()), target, typ, self.flags, data)
            .map_err(|e| self.error(target, e.desc().to_lowercase()))?;
        // A bind ignores MS_RDONLY and friends on the first call: remount to apply them.
        let extra = self.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC);
        if self.is_bind() && !extra.is_empty() {
            let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | extra;
            if let Err(e) = mount(None::<&str>, target, None::<&str>, flags, None::<&str>) {
                unmount(target);
                return Err(self.error(target, e.desc().to_lowercase()));
            }
        }
        tracing::info!(device = %self.device, target = %target.display(), "volume mounted");
        Ok(())
    }
}

/// Checks `-o` options like dockerd's `local` driver does at create.
pub(crate) fn validate(opts: &BTreeMap<String, String>) -> Result<()> {
    if let Some(k) = opts.keys().find(|k| !VALID.contains(&k.as_str())) {
        return Err(EngineError::invalid(format!("invalid option: {k:?}")));
    }
    for (opt, needs) in MANDATORY {
        if opts.contains_key(opt) {
            if let Some(missing) = needs.iter().find(|n| !opts.contains_key(**n)) {
                return Err(EngineError::invalid(format!(
                    "missing required option: {missing:?}"
                )));
            }
        }
    }
    Ok(())
}

/// Checks what can be checked before the first mount: a bind's device must be a directory.
pub(crate) fn precheck(m: &MountOpts, target: &Path) -> Result<()> {
    if m.is_bind() && !Path::new(&m.device).exists() {
        return Err(m.error(target, "no such file or directory"));
    }
    Ok(())
}

/// Unmounts whatever is mounted at `target` (lazily), and fails if something stays.
pub(crate) fn unmount(target: &Path) {
    for _ in 0..8 {
        if !is_mounted(target) || umount2(target, MntFlags::MNT_DETACH).is_err() {
            break;
        }
    }
}

/// `o=` → mount flags and the data string for the filesystem (Go's `mount.ParseOptions`).
fn parse_o(o: &str) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = vec![];
    for opt in o.split(',').filter(|s| !s.is_empty()) {
        let (set, clear) = match opt {
            "bind" => (MsFlags::MS_BIND, false),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, false),
            "ro" => (MsFlags::MS_RDONLY, false),
            "rw" => (MsFlags::MS_RDONLY, true),
            "nosuid" => (MsFlags::MS_NOSUID, false),
            "suid" => (MsFlags::MS_NOSUID, true),
            "nodev" => (MsFlags::MS_NODEV, false),
            "dev" => (MsFlags::MS_NODEV, true),
            "noexec" => (MsFlags::MS_NOEXEC, false),
            "exec" => (MsFlags::MS_NOEXEC, true),
            "noatime" => (MsFlags::MS_NOATIME, false),
            "atime" => (MsFlags::MS_NOATIME, true),
            "sync" => (MsFlags::MS_SYNCHRONOUS, false),
            "async" => (MsFlags::MS_SYNCHRONOUS, true),
            "defaults" => (MsFlags::empty(), false),
            _ => {
                data.push(opt);
                continue;
            }
        };
        if clear {
            flags.remove(set);
        } else {
            flags.insert(set);
        }
    }
    (flags, data.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn validation_follows_dockerd() {
        assert!(validate(&opts(&[])).is_ok());
        assert!(validate(&opts(&[("type", "none"), ("device", "/x"), ("o", "bind")])).is_ok());
        assert_eq!(
            validate(&opts(&[("foo", "bar")])).unwrap_err().to_string(),
            "invalid option: \"foo\""
        );
        assert_eq!(
            validate(&opts(&[("device", "/x")]))
                .unwrap_err()
                .to_string(),
            "missing required option: \"type\""
        );
        assert_eq!(
            validate(&opts(&[("o", "bind"), ("type", "none")]))
                .unwrap_err()
                .to_string(),
            "missing required option: \"device\""
        );
    }

    #[test]
    fn o_splits_into_flags_and_data() {
        let (f, d) = parse_o("size=1m,ro,uid=1000");
        assert_eq!(f, MsFlags::MS_RDONLY);
        assert_eq!(d, "size=1m,uid=1000");
        let m = MountOpts::of(&opts(&[("type", "none"), ("device", "/x"), ("o", "bind")])).unwrap();
        assert!(m.is_bind());
        assert!(MountOpts::of(&opts(&[])).is_none());
    }
}
