//! `docker build` (classic builder, `POST /build`) and `docker commit` with the real CLI.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use berth_test_support::Engine;

/// Writes `files` (path → content) under a fresh context directory.
fn context(e: &Engine, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = e.scratch().join(name);
    for (p, content) in files {
        let path = dir.join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
    dir
}

fn build(e: &Engine, dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["build"];
    args.extend_from_slice(extra);
    let d = dir.to_str().unwrap();
    args.push(d);
    e.docker(&args)
}

fn build_ok(e: &Engine, dir: &Path, extra: &[&str]) -> String {
    let out = build(e, dir, extra);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "build failed ({}):\nstdout: {stdout}\nstderr: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        e.log_tail()
    );
    stdout
}

fn all_containers(e: &Engine) -> String {
    e.docker_ok(&["ps", "-aq"]).trim().to_string()
}

const MULTI_STEP: &str = r#"# a comment
ARG BASE=busybox
FROM ${BASE}
ARG GREETING=hello
ENV APP_HOME=/srv/app \
    MODE="two words"
WORKDIR $APP_HOME
RUN echo "$GREETING from run" > greeting.txt && mkdir -p /data && echo $MODE > /data/mode
COPY --chown=www-data:www-data conf/ ./conf/
COPY *.txt notes/
ADD archive.tar /opt/
RUN rm /hello && test ! -e /hello
USER www-data
EXPOSE 8080
LABEL org.example.kind="berth test"
CMD ["sh", "-c", "cat greeting.txt; cat /data/mode; ls conf notes /opt/inside; id -u; stat -c %u conf/app.conf; pwd; echo ${GREETING:-unset}"]
"#;

#[test]
fn build_multi_step_then_run_then_cached_rebuild() {
    let e = Engine::start();
    let dir = context(
        &e,
        "ctx",
        &[
            ("Dockerfile", MULTI_STEP),
            ("conf/app.conf", "port=8080\n"),
            ("conf/sub/deep.conf", "deep\n"),
            ("a.txt", "A\n"),
            ("b.txt", "B\n"),
            ("ignored.log", "nope\n"),
            ("secret.txt", "do not send\n"),
            (".dockerignore", "secret.txt\n*.log\n"),
            ("inside/x.txt", "from the archive\n"),
        ],
    );
    // ADD archive.tar: a real tar made by the tar tool, extracted by ADD.
    let st = std::process::Command::new("tar")
        .args(["-cf", "archive.tar", "inside"])
        .current_dir(&dir)
        .status()
        .unwrap();
    assert!(st.success());
    fs::remove_dir_all(dir.join("inside")).unwrap();

    let t0 = Instant::now();
    let out = build_ok(
        &e,
        &dir,
        &["-t", "berth-built:1", "--build-arg", "GREETING=hi"],
    );
    let first = t0.elapsed();
    for want in [
        "Step 1/14 : ARG BASE=busybox",
        "Step 2/14 : FROM ${BASE}",
        " ---> Running in ",
        "Removing intermediate container ",
        "Successfully built ",
        "Successfully tagged berth-built:1",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    let run = e.docker_ok(&["run", "--rm", "berth-built:1"]);
    let lines: Vec<&str> = run.lines().collect();
    assert_eq!(lines[0], "hi from run", "{run}");
    assert_eq!(lines[1], "two words", "{run}");
    for want in [
        "app.conf", "sub", "a.txt", "b.txt", "x.txt", "33\n33", "/srv/app", "unset",
    ] {
        assert!(run.contains(want), "missing {want:?} in:\n{run}");
    }
    // .dockerignore kept secret.txt and *.log out of the context (the glob copied no secret).
    assert!(
        !run.contains("secret.txt") && !run.contains("ignored.log"),
        "{run}"
    );
    // The deleted /hello is gone in the image (a whiteout in the RUN layer).
    let err = e.docker(&["run", "--rm", "berth-built:1", "cat", "/hello"]);
    assert!(!err.status.success());
    let conf = e.docker_ok(&["run", "--rm", "berth-built:1", "cat", "conf/sub/deep.conf"]);
    assert_eq!(conf.trim(), "deep");
    let inspect = e.docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Config.User}}|{{.Config.WorkingDir}}|{{index .Config.Labels \"org.example.kind\"}}|{{json .Config.ExposedPorts}}",
        "berth-built:1",
    ]);
    assert_eq!(
        inspect.trim(),
        "www-data|/srv/app|berth test|{\"8080/tcp\":{}}"
    );
    let history = e.docker_ok(&["history", "--no-trunc", "berth-built:1"]);
    assert!(history.contains("rm /hello"), "{history}");
    // Only the tagged image is listed; the build steps are hidden.
    let images = e.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let mut images: Vec<&str> = images.lines().collect();
    images.sort();
    assert_eq!(images, ["berth-built:1", "busybox:latest"]);
    assert_eq!(all_containers(&e), "", "build containers left behind");

    // Second build: every step from the cache, same image.
    let t1 = Instant::now();
    let again = build_ok(
        &e,
        &dir,
        &["-t", "berth-built:2", "--build-arg", "GREETING=hi"],
    );
    let cached = t1.elapsed();
    assert!(again.contains(" ---> Using cache"), "{again}");
    assert!(!again.contains("Running in"), "{again}");
    let id1 = e.docker_ok(&["image", "inspect", "--format", "{{.Id}}", "berth-built:1"]);
    let id2 = e.docker_ok(&["image", "inspect", "--format", "{{.Id}}", "berth-built:2"]);
    assert_eq!(id1, id2);
    eprintln!("build: first {first:?}, cached {cached:?}");
    assert!(cached < first, "cached {cached:?} vs first {first:?}");

    // A changed context file invalidates its COPY and the steps after it only.
    fs::write(dir.join("a.txt"), "A2\n").unwrap();
    let q = build_ok(&e, &dir, &["-q", "--build-arg", "GREETING=hi"]);
    assert!(
        q.trim().starts_with("sha256:") && q.trim().len() == 71,
        "{q}"
    );
    assert_ne!(q.trim(), id1.trim());
    // --no-cache runs everything again.
    let nc = build_ok(&e, &dir, &["--no-cache", "--build-arg", "GREETING=hi"]);
    assert!(!nc.contains("Using cache"), "{nc}");
    // rmi takes the untagged steps along; busybox stays.
    e.docker_ok(&["rmi", "berth-built:1"]);
    e.docker_ok(&["image", "inspect", "busybox"]);
}

/// The pid of a process whose command line holds `needle`.
fn pid_running(needle: &str) -> Option<u32> {
    fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        })
}

#[test]
fn interrupted_cli_build_stops_its_run_and_tags_nothing() {
    let e = Engine::start();
    let marker = format!("gate-cli-{}", std::process::id());
    let dockerfile = format!(
        "FROM busybox\nRUN echo {marker} && while [ ! -e /tmp/{marker} ]; do sleep 0.1; done\n"
    );
    let dir = context(&e, "interrupted", &[("Dockerfile", &dockerfile)]);
    let mut cli = e
        .docker_cmd(&["build", "-t", "berth-interrupted", dir.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let needle = format!("echo {marker}");
    let mut step = None;
    let running = berth_test_support::wait_until(std::time::Duration::from_secs(60), || {
        step = pid_running(&needle);
        step.is_some()
    });
    assert!(running, "the RUN step never ran\n{}", e.log_tail());
    // Ctrl-C: the CLI drops the build's connection; the engine must stop the build.
    // SAFETY: kill(2) on the pid of the child this test spawned and has not reaped.
    unsafe { libc::kill(cli.id() as i32, libc::SIGINT) };
    let _ = cli.wait();
    let step = step.unwrap();
    let ended = berth_test_support::wait_until(std::time::Duration::from_secs(30), || {
        !Path::new(&format!("/proc/{step}")).exists() && all_containers(&e).is_empty()
    });
    assert!(
        ended,
        "the step still runs after the client went\n{}",
        e.log_tail()
    );
    e.docker_err(&["image", "inspect", "berth-interrupted"]);
}

#[test]
fn failing_run_reports_exit_code_and_leaves_no_container() {
    let e = Engine::start();
    let dir = context(
        &e,
        "fail",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo before\nRUN false\nRUN echo never\n",
        )],
    );
    let out = build(&e, &dir, &["-t", "berth-fail"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stderr.contains("The command '/bin/sh -c false' returned a non-zero code: 1"),
        "stderr: {stderr}\nstdout: {stdout}"
    );
    assert!(!stdout.contains("never"));
    assert_eq!(all_containers(&e), "");
    e.docker_err(&["image", "inspect", "berth-fail"]);
    // The exit status of the command becomes the CLI's.
    let dir = context(&e, "fail3", &[("Dockerfile", "FROM busybox\nRUN exit 3\n")]);
    assert_eq!(build(&e, &dir, &[]).status.code(), Some(3));
}

#[test]
fn multi_stage_copy_from_and_target() {
    let e = Engine::start();
    let dir = context(
        &e,
        "ms",
        &[(
            "Dockerfile",
            "FROM busybox AS builder\nRUN mkdir /out && echo built > /out/artifact\n\
             FROM scratch AS empty\nCOPY --from=builder /out/artifact /artifact\n\
             FROM busybox\nCOPY --from=builder /out/ /app/\nCOPY --from=0 /bin/busybox /tools/busybox\n\
             CMD [\"cat\", \"/app/artifact\"]\n",
        )],
    );
    build_ok(&e, &dir, &["-t", "berth-ms"]);
    assert_eq!(e.docker_ok(&["run", "--rm", "berth-ms"]).trim(), "built");
    e.docker_ok(&["run", "--rm", "berth-ms", "/tools/busybox", "true"]);
    // --target stops at the named stage.
    let out = build_ok(&e, &dir, &["--target", "builder", "-t", "berth-ms-builder"]);
    assert!(!out.contains("FROM scratch"), "{out}");
    let a = e.docker_ok(&["run", "--rm", "berth-ms-builder", "cat", "/out/artifact"]);
    assert_eq!(a.trim(), "built");
    // And the image is a real one: saved, it carries its layers.
    let save = e.docker(&["save", "berth-ms"]);
    assert!(save.status.success() && save.stdout.len() > 10_000);
}

#[test]
fn bad_dockerfiles_are_clear_errors() {
    let e = Engine::start();
    let dir = context(
        &e,
        "bad",
        &[("Dockerfile", "FROM busybox\nFROBNICATE now\n")],
    );
    let out = build(&e, &dir, &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("dockerfile parse error on line 2: unknown instruction: FROBNICATE"),
        "{stderr}"
    );
    let dir = context(
        &e,
        "nofile",
        &[("Dockerfile", "FROM busybox\nCOPY missing.txt /\n")],
    );
    let stderr = String::from_utf8_lossy(&build(&e, &dir, &[]).stderr).into_owned();
    assert!(stderr.contains("missing.txt"), "{stderr}");
    let dir = context(&e, "target", &[("Dockerfile", "FROM busybox\n")]);
    let stderr =
        String::from_utf8_lossy(&build(&e, &dir, &["--target", "nope"]).stderr).into_owned();
    assert!(
        stderr.contains("failed to reach build target nope"),
        "{stderr}"
    );
    // The BuildKit endpoints (tests/cli/buildkit.rs) refuse a request without the h2c upgrade.
    assert_eq!(e.api("POST", "/grpc", None).0, 400);
    assert_eq!(e.api("POST", "/session", None).0, 400);
}

#[test]
fn commit_container_changes_then_run_the_image() {
    let e = Engine::start();
    e.docker_ok(&[
        "run",
        "--name",
        "src",
        "busybox",
        "sh",
        "-c",
        "echo committed > /hello.txt && rm /etc/group",
    ]);
    let id = e.docker_ok(&[
        "commit",
        "-c",
        "CMD [\"cat\", \"/hello.txt\"]",
        "-c",
        "ENV COMMITTED=yes",
        "-m",
        "a message",
        "src",
        "berth-committed:v1",
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(
        e.docker_ok(&["run", "--rm", "berth-committed:v1"]).trim(),
        "committed"
    );
    let env = e.docker_ok(&[
        "run",
        "--rm",
        "berth-committed:v1",
        "sh",
        "-c",
        "echo $COMMITTED",
    ]);
    assert_eq!(env.trim(), "yes");
    // The deletion is a whiteout: /etc/group is gone in the new image.
    assert!(!e
        .docker(&["run", "--rm", "berth-committed:v1", "ls", "/etc/group"])
        .status
        .success());
    let comment = e.docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Comment}}",
        "berth-committed:v1",
    ]);
    assert_eq!(comment.trim(), "a message");
    // The layer as saved carries the OCI whiteout entry.
    let tar = e.docker(&["save", "berth-committed:v1"]).stdout;
    let mut outer = tar::Archive::new(&tar[..]);
    let mut found = false;
    for entry in outer.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        if path.starts_with("blobs/") {
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
            if let Ok(entries) = tar::Archive::new(&data[..]).entries() {
                for inner in entries.flatten() {
                    if inner.path().is_ok_and(|p| p.ends_with("etc/.wh.group")) {
                        found = true;
                    }
                }
            }
        }
    }
    assert!(found, "no etc/.wh.group entry in the saved layers");
    assert!(e
        .docker_err(&["commit", "nope"])
        .contains("No such container: nope"));
}

/// The pause, commit and unpause events of container `name` so far.
fn commit_events(e: &Engine, name: &str) -> Vec<String> {
    let out = e.past_events(&format!("container={name}"), "{{.Action}}");
    out.lines()
        .filter(|a| matches!(*a, "pause" | "commit" | "unpause"))
        .map(String::from)
        .collect()
}

#[test]
fn commit_pauses_a_running_container_and_names_it_in_the_image() {
    let e = Engine::start();
    let id = e.docker_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "live",
        "busybox",
        "sh",
        "-c",
        "echo live > /f; sleep 300",
    ]);
    let id = id.trim();
    assert!(berth_test_support::wait_until(
        std::time::Duration::from_secs(10),
        || e.docker(&["exec", "live", "test", "-e", "/f"])
            .status
            .success()
    ));
    e.docker_ok(&["commit", "live", "live-snap"]);
    assert_eq!(commit_events(&e, "live"), ["pause", "commit", "unpause"]);
    let state = e.docker_ok(&["inspect", "--format", "{{.State.Status}}", "live"]);
    assert_eq!(state.trim(), "running");
    e.docker_ok(&["commit", "--pause=false", "live", "live-snap2"]);
    assert_eq!(
        commit_events(&e, "live"),
        ["pause", "commit", "unpause", "commit"]
    );
    assert_eq!(
        e.docker_ok(&["run", "--rm", "--network", "none", "live-snap", "cat", "/f"]),
        "live\n"
    );
    // The image names its container, as dockerd's does (API before 1.45 shows it; Berth
    // shows it at every version).
    for version in ["v1.44", "v1.50"] {
        let (status, body) = e.api("GET", &format!("/{version}/images/live-snap/json"), None);
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        berth_test_support::assert_response("GET", "/images/{name}/json", 200, &v);
        assert_eq!(v["Container"], id, "{version}");
        assert_eq!(v["ContainerConfig"]["Image"], "busybox", "{version}");
        assert_eq!(
            v["ContainerConfig"]["Cmd"],
            serde_json::json!(["sh", "-c", "echo live > /f; sleep 300"])
        );
    }
}

#[test]
fn built_image_pushes_and_pulls_back_with_its_whiteouts() {
    let e = Engine::start();
    let reg = crate::images::AuthRegistry::start(e.scratch().join("registry"), &[]);
    let dir = context(
        &e,
        "push",
        &[
            (
                "Dockerfile",
                "FROM busybox\nRUN rm /hello && echo made > /made.txt\nCOPY f.txt /f.txt\n",
            ),
            ("f.txt", "copied\n"),
        ],
    );
    let name = format!("{}/team/built:1", reg.addr);
    build_ok(&e, &dir, &["-t", &name]);
    e.docker_ok(&["push", &name]);
    e.docker_ok(&["rmi", &name]);
    e.docker_ok(&["rmi", "busybox"]);
    e.docker_ok(&["pull", &name]);
    let out = e.docker_ok(&[
        "run",
        "--rm",
        &name,
        "sh",
        "-c",
        "cat /made.txt /f.txt; test -e /hello && echo hello-still-there || echo hello-gone",
    ]);
    assert_eq!(out, "made\ncopied\nhello-gone\n");
}

#[test]
fn dockerfile_from_stdin_or_another_path() {
    let e = Engine::start();
    // `docker build -`: the CLI wraps the Dockerfile read from stdin into a context tar.
    let out = e.docker_stdin(
        &["build", "-t", "berth-stdin", "-"],
        b"FROM busybox\nENV FROM_STDIN=1\nCMD [\"sh\", \"-c\", \"echo stdin:$FROM_STDIN\"]\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        e.docker_ok(&["run", "--rm", "berth-stdin"]).trim(),
        "stdin:1"
    );
    // `-f` naming a file outside the context: sent inside the tar under another name.
    let dir = context(&e, "ctx-f", &[("data.txt", "from context\n")]);
    let other = context(
        &e,
        "elsewhere",
        &[(
            "Build.file",
            "FROM busybox\nCOPY data.txt /\nCMD [\"cat\", \"/data.txt\"]\n",
        )],
    );
    let f = other.join("Build.file");
    build_ok(&e, &dir, &["-f", f.to_str().unwrap(), "-t", "berth-f"]);
    assert_eq!(
        e.docker_ok(&["run", "--rm", "berth-f"]).trim(),
        "from context"
    );
}

#[test]
fn onbuild_triggers_run_in_the_child_build() {
    let e = Engine::start();
    e.docker_ok(&["pull", "-q", "busybox"]);
    let base = context(
        &e,
        "onbuild-base",
        &[(
            "Dockerfile",
            "FROM busybox\nONBUILD COPY hello.txt /app/\nONBUILD RUN cat /app/hello.txt > /app/copied\n",
        )],
    );
    build_ok(&e, &base, &["-t", "ob-base"]);
    let triggers = e.docker_ok(&["inspect", "-f", "{{json .Config.OnBuild}}", "ob-base"]);
    assert_eq!(
        triggers.trim(),
        r#"["COPY hello.txt /app/","RUN cat /app/hello.txt > /app/copied"]"#
    );

    let child = context(
        &e,
        "onbuild-child",
        &[
            (
                "Dockerfile",
                "FROM ob-base\nCMD [\"cat\", \"/app/copied\"]\n",
            ),
            ("hello.txt", "from the child's context\n"),
        ],
    );
    let out = build_ok(&e, &child, &["-t", "ob-child"]);
    assert!(out.contains("# Executing 2 build triggers"), "{out}");
    let run = e.docker_ok(&["run", "--rm", "--network", "none", "ob-child"]);
    assert_eq!(run, "from the child's context\n");
    // The child does not pass the triggers on.
    let left = e.docker_ok(&["inspect", "-f", "{{json .Config.OnBuild}}", "ob-child"]);
    assert!(matches!(left.trim(), "null" | "[]"), "{left}");

    // dockerd's refusals.
    for (df, msg) in [
        (
            "FROM busybox\nONBUILD ONBUILD RUN true\n",
            "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
        ),
        (
            "FROM busybox\nONBUILD FROM busybox\n",
            "FROM isn't allowed as an ONBUILD trigger",
        ),
    ] {
        let dir = context(&e, "onbuild-bad", &[("Dockerfile", df)]);
        let out = build(&e, &dir, &[]);
        assert!(!out.status.success());
        let text = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(msg), "{text}");
    }
}

/// `cmd < input > output`, e.g. a compressor, in the test's scratch directory.
fn pipe_through(cmd: &[&str], input: &Path, output: &Path) {
    let status = std::process::Command::new(cmd[0])
        .args(&cmd[1..])
        .stdin(fs::File::open(input).unwrap())
        .stdout(fs::File::create(output).unwrap())
        .status()
        .unwrap();
    assert!(status.success(), "{cmd:?}");
}

#[test]
fn compressed_contexts_add_archives_loads_and_imports() {
    let e = Engine::start();
    let reg = crate::images::AuthRegistry::start(e.scratch().join("registry"), &[]);
    e.docker_ok(&["pull", "-q", "busybox"]);
    let s = e.scratch();
    // A context tar holding a Dockerfile that ADDs an xz- and a bzip2-compressed archive.
    let payload = context(&e, "payload", &[("inside.txt", "from an archive\n")]);
    let tar = |dir: &Path, out: &Path| {
        let ok = std::process::Command::new("tar")
            .args([
                "-C",
                dir.to_str().unwrap(),
                "-cf",
                out.to_str().unwrap(),
                ".",
            ])
            .status()
            .unwrap();
        assert!(ok.success());
    };
    let ctx = context(
        &e,
        "xzctx",
        &[(
            "Dockerfile",
            "FROM busybox\nADD a.tar.xz /xz/\nADD b.tar.bz2 /bz/\nCMD cat /xz/inside.txt /bz/inside.txt\n",
        )],
    );
    tar(&payload, &s.join("p.tar"));
    pipe_through(&["xz", "-c"], &s.join("p.tar"), &ctx.join("a.tar.xz"));
    pipe_through(&["bzip2", "-c"], &s.join("p.tar"), &ctx.join("b.tar.bz2"));
    tar(&ctx, &s.join("ctx.tar"));
    for (tool, tag) in [(["xz", "-c"], "from-xz"), (["bzip2", "-c"], "from-bz2")] {
        let compressed = s.join(format!("ctx.{tag}"));
        pipe_through(&tool, &s.join("ctx.tar"), &compressed);
        let out = e.docker_stdin(
            &["build", "-q", "-t", tag, "-"],
            &fs::read(&compressed).unwrap(),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            e.docker_ok(&["run", "--rm", "--network", "none", tag]),
            "from an archive\nfrom an archive\n"
        );
    }

    // `docker save | gzip` and `| xz` load back.
    e.docker_ok(&[
        "save",
        "-o",
        s.join("saved.tar").to_str().unwrap(),
        "from-xz",
    ]);
    e.docker_ok(&["rmi", "from-xz"]);
    pipe_through(
        &["gzip", "-c"],
        &s.join("saved.tar"),
        &s.join("saved.tar.gz"),
    );
    e.docker_ok(&["load", "-i", s.join("saved.tar.gz").to_str().unwrap()]);
    e.docker_ok(&["rmi", "from-xz"]);
    pipe_through(&["xz", "-c"], &s.join("saved.tar"), &s.join("saved.tar.xz"));
    e.docker_ok(&["load", "-i", s.join("saved.tar.xz").to_str().unwrap()]);
    e.docker_ok(&["run", "--rm", "--network", "none", "from-xz"]);

    // `docker import` of an xz rootfs; the layer is kept so a registry takes the push.
    let cid = e.docker_ok(&["create", "busybox"]);
    e.docker_ok(&[
        "export",
        "-o",
        s.join("rootfs.tar").to_str().unwrap(),
        cid.trim(),
    ]);
    pipe_through(
        &["xz", "-c"],
        &s.join("rootfs.tar"),
        &s.join("rootfs.tar.xz"),
    );
    let name = format!("{}/imported/xz:1", reg.addr);
    e.docker_ok(&["import", s.join("rootfs.tar.xz").to_str().unwrap(), &name]);
    e.docker_ok(&["push", &name]);
    e.docker_ok(&["rmi", &name]);
    e.docker_ok(&["pull", &name]);
    let out = e.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        &name,
        "echo",
        "imported",
    ]);
    assert_eq!(out, "imported\n");
}
