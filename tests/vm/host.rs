//! The host side end to end: `berth start` boots the guest under TCG through the library and
//! CLI, then the REAL docker CLI talks through the forwarded socket (vsock, multiplexed):
//! version, 1000 pings 8-way, pull from the loopback registry (guest → host via 10.0.2.2), run,
//! a published port (TCP and UDP) reached on the host's 127.0.0.1 and, for `-p P:80`, on a
//! non-loopback host address (`-p 127.0.0.1:P:80` only on the loopback), the opt-in system socket
//! link, `berth status`'s shares and ports, a shared folder read and written (its file events:
//! `files.rs`), and `berth stop` + `berth start` keeping images.
//! Also the laptop-citizen mechanisms: the state dir's daemon.json in `docker info`, `berth start
//! -v`'s phases, the balloon's free-page reporting and the data disk's discard as the guest
//! sees them, and space freed in the guest shrinking the qcow2 (fstrim after a removal).
//! Boot once, check many; every process is stopped by PID when the test ends.

/// Start phase names as `berth start -v` prints them (`berth_host::boot`).
mod berth_host_phase {
    pub(super) const QEMU_SPAWNED: &str = "qemu spawned";
    pub(super) const INIT_STARTED: &str = "kernel + initramfs done, PID 1 started";
    pub(super) const DISK_MOUNTED: &str = "data disk mounted";
    pub(super) const ENGINE_LISTENING: &str = "engine listening";
    pub(super) const AGENT_CONNECTED: &str = "agent connected";
    pub(super) const READY: &str = "ready (shares mounted, ports followed)";
}

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use berth_test_support::{free_port, http_get, wait_until, Registry};

/// `berth` as cargo built it next to this test binary.
fn berth_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().and_then(|d| d.parent()).unwrap().join("berth");
    assert!(
        bin.exists(),
        "{} not found: cargo build -p berth-cli first",
        bin.display()
    );
    bin
}

/// A Berth home in a temp dir; dropping it stops Berth and kills anything left, by PID.
pub(crate) struct Berth {
    pub(crate) home: tempfile::TempDir,
    share: PathBuf,
}

impl Berth {
    fn new(mirror: &str) -> Self {
        Self::with_image(&[mirror], &crate::qemu::image_dir())
    }

    /// A Berth home whose engine pulls through the shared test registry (the guest reaches the
    /// host's loopback as 10.0.2.2).
    pub(crate) fn pulling_from_test_registry() -> Self {
        let reg = Registry::shared();
        let port = reg.addr.rsplit(':').next().unwrap();
        Self::new(&format!("http://10.0.2.2:{port}"))
    }

    /// A Berth home booting the image in `image_dir`, its engine pulling through `mirrors`.
    pub(crate) fn with_image(mirrors: &[&str], image_dir: &Path) -> Self {
        let home = tempfile::Builder::new()
            .prefix("berth-vm-")
            .tempdir()
            .unwrap();
        let share = home.path().join("share");
        std::fs::create_dir_all(share.join("w")).unwrap();
        let config = serde_json::json!({
            "cpus": 2,
            "memory_mib": 1024,
            "disk_gib": 4,
            "shares": [share],
            "image_dir": image_dir,
            "tools_dir": std::env::var("BERTH_TOOLS").unwrap_or_else(|_| "/root/.cache/berth/tools".into()),
            "accel": "auto",
            "registry_mirrors": mirrors,
            "max_restarts": 1,
            "system_socket_path": home.path().join("system-docker.sock"),
        });
        std::fs::write(
            home.path().join("config.json"),
            serde_json::to_vec_pretty(&config).unwrap(),
        )
        .unwrap();
        Self { home, share }
    }

    /// The shared folder (`shares` in config.json), mounted at the same path in the guest.
    pub(crate) fn share(&self) -> &Path {
        &self.share
    }

    /// The docker CLI config of this test (the `berth` context lands here, not in ~/.docker).
    fn docker_config(&self) -> PathBuf {
        self.home.path().join("docker-config")
    }

    fn berth(&self, args: &[&str]) -> Output {
        Command::new(berth_bin())
            .env("DOCKER_CONFIG", self.docker_config())
            .arg("--home")
            .arg(self.home.path())
            .args(args)
            .output()
            .unwrap()
    }

    pub(crate) fn berth_ok(&self, args: &[&str]) -> String {
        let o = self.berth(args);
        assert!(
            o.status.success(),
            "berth {args:?} failed: {}{}\n--- supervisor log:\n{}\n--- console tail:\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            self.read_log("logs/supervisor.log"),
            tail(&self.read_log("logs/console.log"), 30),
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    pub(crate) fn read_log(&self, rel: &str) -> String {
        std::fs::read_to_string(self.home.path().join(rel)).unwrap_or_default()
    }

    pub(crate) fn socket(&self) -> PathBuf {
        self.home.path().join("run/docker.sock")
    }

    /// A docker command through the forwarded socket, bounded to 300 s (a hang fails with the
    /// supervisor's log instead of waiting for the test runner's leash).
    pub(crate) fn docker(&self, args: &[&str]) -> Output {
        let mut c = Command::new("docker");
        c.env("DOCKER_CONFIG", self.docker_config())
            .env("DOCKER_HOST", format!("unix://{}", self.socket().display()))
            .args(args);
        berth_test_support::run_bounded(c, Duration::from_secs(300))
    }

    pub(crate) fn docker_ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?} failed ({}): {}\n--- supervisor log tail:\n{}",
            o.status,
            berth_test_support::output_text(&o),
            tail(&self.read_log("logs/supervisor.log"), 40)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    pub(crate) fn pid(&self, name: &str) -> Option<i32> {
        let p = std::fs::read_to_string(self.home.path().join(format!("run/{name}.pid"))).ok()?;
        p.trim().parse().ok()
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        let _ = self.berth(&["stop"]);
        // Belt and braces: anything a failed stop left behind, by its pid file.
        if let Ok(dir) = std::fs::read_dir(self.home.path().join("run")) {
            for e in dir.flatten() {
                if e.path().extension().is_some_and(|x| x == "pid") {
                    if let Some(pid) = std::fs::read_to_string(e.path())
                        .ok()
                        .and_then(|s| s.trim().parse::<i32>().ok())
                    {
                        // SAFETY: kill(2) with a PID we started.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
            }
        }
    }
}

/// `berth start -v`'s output `out` names every start phase, in boot order.
pub(crate) fn assert_start_phases_in_order(out: &str) {
    let mut at = 0;
    for phase in [
        berth_host_phase::QEMU_SPAWNED,
        berth_host_phase::INIT_STARTED,
        berth_host_phase::DISK_MOUNTED,
        berth_host_phase::ENGINE_LISTENING,
        berth_host_phase::AGENT_CONNECTED,
        berth_host_phase::READY,
    ] {
        let i = out[at..]
            .find(phase)
            .unwrap_or_else(|| panic!("phase {phase:?} missing or out of order in:\n{out}"));
        at += i + phase.len();
    }
}

pub(crate) fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A non-loopback IPv4 address of this host (connections to it stay on the machine); else
/// 127.0.0.2, which a listener on 127.0.0.1 does not serve either.
fn non_loopback_ipv4() -> std::net::Ipv4Addr {
    let mut found = None;
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list`, which we walk read-only and free once.
    unsafe {
        if libc::getifaddrs(&mut list) == 0 {
            let mut p = list;
            while !p.is_null() && found.is_none() {
                let a = (*p).ifa_addr;
                if !a.is_null() && i32::from((*a).sa_family) == libc::AF_INET {
                    let sin = &*(a as *const libc::sockaddr_in);
                    let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                    if !ip.is_loopback() && !ip.is_unspecified() {
                        found = Some(ip);
                    }
                }
                p = (*p).ifa_next;
            }
            libc::freeifaddrs(list);
        }
    }
    found.unwrap_or_else(|| {
        eprintln!("no non-loopback IPv4 address on this host; using 127.0.0.2");
        std::net::Ipv4Addr::new(127, 0, 0, 2)
    })
}

/// `GET /` to an address of this host (from [`non_loopback_ipv4`] or a loopback one): the
/// connection never leaves the machine.
fn http_get_own(addr: std::net::SocketAddr) -> std::io::Result<String> {
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET / HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

pub(crate) fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks existence.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// One `GET /_ping` over the forwarded socket, each on a new connection like the CLI's.
fn ping(sock: &Path) -> bool {
    let Ok(mut s) = UnixStream::connect(sock) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    if s.write_all(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.starts_with("HTTP/1.1 200") && out.ends_with("OK")
}

/// `n` pings over `threads` threads; returns the failures.
fn ping_churn(sock: &Path, n: usize, threads: usize) -> usize {
    let per = n / threads;
    let hs: Vec<_> = (0..threads)
        .map(|_| {
            let sock = sock.to_path_buf();
            std::thread::spawn(move || (0..per).filter(|_| !ping(&sock)).count())
        })
        .collect();
    hs.into_iter().map(|h| h.join().unwrap()).sum()
}

/// `threads` x `per` raw hybrid-vsock connections to guest `port`, each closed right after the
/// handshake; returns how many saw EOF instead of `OK`.
fn hybrid_churn(uds: &Path, port: u32, threads: usize, per: usize) -> usize {
    let hs: Vec<_> = (0..threads)
        .map(|_| {
            let uds = uds.to_path_buf();
            std::thread::spawn(move || {
                (0..per)
                    .filter(|_| {
                        let Ok(mut s) = UnixStream::connect(&uds) else {
                            return true;
                        };
                        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                        if s.write_all(format!("CONNECT {port}\n").as_bytes()).is_err() {
                            return true;
                        }
                        let mut line = Vec::new();
                        let mut b = [0u8; 1];
                        while let Ok(1) = s.read(&mut b) {
                            if b[0] == b'\n' {
                                break;
                            }
                            line.push(b[0]);
                        }
                        !line.starts_with(b"OK ")
                    })
                    .count()
            })
        })
        .collect();
    hs.into_iter().map(|h| h.join().unwrap()).sum()
}

/// Compiles C `src` statically into `dir/name`, to run in a busybox container.
pub(crate) fn build_static(dir: &Path, name: &str, src: &str) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    std::fs::write(&c, src).unwrap();
    let bin = dir.join(name);
    let st = Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(&bin)
        .arg(&c)
        .status()
        .expect("run cc");
    assert!(st.success(), "cc -static {name} failed");
    bin
}

/// A static UDP echo server (busybox's `nc` here has no `-u`): replies `echo:<datagram>`.
fn build_udp_echo(dir: &Path) -> PathBuf {
    build_static(
        dir,
        "udpecho",
        r#"#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
int main(int c, char **v) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a; memset(&a, 0, sizeof a);
  a.sin_family = AF_INET; a.sin_port = htons(c > 1 ? atoi(v[1]) : 7);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) { perror("bind"); return 1; }
  printf("listening\n"); fflush(stdout);
  char buf[65536]; memcpy(buf, "echo:", 5);
  for (;;) {
    struct sockaddr_in from; socklen_t fl = sizeof from;
    ssize_t n = recvfrom(fd, buf + 5, sizeof buf - 5, 0, (struct sockaddr *)&from, &fl);
    if (n < 0) return 1;
    sendto(fd, buf, n + 5, 0, (struct sockaddr *)&from, fl);
  }
}
"#,
    )
}

#[test]
fn docker_cli_through_forwarded_socket() {
    let b = Berth::pulling_from_test_registry();

    // The engine's daemon.json in the state dir reaches the guest's engine; the VM's own keys
    // (`hosts`) are dropped. A runtime entry shows in `docker info`.
    std::fs::write(
        b.home.path().join("daemon.json"),
        r#"{"runtimes": {"berth-test-rt": {"path": "/usr/bin/crun"}}, "hosts": ["tcp://0.0.0.0:2375"]}"#,
    )
    .unwrap();

    // Boot through the CLI; `-v` prints the start phases in boot order.
    let t = Instant::now();
    let out = b.berth_ok(&["start", "--timeout", "240", "--system-socket", "-v"]);
    let boot = t.elapsed();
    assert!(out.contains("docker.sock"), "{out}");
    eprintln!("figure: berth start -> Docker API ready: {boot:?}\n{out}");
    assert_start_phases_in_order(&out);
    assert!(out.contains("Accelerator: "), "{out}");
    let st = b.berth_ok(&["status"]);
    assert!(st.contains("Running") && st.contains("ready"), "{st}");
    let info = b.docker_ok(&["info", "--format", "{{json .Runtimes}}"]);
    assert!(
        info.contains("berth-test-rt"),
        "daemon.json runtime not in docker info: {info}"
    );
    // `berth start` made a `berth` docker context (in this test's DOCKER_CONFIG).
    let o = Command::new("docker")
        .env("DOCKER_CONFIG", b.docker_config())
        .args([
            "--context",
            "berth",
            "version",
            "--format",
            "{{.Server.Os}}",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "linux", "{o:?}");
    assert!(
        st.contains(&format!("shares:     {}", b.share.display())),
        "{st}"
    );

    // The opt-in system socket (at a temp path from config.json): a link to Berth's socket
    // that the real CLI can use.
    let sys = b.home.path().join("system-docker.sock");
    assert!(out.contains("System socket: linked"), "{out}");
    assert_eq!(std::fs::read_link(&sys).unwrap(), b.socket());
    let o = Command::new("docker")
        .env("DOCKER_HOST", format!("unix://{}", sys.display()))
        .args(["version", "--format", "{{.Server.APIVersion}}"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("1.50"),
        "docker through the system socket link: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(b.socket()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "docker socket must be owner-only");
    }

    // The real CLI.
    let v = b.docker_ok(&[
        "version",
        "--format",
        "{{.Server.Version}} {{.Server.APIVersion}}",
    ]);
    assert!(v.contains("1.50"), "{v}");

    // Churn through the multiplexer: every ping is a new host connection.
    let t = Instant::now();
    let failures = ping_churn(&b.socket(), 1000, 8);
    eprintln!(
        "figure: 1000 forwarded /_ping 8-way: {:?}, {failures} failures",
        t.elapsed()
    );
    assert_eq!(failures, 0);

    // The reproducer of vhost-device-vsock's churn bug (notes/vm.md §5), without the mux:
    // connect, CONNECT, close at once. The figure is reported, not asserted (the daemon's bug);
    // what must hold is that the multiplexed path is unaffected right after such a burst.
    let raw = hybrid_churn(&b.home.path().join("run/vsock.sock"), 2375, 8, 20);
    eprintln!("figure: raw hybrid CONNECT churn, 8 threads x 20, no mux: {raw}/160 failed");
    let after = ping_churn(&b.socket(), 200, 8);
    assert_eq!(
        after, 0,
        "the multiplexed path failed after a raw churn burst"
    );

    // Pull from the host's loopback registry through the mirror, run.
    b.docker_ok(&["pull", "busybox"]);
    let echo = b.docker_ok(&["run", "--rm", "busybox", "echo", "hello-from-berth"]);
    assert_eq!(echo.trim(), "hello-from-berth");

    // `berth disk usage` explains the space from all three views: the qcow2 on the host, the
    // guest's filesystem, and the engine's objects (the pulled image among them).
    let usage = b.berth_ok(&["disk", "usage"]);
    for want in ["data disk:", "on the host of", "guest:", "free of"] {
        assert!(usage.contains(want), "no {want:?} in:\n{usage}");
    }
    let images = usage
        .lines()
        .find_map(|l| l.strip_prefix("images:"))
        .unwrap_or_else(|| panic!("no images line in:\n{usage}"));
    assert!(
        !images.contains(" in 0,") && !images.trim_start().starts_with("0B"),
        "the pulled busybox is not counted: {images}"
    );
    for kind in ["containers:", "volumes:", "build cache:"] {
        assert!(usage.contains(kind), "no {kind:?} in:\n{usage}");
    }

    // Laptop citizen, as the guest sees it: the balloon driver bound with free-page reporting
    // (feature bit 5, VIRTIO_BALLOON_F_REPORTING) and the data disk taking discards.
    let sys = b.docker_ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "for d in /sys/bus/virtio/drivers/virtio_balloon/virtio*; do echo balloon $(cat $d/features); done; \
         for d in /sys/block/vd*; do echo disk $(cat $d/serial) $(cat $d/queue/discard_max_bytes); done",
    ]);
    let features = sys
        .lines()
        .find_map(|l| l.strip_prefix("balloon "))
        .unwrap_or_else(|| panic!("no virtio_balloon device bound in the guest:\n{sys}"));
    assert_eq!(
        features.as_bytes().get(5),
        Some(&b'1'),
        "free-page reporting not negotiated: {features}"
    );
    let discard: u64 = sys
        .lines()
        .find_map(|l| l.strip_prefix("disk berth-data "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("data disk not found in the guest:\n{sys}"));
    assert!(discard > 0, "the data disk takes no discards:\n{sys}");

    // Space freed in the guest goes back to the host: 64 MiB written into a volume grow the
    // qcow2; removing the volume makes the agent trim, and the file's allocation drops.
    let qcow2 = b.home.path().join("disk/data.qcow2");
    let allocated = || {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&qcow2).unwrap().blocks() * 512
    };
    let before = allocated();
    b.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "berth-trim:/d",
        "busybox",
        "sh",
        "-c",
        "dd if=/dev/urandom of=/d/a bs=1M count=1 2>/dev/null && \
         for i in $(seq 64); do cat /d/a; done > /d/f && sync",
    ]);
    let filled = allocated();
    const MIB: u64 = 1 << 20;
    assert!(
        filled >= before + 48 * MIB,
        "writing 64 MiB grew the qcow2 by only {} MiB",
        (filled.saturating_sub(before)) / MIB
    );
    b.docker_ok(&["volume", "rm", "berth-trim"]);
    let t = Instant::now();
    assert!(
        wait_until(Duration::from_secs(60), || allocated() + 32 * MIB <= filled),
        "the qcow2 did not shrink after the volume was removed: {} MiB -> {} MiB",
        filled / MIB,
        allocated() / MIB
    );
    eprintln!(
        "figure: qcow2 allocated {} MiB -> {} MiB (64 MiB volume written) -> {} MiB {:?} after `docker volume rm`",
        before / MIB,
        filled / MIB,
        allocated() / MIB,
        t.elapsed()
    );

    // Hijacked attach with stdin: bytes both ways and the half-close of stdin (EOF ends `cat`).
    let mut child = Command::new("docker")
        .env("DOCKER_HOST", format!("unix://{}", b.socket().display()))
        .args(["run", "-i", "--rm", "busybox", "cat"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"through-the-mux\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "through-the-mux"
    );

    // A published port appears on the host's 127.0.0.1 and goes when the container stops.
    let hp = free_port();
    let name = format!("berth-vm-web-{hp}");
    run_httpd(&b, &name, &format!("{hp}:80"));
    let addr = format!("127.0.0.1:{hp}");
    let t = Instant::now();
    assert!(
        wait_until(Duration::from_secs(10), || http_get(&addr, "/")
            .is_ok_and(|r| r.contains("200"))),
        "published port {hp} not reachable on the host\n{}",
        b.read_log("logs/supervisor.log")
    );
    eprintln!(
        "figure: docker run -d returned -> host port answers: {:?}",
        t.elapsed()
    );
    // `-p P:80` is on every host address, as `docker ps` says (0.0.0.0): it answers on a
    // non-loopback address of this host (traffic stays on the machine) and on [::1].
    let other = non_loopback_ipv4();
    assert!(
        wait_until(Duration::from_secs(10), || http_get_own((other, hp).into())
            .is_ok_and(|r| r.contains("200"))),
        "published port {hp} not reachable on {other}\n{}",
        b.read_log("logs/supervisor.log")
    );
    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        assert!(
            http_get_own((std::net::Ipv6Addr::LOCALHOST, hp).into())
                .is_ok_and(|r| r.contains("200")),
            "published port {hp} not reachable on [::1]"
        );
    }
    let st = b.berth_ok(&["status"]);
    assert!(st.contains(&format!("0.0.0.0:{hp}/tcp")), "{st}");
    // `-p 127.0.0.1:P:80` stays on the loopback.
    let lp = free_port();
    let lname = format!("berth-vm-lo-{lp}");
    run_httpd(&b, &lname, &format!("127.0.0.1:{lp}:80"));
    let lo_addr = format!("127.0.0.1:{lp}");
    assert!(
        wait_until(Duration::from_secs(10), || http_get(&lo_addr, "/")
            .is_ok_and(|r| r.contains("200"))),
        "port {lp} published on 127.0.0.1 not reachable there"
    );
    assert!(
        std::net::TcpStream::connect((other, lp)).is_err(),
        "port {lp} published on 127.0.0.1 answers on {other}"
    );
    b.docker_ok(&["rm", "-f", &lname]);
    let ex = b.docker_ok(&["exec", &name, "cat", "/www/index.html"]);
    assert!(!ex.is_empty(), "docker exec printed nothing");
    b.docker_ok(&["rm", "-f", &name]);
    assert!(
        wait_until(Duration::from_secs(5), || std::net::TcpStream::connect(
            &addr
        )
        .is_err()),
        "port {hp} still open after the container was removed"
    );

    // A shared folder at the same path: read a host file, write one back.
    std::fs::write(b.share.join("in.txt"), "from-host").unwrap();
    let vol = format!("{}:/data", b.share.display());
    let got = b.docker_ok(&[
        "run",
        "--rm",
        "-v",
        &vol,
        "busybox",
        "sh",
        "-c",
        "cat /data/in.txt; echo from-container > /data/out.txt",
    ]);
    assert_eq!(got.trim(), "from-host");
    assert_eq!(
        std::fs::read_to_string(b.share.join("out.txt"))
            .unwrap()
            .trim(),
        "from-container"
    );

    // A UDP published port: datagrams from the host reach the container and replies come back.
    let bin_dir = b.share.join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    build_udp_echo(&bin_dir);
    let up = free_port();
    let uname = format!("berth-vm-udp-{up}");
    b.docker_ok(&[
        "run",
        "-d",
        "--name",
        &uname,
        "-p",
        &format!("{up}:7/udp"),
        "-v",
        &vol,
        "busybox",
        "/data/bin/udpecho",
        "7",
    ]);
    let t = Instant::now();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.connect(("127.0.0.1", up)).unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    // Bounded by time, not tries: before the host port is bound, the ICMP "port unreachable"
    // makes send/recv fail at once.
    let mut echoed = None;
    let mut i = 0;
    while echoed.is_none() && t.elapsed() < Duration::from_secs(10) {
        i += 1;
        let msg = format!("ping-{i}");
        let _ = udp.send(msg.as_bytes());
        let mut buf = [0u8; 256];
        match udp.recv(&mut buf) {
            Ok(n) => echoed = Some((msg, String::from_utf8_lossy(&buf[..n]).into_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(_) => {}
        }
    }
    let (msg, back) = echoed.unwrap_or_else(|| {
        let state = b.docker(&[
            "inspect",
            "-f",
            "{{.State.Status}} exit={{.State.ExitCode}} ports={{json .NetworkSettings.Ports}}",
            &uname,
        ]);
        let logs = b.docker(&["logs", &uname]);
        panic!(
            "no reply on udp port {up}\ncontainer: {}{}\nlogs: {}{}\n{}",
            String::from_utf8_lossy(&state.stdout),
            String::from_utf8_lossy(&state.stderr),
            String::from_utf8_lossy(&logs.stdout),
            String::from_utf8_lossy(&logs.stderr),
            b.read_log("logs/supervisor.log")
        )
    });
    // The reply may be to an earlier datagram (its echo took longer than one 50 ms wait under
    // load): it must echo one of the datagrams sent, unchanged.
    let sent = msg.trim_start_matches("ping-").parse::<u32>().unwrap();
    let echoed_n = back
        .strip_prefix("echo:ping-")
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or_else(|| panic!("unexpected udp reply {back:?}"));
    assert!(
        (1..=sent).contains(&echoed_n),
        "udp reply {back:?} echoes nothing sent (last sent {msg})"
    );
    eprintln!(
        "figure: docker run -d -p /udp returned -> first udp echo: {:?}",
        t.elapsed()
    );
    let st = b.berth_ok(&["status"]);
    assert!(st.contains(&format!("0.0.0.0:{up}/udp")), "{st}");
    b.docker_ok(&["rm", "-f", &uname]);

    // Stop and start keep the images; stop leaves no VM behind.
    let qemu = b.pid("qemu").expect("qemu pid file");
    let out = b.berth_ok(&["stop"]);
    assert!(!alive(qemu), "QEMU still running after berth stop");
    assert!(out.contains("removed the link"), "{out}");
    assert!(
        std::fs::symlink_metadata(&sys).is_err(),
        "berth stop left the system socket link"
    );
    b.berth_ok(&["start", "--timeout", "240"]);
    let images = b.docker_ok(&["image", "ls", "--format", "{{.Repository}}"]);
    assert!(
        images.contains("busybox"),
        "images lost across restart: {images}"
    );
    let qemu = b.pid("qemu").expect("qemu pid file");
    b.berth_ok(&["stop"]);
    assert!(!alive(qemu));
}

#[test]
fn supervisor_restarts_a_dead_vm() {
    let b = Berth::pulling_from_test_registry();
    b.berth_ok(&["start", "--timeout", "240"]);
    let qemu = b.pid("qemu").expect("qemu pid file");
    // SAFETY: kill(2) on the QEMU this test started.
    unsafe { libc::kill(qemu, libc::SIGKILL) };
    assert!(
        wait_until(Duration::from_secs(240), || b
            .pid("qemu")
            .is_some_and(|p| p != qemu && alive(p))
            && ping(&b.socket())),
        "the VM was not restarted\n{}",
        b.read_log("logs/supervisor.log")
    );
    let st = b.berth_ok(&["status"]);
    assert!(st.contains("restarts:   1"), "{st}");
    b.berth_ok(&["stop"]);
}

/// Auto-pause: a VM with no client and no container is paused after `auto_pause_secs` (QEMU's
/// process is stopped; `berth status` says so without waking it), and the next docker call
/// resumes it transparently, again and again; a running container keeps it from pausing.
#[test]
fn an_idle_vm_pauses_and_the_next_call_resumes_it() {
    let b = Berth::pulling_from_test_registry();
    set_config(&b, "auto_pause_secs", serde_json::json!(2));
    b.berth_ok(&["start", "--timeout", "240"]);
    let paused = || {
        std::fs::read(b.home.path().join("run/status.json"))
            .ok()
            .and_then(|s| serde_json::from_slice::<serde_json::Value>(&s).ok())
            .is_some_and(|s| s["paused"] == true)
    };
    assert!(
        wait_until(Duration::from_secs(120), paused),
        "the idle VM was not paused\n{}",
        b.read_log("logs/supervisor.log")
    );
    let qemu = b.pid("qemu").expect("qemu pid file");
    assert!(stopped(qemu), "status.json says paused, QEMU runs");
    let st = b.berth_ok(&["status"]);
    assert!(st.contains("paused while idle"), "{st}");
    assert!(stopped(qemu), "berth status woke it");

    // Each call resumes it, however often it was paused (the vsock device survives).
    for round in 0..4 {
        let t = Instant::now();
        b.docker_ok(&["version"]);
        eprintln!(
            "round {round}: docker version on the paused VM: {:?}",
            t.elapsed()
        );
        assert!(!stopped(qemu));
        assert!(wait_until(Duration::from_secs(10), || !paused()));
        assert!(
            wait_until(Duration::from_secs(120), paused),
            "not paused again"
        );
    }

    // A running container keeps it awake: pausing needs the guest to say it has none.
    b.docker_ok(&["pull", "-q", "busybox"]);
    b.docker_ok(&["run", "-d", "--name", "busy", "busybox", "sleep", "600"]);
    // The next quiet period ends in the guest saying it is busy, and no pause.
    let log = b.home.path().join("logs/supervisor.log");
    let count = |what: &str| {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches(what)
            .count()
    };
    let (pauses, checks) = (count("VM paused"), count("containers run: not paused"));
    assert!(
        wait_until(Duration::from_secs(60), || count(
            "containers run: not paused"
        ) > checks),
        "no idle check with a container running\n{}",
        b.read_log("logs/supervisor.log")
    );
    assert_eq!(
        count("VM paused"),
        pauses,
        "paused with a container running"
    );
    assert!(!stopped(qemu));
    b.berth_ok(&["stop"]);
}

/// Whether process `pid` is stopped (`T` in `/proc/<pid>/stat`).
fn stopped(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.starts_with('T')))
        .unwrap_or(false)
}

/// Rewrites one key of the test's config.json.
/// `docker run -d --name <name> -p <publish> busybox httpd` serving /www on the container's port 80.
fn run_httpd(b: &Berth, name: &str, publish: &str) {
    b.docker_ok(&[
        "run", "-d", "--name", name, "-p", publish, "busybox", "httpd", "-f", "-p", "80", "-h",
        "/www",
    ]);
}

/// Sets `key` in `b`'s `config.json` (before `berth start`).
pub(crate) fn set_config(b: &Berth, key: &str, value: serde_json::Value) {
    let path = b.home.path().join("config.json");
    let mut c: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    c[key] = value;
    std::fs::write(&path, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
}

/// Start failures say their cause in words, without booting a guest: an invalid daemon.json
/// (refused before anything starts), a missing image, a data disk another QEMU holds.
#[test]
fn start_failures_say_their_cause() {
    let b = Berth::new("http://10.0.2.2:1");

    std::fs::write(
        b.home.path().join("daemon.json"),
        "{\n  \"insecure-registries\": [\"r.test:5000\",]\n}\n",
    )
    .unwrap();
    let o = b.berth(&["start", "--timeout", "60"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("invalid engine configuration") && err.contains("line 2"),
        "{err}"
    );
    assert!(b.pid("supervisor").is_none() && b.pid("qemu").is_none());
    std::fs::remove_file(b.home.path().join("daemon.json")).unwrap();

    let empty = b.home.path().join("no-image");
    std::fs::create_dir_all(&empty).unwrap();
    set_config(&b, "image_dir", serde_json::json!(empty));
    let o = b.berth(&["start", "--timeout", "60"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("is missing: run vm-image/build.sh"), "{err}");
    set_config(&b, "image_dir", serde_json::json!(crate::qemu::image_dir()));

    // Another QEMU holds the data disk (QEMU's image locking); the start fails at once with
    // that cause instead of restarting the VM.
    let disk = b.home.path().join("disk/data.qcow2");
    std::fs::create_dir_all(disk.parent().unwrap()).unwrap();
    let st = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&disk)
        .arg("1G")
        .status()
        .unwrap();
    assert!(st.success());
    let mut holder = Command::new("qemu-system-x86_64")
        .args([
            "-machine",
            "none",
            "-nodefaults",
            "-display",
            "none",
            "-drive",
        ])
        .arg(format!("file={},format=qcow2,if=none,id=d", disk.display()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let locked = wait_until(Duration::from_secs(30), || {
        Command::new("qemu-img")
            .arg("info")
            .arg(&disk)
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stderr).contains("lock"))
    });
    let o = b.berth(&["start", "--timeout", "120"]);
    // SAFETY: kill(2) on the QEMU this test started.
    unsafe { libc::kill(holder.id() as i32, libc::SIGKILL) };
    let _ = holder.wait();
    assert!(locked, "the holder QEMU never locked {}", disk.display());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success(),
        "berth start succeeded on a locked disk"
    );
    assert!(
        err.contains("is in use by another QEMU"),
        "{err}\n--- supervisor log:\n{}",
        b.read_log("logs/supervisor.log")
    );
}

/// `berth restart --engine`: only the engine restarts. The VM keeps running (same QEMU, its
/// uptime goes on), the engine's pid changes, the new engine reads the daemon.json changed
/// meanwhile, and a container with a restart policy is running again with its published port
/// answering through the reconnected supervisor.
#[test]
fn restart_engine_keeps_the_vm_and_its_containers() {
    let b = Berth::pulling_from_test_registry();
    b.berth_ok(&["start", "--timeout", "240"]);
    let qemu = b.pid("qemu").expect("qemu pid file");
    b.docker_ok(&["pull", "-q", "busybox"]);
    let web = free_port();
    b.docker_ok(&[
        "run",
        "-d",
        "--name",
        "keep",
        "--restart",
        "always",
        "-p",
        &format!("127.0.0.1:{web}:80"),
        "busybox",
        "sh",
        "-c",
        "mkdir -p /www && echo kept > /www/index.html && httpd -f -p 80 -h /www",
    ]);
    let served = || http_get(&format!("127.0.0.1:{web}"), "/").is_ok_and(|b| b.contains("kept"));
    assert!(
        wait_until(Duration::from_secs(60), served),
        "port not served"
    );
    let uptime = || -> f64 {
        let out = b.docker_ok(&["run", "--rm", "busybox", "cat", "/proc/uptime"]);
        out.split_whitespace().next().unwrap().parse().unwrap()
    };
    let before = uptime();
    std::fs::write(
        b.home.path().join("daemon.json"),
        r#"{"runtimes": {"berth-restart-rt": {"path": "/usr/bin/crun"}}}"#,
    )
    .unwrap();

    let t = Instant::now();
    let out = b.berth_ok(&["restart", "--engine", "--timeout", "180"]);
    eprintln!("berth restart --engine: {:?}: {out}", t.elapsed());
    let pids: Vec<u32> = out
        .split("(pid ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .map(|s| {
            s.split(" -> ")
                .filter_map(|p| p.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(pids.len(), 2, "{out}");
    assert_ne!(pids[0], pids[1], "the engine's pid did not change: {out}");

    assert_eq!(b.pid("qemu"), Some(qemu), "the VM was restarted");
    assert!(alive(qemu));
    let after = uptime();
    assert!(after > before, "guest uptime went from {before} to {after}");
    let info = b.docker_ok(&["info", "--format", "{{json .Runtimes}}"]);
    assert!(
        info.contains("berth-restart-rt"),
        "new daemon.json not read: {info}"
    );
    let running = b.docker_ok(&["inspect", "-f", "{{.State.Running}}", "keep"]);
    assert_eq!(running.trim(), "true");
    assert!(
        wait_until(Duration::from_secs(60), served),
        "the published port does not answer after the engine restart\n{}",
        b.read_log("logs/supervisor.log")
    );
    let st = b.berth_ok(&["status"]);
    assert!(st.contains("restarts:   0"), "{st}");
    b.berth_ok(&["stop"]);
}
