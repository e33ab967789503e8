//! BuildKit builds through the VM: the real buildx 0.13 (docker driver) and compose v2 on the
//! host reach the guest's engine through `berth start`'s forwarded socket, whose streams carry
//! the h2c upgrades of `POST /grpc` and `POST /session` like any hijacked connection. One boot
//! checks what issue #9 asks of a build in the VM: multi-stage, a heredoc, a cache mount the
//! second build reuses, a secret in no layer, `docker compose build` of two services, and no
//! `moby/buildkit` container. The native checks, in more detail, are `tests/cli/buildkit.rs`.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use berth_test_support::{docker_plugin_config, run_bounded};

use crate::host::Berth;

/// Bound on one build or compose command under TCG.
const BUILD_TIMEOUT: Duration = Duration::from_secs(600);

const DOCKERFILE: &str = "FROM busybox AS base\n\
RUN <<EOF\n\
echo one > /built.txt\n\
echo two >> /built.txt\n\
EOF\n\
FROM busybox\n\
ARG ROUND\n\
RUN --mount=type=cache,target=/cache,id=vm-runs sh -c 'echo $ROUND >> /cache/runs; wc -l < /cache/runs > /runs-seen'\n\
RUN --mount=type=secret,id=tok sh -c 'wc -c < /run/secrets/tok > /secret-len'\n\
COPY --from=base /built.txt /built.txt\n\
CMD [\"cat\", \"/built.txt\", \"/runs-seen\", \"/secret-len\"]\n";

const SECRET: &str = "vm-s3cr3t-4d7e";

const COMPOSE: &str =
    "services:\n  a:\n    build: ./a\n    image: bkvm-a\n  b:\n    build: ./b\n    image: bkvm-b\n";

/// The docker CLI with buildx and compose, pointed at `b`'s forwarded socket, run in `dir`.
fn docker_bk(b: &Berth, dir: &Path, args: &[&str]) -> Output {
    let config = docker_plugin_config(
        &b.home.path().join("docker-config-plugins"),
        &["buildx", "compose"],
    );
    let mut c = Command::new("docker");
    c.env("DOCKER_CONFIG", config)
        .env("DOCKER_HOST", format!("unix://{}", b.socket().display()))
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_BUILDKIT")
        .current_dir(dir)
        .args(args);
    run_bounded(c, BUILD_TIMEOUT)
}

/// stdout + stderr of a [`docker_bk`] command that must succeed, with its time as a figure.
fn docker_bk_ok(b: &Berth, dir: &Path, args: &[&str]) -> String {
    let t = Instant::now();
    let out = docker_bk(b, dir, args);
    let text = berth_test_support::output_text(&out);
    assert!(
        out.status.success(),
        "docker {args:?} failed ({}):\n{text}\n--- console tail:\n{}",
        out.status,
        crate::host::tail(&b.read_log("logs/console.log"), 40)
    );
    eprintln!(
        "figure: docker {args:?} in the VM: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    text
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (p, content) in files {
        let path = dir.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
}

#[test]
fn buildx_and_compose_build_through_the_forwarded_socket() {
    let _serial = crate::qemu::serial();
    let b = Berth::pulling_from_test_registry();
    b.berth_ok(&["start", "--timeout", "240"]);
    let ctx = b.home.path().join("ctx");
    write(&ctx, &[("Dockerfile", DOCKERFILE)]);
    let secret = b.home.path().join("tok.txt");
    std::fs::write(&secret, SECRET).unwrap();
    let secret_arg = format!("id=tok,src={}", secret.display());
    let build = |round: &str| {
        let arg = format!("ROUND={round}");
        let out = docker_bk_ok(
            &b,
            &ctx,
            &[
                "buildx",
                "build",
                "--progress",
                "plain",
                "-t",
                "bkvm",
                "--build-arg",
                &arg,
                "--secret",
                &secret_arg,
                ".",
            ],
        );
        (out, b.docker_ok(&["run", "--rm", "bkvm"]))
    };

    let (out, first) = build("1");
    assert!(out.contains("using docker driver"), "{out}");
    assert!(out.contains("exporting to image"), "{out}");
    assert_eq!(first, format!("one\ntwo\n1\n{}\n", SECRET.len()));
    // The second build reuses the cache mount and, for the unchanged stage, the step cache.
    let (out, second) = build("2");
    assert_eq!(second, format!("one\ntwo\n2\n{}\n", SECRET.len()));
    assert!(out.contains("CACHED"), "{out}");

    // The secret is in no layer, config or history of the image.
    let tar = b.home.path().join("bkvm.tar");
    b.docker_ok(&["save", "-o", tar.to_str().unwrap(), "bkvm"]);
    let saved = std::fs::read(&tar).unwrap();
    assert!(
        !saved.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
        "the secret is in the saved image"
    );

    let proj = b.home.path().join("proj");
    write(
        &proj,
        &[
            ("compose.yaml", COMPOSE),
            (
                "a/Dockerfile",
                "FROM busybox\nRUN echo service-a > /a\nCMD [\"cat\", \"/a\"]\n",
            ),
            (
                "b/Dockerfile",
                "FROM busybox\nCOPY f /f\nCMD [\"cat\", \"/f\"]\n",
            ),
            ("b/f", "service-b\n"),
        ],
    );
    let out = docker_bk_ok(&b, &proj, &["compose", "--progress", "plain", "build"]);
    assert!(out.contains("exporting to image"), "{out}");
    assert_eq!(b.docker_ok(&["run", "--rm", "bkvm-a"]), "service-a\n");
    assert_eq!(b.docker_ok(&["run", "--rm", "bkvm-b"]), "service-b\n");

    // Built by the engine itself: no BuildKit container, no moby/buildkit image.
    let containers = b.docker_ok(&["ps", "-a", "--format", "{{.Names}} {{.Image}}"]);
    assert!(!containers.contains("buildkit"), "{containers}");
    let images = b.docker_ok(&["images", "--format", "{{.Repository}}"]);
    assert!(!images.contains("moby/buildkit"), "{images}");
}
