//! The real docker CLI against the engine in the VM: Docker API over vsock (hybrid vsock through
//! vhost-device-vsock, yamux streams as the host library uses them), pulls through the
//! registry mirror on the host's loopback (10.0.2.2), containers under runc with cgroup v2.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use berth_test_support::{serve_http_once, Registry, FROM_HOST};
use berth_vsock::mux::MuxClient;
use berth_vsock::HybridConnector;

use crate::qemu::{create_disk, Vm, VsockDaemon};

/// Forwards a host unix socket to the guest's Docker API port, one yamux stream per client
/// connection (a minimal stand-in for the host library's forwarder).
struct Forwarder {
    _rt: tokio::runtime::Runtime,
    sock: PathBuf,
}

impl Forwarder {
    fn start(dir: &Path, uds: &Path) -> Forwarder {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let sock = dir.join("docker.sock");
        let mux = Arc::new(MuxClient::new(
            Arc::new(HybridConnector::new(uds)),
            berth_agent_proto::DOCKER_API_PORT,
        ));
        let listener = rt
            .block_on(async { tokio::net::UnixListener::bind(&sock) })
            .unwrap();
        rt.spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mux = mux.clone();
                tokio::spawn(async move {
                    if let Ok(mut guest) = mux.open().await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut guest).await;
                    }
                });
            }
        });
        Forwarder { _rt: rt, sock }
    }
}

/// Bound on one docker command (coreutils `timeout` kills a hung CLI).
const DOCKER_TIMEOUT: &str = "120";

fn docker(sock: &Path, config: &Path, args: &[&str]) -> Output {
    Command::new("timeout")
        .args([DOCKER_TIMEOUT, "docker"])
        .env("DOCKER_CONFIG", config)
        .arg("-H")
        .arg(format!("unix://{}", sock.display()))
        .args(args)
        .output()
        .expect("run docker")
}

fn docker_ok(vm: &Vm, sock: &Path, config: &Path, args: &[&str]) -> String {
    let out = docker(sock, config, args);
    assert!(
        out.status.success(),
        "docker {args:?} failed ({}): {}{}\nconsole:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        vm.console()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn docker_cli_over_vsock_pulls_via_host_mirror_and_runs() {
    let _serial = crate::qemu::serial();
    let registry = Registry::shared();
    let port = registry.addr.rsplit(':').next().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("data.qcow2");
    create_disk(&disk, "8G");
    let vsock = VsockDaemon::start(dir.path());
    let vm = Vm::boot_with(
        dir.path(),
        &disk,
        &format!("berth.registry_mirror=http://10.0.2.2:{port}"),
        Some(&vsock.socket),
    );
    vm.expect("API listen", Duration::from_secs(90));
    let fwd = Forwarder::start(dir.path(), &vsock.uds);
    let config = dir.path().join("docker-config");
    std::fs::create_dir_all(&config).unwrap();

    let t = std::time::Instant::now();
    let version = docker_ok(
        &vm,
        &fwd.sock,
        &config,
        &["version", "--format", "{{.Server.Os}}"],
    );
    assert_eq!(version.trim(), "linux");
    eprintln!(
        "docker version over vsock: {:.2} s after QEMU start ({:.0} ms for the call)",
        vm.started.elapsed().as_secs_f64(),
        t.elapsed().as_secs_f64() * 1000.0
    );
    let info = docker_ok(
        &vm,
        &fwd.sock,
        &config,
        &["info", "--format", "{{.CgroupVersion}} {{.DockerRootDir}}"],
    );
    assert_eq!(info.trim(), "2 /var/lib/berth");

    // docker.io/library/busybox comes from the host's loopback registry through the mirror.
    let t = std::time::Instant::now();
    docker_ok(&vm, &fwd.sock, &config, &["pull", "busybox"]);
    eprintln!(
        "docker pull busybox in the VM: {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let t = std::time::Instant::now();
    let out = docker_ok(
        &vm,
        &fwd.sock,
        &config,
        &["run", "--rm", "busybox", "echo", "hello-from-the-vm"],
    );
    assert_eq!(out.trim(), "hello-from-the-vm");
    // The guest's cgroup2 is mounted with favordynmods (no RCU wait on each container start),
    // and containers get the seccomp filter from the guest's runc.
    let mounts = docker_ok(
        &vm,
        &fwd.sock,
        &config,
        &[
            "run",
            "--rm",
            "--privileged",
            "--pid",
            "host",
            "busybox",
            "grep",
            "cgroup2",
            "/proc/1/mounts",
        ],
    );
    assert!(mounts.contains("favordynmods"), "{mounts}");
    let run_rm = |args: &[&str]| {
        let mut full = vec!["run", "--rm", "busybox"];
        full.extend_from_slice(args);
        docker_ok(&vm, &fwd.sock, &config, &full)
    };
    let seccomp = run_rm(&["grep", "Seccomp:", "/proc/self/status"]);
    assert_eq!(seccomp.trim(), "Seccomp:\t2");
    // host.docker.internal reaches the host's loopback services, as with Docker Desktop.
    let (port, server) = serve_http_once("127.0.0.1");
    let url = format!("http://host.docker.internal:{port}/");
    assert_eq!(run_rm(&["wget", "-qO-", &url]), FROM_HOST);
    server.join().unwrap().expect("the container connected");
    eprintln!(
        "docker run --rm busybox echo: {:.2} s",
        t.elapsed().as_secs_f64()
    );
}
