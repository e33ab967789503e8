//! A guest under QEMU for tests: the image from `$BERTH_VM_CACHE/out`, a qcow2 data disk, user
//! networking, the serial console captured (and typed into, for the debug shell), the HMP
//! monitor on a unix socket. QEMU is killed by PID when the `Vm` is dropped.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use berth_test_support::wait_until;

/// VM tests run one at a time (each takes 1 GiB and a busy vCPU or two under TCG): hold this
/// for the whole test.
pub(crate) fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// `vm-image/build.sh`'s cache (`$BERTH_VM_CACHE`).
pub(crate) fn vm_cache() -> PathBuf {
    std::env::var_os("BERTH_VM_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root/.cache/berth/vm-image"))
}

/// The built amd64 image (`vm-image/build.sh`); a missing image fails the test.
pub(crate) fn image_dir() -> PathBuf {
    built_image(vm_cache().join("out"), "vmlinux")
}

/// The built arm64 image (`vm-image/build.sh --arch arm64`); a missing image fails the test.
pub(crate) fn arm64_image_dir() -> PathBuf {
    built_image(vm_cache().join("arm64").join("out"), "Image")
}

/// `out` after checking that it holds an image booting `kernel`.
fn built_image(out: PathBuf, kernel: &str) -> PathBuf {
    for f in [kernel, "initrd.img", "rootfs.img", "cmdline"] {
        assert!(
            out.join(f).exists(),
            "{} missing: build the guest image first (vm-image/build.sh)",
            out.join(f).display()
        );
    }
    out
}

/// Creates an empty qcow2 disk.
pub(crate) fn create_disk(path: &Path, size: &str) {
    let st = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(path)
        .arg(size)
        .status()
        .expect("run qemu-img");
    assert!(st.success(), "qemu-img create failed");
}

pub(crate) struct Vm {
    child: Child,
    stdin: ChildStdin,
    console: Arc<Mutex<String>>,
    monitor: PathBuf,
    pub(crate) started: Instant,
}

impl Vm {
    /// Boots the image with `disk` as the data disk and `append` added to the kernel command
    /// line. `dir` holds the monitor socket and `console.log`.
    pub(crate) fn boot(dir: &Path, disk: &Path, append: &str) -> Vm {
        Self::boot_with(dir, disk, append, None)
    }

    /// Like [`Vm::boot`], with a vhost-user-vsock device on `vhost` (a vhost-device-vsock
    /// control socket); guest memory is then a shared memfd, as vhost-user needs.
    pub(crate) fn boot_with(dir: &Path, disk: &Path, append: &str, vhost: Option<&Path>) -> Vm {
        let out = image_dir();
        let cmdline = std::fs::read_to_string(out.join("cmdline")).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let accel = if std::env::var("BERTH_KVM").as_deref() == Ok("1") {
            "kvm:tcg"
        } else {
            "tcg"
        };
        let monitor = dir.join("mon.sock");
        let _ = std::fs::remove_file(&monitor);
        // BERTH_VM_MACHINE=microvm: virtio-mmio devices and the TSC frequency the kernel cannot
        // calibrate there (notes/vm.md §7). q35 (PCI) otherwise.
        let microvm = std::env::var("BERTH_VM_MACHINE").as_deref() == Ok("microvm");
        let (kind, bus) = if microvm {
            ("microvm", "device")
        } else {
            ("q35", "pci")
        };
        let append = if microvm {
            format!("{append} tsc_early_khz={}", host_tsc_khz())
        } else {
            append.to_string()
        };
        let mut machine = format!("{kind},accel={accel}");
        let mut vsock_args: Vec<String> = vec![];
        if let Some(sock) = vhost {
            machine.push_str(",memory-backend=mem");
            vsock_args.extend([
                "-object".into(),
                "memory-backend-memfd,id=mem,size=1024M,share=on".into(),
                "-chardev".into(),
                format!("socket,id=vsk,path={}", sock.display()),
                "-device".into(),
                format!("vhost-user-vsock-{bus},chardev=vsk"),
            ]);
        }
        let started = Instant::now();
        let mut child = Command::new("qemu-system-x86_64")
            .args(["-machine", &machine])
            .args([
                "-nodefaults",
                "-no-user-config",
                "-display",
                "none",
                "-no-reboot",
            ])
            .args(["-m", "1024", "-smp", "2", "-serial", "stdio"])
            .arg("-kernel")
            .arg(out.join("vmlinux"))
            .arg("-initrd")
            .arg(out.join("initrd.img"))
            .args([
                "-append",
                &format!("{} berth.time={now} {append}", cmdline.trim()),
            ])
            .arg("-drive")
            .arg(format!(
                "file={},format=qcow2,if=none,id=data,cache=unsafe",
                disk.display()
            ))
            .arg("-device")
            .arg(format!("virtio-blk-{bus},drive=data,serial=berth-data"))
            .arg("-drive")
            .arg(format!(
                "file={},format=raw,if=none,id=root,readonly=on",
                out.join("rootfs.img").display()
            ))
            .arg("-device")
            .arg(format!("virtio-blk-{bus},drive=root,serial=berth-root"))
            .args([
                "-netdev",
                "user,id=net0",
                "-device",
                &format!("virtio-net-{bus},netdev=net0"),
            ])
            .arg("-device")
            .arg(format!("virtio-rng-{bus}"))
            .args(&vsock_args)
            .arg("-monitor")
            .arg(format!("unix:{},server=on,wait=off", monitor.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start qemu-system-x86_64");
        let console = Arc::new(Mutex::new(String::new()));
        let log = dir.join("console.log");
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let console = console.clone();
            let log = log.clone();
            std::thread::spawn(move || copy_console(pipe, &console, &log));
        }
        let stdin = child.stdin.take().unwrap();
        Vm {
            child,
            stdin,
            console,
            monitor,
            started,
        }
    }

    /// The console so far, with the tty's `\r\n` line ends made `\n`.
    pub(crate) fn console(&self) -> String {
        self.console.lock().unwrap().replace('\r', "")
    }

    /// Waits until the console shows `text`; returns the time since QEMU started, or panics with
    /// the console after `timeout`.
    pub(crate) fn expect(&self, text: &str, timeout: Duration) -> Duration {
        let seen = wait_until(timeout, || self.console().contains(text));
        assert!(
            seen,
            "no {text:?} on the console after {timeout:?}:\n{}",
            self.console()
        );
        self.started.elapsed()
    }

    /// Runs a command in the debug shell (`berth.debug_shell=1`) and returns its output, which
    /// the command must end with a line `<tag>-end`.
    pub(crate) fn shell(&mut self, script: &str, tag: &str, timeout: Duration) -> String {
        // printf splits the markers so the echoed command line never matches them.
        let line = format!("printf '%s-begin\\n' {tag}; {script}; printf '%s-end\\n' {tag}\n");
        self.stdin.write_all(line.as_bytes()).unwrap();
        self.stdin.flush().unwrap();
        let (begin, end) = (format!("{tag}-begin\n"), format!("{tag}-end\n"));
        self.expect(&end, timeout);
        let c = self.console();
        let from = c.find(&begin).map(|i| i + begin.len()).unwrap_or(0);
        let to = c[from..].find(&end).map(|i| from + i).unwrap_or(c.len());
        c[from..to].to_string()
    }

    /// Presses the ACPI power button (`system_powerdown`) and waits for QEMU to exit.
    pub(crate) fn power_off(&mut self, timeout: Duration) -> Duration {
        let t = Instant::now();
        let mut m = UnixStream::connect(&self.monitor).expect("connect to the QEMU monitor");
        m.write_all(b"system_powerdown\n").unwrap();
        let exited = wait_until(timeout, || matches!(self.child.try_wait(), Ok(Some(_))));
        assert!(
            exited,
            "QEMU still running {timeout:?} after system_powerdown:\n{}",
            self.console()
        );
        t.elapsed()
    }
}

/// The host's TSC in kHz (the guest's under TCG), from `/proc/cpuinfo`.
fn host_tsc_khz() -> u64 {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines()
        .find_map(|l| {
            l.strip_prefix("cpu MHz")?
                .split(':')
                .nth(1)?
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map(|mhz| (mhz * 1000.0) as u64)
        .expect("cpu MHz in /proc/cpuinfo")
}

impl Drop for Vm {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn copy_console(mut from: Box<dyn Read + Send>, to: &Mutex<String>, log: &Path) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .ok();
    let mut buf = [0u8; 4096];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 {
            break;
        }
        if let Some(f) = file.as_mut() {
            let _ = f.write_all(&buf[..n]);
        }
        to.lock()
            .unwrap()
            .push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

/// vhost-device-vsock for one VM (guest CID 3): `socket` for QEMU, `uds` for host programs
/// (hybrid `CONNECT <port>`). Killed by PID on drop.
pub(crate) struct VsockDaemon {
    child: Child,
    pub(crate) socket: PathBuf,
    pub(crate) uds: PathBuf,
}

impl VsockDaemon {
    pub(crate) fn start(dir: &Path) -> VsockDaemon {
        let tools = std::env::var_os("BERTH_TOOLS")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/root/.cache/berth/tools"));
        let bin = tools.join("bin/vhost-device-vsock");
        assert!(
            bin.exists(),
            "{} missing: run scripts/install-vm-tools.sh",
            bin.display()
        );
        let socket = dir.join("vhost.sock");
        let uds = dir.join("vm.vsock");
        let child = Command::new(&bin)
            .arg("--vm")
            .arg(format!(
                "guest-cid=3,socket={},uds-path={}",
                socket.display(),
                uds.display()
            ))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("vhost-device-vsock.log")).unwrap())
            .spawn()
            .expect("start vhost-device-vsock");
        let d = VsockDaemon { child, socket, uds };
        assert!(
            wait_until(Duration::from_secs(10), || d.socket.exists()),
            "vhost-device-vsock did not create {}",
            d.socket.display()
        );
        d
    }
}

impl Drop for VsockDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
