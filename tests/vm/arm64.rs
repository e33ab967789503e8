//! The arm64 guest (`vm-image/build.sh --arch arm64`) booted by `berth start` under TCG on this
//! x86-64 host (`qemu-system-aarch64 -M virt -cpu max`, the kernel `Image` loaded directly),
//! then the REAL docker CLI through the forwarded socket: the engine says arm64, an image of
//! Debian's arm64 busybox goes in with `docker import`, a container of it runs and exits with
//! its code, and `berth stop` powers the guest off.
//!
//! Opt-in (`#[ignore]`): emulating another architecture takes minutes (docs/vm-image.md);
//! `scripts/test-vm-arm64.sh` builds the image and runs it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::host::{alive, assert_start_phases_in_order, Berth};

/// Debian's arm64 busybox-static, from the packages `build.sh --arch arm64` downloaded next to
/// the image (`<cache>/arm64/debs`), as a one-layer root filesystem tarball in `dir`.
fn arm64_busybox_tar(image_dir: &Path, dir: &Path) -> PathBuf {
    let debs = image_dir.parent().unwrap().join("debs");
    let deb = std::fs::read_dir(&debs)
        .unwrap_or_else(|e| panic!("{}: {e}", debs.display()))
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("busybox-static_") && n.ends_with("_arm64.deb"))
        })
        .unwrap_or_else(|| panic!("no arm64 busybox-static in {}", debs.display()));
    let root = dir.join("root");
    let st = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&root)
        .status()
        .unwrap();
    assert!(st.success(), "dpkg-deb -x {}", deb.display());
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
    let tar = dir.join("busybox-arm64.tar");
    let st = Command::new("tar")
        .arg("-cf")
        .arg(&tar)
        .arg("-C")
        .arg(&root)
        .args(["--owner=0", "--group=0", "bin"])
        .status()
        .unwrap();
    assert!(st.success(), "tar of the arm64 busybox");
    tar
}

#[test]
#[ignore = "opt-in, minutes under TCG: scripts/test-vm-arm64.sh"]
fn arm64_guest_runs_a_container_under_tcg() {
    let image = crate::qemu::arm64_image_dir();
    let b = Berth::with_image(&[], &image);

    let t = Instant::now();
    let out = b.berth_ok(&["start", "--timeout", "900", "-v"]);
    eprintln!(
        "figure: arm64 under TCG, berth start -> Docker API ready: {:?}\n{out}",
        t.elapsed()
    );
    assert_start_phases_in_order(&out);
    let arch = b.docker_ok(&["version", "--format", "{{.Server.Arch}}"]);
    assert_eq!(arch.trim(), "arm64");
    let arch = b.docker_ok(&["info", "--format", "{{.Architecture}}"]);
    assert_eq!(arch.trim(), "aarch64");

    // An arm64 image in through the socket, then a container of it: uname from inside, and
    // the container's own exit code back through `docker run`.
    let t = Instant::now();
    let tar = arm64_busybox_tar(&image, b.home.path());
    b.docker_ok(&["import", tar.to_str().unwrap(), "berth-arm64/busybox:test"]);
    let o = b.docker(&[
        "run",
        "--rm",
        "berth-arm64/busybox:test",
        "/bin/sh",
        "-c",
        "uname -m; exit 7",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "aarch64",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(7), "{o:?}");
    let listed = b.docker_ok(&["ps", "-a", "--format", "{{.Image}}"]);
    assert!(listed.trim().is_empty(), "--rm left {listed}");
    eprintln!("figure: arm64 import + run under TCG: {:?}", t.elapsed());

    let qemu = b.pid("qemu").expect("qemu pid file");
    b.berth_ok(&["stop"]);
    assert!(!alive(qemu), "QEMU {qemu} still runs after berth stop");
}
