//! Windows back-end: QEMU for Windows with the Windows Hypervisor Platform (`-accel whpx`,
//! falling back to TCG), booting the same kernel, initrd, root image and qcow2 data disk as on
//! Linux. Windows has no vhost-user (no unix sockets shared with QEMU, no memfd), so the guest
//! ports are carried by virtio-serial: each of the agent's ports (Docker API, control,
//! forwarding) is a `virtserialport` named `berth.<port>` whose host end is a named pipe that
//! QEMU serves (`-chardev pipe`); [`PortPipes`] is the [`Connector`] that opens them, and the
//! yamux multiplexing above is unchanged (it already runs every service over one long-lived
//! byte stream). The monitor is a named pipe too. Why QEMU and not WSL2: docs/design/host.md.
//!
//! The argument building and the names are plain code, unit-tested on every platform; only
//! [`Whpx`] (spawning `qemu-system-x86_64.exe`) is Windows-only.

use std::ffi::OsString;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use berth_agent_proto::{CONTROL_PORT, DOCKER_API_PORT, FORWARD_PORT};
use berth_vsock::{BoxIo, Connector};

use super::VmSpec;
use crate::endpoint::Endpoint;
use crate::StateDir;

/// The guest ports carried as virtio-serial ports.
pub const PORTS: [u32; 3] = [DOCKER_API_PORT, CONTROL_PORT, FORWARD_PORT];

/// Which accelerators QEMU tries, in order, for the config's `accel`: `auto` tries WHPX and
/// falls back to TCG (QEMU picks the first that initialises), `whpx`/`kvm` insist on hardware,
/// `tcg` never uses it.
pub fn accelerators(accel: &str) -> &'static [&'static str] {
    match accel {
        "tcg" => &["tcg"],
        "whpx" | "kvm" => &["whpx,kernel-irqchip=off"],
        _ => &["whpx,kernel-irqchip=off", "tcg"],
    }
}

/// The named pipes of one state dir: a pipe per guest port and the monitor's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipes {
    /// `(guest port, \\.\pipe\name)`.
    pub ports: Vec<(u32, String)>,
    pub monitor: String,
}

impl Pipes {
    pub fn new(state: &StateDir) -> Self {
        Self {
            ports: PORTS
                .iter()
                .map(|p| (*p, state.pipe(&format!("port{p}"))))
                .collect(),
            monitor: state.pipe("qemu_monitor"),
        }
    }
}

/// QEMU's `-chardev pipe,path=` takes the name without the `\\.\pipe\` prefix.
fn chardev_path(pipe: &str) -> &str {
    pipe.strip_prefix(r"\\.\pipe\").unwrap_or(pipe)
}

/// QEMU's command line for `spec` on Windows.
pub fn args(spec: &VmSpec, accel: &str, pipes: &Pipes) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::new();
    let mut push = |s: String| a.push(s.into());
    for acc in accelerators(accel) {
        push("-accel".into());
        push((*acc).into());
    }
    push("-machine".into());
    push("q35".into());
    a.extend(super::qemu::guest_args(spec));
    let mut push = |s: String| a.push(s.into());
    push("-device".into());
    push("virtio-serial-pci,id=vser".into());
    for (port, pipe) in &pipes.ports {
        push("-chardev".into());
        push(format!("pipe,id=port{port},path={}", chardev_path(pipe)));
        push("-device".into());
        push(format!(
            "virtserialport,bus=vser.0,chardev=port{port},name=berth.{port}"
        ));
    }
    push("-chardev".into());
    push(format!("pipe,id=mon,path={}", chardev_path(&pipes.monitor)));
    push("-mon".into());
    push("chardev=mon,mode=readline".into());
    a
}

/// Reaches guest port `P` through the named pipe QEMU serves for `berth.<P>`. One client at a
/// time per pipe, which is what the multiplexer above needs (one long-lived stream per port).
#[derive(Debug, Clone)]
pub struct PortPipes {
    pipes: Pipes,
}

impl PortPipes {
    pub fn new(state: &StateDir) -> Self {
        Self {
            pipes: Pipes::new(state),
        }
    }

    /// The pipe of guest port `port`.
    pub fn endpoint(&self, port: u32) -> Option<Endpoint> {
        self.pipes
            .ports
            .iter()
            .find(|(p, _)| *p == port)
            .map(|(_, name)| Endpoint::Pipe(name.clone()))
    }
}

impl Connector for PortPipes {
    fn connect(
        &self,
        port: u32,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<BoxIo>> + Send + '_>> {
        Box::pin(async move {
            let e = self.endpoint(port).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    format!("guest port {port} is not carried over virtio-serial"),
                )
            })?;
            crate::endpoint::connect(&e).await
        })
    }
}

/// Where `qemu-system-x86_64.exe` is: `<tools_dir>\qemu\` when it is there, else `PATH`.
pub fn qemu_program(tools_dir: &std::path::Path) -> PathBuf {
    let bundled = tools_dir.join("qemu").join("qemu-system-x86_64.exe");
    if bundled.exists() {
        bundled
    } else {
        PathBuf::from("qemu-system-x86_64.exe")
    }
}

/// The Windows back-end.
#[cfg(windows)]
#[derive(Debug)]
pub struct Whpx {
    program: PathBuf,
    accel: String,
    pipes: Pipes,
}

#[cfg(windows)]
impl Whpx {
    pub fn new(state: &StateDir, config: &crate::Config) -> Self {
        Self {
            program: qemu_program(&config.tools_dir),
            accel: config.accel.clone(),
            pipes: Pipes::new(state),
        }
    }
}

#[cfg(windows)]
impl super::Hypervisor for Whpx {
    fn name(&self) -> &'static str {
        "qemu-whpx"
    }

    fn start(&self, spec: &VmSpec) -> crate::error::Result<Box<dyn super::VmHandle>> {
        let monitor = Endpoint::Pipe(self.pipes.monitor.clone());
        super::qemu::launch(
            &self.program,
            args(spec, &self.accel, &self.pipes),
            spec,
            monitor,
        )
    }

    fn shares(&self) -> super::Shares {
        super::Shares::NineP
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> VmSpec {
        VmSpec {
            arch: crate::vm::GuestArch::X86_64,
            cpus: 2,
            memory_mib: 2048,
            kernel: r"C:\berth\image\vmlinux".into(),
            initrd: r"C:\berth\image\initrd.img".into(),
            rootfs: r"C:\berth\image\rootfs.img".into(),
            cmdline: "console=ttyS0 quiet".into(),
            data_disk: r"C:\Users\u\.berth\disk\data.qcow2".into(),
            console_log: r"C:\Users\u\.berth\logs\console.log".into(),
            vhost_vsock_socket: PathBuf::new(),
            shares: vec![],
            monitor_socket: PathBuf::new(),
            pid_file: r"C:\Users\u\.berth\run\qemu.pid".into(),
            log_file: r"C:\Users\u\.berth\logs\qemu.log".into(),
            kvm: false,
            daemon_json: None,
            free_page_reporting: true,
            disk_discard: true,
        }
    }

    fn joined(accel: &str) -> String {
        let state = StateDir::new(r"C:\Users\u\.berth");
        args(&spec(), accel, &Pipes::new(&state))
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn auto_tries_whpx_then_tcg_and_tcg_means_tcg() {
        let j = joined("auto");
        let w = j.find("-accel whpx,kernel-irqchip=off").unwrap();
        let t = j.find("-accel tcg").unwrap();
        assert!(w < t);
        assert!(!joined("tcg").contains("whpx"));
        assert!(!joined("whpx").contains("tcg"));
    }

    #[test]
    fn ports_are_virtio_serial_over_pipes_without_vhost_user() {
        let j = joined("auto");
        let state = StateDir::new(r"C:\Users\u\.berth");
        for port in PORTS {
            let pipe = state.pipe(&format!("port{port}"));
            let name = pipe.strip_prefix(r"\\.\pipe\").unwrap();
            assert!(
                j.contains(&format!("-chardev pipe,id=port{port},path={name} ")),
                "{j}"
            );
            assert!(j.contains(&format!(
                "virtserialport,bus=vser.0,chardev=port{port},name=berth.{port}"
            )));
        }
        assert!(j.contains("-mon chardev=mon,mode=readline"));
        // Nothing that needs Linux: no memfd, no vhost-user, no unix sockets.
        for linux_only in ["memfd", "vhost-user", "unix:", "socket,"] {
            assert!(!j.contains(linux_only), "{linux_only} in {j}");
        }
        assert!(j.contains(r"file=C:\Users\u\.berth\disk\data.qcow2,format=qcow2"));
        assert!(j.contains("-m 2048M -smp 2"));
    }

    #[tokio::test]
    async fn the_connector_knows_only_the_carried_ports() {
        let c = PortPipes::new(&StateDir::new("/tmp/x"));
        assert!(c.endpoint(DOCKER_API_PORT).is_some());
        let err = c.connect(9999).await.err().unwrap();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    }
}
