//! QEMU back-end: q35 (robust under TCG; microvm needs `tsc_early_khz`, notes/vm.md §7) for an
//! amd64 guest, `virt` with `-cpu max` under TCG for an arm64 one ([`super::GuestArch`]; both
//! boot their kernel directly, without firmware, and take the same virtio-pci devices),
//! memfd shared memory for the vhost-user devices, vhost-user-vsock, vhost-user-fs per share,
//! the data disk and the read-only root as virtio-blk found by serial, user networking, serial
//! console to a file, a monitor socket for `system_powerdown` and auto-pause (`vm::monitor`).
//! With `"guest_ports": "virtio-serial"` the guest's ports are virtio-serial ports on unix
//! sockets instead of vsock ([`super::serial`]): Windows' transport, run here to test it.
//!
//! Laptop citizenship: the data disk passes discard through (`discard=unmap`, and zeroed
//! blocks become holes with `detect-zeroes=unmap`), so the guest's fstrim shrinks the qcow2;
//! virtio-balloon with free-page reporting hands memory the guest frees back to the host.

use std::ffi::OsString;
use std::time::Duration;

use futures::future::BoxFuture;

use super::serial::HostEnds;
use super::{Hypervisor, Shares, VmHandle, VmSpec};
use crate::config::GuestPorts;
use crate::endpoint::Endpoint;
use crate::error::{HostError, Result};
use crate::process::Child;
use crate::{Config, StateDir};

#[derive(Debug, Default)]
pub struct Qemu {
    /// The host ends of the guest's virtio-serial ports, when they replace vsock.
    serial: Option<HostEnds>,
}

impl Qemu {
    /// The back-end for `config`: vsock, or virtio-serial ports (one per 9P share too) whose
    /// host ends are unix sockets in the state dir's `run/`.
    pub fn new(state: &StateDir, config: &Config) -> Self {
        Self {
            serial: serial_host_ends(state, config),
        }
    }

    /// The guest's ports as this back-end carries them, when not over vsock.
    pub fn serial_ports(&self) -> Option<&HostEnds> {
        self.serial.as_ref()
    }
}

/// The host ends of the guest's virtio-serial ports when `config` asks for them instead of
/// vsock (one port per 9P share besides the services): what QEMU listens on and what the
/// supervisor's connector dials.
pub fn serial_host_ends(state: &StateDir, config: &Config) -> Option<HostEnds> {
    (config.guest_ports == GuestPorts::VirtioSerial).then(|| {
        let nine_p = crate::share_mount::effective(config, Shares::Virtiofsd) == Shares::NineP;
        HostEnds::sockets(state, if nine_p { config.shares.len() } else { 0 })
    })
}

/// fw_cfg item carrying the engine's daemon.json (the guest agent reads the same name).
pub const FW_CFG_DAEMON_JSON: &str = "opt/berth/daemon.json";

/// QEMU's command line for `spec`, the guest's ports over vsock or, given `serial`, over
/// virtio-serial.
pub fn args(spec: &VmSpec, serial: Option<&HostEnds>) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::new();
    let mut push = |s: &str| a.push(s.into());
    let accel = if spec.kvm { "kvm" } else { "tcg" };
    let mem = spec.memory_mib;
    push("-machine");
    push(&format!(
        "{},accel={accel},memory-backend=mem",
        spec.arch.machine()
    ));
    if let Some(cpu) = spec.arch.cpu(spec.kvm) {
        push("-cpu");
        push(cpu);
    }
    push("-object");
    push(&format!("memory-backend-memfd,id=mem,size={mem}M,share=on"));
    a.extend(guest_args(spec, serial.is_some()));
    match serial {
        Some(ends) => a.extend(super::serial::args(ends)),
        None => {
            a.push("-chardev".into());
            a.push(format!("socket,id=vsk,path={}", spec.vhost_vsock_socket.display()).into());
            a.push("-device".into());
            a.push("vhost-user-vsock-pci,chardev=vsk".into());
        }
    }
    let mut push = |s: &str| a.push(s.into());
    for (i, s) in spec.shares.iter().enumerate() {
        push("-chardev");
        push(&format!("socket,id=vfs{i},path={}", s.socket.display()));
        push("-device");
        push(&format!("vhost-user-fs-pci,chardev=vfs{i},tag={}", s.tag));
    }
    push("-monitor");
    push(&format!(
        "unix:{},server=on,wait=off",
        spec.monitor_socket.display()
    ));
    a
}

/// The part of QEMU's command line every platform shares: memory size, CPUs, our kernel,
/// initrd and console, the data disk (discard passed through when asked) before the read-only
/// root, user networking, entropy, the balloon with free-page reporting, and the engine's
/// daemon.json as a fw_cfg item. With `serial_ports` the kernel is told the agent's ports are
/// virtio-serial ([`super::serial::KERNEL_ARG`]).
pub(crate) fn guest_args(spec: &VmSpec, serial_ports: bool) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::new();
    let mut push = |s: &str| a.push(s.into());
    for s in [
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
    ] {
        push(s);
    }
    push("-m");
    push(&format!("{}M", spec.memory_mib));
    push("-smp");
    push(&spec.cpus.to_string());
    push("-serial");
    push(&format!("file:{}", spec.console_log.display()));
    push("-kernel");
    push(&spec.kernel.display().to_string());
    push("-initrd");
    push(&spec.initrd.display().to_string());
    push("-append");
    if serial_ports {
        push(&format!("{} {}", spec.cmdline, super::serial::KERNEL_ARG));
    } else {
        push(&spec.cmdline);
    }
    push("-drive");
    let discard = if spec.disk_discard {
        ",discard=unmap,detect-zeroes=unmap"
    } else {
        ""
    };
    push(&format!(
        "file={},format=qcow2,if=none,id=data,cache=unsafe{discard}",
        spec.data_disk.display()
    ));
    push("-device");
    push("virtio-blk-pci,drive=data,serial=berth-data");
    push("-drive");
    push(&format!(
        "file={},format=raw,if=none,id=root,readonly=on",
        spec.rootfs.display()
    ));
    push("-device");
    push("virtio-blk-pci,drive=root,serial=berth-root");
    push("-netdev");
    push("user,id=net0");
    push("-device");
    push("virtio-net-pci,netdev=net0");
    push("-device");
    push("virtio-rng-pci");
    if spec.free_page_reporting {
        push("-device");
        push("virtio-balloon-pci,id=balloon0,free-page-reporting=on");
    }
    if let Some(f) = &spec.daemon_json {
        // fw_cfg: the guest reads it from /sys/firmware/qemu_fw_cfg before the engine starts.
        push("-fw_cfg");
        push(&format!("name={FW_CFG_DAEMON_JSON},file={}", f.display()));
    }
    a
}

impl Hypervisor for Qemu {
    fn name(&self) -> &'static str {
        "qemu"
    }

    fn start(&self, spec: &VmSpec) -> Result<Box<dyn VmHandle>> {
        let _ = std::fs::remove_file(&spec.monitor_socket);
        let monitor = Endpoint::Unix(spec.monitor_socket.clone());
        let args = args(spec, self.serial.as_ref());
        launch(spec.arch.qemu_program().as_ref(), args, spec, monitor)
    }
}

/// Starts QEMU (`program`) with `args` after checking the image files; `monitor` is where its
/// HMP monitor listens (for the power button). Shared by the QEMU back-ends of every platform.
pub(crate) fn launch(
    program: &std::path::Path,
    args: Vec<OsString>,
    spec: &VmSpec,
    monitor: Endpoint,
) -> Result<Box<dyn VmHandle>> {
    for f in [&spec.kernel, &spec.initrd, &spec.rootfs] {
        if !f.exists() {
            return Err(HostError::MissingImage(f.clone()));
        }
    }
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args);
    let child = Child::spawn("qemu", cmd, &spec.log_file, &spec.pid_file).map_err(|e| match e {
        HostError::Spawn { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            HostError::MissingTool(program.display().to_string())
        }
        e => e,
    })?;
    tracing::info!(
        pid = child.pid(),
        accel = if spec.kvm { "hardware" } else { "tcg" },
        "VM started"
    );
    Ok(Box::new(QemuVm { child, monitor }))
}

struct QemuVm {
    child: Child,
    monitor: Endpoint,
}

impl VmHandle for QemuVm {
    fn pid(&self) -> Option<u32> {
        self.child.pid()
    }

    fn wait(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let _ = self.child.wait().await;
        })
    }

    fn power_button(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            super::monitor::command(&self.monitor, "system_powerdown").await?;
            Ok(())
        })
    }

    fn pauser(&self) -> Option<std::sync::Arc<dyn super::Pauser>> {
        pauser(self.child.pid(), &self.monitor)
    }

    fn kill(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move { self.child.stop(Duration::from_secs(2)).await })
    }
}

/// How a QEMU VM is paused. On unix QEMU's process is stopped (`SIGSTOP`/`SIGCONT`): the
/// monitor's `stop`/`cont` also stops and restarts the vhost-user devices' rings, and with
/// vhost-device-vsock that wedged the vsock device after a few cycles (measured: the third
/// resume left every guest port silent). A stopped process leaves device state alone; the
/// guest's clock jumps on resume and the supervisor sets it again. On Windows (no vhost-user)
/// the monitor pauses it.
#[cfg(unix)]
fn pauser(pid: Option<u32>, _monitor: &Endpoint) -> Option<std::sync::Arc<dyn super::Pauser>> {
    Some(std::sync::Arc::new(StoppedProcess {
        pid: i32::try_from(pid?).ok()?,
    }))
}

#[cfg(windows)]
fn pauser(_pid: Option<u32>, monitor: &Endpoint) -> Option<std::sync::Arc<dyn super::Pauser>> {
    Some(std::sync::Arc::new(super::monitor::MonitorPauser {
        at: monitor.clone(),
    }))
}

/// Pauses a process by stopping it.
#[cfg(unix)]
#[derive(Debug)]
struct StoppedProcess {
    pid: i32,
}

#[cfg(unix)]
impl StoppedProcess {
    fn signal(&self, sig: nix::sys::signal::Signal) -> Result<()> {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid), sig).map_err(|e| {
            HostError::Command {
                what: format!("sending {sig} to QEMU (pid {})", self.pid),
                detail: e.to_string(),
            }
        })
    }
}

#[cfg(unix)]
impl super::Pauser for StoppedProcess {
    fn pause(&self) -> futures::future::BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.signal(nix::sys::signal::Signal::SIGSTOP)?;
            // The signal is delivered asynchronously: wait (bounded) until every thread stops.
            #[cfg(target_os = "linux")]
            for _ in 0..400 {
                if crate::process::is_stopped(self.pid) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok(())
        })
    }

    fn resume(&self) -> futures::future::BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.signal(nix::sys::signal::Signal::SIGCONT) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::ShareDevice;

    fn spec(arch: crate::vm::GuestArch) -> VmSpec {
        VmSpec {
            arch,
            cpus: 2,
            memory_mib: 1024,
            kernel: "/i/vmlinux".into(),
            initrd: "/i/initrd.img".into(),
            rootfs: "/i/rootfs.img".into(),
            cmdline: "console=ttyS0".into(),
            data_disk: "/s/disk/data.qcow2".into(),
            console_log: "/s/logs/console.log".into(),
            vhost_vsock_socket: "/s/run/vhost-vsock.sock".into(),
            shares: vec![ShareDevice {
                socket: "/s/run/virtiofs-0.sock".into(),
                dir: "/home/u".into(),
                tag: "share0".into(),
            }],
            monitor_socket: "/s/run/qemu-monitor.sock".into(),
            pid_file: "/s/run/qemu.pid".into(),
            log_file: "/s/logs/qemu.log".into(),
            kvm: false,
            daemon_json: Some("/s/run/daemon.json".into()),
            free_page_reporting: true,
            disk_discard: true,
        }
    }

    fn joined_args(spec: &VmSpec) -> String {
        crate::vm::joined_args(args(spec, None))
    }

    #[test]
    fn args_carry_shared_memory_vsock_disks_and_shares() {
        let joined = joined_args(&spec(crate::vm::GuestArch::X86_64));
        assert!(
            !joined.contains("-cpu"),
            "q35 under TCG keeps QEMU's CPU: {joined}"
        );
        assert!(joined.contains("-machine q35,accel=tcg,memory-backend=mem"));
        assert!(joined.contains("memory-backend-memfd,id=mem,size=1024M,share=on"));
        assert!(joined.contains("vhost-user-vsock-pci,chardev=vsk"));
        assert!(joined.contains("virtio-blk-pci,drive=data,serial=berth-data"));
        assert!(joined.contains("cache=unsafe,discard=unmap,detect-zeroes=unmap"));
        assert!(joined.contains("virtio-balloon-pci,id=balloon0,free-page-reporting=on"));
        assert!(joined.contains("vhost-user-fs-pci,chardev=vfs0,tag=share0"));
        assert!(joined.contains("-serial file:/s/logs/console.log"));
        assert!(joined.contains("-fw_cfg name=opt/berth/daemon.json,file=/s/run/daemon.json"));
        // The data disk comes before the root (fallback order without serials).
        let data = joined.find("id=data").unwrap();
        let root = joined.find("id=root").unwrap();
        assert!(data < root);
    }

    #[test]
    fn an_arm64_guest_boots_on_virt_with_the_same_devices() {
        let mut arm = spec(crate::vm::GuestArch::Aarch64);
        arm.kernel = "/i/Image".into();
        let joined = joined_args(&arm);
        assert!(joined.contains("-machine virt,gic-version=max,accel=tcg,memory-backend=mem"));
        assert!(joined.contains("-cpu max,pauth-impdef=on"), "{joined}");
        assert!(joined.contains("-kernel /i/Image"), "{joined}");
        for dev in [
            "vhost-user-vsock-pci,chardev=vsk",
            "virtio-blk-pci,drive=root,serial=berth-root",
            "virtio-net-pci,netdev=net0",
            "vhost-user-fs-pci,chardev=vfs0,tag=share0",
        ] {
            assert!(joined.contains(dev), "{dev} missing: {joined}");
        }
        arm.kvm = true;
        let joined = joined_args(&arm);
        assert!(joined.contains("virt,gic-version=max,accel=kvm") && joined.contains("-cpu host"));
    }

    // Unix-socket host ends are the Linux mode; the paths are unix paths.
    #[cfg(unix)]
    #[test]
    fn virtio_serial_mode_has_the_windows_ports_on_unix_sockets_and_no_vsock() {
        let state = StateDir::new("/s");
        let mut config = Config {
            guest_ports: GuestPorts::VirtioSerial,
            shares: vec!["/home/u".into(), "/srv".into()],
            share_transport: Some(berth_agent_proto::ShareTransport::NineP),
            ..Config::default()
        };
        let qemu = Qemu::new(&state, &config);
        let ends = qemu.serial_ports().unwrap();
        let a: Vec<String> = args(&spec(crate::vm::GuestArch::X86_64), Some(ends))
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect();
        let joined = a.join(" ");
        assert!(!joined.contains("vhost-user-vsock"), "{joined}");
        // The same port arguments as on Windows, built by the same code.
        assert!(joined.contains(&crate::vm::joined_args(super::super::serial::args(ends))));
        assert!(joined.contains("path=/s/run/port2378_1.sock,server=on,wait=off"));
        assert!(joined.contains("name=berth.2378.1"));
        // The agent is told to wait for its ports' names; a vsock VM's is not.
        let append = |a: &[String]| a[a.iter().position(|s| s == "-append").unwrap() + 1].clone();
        assert!(
            append(&a).ends_with(" berth.ports=virtio-serial"),
            "{joined}"
        );
        let vsock: Vec<String> = args(&spec(crate::vm::GuestArch::X86_64), None)
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect();
        assert!(!append(&vsock).contains("berth.ports"));

        // Shares over virtiofs need no ports; vsock is the default.
        config.share_transport = None;
        let ends = Qemu::new(&state, &config).serial.unwrap();
        assert_eq!(ends.ports.len(), super::super::serial::SERVICE_PORTS.len());
        assert!(Qemu::new(&state, &Config::default()).serial.is_none());
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_stopped_process_is_the_pause() {
        use crate::vm::Pauser;
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        let p = StoppedProcess { pid };
        p.pause().await.unwrap();
        assert!(crate::process::is_stopped(pid));
        p.resume().await.unwrap();
        let mut running = false;
        for _ in 0..400 {
            running = !crate::process::is_stopped(pid);
            if running {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(running, "still stopped after SIGCONT");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
