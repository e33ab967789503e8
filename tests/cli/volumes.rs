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
