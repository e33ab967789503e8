//! Boot checks of the guest's PID 1: first boot formats the data disk, the engine reaches
//! "API listen", the mounts, cgroups, DNS and host gateway are set, orphans are reaped, a killed
//! engine is restarted, the power button powers off cleanly, and a second boot keeps the disk.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use berth_test_support::wait_until;

use crate::qemu::{create_disk, Vm};

/// Generous for TCG on a shared 2-core machine (a boot takes 4–7 s there).
const BOOT: Duration = Duration::from_secs(90);
const CMD: Duration = Duration::from_secs(20);
/// Shell line printing the engine's command line (the berth-agent that is not PID 1).
const ENGINE_ARGS: &str =
    "for p in $(pidof berth-agent); do [ $p = 1 ] || tr '\\0' ' ' </proc/$p/cmdline; done; echo";

/// Serves `pong` to every HTTP request on 127.0.0.1; returns the port.
fn pong_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\npong");
        }
    });
    port
}

#[test]
fn boot_formats_data_disk_once_and_powers_off_cleanly() {
    let _serial = crate::qemu::serial();
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("data.qcow2");
    create_disk(&disk, "4G");
    let port = pong_server();
    let mirror = format!("http://10.0.2.2:{port}");

    // First boot: empty disk.
    let mut vm = Vm::boot(
        dir.path(),
        &disk,
        &format!("berth.debug_shell=1 berth.registry_mirror={mirror}"),
    );
    vm.expect("data disk mounted at /var/lib/berth (formatted", BOOT);
    let ready = vm.expect("API listen", BOOT);
    eprintln!(
        "first boot: QEMU start -> API listen {:.2} s",
        ready.as_secs_f64()
    );
    let console = vm.console();
    assert!(
        console.find("data disk mounted").unwrap() < console.find("API listen").unwrap(),
        "the engine started before the data disk was mounted:\n{console}"
    );

    let controllers = vm.shell("cat /sys/fs/cgroup/cgroup.subtree_control", "cg", CMD);
    for c in ["cpu", "memory", "pids", "io"] {
        assert!(
            controllers.split_whitespace().any(|w| w == c),
            "cgroup controllers: {controllers}"
        );
    }
    let mounts = vm.shell("cat /proc/mounts", "mnt", CMD);
    for m in [
        " /var/lib/berth ext4 ",
        " /sys/fs/cgroup cgroup2 ",
        " /run tmpfs ",
        " /dev/pts devpts ",
    ] {
        assert!(mounts.contains(m), "{m:?} not mounted:\n{mounts}");
    }
    let resolv = vm.shell("cat /etc/resolv.conf", "dns", CMD);
    assert!(resolv.contains("nameserver 10.0.2.3"), "{resolv}");
    let socket = vm.shell(
        "test -S /run/berth/engine.sock && echo socket-ok",
        "sock",
        CMD,
    );
    assert!(socket.contains("socket-ok"), "{socket}");

    // The host's 127.0.0.1 through slirp's gateway (item 9: registries on the host's loopback).
    let pong = vm.shell(&format!("wget -qO- {mirror}/v2/"), "gw", CMD);
    assert!(
        pong.contains("pong"),
        "host loopback not reachable from the guest: {pong}"
    );
    // The mirror from the command line reaches the engine, and counts as insecure.
    let args = vm.shell(ENGINE_ARGS, "args", CMD);
    assert!(
        args.contains(&format!("--registry-mirror {mirror}")),
        "{args}"
    );
    assert!(
        args.contains(&format!("--insecure-registry 10.0.2.2:{port}")),
        "{args}"
    );
    assert!(args.contains("--data-root /var/lib/berth"), "{args}");

    // Orphans are reparented to PID 1 and reaped.
    let zombies = vm.shell(
        "(sleep 0.3 &); sleep 1.5; ps -o pid,stat | grep -c ' Z' || true",
        "zomb",
        CMD,
    );
    assert_eq!(zombies.trim(), "0", "zombies left: {zombies}");

    // A dead engine is restarted and serves again.
    vm.shell(
        "for p in $(pidof berth-agent); do [ $p = 1 ] || kill -9 $p; done",
        "kill",
        CMD,
    );
    vm.expect("engine restarts in 1 s", CMD);
    let relisten = wait_until(BOOT, || vm.console().matches("API listen").count() >= 2);
    assert!(relisten, "the engine was not restarted:\n{}", vm.console());

    vm.shell(
        "echo kept > /var/lib/berth/vm-test-marker; echo '{}' > /var/lib/berth/daemon.json",
        "mark",
        CMD,
    );
    let off = vm.power_off(Duration::from_secs(60));
    eprintln!("power button -> QEMU exit {:.2} s", off.as_secs_f64());
    let console = vm.console();
    assert!(console.contains("data disk unmounted"), "{console}");
    drop(vm);

    // Second boot: the disk is kept.
    let mut vm = Vm::boot(dir.path(), &disk, "berth.debug_shell=1");
    vm.expect("data disk mounted at /var/lib/berth (existing", BOOT);
    let ready = vm.expect("API listen", BOOT);
    eprintln!(
        "second boot: QEMU start -> API listen {:.2} s",
        ready.as_secs_f64()
    );
    assert!(!vm.console().contains("formatting"), "{}", vm.console());
    let marker = vm.shell("cat /var/lib/berth/vm-test-marker", "keep", CMD);
    assert_eq!(marker.trim(), "kept");
    // A daemon.json on the data disk is handed to the engine.
    let args = vm.shell(ENGINE_ARGS, "args2", CMD);
    assert!(
        args.contains("--config-file /var/lib/berth/daemon.json"),
        "{args}"
    );
    vm.power_off(Duration::from_secs(60));
}
