//! Engine configuration: dockerd-like flags plus the daemon.json keys that apply to Berth.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// An OCI runtime named in `runtimes` (daemon.json shape).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RuntimeConfig {
    pub path: String,
    #[serde(default, rename = "runtimeArgs", skip_serializing_if = "Vec::is_empty")]
    pub runtime_args: Vec<String>,
}

/// The daemon.json keys Berth reads. Unknown keys are ignored, like dockerd ignores keys of
/// features it lacks.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub struct DaemonJson {
    #[serde(default)]
    pub registry_mirrors: Vec<String>,
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    #[serde(default)]
    pub default_runtime: Option<String>,
    #[serde(default)]
    pub runtimes: BTreeMap<String, RuntimeConfig>,
    #[serde(default)]
    pub log_level: Option<String>,
    #[serde(default)]
    pub log_driver: Option<String>,
    #[serde(default)]
    pub log_opts: BTreeMap<String, String>,
    #[serde(default)]
    pub bridge: Option<String>,
    #[serde(default)]
    pub bip: Option<String>,
    #[serde(default)]
    pub iptables: Option<bool>,
    /// dockerd's `host-gateway-ip`: the address `--add-host name:host-gateway` maps to.
    #[serde(default)]
    pub host_gateway_ip: Option<String>,
    /// Berth's: names every container's `/etc/hosts` maps to the host-gateway address
    /// (in the VM `host.docker.internal` and `gateway.docker.internal`, as Docker Desktop).
    #[serde(default)]
    pub host_aliases: Vec<String>,
}

/// Everything the engine needs to run, resolved from flags and the config file.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Persistent state: images, containers, volumes, logs.
    pub data_root: PathBuf,
    /// Runtime state that does not outlive a reboot: shim sockets, runc state, netns mounts.
    pub exec_root: PathBuf,
    pub registry_mirrors: Vec<String>,
    pub insecure_registries: Vec<String>,
    pub default_runtime: String,
    pub runtimes: BTreeMap<String, RuntimeConfig>,
    pub log_driver: String,
    pub log_opts: BTreeMap<String, String>,
    /// Name of the default bridge (dockerd: docker0).
    pub bridge_name: String,
    /// Address and prefix of the default bridge, e.g. `172.30.0.1/16`.
    pub bridge_cidr: String,
    /// Whether to program NAT rules for outbound traffic.
    pub iptables: bool,
    /// Path of the berth-agent binary, re-executed as the per-container shim.
    pub self_exe: PathBuf,
    /// What `host-gateway` stands for; unset: the gateway of the container's first network
    /// (dockerd: the default bridge's address).
    pub host_gateway_ip: Option<String>,
    /// Names mapped to the host-gateway address in every container's `/etc/hosts`.
    pub host_aliases: Vec<String>,
    /// Longest wait for the next bytes from a registry before the read counts as stalled
    /// (and a layer download is retried).
    pub registry_read_timeout: std::time::Duration,
    /// Where a Windows host's drives are shared in the VM, a folder per drive letter
    /// ([`berth_agent_proto::host_path::WINDOWS_DRIVES`]): a bind source `C:\src` is found there.
    pub windows_drives: PathBuf,
}

impl EngineConfig {
    /// Defaults for a data root; exec root under it unless set.
    pub fn new(data_root: PathBuf) -> Self {
        let exec_root = data_root.join("run");
        let mut runtimes = BTreeMap::new();
        runtimes.insert(
            "runc".to_string(),
            RuntimeConfig {
                path: "runc".into(),
                runtime_args: vec![],
            },
        );
        Self {
            data_root,
            exec_root,
            registry_mirrors: vec![],
            insecure_registries: vec![],
            default_runtime: "runc".into(),
            runtimes,
            log_driver: "json-file".into(),
            log_opts: BTreeMap::new(),
            bridge_name: "berth0".into(),
            bridge_cidr: "172.30.0.1/16".into(),
            iptables: true,
            self_exe: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("berth-agent")),
            host_gateway_ip: None,
            host_aliases: vec![],
            registry_read_timeout: std::time::Duration::from_secs(120),
            windows_drives: PathBuf::from(berth_agent_proto::host_path::WINDOWS_DRIVES),
        }
    }

    /// Applies daemon.json keys over the defaults.
    pub fn apply(&mut self, file: DaemonJson) {
        self.registry_mirrors.extend(file.registry_mirrors);
        self.insecure_registries.extend(file.insecure_registries);
        self.runtimes.extend(file.runtimes);
        if let Some(r) = file.default_runtime {
            self.default_runtime = r;
        }
        if let Some(d) = file.log_driver {
            self.log_driver = d;
        }
        self.log_opts.extend(file.log_opts);
        if let Some(b) = file.bridge {
            self.bridge_name = b;
        }
        if let Some(b) = file.bip {
            self.bridge_cidr = b;
        }
        if let Some(i) = file.iptables {
            self.iptables = i;
        }
        if let Some(ip) = file.host_gateway_ip {
            self.host_gateway_ip = Some(ip);
        }
        self.host_aliases.extend(file.host_aliases);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_json_keys_apply() {
        let f: DaemonJson = serde_json::from_str(
            r#"{"registry-mirrors":["http://127.0.0.1:5000"],"insecure-registries":["r:1"],
               "default-runtime":"crun","runtimes":{"crun":{"path":"/usr/bin/crun"}},
               "log-opts":{"max-size":"10m"},"unknown-key":1}"#,
        )
        .unwrap();
        let mut c = EngineConfig::new("/tmp/x".into());
        c.apply(f);
        assert_eq!(c.registry_mirrors, ["http://127.0.0.1:5000"]);
        assert_eq!(c.default_runtime, "crun");
        assert_eq!(c.runtimes["crun"].path, "/usr/bin/crun");
        assert_eq!(c.log_opts["max-size"], "10m");
    }
}
