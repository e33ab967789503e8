//! Windows back-end: QEMU for Windows with the Windows Hypervisor Platform (`-accel whpx`,
//! falling back to TCG), booting the same kernel, initrd, root image and qcow2 data disk as on
//! Linux. Windows has no vhost-user (no unix sockets shared with QEMU, no memfd), so the guest
//! ports are carried by virtio-serial ([`super::serial`]): each of the agent's ports (Docker
//! API, control, forwarding) and each shared folder is a `virtserialport` whose host end is a
//! named pipe that QEMU serves (`-chardev pipe`); [`super::serial::SerialPorts`] is the
//! `Connector` that opens them, and the yamux multiplexing above is unchanged (it already runs
//! every service over one long-lived byte stream). The monitor is a named pipe too. Why QEMU
//! and not WSL2: docs/design/host.md.
//!
//! The argument building and the names are plain code, unit-tested on every platform; only
//! [`Whpx`] (spawning `qemu-system-x86_64.exe`) is Windows-only.

use std::ffi::OsString;
use std::path::PathBuf;

use super::serial::{pipe_chardev_path, HostEnds};
use super::VmSpec;

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

/// QEMU's command line for `spec` on Windows: the guest's ports on the pipes `ports`, the
/// monitor on the pipe `monitor`.
pub fn args(spec: &VmSpec, accel: &str, ports: &HostEnds, monitor: &str) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::new();
    for acc in accelerators(accel) {
        a.push("-accel".into());
        a.push((*acc).into());
    }
    a.push("-machine".into());
    a.push("q35".into());
    a.extend(super::qemu::guest_args(spec, true));
    a.extend(super::serial::args(ports));
    a.push("-chardev".into());
    a.push(format!("pipe,id=mon,path={}", pipe_chardev_path(monitor)).into());
    a.push("-mon".into());
    a.push("chardev=mon,mode=readline".into());
    a
}

/// The named pipes of the guest's ports: every configured share is served over 9P here, on a
/// port of its own.
pub fn host_ends(state: &crate::StateDir, config: &crate::Config) -> HostEnds {
    HostEnds::pipes(state, config.shares.len())
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
    ports: HostEnds,
    monitor: String,
}

#[cfg(windows)]
impl Whpx {
    pub fn new(state: &crate::StateDir, config: &crate::Config) -> Self {
        Self {
            program: qemu_program(&config.tools_dir),
            accel: config.accel.clone(),
            ports: host_ends(state, config),
            monitor: state.pipe("qemu_monitor"),
        }
    }
}

#[cfg(windows)]
impl super::Hypervisor for Whpx {
    fn name(&self) -> &'static str {
        "qemu-whpx"
    }

    fn start(&self, spec: &VmSpec) -> crate::error::Result<Box<dyn super::VmHandle>> {
        super::qemu::launch(
            &self.program,
            args(spec, &self.accel, &self.ports, &self.monitor),
            spec,
            crate::endpoint::Endpoint::Pipe(self.monitor.clone()),
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
        let state = crate::StateDir::new(r"C:\Users\u\.berth");
        let ports = HostEnds::pipes(&state, 1);
        crate::vm::joined_args(args(&spec(), accel, &ports, &state.pipe("qemu_monitor")))
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
    fn ports_and_shares_are_virtio_serial_over_pipes_without_vhost_user() {
        let j = joined("auto");
        for channel in crate::vm::serial::channels(1) {
            assert!(
                j.contains(&format!(
                    "virtserialport,bus=vser.0,chardev={},name={}",
                    channel.key(),
                    channel.name()
                )),
                "{channel:?} missing: {j}"
            );
        }
        assert!(j.contains("name=berth.2378.0"), "{j}");
        assert!(j.contains("-mon chardev=mon,mode=readline"));
        // Nothing that needs Linux: no memfd, no vhost-user, no unix sockets.
        for linux_only in ["memfd", "vhost-user", "unix:", "socket,"] {
            assert!(!j.contains(linux_only), "{linux_only} in {j}");
        }
        assert!(j.contains(r"file=C:\Users\u\.berth\disk\data.qcow2,format=qcow2"));
        assert!(j.contains("-m 2048M -smp 2"));
    }
}
