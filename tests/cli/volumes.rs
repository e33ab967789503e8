//! `docker volume` tests and volume mounts.

use berth_test_support::Engine;

#[test]
fn volumes_create_share_and_remove() {
    let e = Engine::start();
    e.docker_ok(&["volume", "create", "--label", "k=v", "data"]);
    let ls = e.docker_ok(&["volume", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    assert_eq!(ls.trim(), "data local");
    let mp = e.docker_ok(&[
        "volume",
        "inspect",
        "--format",
        "{{.Mountpoint}} {{.Labels.k}}",
        "data",
    ]);
    assert!(mp.trim().ends_with("/_data v"), "{mp}");
    e.docker_ok(&[
        "run",
        "--rm",
        "--network=none",
        "-v",
        "data:/data",
        "busybox",
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    let out = e.docker_ok(&[
        "run",
        "--name",
        "reader",
        "--network=none",
        "-v",
        "data:/d:ro",
        "busybox",
        "cat",
        "/d/f",
    ]);
    assert_eq!(out, "kept\n");
    let err = e.docker_err(&["volume", "rm", "data"]);
    assert!(err.contains("volume is in use"), "{err}");
    // Host bind mounts.
    let host = e.scratch().join("bind");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("h"), "host\n").unwrap();
    let spec = format!("{}:/h", host.display());
    assert_eq!(
        e.docker_ok(&[
            "run",
            "--rm",
            "--network=none",
            "-v",
            &spec,
            "busybox",
            "cat",
            "/h/h"
        ]),
        "host\n"
    );
    e.docker_ok(&["rm", "-v", "reader"]);
    e.docker_ok(&["volume", "rm", "data"]);
    let err = e.docker_err(&["volume", "inspect", "data"]);
    assert!(err.contains("no such volume"), "{err}");
    e.docker_ok(&["volume", "create", "junk"]);
    let out = e.docker_ok(&["volume", "prune", "-a", "-f"]);
    assert!(out.contains("junk"), "{out}");
}

#[test]
fn anonymous_volumes_go_with_rm_v() {
    let e = Engine::start();
    e.docker_ok(&[
        "run",
        "--name",
        "anon",
        "--network=none",
        "-v",
        "/data",
        "--mount",
        "type=volume,target=/more",
        "busybox",
        "sh",
        "-c",
        "touch /data/a /more/b",
    ]);
    let vols = e.docker_ok(&["volume", "ls", "-q"]);
    assert_eq!(vols.lines().count(), 2, "{vols}");
    let mounts = e.docker_ok(&[
        "inspect",
        "--format",
        "{{range .Mounts}}{{.Type}}:{{.Destination}} {{end}}",
        "anon",
    ]);
    assert!(
        mounts.contains("volume:/data") && mounts.contains("volume:/more"),
        "{mounts}"
    );
    e.docker_ok(&["rm", "-v", "anon"]);
    assert_eq!(e.docker_ok(&["volume", "ls", "-q"]).trim(), "");
}

#[test]
fn new_volume_gets_image_content() {
    let e = Engine::start();
    // busybox's /etc is copied into a fresh volume mounted there; an existing volume is kept.
    let with_etcvol = |cmd: &[&str]| {
        let mut args = vec![
            "run",
            "--rm",
            "--network=none",
            "-v",
            "etcvol:/etc",
            "busybox",
        ];
        args.extend_from_slice(cmd);
        e.docker_ok(&args)
    };
    let out = with_etcvol(&["cat", "/etc/passwd"]);
    assert!(out.starts_with("root:"), "{out}");
    with_etcvol(&["sh", "-c", "echo mine > /etc/passwd"]);
    let out = with_etcvol(&["cat", "/etc/passwd"]);
    assert_eq!(out, "mine\n");
}

#[test]
fn tmpfs_mounts() {
    let e = Engine::start();
    let out = e.docker_ok(&[
        "run", "--rm", "--network=none", "--read-only", "--tmpfs", "/scratch:size=1m",
        "--mount", "type=tmpfs,target=/t2,tmpfs-size=2097152", "busybox", "sh", "-c",
        "echo x > /scratch/f && echo x > /t2/f && df -k /scratch /t2 | tail -2 | awk '{print $1, $2}'",
    ]);
    assert_eq!(out, "tmpfs 1024\ntmpfs 2048\n");
}

/// Bind sources typed as Windows paths (what the docker CLI and compose send from a Windows
/// host) are found where the VM shares that drive (`--windows-drives`, /mnt/host in the VM),
/// with `-v` and `--mount`; an unshared drive is refused (a one-letter volume name staying a
/// volume is the parser's unit test: the docker CLI itself reads `-v c:/data` otherwise).
#[test]
fn windows_bind_sources_are_found_on_their_shared_drive() {
    let drives = tempfile::tempdir().unwrap();
    let src = drives.path().join("c/Users/me/src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), "from C:\n").unwrap();
    let e = Engine::start_with(berth_test_support::EngineOptions {
        args: vec![
            "--windows-drives".into(),
            drives.path().display().to_string(),
        ],
        ..Default::default()
    });
    let read = |mount: &[&str]| {
        let mut args = vec!["run", "--rm", "--network=none"];
        args.extend_from_slice(mount);
        args.extend_from_slice(&["busybox", "sh", "-c", "cat /app/f && echo w > /app/g"]);
        e.docker_ok(&args)
    };
    assert_eq!(read(&["-v", r"C:\Users\me\src:/app"]), "from C:\n");
    assert_eq!(std::fs::read_to_string(src.join("g")).unwrap(), "w\n");
    assert_eq!(
        read(&["--mount", r"type=bind,source=c:/Users/me/src,target=/app"]),
        "from C:\n"
    );
    let err = e.docker_err(&["run", "--rm", "-v", r"D:\x:/app", "busybox", "true"]);
    assert!(err.contains("no folder of drive D: is shared"), "{err}");
    assert!(!drives.path().join("d").exists());
}
