//! BuildKit builds served by the engine itself: the real buildx 0.13 (docker driver) and
//! compose v2 dial `POST /grpc` and `POST /session`, and no `moby/buildkit` container is ever
//! made. The plugins come from `scripts/install-docker-plugins.sh`; each test opts in with its
//! own `DOCKER_CONFIG` (`cliPluginsExtraDirs`).

use std::fs;
use std::path::Path;
use std::process::Output;

use berth_test_support::Engine;

use crate::plugins::{docker_with, expect_ok, run_in, write_files as write, Plugin};

const BOTH: &[Plugin] = &[Plugin::Buildx, Plugin::Compose];

fn run(e: &Engine, args: &[&str], dir: &Path) -> Output {
    run_in(docker_with(e, BOTH, args), dir)
}

fn ok(e: &Engine, args: &[&str], dir: &Path) -> String {
    expect_ok(e, args, run(e, args, dir))
}

/// `docker buildx build --progress plain <extra> .` in `dir`; returns its output.
fn buildx(e: &Engine, dir: &Path, extra: &[&str]) -> String {
    let mut args = vec!["buildx", "build", "--progress", "plain"];
    args.extend_from_slice(extra);
    args.push(".");
    ok(e, &args, dir)
}

/// Runs a docker command in `dir` that must fail; returns its stderr, which must say `want`.
fn fails(e: &Engine, args: &[&str], dir: &Path, want: &str) -> String {
    let out = run(e, args, dir);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{err}");
    assert!(err.contains(want), "no {want:?} in: {err}");
    err
}

/// `buildx build` of `dir`, which must fail saying `want`.
fn buildx_fails(e: &Engine, dir: &Path, want: &str) {
    fails(
        e,
        &["buildx", "build", "--progress", "plain", "-t", "bad", "."],
        dir,
        want,
    );
}

/// Nothing of BuildKit's own container driver was made: no container, no `moby/buildkit`.
fn assert_no_buildkit_container(e: &Engine) {
    let containers = e.docker_ok(&["ps", "-a", "--format", "{{.Names}} {{.Image}}"]);
    assert!(
        !containers.contains("buildkit"),
        "a BuildKit container was created: {containers}"
    );
    let images = e.docker_ok(&["images", "--format", "{{.Repository}}"]);
    assert!(
        !images.contains("moby/buildkit"),
        "moby/buildkit was pulled: {images}"
    );
}

const MULTI_STAGE: &str = "FROM busybox AS base\n\
RUN echo built > /built.txt\n\
FROM busybox\n\
COPY --from=base /built.txt /built.txt\n\
COPY hello.txt /hello.txt\n\
CMD [\"cat\", \"/built.txt\", \"/hello.txt\"]\n";

#[test]
fn buildx_builds_a_multi_stage_dockerfile_into_the_store() {
    let e = Engine::start();
    let dir = e.scratch().join("ctx");
    write(
        &dir,
        &[
            ("Dockerfile", MULTI_STAGE),
            ("hello.txt", "hello from the context\n"),
            ("secret.key", "not for the image\n"),
            (".dockerignore", "*.key\n"),
        ],
    );
    let meta = e.scratch().join("meta.json");
    let iid = e.scratch().join("iid");
    let out = buildx(
        &e,
        &dir,
        &[
            "-t",
            "bk-multi",
            "--iidfile",
            iid.to_str().unwrap(),
            "--metadata-file",
            meta.to_str().unwrap(),
        ],
    );
    // buildx printed the vertexes our Status stream sent.
    assert!(out.contains("using docker driver"), "{out}");
    assert!(out.contains("RUN echo built > /built.txt"), "{out}");
    assert!(out.contains("exporting to image"), "{out}");
    assert!(out.contains("naming to bk-multi"), "{out}");
    let run = e.docker_ok(&["run", "--rm", "bk-multi"]);
    assert_eq!(run, "built\nhello from the context\n");
    let id = e.docker_ok(&["image", "inspect", "-f", "{{.Id}}", "bk-multi"]);
    assert_eq!(fs::read_to_string(&iid).unwrap().trim(), id.trim());
    let meta: serde_json::Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    assert_eq!(meta["containerimage.digest"], id.trim(), "{meta}");
    // .dockerignore is applied on the client's side of the file sync.
    let ls = e.docker_ok(&["run", "--rm", "bk-multi", "ls", "/"]);
    assert!(!ls.contains("secret.key"), "{ls}");
    assert_no_buildkit_container(&e);

    // The same build again comes from the step cache.
    let again = buildx(&e, &dir, &["-t", "bk-multi"]);
    assert!(again.contains("CACHED"), "{again}");
}

#[test]
fn docker_build_with_buildx_installed_goes_through_buildkit() {
    let e = Engine::start();
    let dir = e.scratch().join("ctx");
    write(
        &dir,
        &[(
            "Dockerfile",
            "FROM busybox\nARG GREETING=hi\nRUN echo \"$GREETING\" > /g\nCMD [\"cat\", \"/g\"]\n",
        )],
    );
    let out = ok(
        &e,
        &[
            "build",
            "--progress",
            "plain",
            "--build-arg",
            "GREETING=from-buildkit",
            "-t",
            "bk-plain",
            ".",
        ],
        &dir,
    );
    assert!(
        out.contains("exporting to image"),
        "not a BuildKit build: {out}"
    );
    assert_eq!(e.docker_ok(&["run", "--rm", "bk-plain"]), "from-buildkit\n");

    // A failing RUN fails the build naming the command and its exit code, in BuildKit's words.
    write(&dir, &[("Dockerfile", "FROM busybox\nRUN exit 3\n")]);
    fails(
        &e,
        &["build", "--progress", "plain", "-t", "bk-fail", "."],
        &dir,
        "process \"/bin/sh -c exit 3\" did not complete successfully: exit code: 3",
    );
    assert_no_buildkit_container(&e);
}

#[test]
fn compose_v2_builds_two_services() {
    let e = Engine::start();
    let dir = e.scratch().join("proj");
    write(
        &dir,
        &[
            (
                "compose.yaml",
                "services:\n  a:\n    build: ./a\n    image: bkproj-a\n  b:\n    build:\n      context: ./b\n    image: bkproj-b\n",
            ),
            ("a/Dockerfile", "FROM busybox\nRUN echo service-a > /a\nCMD [\"cat\", \"/a\"]\n"),
            ("b/Dockerfile", "FROM busybox\nCOPY f /f\nCMD [\"cat\", \"/f\"]\n"),
            ("b/f", "service-b\n"),
        ],
    );
    let out = ok(&e, &["compose", "--progress", "plain", "build"], &dir);
    assert!(out.contains("exporting to image"), "{out}");
    assert_eq!(e.docker_ok(&["run", "--rm", "bkproj-a"]), "service-a\n");
    assert_eq!(e.docker_ok(&["run", "--rm", "bkproj-b"]), "service-b\n");
    assert_no_buildkit_container(&e);
}

#[test]
fn buildx_push_sends_the_image_to_a_registry() {
    let e = Engine::start();
    let reg = &berth_test_support::Registry::shared().addr;
    let name = format!("{reg}/berth-bk/pushed-{}:1", std::process::id());
    let dir = e.scratch().join("ctx");
    write(
        &dir,
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo pushed > /p\nCMD [\"cat\", \"/p\"]\n",
        )],
    );
    let meta = e.scratch().join("meta.json");
    let out = buildx(
        &e,
        &dir,
        &[
            "--push",
            "-t",
            &name,
            "--metadata-file",
            meta.to_str().unwrap(),
        ],
    );
    assert!(
        out.contains("with docker"),
        "buildx pushes through the API: {out}"
    );
    // The metadata's digest is the registry's manifest digest, read back with
    // `GET /distribution/{name}/json`.
    let meta: serde_json::Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    let (status, body) = e.api("GET", &format!("/distribution/{name}/json"), None);
    assert_eq!(status, 200, "{body}");
    let dist: serde_json::Value = serde_json::from_str(&body).unwrap();
    berth_test_support::assert_response("GET", "/distribution/{name}/json", 200, &dist);
    assert_eq!(
        meta["containerimage.digest"], dist["Descriptor"]["digest"],
        "{meta}"
    );
    assert_eq!(dist["Platforms"][0]["os"], "linux", "{dist}");
    // Pulled back after removal, it runs.
    e.docker_ok(&["rmi", &name]);
    e.docker_ok(&["pull", &name]);
    assert_eq!(e.docker_ok(&["run", "--rm", &name]), "pushed\n");
    assert_no_buildkit_container(&e);
}

#[test]
fn buildx_runs_heredocs_as_scripts_and_as_stdin() {
    let e = Engine::start();
    let dir = e.scratch().join("heredoc");
    write(
        &dir,
        &[(
            "Dockerfile",
            "FROM busybox\n\
             ARG WHO=heredoc\n\
             RUN <<EOF\n\
             echo one > /a\n\
             echo \"two $WHO\" >> /a\n\
             EOF\n\
             RUN cat > /b <<-END\n\
             \tthree\n\
             \tEND\n\
             CMD [\"cat\", \"/a\", \"/b\"]\n",
        )],
    );
    buildx(&e, &dir, &["-t", "heredoc-img", "--load"]);
    assert_eq!(
        e.docker_ok(&["run", "--rm", "heredoc-img"]),
        "one\ntwo heredoc\nthree\n"
    );
    assert_no_buildkit_container(&e);
}

#[test]
fn buildx_copies_heredocs_into_files() {
    let e = Engine::start();
    let dir = e.scratch().join("copy-heredoc");
    write(
        &dir,
        &[(
            "Dockerfile",
            "FROM busybox\n\
             ARG NAME=berth\n\
             COPY <<EOF /greeting\n\
             hello $NAME\n\
             EOF\n\
             COPY --chmod=700 <<-'RAW' <<two /dir/\n\
             \traw $NAME \"quoted\"\n\
             \tRAW\n\
             second\n\
             two\n\
             CMD [\"sh\", \"-c\", \"cat /greeting /dir/RAW /dir/two; stat -c %a /greeting /dir/RAW\"]\n",
        )],
    );
    buildx(&e, &dir, &["-t", "copy-heredoc"]);
    assert_eq!(
        e.docker_ok(&["run", "--rm", "copy-heredoc"]),
        "hello berth\nraw $NAME \"quoted\"\nsecond\n644\n700\n"
    );

    // Only heredocs can be the sources of a heredoc COPY.
    write(
        &dir,
        &[(
            "Dockerfile",
            "FROM busybox\nCOPY <<EOF Dockerfile /x/\nx\nEOF\n",
        )],
    );
    buildx_fails(&e, &dir, "cannot be mixed with heredocs");
    assert_no_buildkit_container(&e);
}

const MOUNTS: &str = "FROM busybox AS files\n\
RUN mkdir /out && echo from-stage > /out/s\n\
FROM busybox\n\
ARG ROUND\n\
RUN --mount=type=cache,target=/cache,id=runs sh -c 'echo $ROUND >> /cache/runs; wc -l < /cache/runs > /runs-seen'\n\
RUN --mount=type=bind,source=data.txt,target=/d.txt sh -c 'cat /d.txt > /copied; if echo x > /d.txt; then echo writable; else echo read-only; fi > /bind-mode'\n\
RUN --mount=type=bind,source=data.txt,target=/d.txt,rw sh -c 'echo changed > /d.txt'\n\
RUN --mount=type=bind,from=files,source=/out,target=/o cat /o/s > /from-stage\n\
RUN --mount=type=tmpfs,target=/t sh -c 'echo tmp > /t/x && grep \" /t tmpfs \" /proc/mounts > /dev/null && echo tmpfs > /tmpfs-seen'\n\
RUN --mount=type=secret,id=tok sh -c 'wc -c < /run/secrets/tok > /secret-len; stat -c %a /run/secrets/tok >> /secret-len'\n\
CMD [\"sh\", \"-c\", \"cat /runs-seen /copied /bind-mode /from-stage /tmpfs-seen /secret-len; cat /t/x /cache/runs 2>/dev/null; echo end\"]\n";

const SECRET: &str = "s3cr3t-value-8c1f";

#[test]
fn buildx_run_mounts_cache_bind_tmpfs_and_secret() {
    let e = Engine::start();
    let dir = e.scratch().join("mounts");
    write(
        &dir,
        &[("Dockerfile", MOUNTS), ("data.txt", "from the context\n")],
    );
    let secret = e.scratch().join("tok.txt");
    fs::write(&secret, SECRET).unwrap();
    let secret_arg = format!("id=tok,src={}", secret.display());
    let build = |round: &str| {
        let arg = format!("ROUND={round}");
        buildx(
            &e,
            &dir,
            &[
                "-t",
                "bk-mounts",
                "--build-arg",
                &arg,
                "--secret",
                &secret_arg,
            ],
        );
        e.docker_ok(&["run", "--rm", "bk-mounts"])
    };
    // The cache mount is empty at first; tmpfs and mount points leave nothing behind.
    let first = build("1");
    assert_eq!(
        first,
        format!(
            "1\nfrom the context\nread-only\nfrom-stage\ntmpfs\n{}\n400\nend\n",
            SECRET.len()
        )
    );
    // A second build sees what the first wrote into the cache mount.
    let second = build("2");
    assert!(second.starts_with("2\n"), "{second}");
    // The rw bind wrote to a copy: the context is unchanged.
    assert_eq!(
        fs::read_to_string(dir.join("data.txt")).unwrap(),
        "from the context\n"
    );

    // The secret is in no layer, config or history.
    let tar = e.scratch().join("mounts.tar");
    e.docker_ok(&["save", "-o", tar.to_str().unwrap(), "bk-mounts"]);
    let saved = fs::read(&tar).unwrap();
    assert!(
        !saved.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
        "the secret is in the saved image"
    );
    let history = e.docker_ok(&["history", "--no-trunc", "bk-mounts"]);
    assert!(!history.contains(SECRET), "{history}");

    // Unknown mount types and missing required secrets fail in BuildKit's words.
    for (df, want) in [
        (
            "FROM busybox\nRUN --mount=type=nfs,target=/x true\n",
            "unsupported mount type \"nfs\"",
        ),
        (
            "FROM busybox\nRUN --mount=type=secret,id=absent,required true\n",
            "secret absent: not found",
        ),
    ] {
        write(&dir, &[("Dockerfile", df)]);
        buildx_fails(&e, &dir, want);
    }
    assert_no_buildkit_container(&e);
}

/// Each stage's `RUN` marks itself in a shared cache mount, then waits (bounded, 60 s) for
/// the other's mark: built one after the other, the first would give up and fail the build.
const PARALLEL: &str = "FROM busybox AS a\n\
RUN --mount=type=cache,target=/sync,id=sync sh -c 'touch /sync/a; i=0; until [ -e /sync/b ]; do i=$((i+1)); [ $i -lt 600 ] || exit 9; sleep 0.1; done; echo a > /a'\n\
FROM busybox AS b\n\
RUN --mount=type=cache,target=/sync,id=sync sh -c 'touch /sync/b; i=0; until [ -e /sync/a ]; do i=$((i+1)); [ $i -lt 600 ] || exit 9; sleep 0.1; done; echo b > /b'\n\
FROM busybox AS broken\n\
RUN exit 7\n\
FROM busybox\n\
COPY --from=a /a /a\n\
COPY --from=b /b /b\n\
CMD [\"cat\", \"/a\", \"/b\"]\n";

#[test]
fn buildx_runs_independent_stages_at_once_and_skips_unused_ones() {
    let e = Engine::start();
    let dir = e.scratch().join("parallel");
    write(&dir, &[("Dockerfile", PARALLEL)]);
    let out = buildx(&e, &dir, &["-t", "bk-parallel"]);
    assert!(!out.contains("exit 7"), "the unused stage ran: {out}");
    assert_eq!(e.docker_ok(&["run", "--rm", "bk-parallel"]), "a\nb\n");
    // The unused stage is built when it is the target, and fails.
    fails(
        &e,
        &[
            "buildx",
            "build",
            "--progress",
            "plain",
            "--target",
            "broken",
            ".",
        ],
        &dir,
        "exit code: 7",
    );
    assert_no_buildkit_container(&e);
}

const ARTEFACT: &str = "FROM busybox AS build\n\
RUN mkdir -p /out/sub && echo artefact > /out/a && echo deep > /out/sub/b && chmod 750 /out/sub && ln -s a /out/link\n\
FROM scratch\n\
COPY --from=build /out /\n";

#[test]
fn buildx_exports_the_final_stage_to_a_directory_and_a_tar() {
    use std::os::unix::fs::PermissionsExt;
    let e = Engine::start();
    let dir = e.scratch().join("export");
    write(&dir, &[("Dockerfile", ARTEFACT)]);
    let dest = e.scratch().join("out-dir");
    let local = format!("type=local,dest={}", dest.display());
    buildx(&e, &dir, &["--output", &local]);
    assert_eq!(fs::read_to_string(dest.join("a")).unwrap(), "artefact\n");
    assert_eq!(fs::read_to_string(dest.join("sub/b")).unwrap(), "deep\n");
    let sub_mode = fs::metadata(dest.join("sub")).unwrap().permissions().mode();
    assert_eq!(sub_mode & 0o777, 0o750);
    assert_eq!(
        fs::read_link(dest.join("link")).unwrap(),
        Path::new("a"),
        "the symlink arrives as one"
    );

    let file = e.scratch().join("out.tar");
    let tar_out = format!("type=tar,dest={}", file.display());
    buildx(&e, &dir, &["--output", &tar_out]);
    let mut archive = tar::Archive::new(fs::File::open(&file).unwrap());
    let mut found = std::collections::BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        let mut text = String::new();
        if entry.header().entry_type().is_file() {
            std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
        } else if let Some(l) = entry.link_name().unwrap() {
            text = format!("-> {}", l.display());
        }
        found.insert(name, text);
    }
    let want: std::collections::BTreeMap<String, String> = [
        ("a", "artefact\n"),
        ("link", "-> a"),
        ("sub", ""),
        ("sub/b", "deep\n"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(found, want);
    assert_no_buildkit_container(&e);
}

/// The same `COPY --link` on two bases, and the same `COPY` without `--link`; the base
/// `prepared` has the destination's parent as a 0700 folder holding a file.
const LINK: &str = "FROM busybox AS prepared\n\
RUN mkdir -p /opt/app && chmod 700 /opt/app && echo old > /opt/app/old\n\
FROM busybox AS linked-on-busybox\n\
COPY --link --chmod=640 --chown=7:8 app.txt /opt/app/\n\
FROM prepared AS linked-on-prepared\n\
COPY --link --chmod=640 --chown=7:8 app.txt /opt/app/\n\
CMD [\"sh\", \"-c\", \"cat /opt/app/old /opt/app/app.txt; stat -c '%a %u:%g' /opt/app/app.txt\"]\n\
FROM busybox AS plain-on-busybox\n\
COPY --chmod=640 --chown=7:8 app.txt /opt/app/\n\
FROM prepared AS plain-on-prepared\n\
COPY --chmod=640 --chown=7:8 app.txt /opt/app/\n";

/// The diff ids of `image`'s layers.
fn layers(e: &Engine, image: &str) -> Vec<String> {
    let out = e.docker_ok(&["image", "inspect", "-f", "{{json .RootFS.Layers}}", image]);
    serde_json::from_str(&out).unwrap()
}

#[test]
fn copy_link_makes_the_same_layer_on_any_base() {
    let e = Engine::start();
    let dir = e.scratch().join("link");
    write(&dir, &[("Dockerfile", LINK), ("app.txt", "linked\n")]);
    let top_layer = |target: &str| {
        buildx(&e, &dir, &["--target", target, "-t", target]);
        layers(&e, target).pop().unwrap()
    };
    // Built on different bases (and in separate builds, each with its own copy of the
    // context), the linked layer is byte for byte the same.
    let on_busybox = top_layer("linked-on-busybox");
    let on_prepared = top_layer("linked-on-prepared");
    assert_eq!(on_busybox, on_prepared);
    // The base's files stay under the linked layer; the copy has its mode and owner.
    assert_eq!(
        e.docker_ok(&["run", "--rm", "linked-on-prepared"]),
        "old\nlinked\n640 7:8\n"
    );
    // Without --link the layer holds the base's parent folders, so it differs by base.
    assert_ne!(
        top_layer("plain-on-busybox"),
        top_layer("plain-on-prepared")
    );

    write(
        &dir,
        &[("Dockerfile", "FROM busybox\nCOPY --link=maybe app.txt /\n")],
    );
    buildx_fails(
        &e,
        &dir,
        "expecting boolean value for flag link, not: maybe",
    );
    assert_no_buildkit_container(&e);
}

/// A step whose output differs on every run, then a copy from the context.
const STAMPED: &str = "FROM busybox\n\
RUN cat /proc/sys/kernel/random/uuid > /stamp\n\
COPY a.txt /a.txt\n\
CMD [\"cat\", \"/stamp\", \"/a.txt\"]\n";

/// Whether buildx's plain output `out` reports the vertex whose name holds `step` as CACHED.
fn reported_cached(out: &str, step: &str) -> bool {
    out.lines()
        .filter(|l| l.contains(step))
        .filter_map(|l| l.split_whitespace().next())
        .any(|n| out.lines().any(|l| l.trim() == format!("{n} CACHED")))
}

#[test]
fn inline_cache_is_reused_after_a_pull_on_a_fresh_engine() {
    let reg = &berth_test_support::Registry::shared().addr;
    let name = format!("{reg}/berth-bk/inline-{}:1", std::process::id());
    let first = Engine::start();
    let dir = first.scratch().join("stamped");
    let files = [("Dockerfile", STAMPED), ("a.txt", "from the context\n")];
    write(&dir, &files);
    let out = buildx(
        &first,
        &dir,
        &["--cache-to", "type=inline", "--push", "-t", &name],
    );
    assert!(out.contains("preparing build cache for export"), "{out}");

    // Another engine, with an empty step cache, pulls the image and builds the same
    // Dockerfile from it: the RUN and the COPY are restored, not run.
    let fresh = Engine::start();
    fresh.docker_ok(&["pull", &name]);
    let pushed = fresh.docker_ok(&["run", "--rm", &name]);
    let dir = fresh.scratch().join("stamped");
    write(&dir, &files);
    let out = buildx(&fresh, &dir, &["--cache-from", &name, "-t", "from-cache"]);
    assert!(reported_cached(&out, "RUN cat /proc/sys"), "{out}");
    assert!(reported_cached(&out, "COPY a.txt"), "{out}");
    assert_eq!(fresh.docker_ok(&["run", "--rm", "from-cache"]), pushed);
    // Built without the cache, the RUN runs: another stamp.
    buildx(&fresh, &dir, &["--no-cache", "-t", "uncached"]);
    assert_ne!(fresh.docker_ok(&["run", "--rm", "uncached"]), pushed);
    assert_no_buildkit_container(&first);
    assert_no_buildkit_container(&fresh);
}

#[test]
fn buildx_pulls_a_base_image_with_the_clients_registry_login() {
    let e = Engine::start();
    let creds = "carol:b4se-pass";
    let reg = crate::images::AuthRegistry::start(
        e.scratch().join("auth-registry"),
        &["--htpasswd", creds],
    )
    .with_busybox(Some(creds));
    let dir = e.scratch().join("authed");
    let df = format!(
        "FROM {}/team/busybox\nRUN echo pulled-with-login > /p\nCMD [\"cat\", \"/p\"]\n",
        reg.addr
    );
    write(&dir, &[("Dockerfile", &df)]);
    // Without a login the engine's pull is refused.
    buildx_fails(&e, &dir, "unauthorized");
    // `docker login` in the CLI config buildx reads; the engine gets the credentials from the
    // session's auth provider, never from a config of its own.
    ok(
        &e,
        &["login", "-u", "carol", "-p", "b4se-pass", &reg.addr],
        &dir,
    );
    buildx(&e, &dir, &["-t", "authed"]);
    assert_eq!(
        e.docker_ok(&["run", "--rm", "authed"]),
        "pulled-with-login\n"
    );
    assert_no_buildkit_container(&e);
}
