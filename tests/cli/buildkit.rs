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

    // A failing RUN fails the build with the command's exit code.
    write(&dir, &[("Dockerfile", "FROM busybox\nRUN exit 3\n")]);
    let out = run(
        &e,
        &["build", "--progress", "plain", "-t", "bk-fail", "."],
        &dir,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("exit 3") && err.contains('3'), "{err}");
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
