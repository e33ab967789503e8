//! Shared folders over 9P (`"share_transport": "9p"`): the host's own 9P server
//! (`berth_host::ninep`) mounted by the guest kernel's 9p client, the way Windows hosts share
//! folders, checked here through the real VM and the docker CLI: over a vsock connection, and
//! over Windows' whole transport run on Linux (`"guest_ports": "virtio-serial"`: every guest
//! port and each share a virtio-serial port, `berth_host::vm::serial`).

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::host::{set_config, Berth};

#[test]
fn a_folder_shared_over_9p_is_read_written_and_changed_from_a_container() {
    let b = Berth::pulling_from_test_registry();
    set_config(&b, "share_transport", serde_json::json!("9p"));
    b.berth_ok(&["start", "--timeout", "240"]);
    assert_the_share_is_mounted_without_virtiofsd(&b);
    check_the_share_both_ways(&b);
    b.berth_ok(&["stop"]);
}

/// The Windows back-end's transport in a real VM: no vsock device and no vhost-device-vsock;
/// the docker CLI reaches the engine over the Docker API's virtio-serial port, and the share
/// is served on a port of its own.
#[test]
fn windows_guest_ports_over_virtio_serial_carry_docker_and_a_9p_share() {
    let b = Berth::pulling_from_test_registry();
    set_config(&b, "guest_ports", serde_json::json!("virtio-serial"));
    set_config(&b, "share_transport", serde_json::json!("9p"));
    b.berth_ok(&["start", "--timeout", "240"]);
    assert!(
        b.pid("vhost-device-vsock").is_none(),
        "vhost-device-vsock ran for virtio-serial ports"
    );
    let qemu = b.pid("qemu").expect("qemu's pid file");
    let cmdline = std::fs::read(format!("/proc/{qemu}/cmdline")).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(!cmdline.contains("vhost-user-vsock"), "{cmdline}");
    for port in ["name=berth.2375", "name=berth.2376", "name=berth.2378.0"] {
        assert!(cmdline.contains(port), "{port} missing: {cmdline}");
    }
    assert_the_share_is_mounted_without_virtiofsd(&b);

    let out = b.docker_ok(&["run", "--rm", "busybox", "echo", "over virtio-serial"]);
    assert_eq!(out.trim(), "over virtio-serial");
    check_the_share_both_ways(&b);
    b.berth_ok(&["stop"]);
}

fn assert_the_share_is_mounted_without_virtiofsd(b: &Berth) {
    let st = b.berth_ok(&["status"]);
    assert!(
        st.contains(&b.share().display().to_string()),
        "share not mounted: {st}"
    );
    assert!(
        b.pid("virtiofsd-0").is_none(),
        "virtiofsd ran for a 9p share"
    );
}

/// Host files read in a container (3 MiB byte for byte), a container's writes, renames, links,
/// modes and removals seen on the host, and a later host change seen in the next container.
fn check_the_share_both_ways(b: &Berth) {
    let share = b.share().to_path_buf();
    // A file the host wrote, 3 MiB of it, read back byte for byte (checksums on both sides).
    std::fs::write(share.join("in.txt"), "from-host").unwrap();
    let big: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(share.join("big.bin"), &big).unwrap();
    let host_sum = md5sum(&share.join("big.bin"));
    let vol = format!("{}:/data", share.display());
    let script = "set -e; cd /data; cat in.txt; echo; md5sum big.bin; \
        echo from-container > out.txt; chmod 600 out.txt; \
        mkdir -p d/e; echo x > d/e/f; mv d/e/f d/e/g; ln -s in.txt link; \
        dd if=/dev/zero of=zero bs=1M count=4 2>/dev/null; \
        mkdir gone; echo y > gone/h; rm gone/h; rmdir gone; \
        ls -a /data | sort | tr '\\n' ' '";
    let out = b.docker_ok(&["run", "--rm", "-v", &vol, "busybox", "sh", "-c", script]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first().copied(), Some("from-host"), "{out}");
    assert!(
        out.contains(&host_sum),
        "checksum differs in the guest: {out} vs {host_sum}"
    );
    assert!(
        lines
            .last()
            .is_some_and(|l| l.contains(". .. big.bin d in.txt link out.txt w zero")),
        "{out}"
    );

    // What the container did is on the host.
    assert_eq!(
        std::fs::read_to_string(share.join("out.txt")).unwrap(),
        "from-container\n"
    );
    let mode = std::fs::metadata(share.join("out.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(std::fs::read_to_string(share.join("d/e/g")).unwrap(), "x\n");
    assert!(!share.join("d/e/f").exists() && !share.join("gone").exists());
    assert_eq!(
        std::fs::read_link(share.join("link")).unwrap().to_str(),
        Some("in.txt")
    );
    assert_eq!(
        std::fs::metadata(share.join("zero")).unwrap().len(),
        4 << 20
    );

    // A host change after the mount is seen (no stale cache), and the share survives a second
    // container.
    std::fs::write(share.join("in.txt"), "changed").unwrap();
    let again = b.docker_ok(&[
        "run",
        "--rm",
        "-v",
        &vol,
        "busybox",
        "cat",
        "/data/in.txt",
        "/data/link",
    ]);
    assert_eq!(again, "changedchanged");
}

fn md5sum(p: &std::path::Path) -> String {
    let o = Command::new("md5sum").arg(p).output().unwrap();
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}
