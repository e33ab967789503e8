//! `docker` CLI tests: images (pull through the mirror, list, inspect, history, tag, rmi,
//! prune, login, persistence across restarts).

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_test_support::{repo_root, Engine, Registry};

fn lines(s: &str) -> Vec<String> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// Pulls busybox through the mirror and returns its image id (`sha256:…`).
fn pull_busybox(e: &Engine) -> String {
    e.docker_ok(&["pull", "-q", "busybox"]);
    let id = e.docker_ok(&["image", "inspect", "--format", "{{.Id}}", "busybox"]);
    id.trim().to_string()
}

fn tags(e: &Engine, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["images", "--format", "{{.Repository}}:{{.Tag}}"];
    args.extend_from_slice(extra);
    let mut l = lines(&e.docker_ok(&args));
    l.sort();
    l
}

#[test]
fn pull_busybox_through_mirror_then_up_to_date() {
    let e = Engine::start();
    let out = e.docker_ok(&["pull", "busybox"]);
    for want in [
        "latest: Pulling from library/busybox",
        ": Pull complete",
        "Digest: sha256:",
        "Status: Downloaded newer image for busybox:latest",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    assert_eq!(tags(&e, &[]), ["busybox:latest"]);
    let again = e.docker_ok(&["pull", "busybox"]);
    assert!(
        again.contains("Status: Image is up to date for busybox:latest"),
        "{again}"
    );
    // The pull shows up as an image event.
    let ev = e.past_events("type=image", "{{.Action}} {{.Actor.ID}}");
    assert!(ev.contains("pull busybox:latest"), "{ev}");
}

#[test]
fn unknown_images_fail_with_the_registry_text() {
    let e = Engine::start();
    let err = e.docker_err(&["pull", "busybox:nope"]);
    assert!(
        err.contains("manifest for busybox:nope not found: manifest unknown: manifest unknown"),
        "{err}"
    );
    let err = e.docker_err(&["image", "inspect", "nope"]);
    assert!(err.contains("No such image: nope"), "{err}");
    let (status, body) = e.api(
        "POST",
        "/v1.50/images/create?fromImage=busybox&tag=nope",
        None,
    );
    assert_eq!(status, 404, "{body}");
}

#[test]
fn inspect_and_history_have_dockers_shape() {
    let e = Engine::start();
    e.docker_ok(&["pull", "-q", "busybox"]);
    let out = e.docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}}|{{.Os}}/{{.Architecture}}|{{index .RepoTags 0}}|{{.GraphDriver.Name}}|{{.RootFS.Type}}|{{len .RootFS.Layers}}|{{.Config.Cmd}}|{{.Metadata.LastTagTime}}",
        "busybox",
    ]);
    let f: Vec<&str> = out.trim().split('|').collect();
    assert!(f[0].starts_with("sha256:") && f[0].len() == 71, "{out}");
    assert_eq!(
        &f[1..7],
        [
            "linux/amd64",
            "busybox:latest",
            "overlay2",
            "layers",
            "1",
            "[sh]"
        ]
    );
    // Never tagged here: Go's zero time (the CLI prints it typed or raw depending on version).
    assert!(f[7].starts_with("0001-01-01"), "{out}");
    // The id, a short id and the digest reference all name the image.
    let short = &f[0][7..19];
    let digest = e.docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{index .RepoDigests 0}}",
        short,
    ]);
    assert!(digest.trim().starts_with("busybox@sha256:"), "{digest}");
    let by_digest = e.docker_ok(&["image", "inspect", "--format", "{{.Id}}", digest.trim()]);
    assert_eq!(by_digest.trim(), f[0]);
    // Every layer in the list is an unpacked directory.
    let raw = e.docker_ok(&["image", "inspect", "busybox"]);
    let v: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let upper = v[0]["GraphDriver"]["Data"]["UpperDir"].as_str().unwrap();
    assert!(Path::new(upper).join("bin/busybox").is_file(), "{upper}");
    for key in [
        "Parent",
        "Comment",
        "Created",
        "DockerVersion",
        "Author",
        "Size",
    ] {
        assert!(v[0].get(key).is_some(), "inspect lacks {key}");
    }
    let hist = e.docker_ok(&[
        "history",
        "--format",
        "{{.ID}}|{{.CreatedBy}}|{{.Size}}",
        "busybox",
    ]);
    let rows = lines(&hist);
    assert!(!rows.is_empty(), "{hist}");
    assert!(rows[0].starts_with(short), "{hist}");
}

#[test]
fn tag_rmi_and_filters() {
    let e = Engine::start();
    let id = pull_busybox(&e);
    let id = id.as_str();
    e.docker_ok(&["tag", "busybox", "mybox:1"]);
    e.docker_ok(&["tag", "busybox", "localhost:5999/team/app:v2"]);
    assert_eq!(
        tags(&e, &[]),
        ["busybox:latest", "localhost:5999/team/app:v2", "mybox:1"]
    );
    assert_eq!(tags(&e, &["--filter", "reference=mybox"]), ["mybox:1"]);
    assert_eq!(
        tags(&e, &["--filter", "reference=*box:*"]),
        ["busybox:latest", "mybox:1"]
    );
    assert!(tags(&e, &["--filter", "dangling=true"]).is_empty());
    // Inspect by a name with a registry port and path.
    e.docker_ok(&["image", "inspect", "localhost:5999/team/app:v2"]);

    // By id with several repositories: refused unless forced.
    let err = e.docker_err(&["rmi", &id[7..19]]);
    assert!(
        err.contains(&format!(
            "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
            &id[7..19]
        )),
        "{err}"
    );
    // By name: untag only.
    let out = e.docker_ok(&["rmi", "mybox:1"]);
    assert_eq!(lines(&out), ["Untagged: mybox:1"]);
    let out = e.docker_ok(&["rmi", "busybox"]);
    assert!(out.contains("Untagged: busybox:latest"), "{out}");
    assert!(out.contains("Untagged: busybox@sha256:"), "{out}");
    assert!(!out.contains("Deleted"), "{out}");
    // The last name deletes the image and its layers.
    let out = e.docker_ok(&["rmi", "localhost:5999/team/app:v2"]);
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    assert!(tags(&e, &[]).is_empty());
    let layers = e.data_root().join("image/layers");
    let left: Vec<PathBuf> = std::fs::read_dir(&layers)
        .unwrap()
        .map(|d| d.unwrap().path())
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // Forced removal by id untags everything.
    e.docker_ok(&["pull", "-q", "busybox"]);
    e.docker_ok(&["tag", "busybox", "other:1"]);
    let out = e.docker_ok(&["rmi", "-f", &id[7..19]]);
    assert!(
        out.contains("Untagged: other:1") && out.contains("Deleted: sha256:"),
        "{out}"
    );
    assert!(tags(&e, &[]).is_empty());
}

#[test]
fn dangling_images_and_prune() {
    let e = Engine::start();
    e.docker_ok(&["pull", "-q", "hello-world"]);
    e.docker_ok(&["pull", "-q", "busybox"]);
    let hello = e.docker_ok(&["image", "inspect", "--format", "{{.Id}}", "hello-world"]);
    e.docker_ok(&["tag", "hello-world", "t:1"]);
    e.docker_ok(&["rmi", "hello-world"]);
    // Moving t:1 away leaves the hello-world image without any name.
    e.docker_ok(&["tag", "busybox", "t:1"]);
    let dangling = e.docker_ok(&["images", "-q", "--no-trunc", "--filter", "dangling=true"]);
    assert_eq!(lines(&dangling), [hello.trim()]);
    let out = e.docker_ok(&["image", "prune", "-f"]);
    assert!(out.contains(&format!("deleted: {}", hello.trim())), "{out}");
    assert_eq!(tags(&e, &[]), ["busybox:latest", "t:1"]);
    let out = e.docker_ok(&["image", "prune", "-a", "-f"]);
    assert!(out.contains("Total reclaimed space"), "{out}");
    assert!(tags(&e, &[]).is_empty());
}

#[test]
fn multilayer_pull_shares_layers_and_survives_restart() {
    let mut e = Engine::start();
    let reg = &Registry::shared().addr;
    e.docker_ok(&["pull", "-q", "busybox"]);
    let name = format!("{reg}/berth-test/multilayer");
    let out = e.docker_ok(&["pull", &name]);
    // The base layer is busybox's.
    assert!(out.contains(": Already exists"), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {name}:latest")),
        "{out}"
    );
    let n = e.docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{len .RootFS.Layers}}",
        &name,
    ]);
    assert_eq!(n.trim(), "7");
    let before = tags(&e, &[]);
    e.restart();
    assert_eq!(tags(&e, &[]), before);
    let again = e.docker_ok(&["pull", &name]);
    assert!(again.contains("Image is up to date"), "{again}");
    // Removing busybox keeps the shared base layer for the other image.
    e.docker_ok(&["rmi", "busybox"]);
    let raw = e.docker_ok(&["image", "inspect", &name]);
    let v: serde_json::Value = serde_json::from_str(&raw).unwrap();
    for l in v[0]["RootFS"]["Layers"].as_array().unwrap() {
        let hex = l.as_str().unwrap().trim_start_matches("sha256:");
        assert!(
            e.data_root().join("image/layers").join(hex).is_dir(),
            "{hex}"
        );
    }
}

/// A registry with auth started for one test, stopped on drop.
pub(crate) struct AuthRegistry {
    dir: PathBuf,
    pub(crate) addr: String,
}

impl AuthRegistry {
    /// Starts it with its state in `dir` (inside the test engine's scratch directory);
    /// `auth` is `["--htpasswd", "u:p"]`, `["--token", "u:p"]` or empty.
    pub(crate) fn start(dir: PathBuf, auth: &[&str]) -> Self {
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new("python3")
            .arg(repo_root().join("tests/fixtures/registry.py"))
            .args(["start", "--dir"])
            .arg(&dir)
            .args(auth)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let addr = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap()
            .trim()
            .to_string();
        Self { dir, addr }
    }

    /// Copies busybox from the shared registry to `team/busybox:latest`.
    pub(crate) fn with_busybox(self, creds: Option<&str>) -> Self {
        let shared = &Registry::shared().addr;
        let mut copy = Command::new("skopeo");
        copy.args([
            "copy",
            "-q",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ]);
        if let Some(c) = creds {
            copy.args(["--dest-creds", c]);
        }
        let out = copy
            .arg(format!("docker://{shared}/library/busybox:latest"))
            .arg(format!("docker://{}/team/busybox:latest", self.addr))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        self
    }

    /// The file holding a blob in the registry's storage.
    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for AuthRegistry {
    fn drop(&mut self) {
        let _ = Command::new("python3")
            .arg(repo_root().join("tests/fixtures/registry.py"))
            .args(["stop", "--dir"])
            .arg(&self.dir)
            .status();
    }
}

#[test]
fn login_and_authenticated_pull_basic_and_token() {
    let e = Engine::start();
    for (mode, user, pass) in [
        ("--htpasswd", "alice", "s3cret"),
        ("--token", "bob", "hunter2"),
    ] {
        let dir = e.scratch().join(format!("registry{mode}"));
        let creds = format!("{user}:{pass}");
        let reg = AuthRegistry::start(dir, &[mode, &creds]).with_busybox(Some(&creds));
        let image = format!("{}/team/busybox", reg.addr);
        let err = e.docker_err(&["pull", &image]);
        assert!(err.contains("Error response from daemon"), "{mode}: {err}");
        let err = e.docker_err(&["login", "-u", user, "-p", "wrong", &reg.addr]);
        assert!(
            err.contains("401 Unauthorized") || err.contains("unauthorized"),
            "{mode}: {err}"
        );
        let out = e.docker_ok(&["login", "-u", user, "-p", pass, &reg.addr]);
        assert!(out.contains("Login Succeeded"), "{mode}: {out}");
        let out = e.docker_ok(&["pull", &image]);
        assert!(
            out.contains("Status: Downloaded newer image"),
            "{mode}: {out}"
        );
        // Push under a new name, drop everything, pull it back.
        let pushed = format!("{}/team/pushed:1", reg.addr);
        e.docker_ok(&["tag", &image, &pushed]);
        let out = e.docker_ok(&["push", &pushed]);
        assert!(out.contains(": Pushed"), "{mode}: {out}");
        assert!(out.contains("1: digest: sha256:"), "{mode}: {out}");
        let again = e.docker_ok(&["push", &pushed]);
        assert!(again.contains("Layer already exists"), "{mode}: {again}");
        e.docker_ok(&["image", "prune", "-a", "-f"]);
        let out = e.docker_ok(&["pull", &pushed]);
        assert!(out.contains("Pull complete"), "{mode}: {out}");
    }
}

#[test]
fn load_docker_archive_fixture() {
    let e = Engine::start_offline();
    let fixture = busybox_archive();
    let fixture = fixture.to_str().unwrap();
    assert!(
        Path::new(fixture).exists(),
        "fixture {fixture} missing: run tests/fixtures/images.py"
    );
    let out = e.docker_ok(&["load", "-i", fixture]);
    assert!(out.contains("Loaded image: busybox:latest"), "{out}");
    assert!(tags(&e, &[]).contains(&"busybox:latest".to_string()));
    let n = e.docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{len .RootFS.Layers}}",
        "busybox",
    ]);
    assert_eq!(n.trim(), "1");
    // Loading again is idempotent; garbage is refused without leaving anything behind.
    e.docker_ok(&["load", "-i", fixture]);
    let out = e.docker_stdin(&["load"], b"not a tar archive at all");
    assert!(!out.status.success());
    let tmp: Vec<_> = std::fs::read_dir(e.data_root().join("image/layers"))
        .unwrap()
        .map(|d| d.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
}

/// The fixtures' busybox archive (`tests/fixtures/images.py`).
pub(super) fn busybox_archive() -> PathBuf {
    let cache = std::env::var("BERTH_FIXTURES")
        .unwrap_or_else(|_| "/root/.cache/berth/fixtures".to_string());
    Path::new(&cache).join("images/busybox.tar")
}

/// A docker-archive of busybox plus a second layer that does not match the diff id its
/// config lists: the first layer loads, then the image fails.
fn archive_with_bad_second_layer() -> Vec<u8> {
    let mut files = std::collections::BTreeMap::new();
    let mut ar = tar::Archive::new(std::fs::File::open(busybox_archive()).unwrap());
    for entry in ar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        files.insert(path, data);
    }
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let entry = &manifest[0];
    let mut config: serde_json::Value =
        serde_json::from_slice(&files[entry["Config"].as_str().unwrap()]).unwrap();
    let bogus = format!("sha256:{}", "0".repeat(64));
    config["rootfs"]["diff_ids"]
        .as_array_mut()
        .unwrap()
        .push(bogus.into());
    let mut layer = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o644);
    h.set_cksum();
    layer.append_data(&mut h, "extra", &b"abc"[..]).unwrap();
    let mut layers: Vec<serde_json::Value> = entry["Layers"].as_array().unwrap().clone();
    layers.push("extra/layer.tar".into());
    let out_manifest = serde_json::json!([{
        "Config": "bad-config.json",
        "RepoTags": ["half:loaded"],
        "Layers": layers,
    }]);
    let mut out = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        out.append_data(&mut h, name, data).unwrap();
    };
    for l in entry["Layers"].as_array().unwrap() {
        let l = l.as_str().unwrap();
        add(l, &files[l]);
    }
    add("extra/layer.tar", &layer.into_inner().unwrap());
    add("bad-config.json", &serde_json::to_vec(&config).unwrap());
    add("manifest.json", &serde_json::to_vec(&out_manifest).unwrap());
    out.into_inner().unwrap()
}

/// Names in `dir` (none when it does not exist).
fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn load_of_broken_archive_fails_in_stream_and_leaves_nothing() {
    let e = Engine::start_offline();
    let whole = std::fs::read(busybox_archive()).unwrap();
    // A cut archive: dockerd answers 200 and puts the error in the JSON stream.
    let cut = &whole[..100_000];
    let (status, body) = e.api_bytes("POST", "/v1.50/images/load", "application/x-tar", cut);
    assert_eq!(status, 200, "{body}");
    let line: serde_json::Value = serde_json::from_str(body.trim()).unwrap();
    let msg = line["error"].as_str().unwrap_or_default();
    assert!(msg.starts_with("Error processing tar file"), "{body}");
    assert_eq!(line["errorDetail"]["message"].as_str(), Some(msg), "{body}");
    let out = e.docker_stdin(&["load"], cut);
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Error processing tar file"), "{err}");
    // A second layer that fails its digest: the first one, already in the store, goes again.
    let out = e.docker_stdin(&["load"], &archive_with_bad_second_layer());
    assert!(!out.status.success(), "{out:?}");
    assert!(tags(&e, &[]).is_empty());
    let store = e.data_root().join("image");
    assert_eq!(entries(&store.join("layers")), Vec::<String>::new());
    assert_eq!(entries(&store.join("blobs/sha256")), Vec::<String>::new());
}

#[test]
fn save_then_load_round_trips() {
    let e = Engine::start();
    e.docker_ok(&["pull", "-q", "busybox"]);
    e.docker_ok(&["tag", "busybox", "localhost:5999/a/b:c"]);
    let id = e.docker_ok(&["image", "inspect", "--format", "{{.Id}}", "busybox"]);
    let archive = e.scratch().join("saved.tar");
    let archive = archive.to_str().unwrap();
    e.docker_ok(&["save", "-o", archive, "busybox", "localhost:5999/a/b:c"]);
    let err = e.docker_err(&["save", "-o", archive, "nope"]);
    assert!(err.contains("No such image: nope"), "{err}");
    e.docker_ok(&["save", "-o", archive, "busybox", "localhost:5999/a/b:c"]);
    e.docker_ok(&["image", "prune", "-a", "-f"]);
    assert!(tags(&e, &[]).is_empty());
    let out = e.docker_ok(&["load", "-i", archive]);
    assert!(out.contains("Loaded image: busybox:latest"), "{out}");
    assert!(out.contains("Loaded image: localhost:5999/a/b:c"), "{out}");
    let again = e.docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}}",
        "localhost:5999/a/b:c",
    ]);
    assert_eq!(again.trim(), id.trim());
}

#[test]
fn corrupt_layer_blob_is_refused_and_leaves_nothing() {
    let e = Engine::start_offline();
    let reg = AuthRegistry::start(e.scratch().join("registry-plain"), &[]);
    // A loaded image has its layer as a plain tar, so a flipped byte inside a file keeps the
    // tar readable and only the digests can catch it.
    e.docker_ok(&["load", "-i", busybox_archive().to_str().unwrap()]);
    let name = format!("{}/team/plain:1", reg.addr);
    e.docker_ok(&["tag", "busybox", &name]);
    e.docker_ok(&["push", &name]);
    let raw = e.docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .RootFS.Layers}}",
        &name,
    ]);
    let layers: Vec<String> = serde_json::from_str(raw.trim()).unwrap();
    let blob = reg.blob_file(&layers[0]);
    let mut data = std::fs::read(&blob).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    std::fs::write(&blob, &data).unwrap();

    e.docker_ok(&["image", "prune", "-a", "-f"]);
    let out = e.docker(&["pull", &name]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("Pulling from team/plain"), "{text}");
    assert!(text.contains("digest mismatch"), "{text}");
    assert!(tags(&e, &[]).is_empty());
    for sub in ["image/layers", "image/blobs/sha256"] {
        let left: Vec<_> = std::fs::read_dir(e.data_root().join(sub))
            .unwrap()
            .map(|d| d.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "{sub}: {left:?}");
    }
}

#[test]
fn import_a_tarball_with_changes() {
    let e = Engine::start_offline();
    // The layer of the busybox fixture is a plain root filesystem tar.
    let fixture = busybox_archive().display().to_string();
    let out = Command::new("tar")
        .args(["-xOf", &fixture, "manifest.json"])
        .output()
        .unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let layer = manifest[0]["Layers"][0].as_str().unwrap().to_string();
    let rootfs = Command::new("tar")
        .args(["-xOf", &fixture, &layer])
        .output()
        .unwrap();
    assert!(rootfs.status.success());
    let out = e.docker_stdin(
        &[
            "import",
            "--change",
            r#"CMD ["echo", "imported"]"#,
            "--change",
            "ENV X=1",
            "-m",
            "from a test",
            "-",
            "imported:1",
        ],
        &rootfs.stdout,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("sha256:"));
    let cfg = e.docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Cmd}} {{json .Config.Env}} {{.Comment}}",
        "imported:1",
    ]);
    assert_eq!(cfg.trim(), r#"["echo","imported"] ["X=1"] from a test"#);
    let err = e.docker_stdin(&["import", "-", "bad:1"], b"not a tar");
    assert!(!err.status.success());
}

#[test]
fn rmi_of_an_image_in_use_by_a_running_or_stopped_container() {
    let e = Engine::start();
    let id = pull_busybox(&e);
    let id = id.as_str();
    let short = &id["sha256:".len().."sha256:".len() + 12];
    e.docker_ok(&["run", "-d", "--name", "user", "busybox", "sleep", "300"]);
    // Running: refused even when forced.
    let err = e.docker_err(&["rmi", "-f", id]);
    assert!(
        err.contains(&format!(
            "conflict: unable to delete {short} (cannot be forced) - image is being used by running container"
        )),
        "{err}"
    );
    e.docker_ok(&["rm", "-f", "user"]);
    e.docker_ok(&["create", "--name", "stopped", "busybox", "true"]);
    let err = e.docker_err(&["rmi", id]);
    assert!(
        err.contains(&format!(
            "conflict: unable to delete {short} (must be forced) - image is being used by stopped container"
        )),
        "{err}"
    );
    // Nothing was lost by the refusals.
    assert_eq!(tags(&e, &[]), ["busybox:latest"]);
    // Untagging the name a container was created from (the image keeps another tag): `ps`
    // shows the image's short id.
    e.docker_ok(&["tag", "busybox", "other:1"]);
    e.docker_ok(&["rmi", "busybox"]);
    let ps = e.docker_ok(&["ps", "-a", "--format", "{{.Names}} {{.Image}}"]);
    assert_eq!(ps.trim(), format!("stopped {short}"));
}

#[test]
fn run_platform_must_match_the_image() {
    let e = Engine::start();
    e.docker_ok(&["pull", "-q", "busybox"]);
    e.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--platform",
        "linux/amd64",
        "busybox",
        "true",
    ]);
    let (status, body) = e.api(
        "POST",
        "/containers/create?platform=linux%2Farm64",
        Some(r#"{"Image":"busybox"}"#),
    );
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains("image with reference busybox was found but does not match the specified platform: wanted linux/arm64, actual: linux/amd64"),
        "{body}"
    );
    // The CLI then pulls for that platform, which the registry does not have.
    let out = e.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--platform",
        "linux/arm64",
        "busybox",
        "true",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(
        err.contains("does not match the specified platform: wanted linux/arm64"),
        "{err}"
    );
}
