//! `docker version`, `docker info`, API versioning and error shapes.

use berth_test_support::Engine;

#[test]
fn version_reports_api_1_50() {
    let e = Engine::start_offline();
    let v = e.docker_ok(&[
        "version",
        "--format",
        "{{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Server.Os}}",
    ]);
    assert_eq!(v.trim(), "1.50 1.24 linux");
}

#[test]
fn info_shows_inactive_swarm_and_cgroup_version() {
    let e = Engine::start_offline();
    let out = e.docker_ok(&[
        "info",
        "--format",
        "{{.Swarm.LocalNodeState}} {{.OSType}} {{.CgroupVersion}}",
    ]);
    let mut parts = out.split_whitespace();
    assert_eq!(parts.next(), Some("inactive"));
    assert_eq!(parts.next(), Some("linux"));
    assert!(matches!(parts.next(), Some("1" | "2")), "{out}");
}

#[test]
fn ping_has_docker_headers_on_head_and_get() {
    let e = Engine::start_offline();
    for method in ["GET", "HEAD"] {
        let out = std::process::Command::new("curl")
            .args(["-sS", "-i", "--unix-socket"])
            .arg(e.host().trim_start_matches("unix://"))
            .args(["--max-time", "10"])
            .args(if method == "HEAD" { vec!["-I"] } else { vec![] })
            .arg("http://d/_ping")
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
        assert!(text.starts_with("http/1.1 200"), "{method}: {text}");
        for h in [
            "api-version: 1.50",
            "ostype: linux",
            "builder-version:",
            "swarm: inactive",
        ] {
            assert!(text.contains(h), "{method} lacks {h}: {text}");
        }
    }
}

#[test]
fn versioned_paths_and_out_of_range_versions() {
    let e = Engine::start_offline();
    let (s, body) = e.api("GET", "/v1.24/version", None);
    assert_eq!(s, 200, "{body}");
    let (s, body) = e.api("GET", "/v1.12/version", None);
    assert_eq!(s, 400);
    assert!(
        body.contains("client version 1.12 is too old. Minimum supported API version is 1.24"),
        "{body}"
    );
    let (s, body) = e.api("GET", "/v1.99/version", None);
    assert_eq!(s, 400);
    assert!(
        body.contains("is too new. Maximum supported API version is 1.50"),
        "{body}"
    );
}

#[test]
fn unknown_paths_and_swarm_give_docker_errors() {
    let e = Engine::start_offline();
    let (s, body) = e.api("GET", "/v1.50/nope", None);
    assert_eq!(s, 404);
    let v: serde_json::Value = serde_json::from_str(&body).expect("json error body");
    assert_eq!(v["message"], "page not found");
    let err = e.docker_err(&["node", "ls"]);
    assert!(err.contains("This node is not a swarm manager"), "{err}");
    let (s, _) = e.api("POST", "/grpc", None);
    assert_eq!(
        s, 400,
        "BuildKit's endpoint without the h2c upgrade: an error, never a 101"
    );
    // Plugins: none installed, none installable.
    assert_eq!(e.docker_ok(&["plugin", "ls", "-q"]).trim(), "");
    let err = e.docker_err(&["plugin", "inspect", "vieux/sshfs:latest"]);
    assert!(
        err.contains("plugin \"vieux/sshfs:latest\" not found"),
        "{err}"
    );
    let (s, body) = e.api("POST", "/v1.50/plugins/pull?remote=x", Some("[]"));
    assert_eq!(s, 501, "{body}");
    assert!(body.contains("plugins are not supported"), "{body}");
}

#[test]
fn events_stream_replays_with_since_and_until() {
    let e = Engine::start_offline();
    // `docker events --since 0 --until now` ends by itself once history is replayed.
    let until = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 1
    );
    let out = e.docker(&["events", "--since", "0", "--until", &until]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn system_responses_match_dockers_spec() {
    let e = Engine::start_offline();
    for (path, spec_path) in [
        ("/version", "/version"),
        ("/info", "/info"),
        ("/system/df", "/system/df"),
    ] {
        let (s, body) = e.api("GET", &format!("/v1.50{path}"), None);
        assert_eq!(s, 200, "{path}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        berth_test_support::assert_response("GET", spec_path, 200, &v);
    }
}

#[test]
fn socket_is_0660_and_sigterm_shuts_down_cleanly() {
    use std::os::unix::fs::PermissionsExt;
    let mut e = Engine::start_offline();
    let mode = std::fs::metadata(e.socket()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    let status = e.stop().expect("engine exits on SIGTERM within 15 s");
    assert!(status.success(), "{status:?}");
    assert!(!e.socket().exists(), "socket removed at shutdown");
}

#[test]
fn config_file_keys_apply() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("daemon.json");
    std::fs::write(
        &cfg,
        r#"{"registry-mirrors":["http://127.0.0.1:1"],"insecure-registries":["myreg.test:5000"],
            "default-runtime":"runc-alt","runtimes":{"runc-alt":{"path":"runc"}},
            "log-level":"warn","log-opts":{"max-size":"1m","max-file":"2"}}"#,
    )
    .unwrap();
    let e = Engine::start_with(berth_test_support::EngineOptions {
        no_mirror: true,
        args: vec!["--config-file".into(), cfg.display().to_string()],
        ..Default::default()
    });
    let out = e.docker_ok(&[
        "info",
        "--format",
        "{{json .RegistryConfig.Mirrors}} {{.DefaultRuntime}}",
    ]);
    assert_eq!(out.trim(), r#"["http://127.0.0.1:1"] runc-alt"#);
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{not json").unwrap();
    let out = std::process::Command::new(berth_test_support::agent_bin())
        .args(["-H", &format!("unix://{}/x.sock", dir.path().display())])
        .args(["--data-root", &dir.path().join("d").display().to_string()])
        .args(["--config-file", &bad.display().to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid config file"),
        "{out:?}"
    );
}

#[test]
fn system_df_prune_and_ps_filters_read_like_dockerd() {
    let e = Engine::start();
    e.docker_ok(&["pull", "-q", "busybox"]);
    e.docker_ok(&["tag", "busybox", "copy:1"]);
    e.docker_ok(&[
        "run",
        "-d",
        "--name",
        "old",
        "--network",
        "none",
        "busybox",
        "sleep",
        "300",
    ]);
    e.docker_ok(&[
        "create",
        "--name",
        "mid",
        "--network",
        "none",
        "--expose",
        "9000",
        "-p",
        "127.0.0.1::80",
        "busybox",
    ]);
    e.docker_ok(&["create", "--name", "new", "--network", "none", "busybox"]);
    // df: the image used by containers is active and counts them; SharedSize is known.
    let (code, body) = e.api("GET", "/system/df", None);
    assert_eq!(code, 200, "{body}");
    let df: serde_json::Value = serde_json::from_str(&body).unwrap();
    let img = &df["Images"][0];
    assert_eq!(img["Containers"], 3, "{img}");
    assert_eq!(
        img["SharedSize"], 0,
        "one image, tagged twice: nothing shared"
    );
    assert_eq!(df["LayersSize"], img["Size"]);
    let out = e.docker_ok(&[
        "system",
        "df",
        "--format",
        "{{.Type}} {{.TotalCount}} {{.Active}}",
    ]);
    assert!(out.contains("Images 1 1"), "{out}");
    assert!(out.contains("Containers 3 1"), "{out}");
    // ps --size: SizeRootFs includes the image.
    let out = e.docker_ok(&["ps", "--size", "--format", "{{.Names}} {{.Size}}"]);
    assert!(out.starts_with("old 0B (virtual "), "{out}");
    // Filters: before/since/publish/expose; unknown keys are refused.
    let names = |f: &str| {
        e.docker_ok(&["ps", "-a", "--filter", f, "--format", "{{.Names}}"])
            .split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(names("before=new"), ["mid", "old"]);
    assert_eq!(names("since=old"), ["new", "mid"]);
    assert_eq!(names("publish=80"), ["mid"]);
    assert_eq!(names("publish=79-81/tcp"), ["mid"]);
    assert!(names("publish=80/udp").is_empty());
    assert_eq!(names("expose=9000"), ["mid"]);
    let err = e.docker_err(&["ps", "--filter", "colour=red"]);
    assert!(err.contains("invalid filter 'colour'"), "{err}");
    // builder prune and system prune answer like dockerd's (not 404).
    let out = e.docker_ok(&["builder", "prune", "-f"]);
    assert!(out.contains("Total reclaimed space: 0B"), "{out}");
    let out = e.docker_ok(&["system", "prune", "-f"]);
    assert!(out.contains("Total reclaimed space"), "{out}");
    assert_eq!(
        names("status=created").len(),
        0,
        "prune removed the stopped containers"
    );
    assert_eq!(names("status=running"), ["old"]);
}

/// `POST {path}` answered 200 with a body valid for the spec; returns the body.
fn prune(e: &Engine, path: &str) -> serde_json::Value {
    let (code, body) = e.api("POST", &format!("/v1.50{path}"), None);
    assert_eq!(code, 200, "{path}: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let spec_path = path.split('?').next().unwrap_or(path);
    berth_test_support::assert_response("POST", spec_path, 200, &v);
    v
}

/// A stopped container named `name` that wrote `bytes` bytes to its writable layer.
fn writer(e: &Engine, name: &str, bytes: u32) -> String {
    let cmd = format!("head -c {bytes} /dev/zero > /big");
    e.docker_ok(&[
        "run",
        "--network",
        "none",
        "--name",
        name,
        "busybox",
        "sh",
        "-c",
        &cmd,
    ]);
    e.docker_ok(&["inspect", "--format", "{{.Id}}", name])
        .trim()
        .to_string()
}

#[test]
fn prune_reports_what_it_freed_like_dockerd() {
    let e = Engine::start();
    e.docker_ok(&["pull", "-q", "busybox"]);
    // Nothing to prune: dockerd's shapes, `null` lists.
    let v = prune(&e, "/containers/prune");
    assert_eq!(
        v,
        serde_json::json!({"ContainersDeleted": null, "SpaceReclaimed": 0})
    );
    let v = prune(&e, "/images/prune");
    assert_eq!(
        v,
        serde_json::json!({"ImagesDeleted": null, "SpaceReclaimed": 0})
    );
    let v = prune(&e, "/networks/prune");
    assert_eq!(v, serde_json::json!({"NetworksDeleted": null}));
    let v = prune(&e, "/volumes/prune");
    assert_eq!(
        v,
        serde_json::json!({"VolumesDeleted": [], "SpaceReclaimed": 0})
    );
    // Containers: the bytes of their writable layers.
    let id = writer(&e, "w1", 1_000_000);
    let v = prune(&e, "/containers/prune");
    assert_eq!(v["ContainersDeleted"], serde_json::json!([id]));
    assert_eq!(v["SpaceReclaimed"], 1_000_000);
    // Images: the layers no other image shares (the commit's own layer, not busybox's).
    writer(&e, "w2", 300_000);
    let image = e.docker_ok(&["commit", "w2"]);
    e.docker_ok(&["rm", "w2"]);
    let v = prune(&e, "/images/prune");
    assert_eq!(
        v["ImagesDeleted"],
        serde_json::json!([{"Deleted": image.trim()}])
    );
    assert_eq!(v["SpaceReclaimed"], 300_000);
    let size = e.docker_ok(&["image", "inspect", "--format", "{{.Size}}", "busybox"]);
    let filters = "%7B%22dangling%22%3A%5B%22false%22%5D%7D";
    let v = prune(&e, &format!("/images/prune?filters={filters}"));
    assert_eq!(v["SpaceReclaimed"].to_string(), size.trim(), "{v}");
    // Volumes: their data.
    e.docker_ok(&["volume", "create", "v1"]);
    e.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "v1:/v",
        "busybox",
        "sh",
        "-c",
        "head -c 500000 /dev/zero > /v/f",
    ]);
    let v = prune(
        &e,
        "/volumes/prune?filters=%7B%22all%22%3A%5B%22true%22%5D%7D",
    );
    assert_eq!(
        v,
        serde_json::json!({"VolumesDeleted": ["v1"], "SpaceReclaimed": 500_000})
    );
}
