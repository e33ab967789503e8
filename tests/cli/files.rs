//! `docker cp`, `docker diff` and `docker export`.

use std::path::Path;
use std::process::Command;

use berth_test_support::Engine;

fn run_sleeper(e: &Engine, name: &str, extra: &[&str]) {
    let mut args = vec!["run", "-d", "--name", name, "--network=none"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "sleep", "1000"]);
    e.docker_ok(&args);
}

/// Names in a tar stream, via the host's `tar`.
fn tar_names(data: &[u8]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("t.tar");
    std::fs::write(&f, data).unwrap();
    let out = Command::new("tar").arg("-tf").arg(&f).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim_end_matches('/').to_string())
        .collect()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn cp_in_and_out_of_a_running_container() {
    let e = Engine::start();
    run_sleeper(&e, "rc", &[]);
    let s = e.scratch();
    std::fs::write(s.join("in.txt"), "hello\n").unwrap();
    std::fs::create_dir_all(s.join("dir/sub")).unwrap();
    std::fs::write(s.join("dir/sub/b"), "deep\n").unwrap();
    let p = |n: &str| s.join(n).display().to_string();

    e.docker_ok(&["cp", &p("in.txt"), "rc:/tmp/"]);
    assert_eq!(
        e.docker_ok(&["exec", "rc", "cat", "/tmp/in.txt"]),
        "hello\n"
    );
    // A directory under a new name, then back out.
    e.docker_ok(&["cp", &p("dir"), "rc:/tmp/d2"]);
    assert_eq!(
        e.docker_ok(&["exec", "rc", "cat", "/tmp/d2/sub/b"]),
        "deep\n"
    );
    e.docker_ok(&["cp", "rc:/tmp/d2", &p("out")]);
    assert_eq!(read(&s.join("out/sub/b")), "deep\n");
    // Contents of a directory (`/.`) into an existing one.
    std::fs::create_dir_all(s.join("flat")).unwrap();
    e.docker_ok(&["cp", "rc:/tmp/d2/.", &p("flat")]);
    assert_eq!(read(&s.join("flat/sub/b")), "deep\n");
    // A tar stream out (`-`) and in.
    let out = e.docker(&["cp", "rc:/tmp/d2", "-"]);
    assert!(out.status.success());
    assert_eq!(tar_names(&out.stdout), vec!["d2", "d2/sub", "d2/sub/b"]);
    let tar = Command::new("tar")
        .args(["-cf", "-", "-C"])
        .arg(s)
        .arg("in.txt")
        .output()
        .unwrap();
    let put = e.docker_stdin(&["cp", "-", "rc:/root"], &tar.stdout);
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );
    assert_eq!(
        e.docker_ok(&["exec", "rc", "cat", "/root/in.txt"]),
        "hello\n"
    );
    // Errors.
    let err = e.docker_err(&["cp", "rc:/nonexistent", &p("x")]);
    assert!(
        err.contains("Could not find the file /nonexistent in container rc"),
        "{err}"
    );
    let err = e.docker_err(&["cp", &p("in.txt"), "rc:/nodir/sub/x"]);
    assert!(
        err.contains("Could not find the file /nodir/sub in container rc"),
        "{err}"
    );
}

#[test]
fn cp_works_on_created_and_exited_containers() {
    let e = Engine::start();
    let s = e.scratch();
    std::fs::write(s.join("in.txt"), "before start\n").unwrap();
    let p = |n: &str| s.join(n).display().to_string();
    e.docker_ok(&[
        "create",
        "--name",
        "cc",
        "--network=none",
        "-v",
        "vol:/data",
        "busybox",
        "cat",
        "/in.txt",
        "/data/in.txt",
    ]);
    e.docker_ok(&["cp", &p("in.txt"), "cc:/in.txt"]);
    e.docker_ok(&["cp", &p("in.txt"), "cc:/data/"]);
    assert_eq!(
        e.docker_ok(&["start", "-a", "cc"]),
        "before start\nbefore start\n"
    );
    // The copy into /data went to the volume.
    let v = e.docker_ok(&[
        "run",
        "--rm",
        "--network=none",
        "-v",
        "vol:/v",
        "busybox",
        "cat",
        "/v/in.txt",
    ]);
    assert_eq!(v, "before start\n");
    // Out of an exited container; its rootfs is mounted only while copying.
    e.docker_ok(&[
        "run",
        "--name",
        "xc",
        "--network=none",
        "busybox",
        "sh",
        "-c",
        "echo made > /made",
    ]);
    e.docker_ok(&["cp", "xc:/made", &p("made")]);
    assert_eq!(read(&s.join("made")), "made\n");
    let rootfs = e.data_root().join("containers");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&rootfs.display().to_string()),
        "a container rootfs stayed mounted"
    );
    // The container starts again after the copies.
    e.docker_ok(&["start", "xc"]);
}

#[test]
fn cp_resolves_symlinks_inside_the_container() {
    let e = Engine::start();
    run_sleeper(&e, "rc", &[]);
    e.docker_ok(&[
        "exec",
        "rc",
        "sh",
        "-c",
        "echo 'inside:x:0:0::/:/bin/sh' > /etc/passwd && ln -s /etc/passwd /tmp/pw && ln -s ../../../../../.. /tmp/up && ln -s /etc /tmp/etc",
    ]);
    let s = e.scratch();
    let p = |n: &str| s.join(n).display().to_string();
    // A symlink is copied as a link unless followed (-L); either way inside the container.
    e.docker_ok(&["cp", "-L", "rc:/tmp/pw", &p("pw")]);
    assert_eq!(read(&s.join("pw")), "inside:x:0:0::/:/bin/sh\n");
    e.docker_ok(&["cp", "rc:/tmp/pw", &p("pwlink")]);
    assert_eq!(
        std::fs::read_link(s.join("pwlink")).unwrap(),
        Path::new("/etc/passwd")
    );
    e.docker_ok(&["cp", "rc:/tmp/up/etc/passwd", &p("up")]);
    assert_eq!(read(&s.join("up")), "inside:x:0:0::/:/bin/sh\n");
    // Writes through the links land in the container.
    let unique = format!("berth-cp-escape-{}", std::process::id());
    std::fs::write(s.join(&unique), "x").unwrap();
    e.docker_ok(&["cp", &p(&unique), "rc:/tmp/etc/"]);
    e.docker_ok(&["cp", &p(&unique), "rc:/tmp/up/tmp/up/"]);
    assert!(!Path::new("/etc").join(&unique).exists());
    assert!(!Path::new("/").join(&unique).exists());
    e.docker_ok(&["exec", "rc", "test", "-f", &format!("/etc/{unique}")]);
    // A tar entry below a symlinked directory follows it, inside the container.
    std::fs::create_dir_all(s.join("t/etc")).unwrap();
    std::fs::write(s.join("t/etc").join(&unique), "via link").unwrap();
    let tar = Command::new("tar")
        .args(["-cf", "-", "-C"])
        .arg(s.join("t"))
        .arg(format!("etc/{unique}"))
        .output()
        .unwrap();
    std::fs::remove_file(s.join("t/etc").join(&unique)).unwrap();
    let put = e.docker_stdin(&["cp", "-", "rc:/tmp"], &tar.stdout);
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );
    assert_eq!(
        e.docker_ok(&["exec", "rc", "cat", &format!("/etc/{unique}")]),
        "via link"
    );
    assert!(!Path::new("/etc").join(&unique).exists());
    e.docker_ok(&["exec", "rc", "test", "-f", &format!("/{unique}")]);
}

#[test]
fn cp_into_a_read_only_container_is_refused() {
    let e = Engine::start();
    run_sleeper(&e, "ro", &["--read-only", "-v", "rw:/data"]);
    let s = e.scratch();
    std::fs::write(s.join("f"), "x").unwrap();
    let f = s.join("f").display().to_string();
    let err = e.docker_err(&["cp", &f, "ro:/tmp/"]);
    assert!(
        err.contains("container rootfs is marked read-only"),
        "{err}"
    );
    // Volumes stay writable.
    e.docker_ok(&["cp", &f, "ro:/data/"]);
    assert_eq!(e.docker_ok(&["exec", "ro", "cat", "/data/f"]), "x");
}

/// The bug: a read-only volume of a container that is not running could not be mounted for
/// `docker cp` (the remount named the directory under the new bind mount: EINVAL).
#[test]
fn cp_reads_a_read_only_volume_of_a_created_container() {
    let e = Engine::start();
    e.docker_ok(&[
        "run",
        "--rm",
        "--network=none",
        "-v",
        "rov:/v",
        "busybox",
        "sh",
        "-c",
        "echo kept > /v/f",
    ]);
    e.docker_ok(&[
        "create",
        "--name",
        "roc",
        "--network=none",
        "-v",
        "rov:/data:ro",
        "busybox",
    ]);
    let s = e.scratch();
    let out = s.join("f").display().to_string();
    e.docker_ok(&["cp", "roc:/data/f", &out]);
    assert_eq!(read(&s.join("f")), "kept\n");
    let err = e.docker_err(&["cp", &out, "roc:/data/g"]);
    assert!(err.contains("marked read-only"), "{err}");
}

#[test]
fn diff_and_export_show_the_container_layer() {
    let e = Engine::start();
    e.docker_ok(&[
        "run",
        "--name",
        "chg",
        "--network=none",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /new/sub && echo n > /new/sub/f && echo changed >> /etc/passwd && rm /bin/vi",
    ]);
    let out = e.docker_ok(&["diff", "chg"]);
    let lines: Vec<&str> = out.lines().collect();
    for want in [
        "C /bin",
        "D /bin/vi",
        "C /etc",
        "C /etc/passwd",
        "A /new",
        "A /new/sub",
        "A /new/sub/f",
    ] {
        assert!(lines.contains(&want), "missing {want:?} in:\n{out}");
    }
    assert!(!out.contains("/etc/hosts"), "{out}");
    let (status, body) = e.api("GET", "/containers/chg/changes", None);
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    berth_test_support::assert_response("GET", "/containers/{id}/changes", 200, &v);

    // Export: the merged root, from the stopped container.
    let tar = e.scratch().join("chg.tar");
    e.docker_ok(&["export", "-o", &tar.display().to_string(), "chg"]);
    let names = tar_names(&std::fs::read(&tar).unwrap());
    for want in ["new/sub/f", "etc/passwd", "bin/sh"] {
        assert!(names.iter().any(|n| n == want), "{want} not in export");
    }
    assert!(
        !names.iter().any(|n| n == "bin/vi"),
        "deleted file exported"
    );
    let x = e.scratch().join("x");
    std::fs::create_dir_all(&x).unwrap();
    let st = Command::new("tar")
        .arg("-xf")
        .arg(&tar)
        .arg("-C")
        .arg(&x)
        .args(["etc/passwd", "new/sub/f"])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(read(&x.join("etc/passwd")).ends_with("changed\n"));
    assert_eq!(read(&x.join("new/sub/f")), "n\n");
    // A running container exports too, without its volumes.
    run_sleeper(&e, "live", &["-v", "vol:/data"]);
    e.docker_ok(&[
        "exec",
        "live",
        "sh",
        "-c",
        "echo v > /data/inside && echo r > /root/f",
    ]);
    let out = e.docker(&["export", "live"]);
    assert!(out.status.success());
    let names = tar_names(&out.stdout);
    assert!(names.iter().any(|n| n == "root/f"));
    assert!(!names.iter().any(|n| n == "data/inside"));
}
