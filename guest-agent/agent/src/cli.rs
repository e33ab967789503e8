//! Command-line flags, dockerd-style, and the config file they point at.

use std::path::PathBuf;

use anyhow::Context;
use berth_engine::config::DaemonJson;
use berth_engine::EngineConfig;
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "berth-agent",
    version,
    about = "Berth's Docker-API container engine"
)]
pub(crate) struct Args {
    /// Where to listen: unix:///path/to.sock (repeatable)
    #[arg(
        short = 'H',
        long = "host",
        default_value = "unix:///var/run/berth/engine.sock"
    )]
    pub(crate) hosts: Vec<String>,
    /// Root of persistent state (images, containers, volumes, logs)
    #[arg(long, default_value = "/var/lib/berth")]
    pub(crate) data_root: PathBuf,
    /// Root of runtime state (shim sockets, runc state); defaults to <data-root>/run
    #[arg(long)]
    pub(crate) exec_root: Option<PathBuf>,
    /// daemon.json-style config file
    #[arg(long)]
    pub(crate) config_file: Option<PathBuf>,
    /// Log level: error, warn, info, debug, trace
    #[arg(short = 'l', long)]
    pub(crate) log_level: Option<String>,
    /// Registry mirror for docker.io (repeatable)
    #[arg(long = "registry-mirror")]
    pub(crate) registry_mirrors: Vec<String>,
    /// Registry reached over plain HTTP (repeatable); 127.0.0.0/8 always is
    #[arg(long = "insecure-registry")]
    pub(crate) insecure_registries: Vec<String>,
    /// Name of the default bridge
    #[arg(long = "bridge")]
    pub(crate) bridge: Option<String>,
    /// Address/prefix of the default bridge, e.g. 172.30.0.1/16
    #[arg(long)]
    pub(crate) bip: Option<String>,
    /// Program NAT rules for outbound traffic
    #[arg(long)]
    pub(crate) iptables: Option<bool>,
    /// Control-protocol endpoint (unix:///path or vsock://:PORT); defaults to vsock://:2376
    /// when a vsock API host is given
    #[arg(long)]
    pub(crate) control_listen: Option<String>,
    /// Port-forward tunnel endpoint; defaults to vsock://:2377 when a vsock API host is given
    #[arg(long)]
    pub(crate) forward_listen: Option<String>,
    /// Write the daemon's PID here
    #[arg(long)]
    pub(crate) pidfile: Option<PathBuf>,
    /// IP address `--add-host name:host-gateway` maps to (default: the network's gateway)
    #[arg(long)]
    pub(crate) host_gateway_ip: Option<std::net::IpAddr>,
    /// A name every container's /etc/hosts maps to the host-gateway address
    /// (e.g. host.docker.internal); repeatable
    #[arg(long = "host-alias")]
    pub(crate) host_aliases: Vec<String>,
    /// Seconds without bytes from a registry before a download counts as stalled and is
    /// retried (Berth's own flag; default 120)
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) registry_read_timeout: Option<u64>,
    /// Where a Windows host's drives are shared (a folder per drive letter): bind sources typed
    /// as `C:\\src` are found below it (Berth's own flag; default /mnt/host)
    #[arg(long)]
    pub(crate) windows_drives: Option<PathBuf>,
}

impl Args {
    /// The control and forward endpoints: the flags, else the vsock defaults in a VM.
    pub(crate) fn control_endpoints(
        &self,
    ) -> anyhow::Result<(
        Option<crate::listen::Endpoint>,
        Option<crate::listen::Endpoint>,
    )> {
        use crate::listen::Endpoint;
        let vm = self.hosts.iter().any(|h| h.starts_with("vsock://"));
        let pick = |flag: &Option<String>, port: u32| -> anyhow::Result<Option<Endpoint>> {
            match flag {
                Some(s) => Ok(Some(Endpoint::parse(s)?)),
                None if vm => Ok(Some(Endpoint::Vsock(port))),
                None => Ok(None),
            }
        };
        Ok((
            pick(&self.control_listen, berth_agent_proto::CONTROL_PORT)?,
            pick(&self.forward_listen, berth_agent_proto::FORWARD_PORT)?,
        ))
    }

    /// Builds the engine config: defaults, then the config file, then flags. Also returns the
    /// config file's log level.
    pub(crate) fn engine_config(&self) -> anyhow::Result<(EngineConfig, Option<String>)> {
        // Refuse bad listen addresses before any state is opened.
        for host in self.hosts.iter().filter(|h| !h.starts_with("mux+unix://")) {
            crate::listen::Endpoint::parse(host)?;
        }
        let mut c = EngineConfig::new(self.data_root.clone());
        if let Some(e) = &self.exec_root {
            c.exec_root = e.clone();
        }
        let mut level = None;
        if let Some(path) = &self.config_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("failed to read {}", path.display()))?;
            let file: DaemonJson = serde_json::from_str(&text)
                .with_context(|| format!("invalid config file {}", path.display()))?;
            level = file.log_level.clone();
            c.apply(file);
        }
        c.registry_mirrors
            .extend(self.registry_mirrors.iter().cloned());
        c.insecure_registries
            .extend(self.insecure_registries.iter().cloned());
        if let Some(b) = &self.bridge {
            c.bridge_name = b.clone();
        }
        if let Some(b) = &self.bip {
            c.bridge_cidr = b.clone();
        }
        if let Some(i) = self.iptables {
            c.iptables = i;
        }
        if let Some(ip) = self.host_gateway_ip {
            c.host_gateway_ip = Some(ip.to_string());
        }
        c.host_aliases.extend(self.host_aliases.iter().cloned());
        if let Some(secs) = self.registry_read_timeout {
            c.registry_read_timeout = std::time::Duration::from_secs(secs);
        }
        if let Some(d) = &self.windows_drives {
            c.windows_drives = d.clone();
        }
        if let Some(ip) = &c.host_gateway_ip {
            ip.parse::<std::net::IpAddr>()
                .with_context(|| format!("invalid host-gateway-ip {ip}"))?;
        }
        Ok((c, level))
    }
}
