//! The Dev Containers CLI (`@devcontainers/cli`, pinned by `tests/sdk/devcontainers`, installed by
//! `tests/fixtures/devcontainers-cli.sh` into `$BERTH_DEVCONTAINERS`, default
//! `~/.cache/berth/devcontainers-cli`) brings projects up against a fresh engine as VS Code
//! does: `devcontainer up --docker-path docker` of a `devcontainer.json` naming an image of the
//! loopback registry (then reopened: stopped and `up` again), of one with a `build.dockerfile`,
//! built once by the classic builder and once by buildx, of a `dockerComposeFile` project
//! (compose v2) of two services, and of one with a feature from its own folder; each with
//! `containerEnv`, `remoteUser` and a `postCreateCommand`. Then `devcontainer exec` sees the
//! bind-mounted workspace, the environment, the user and what the post-create command wrote.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_test_support::{Engine, Registry};

use crate::plugins::{docker_with, expect_ok, run_in, write_files, Plugin};

/// The `devcontainer` launcher of the pinned install.
fn devcontainer_bin() -> PathBuf {
    berth_test_support::installed(
        "BERTH_DEVCONTAINERS",
        "devcontainers-cli",
        "node_modules/.bin/devcontainer",
        "tests/fixtures/devcontainers-cli.sh",
    )
}

/// `devcontainer VERB --workspace-folder DIR --docker-path docker ARGS…` against `e`, with its
/// in-container state in `/tmp` (the fixture users' home folders do not exist). The CLI keeps
/// its cache in `$TMPDIR/devcontainercli-<user>`, where it refreshes a "control manifest" (feature
/// advisories) from the internet when the cached one is older than 5 minutes: each run gets a
/// `TMPDIR` of its own holding a fresh copy of the CLI's built-in empty manifest, so it never
/// reaches out (the manifest only concerns features from registries; the projects use none).
/// `plugins` is the docker CLI plugin the Dev Containers CLI finds: with buildx it builds a
/// `build.dockerfile` image with `docker buildx build` (BuildKit through the engine's `/grpc`),
/// without it with plain `docker build` (`DOCKER_BUILDKIT=0`, the classic builder);
/// `dockerComposeFile` projects run with compose.
fn devcontainer(
    e: &Engine,
    plugins: Option<Plugin>,
    verb: &str,
    workspace: &Path,
    args: &[&str],
) -> Command {
    let tmp = e.scratch().join("devcontainer-tmp");
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let cache = tmp.join(format!("devcontainercli-{user}"));
    std::fs::create_dir_all(&cache).expect("devcontainer cache");
    std::fs::write(
        cache.join("control-manifest.json"),
        r#"{"disallowedFeatures":[],"featureAdvisories":[]}"#,
    )
    .expect("control manifest");
    let mut c = e.client_cmd(devcontainer_bin().to_str().expect("utf-8 path"), &[verb]);
    c.arg("--workspace-folder")
        .arg(workspace)
        .args(["--docker-path", "docker"])
        .args(["--container-data-folder", "/tmp/devcontainer"])
        .args(args)
        .env("TMPDIR", &tmp);
    if let Some(plugin) = plugins {
        // The docker CLI's environment with that plugin (its own DOCKER_CONFIG, BuildKit on).
        let docker = docker_with(e, &[plugin], &[]);
        for (k, v) in docker.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
    }
    c
}

/// Brings `workspace` up, checks the CLI's JSON outcome (run as `user`), and returns the
/// container's id.
fn up(e: &Engine, plugins: Option<Plugin>, workspace: &Path, user: &str) -> String {
    let out = run_in(devcontainer(e, plugins, "up", workspace, &[]), workspace);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    expect_ok(e, &["devcontainer up"], out);
    let outcome: serde_json::Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON outcome from devcontainer up:\n{stdout}"));
    assert_eq!(outcome["outcome"], "success", "{outcome}");
    assert_eq!(outcome["remoteUser"], user, "{outcome}");
    outcome["containerId"]
        .as_str()
        .expect("containerId")
        .to_string()
}

/// The value of the label `key` of container `id`.
fn label(e: &Engine, id: &str, key: &str) -> String {
    let format = format!("{{{{index .Config.Labels {key:?}}}}}");
    e.docker_ok(&["inspect", "-f", &format, id])
        .trim()
        .to_string()
}

/// What `devcontainer exec` sees in the container of `workspace` (mounted at
/// `/workspaces/<name>`): the host's file, `containerEnv`, `user`, the post-create file.
fn exec_sees_workspace_env_user(e: &Engine, plugins: Option<Plugin>, workspace: &Path, user: &str) {
    let name = workspace.file_name().unwrap().to_str().unwrap();
    let script = format!(
        "cat /workspaces/{name}/hello.txt; echo \"env=$BERTH_DC_ENV\"; echo \"user=$(id -un)\"; \
         cat /workspaces/{name}/post-create.txt; echo \"pwd=$(pwd)\""
    );
    let out = run_in(
        devcontainer(e, plugins, "exec", workspace, &["sh", "-c", &script]),
        workspace,
    );
    let text = expect_ok(e, &["devcontainer exec"], out);
    let ran = format!("post-create ran as {user}");
    for want in [
        "hello from the host",
        "env=from-containerEnv",
        &format!("user={user}"),
        &ran,
        &format!("pwd=/workspaces/{name}"),
    ] {
        assert!(text.contains(want), "{want:?} not in:\n{text}");
    }
    // The post-create command wrote through the bind mount: the host sees its file.
    let host = std::fs::read_to_string(workspace.join("post-create.txt")).expect("post-create");
    assert_eq!(host.trim(), ran);
}

/// A project folder `name` in `e`'s scratch with `hello.txt`, `.devcontainer/devcontainer.json`
/// made of `settings` plus env, `user` and a post-create command, and `extra` files; writable by
/// the container's user (the post-create command writes through the bind mount).
fn project(e: &Engine, name: &str, settings: &str, user: &str, extra: &[(&str, &str)]) -> PathBuf {
    let dir = e.scratch().join(name);
    let config = format!(
        r#"{{
  {settings},
  "updateRemoteUserUID": false,
  "containerEnv": {{ "BERTH_DC_ENV": "from-containerEnv" }},
  "remoteUser": "{user}",
  "postCreateCommand": "echo \"post-create ran as $(id -un)\" > post-create.txt"
}}"#
    );
    let mut files = vec![
        (".devcontainer/devcontainer.json", config.as_str()),
        ("hello.txt", "hello from the host\n"),
    ];
    files.extend_from_slice(extra);
    write_files(&dir, &files);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    dir
}

/// `devcontainer up` of an image from the loopback registry, as the image's user `postgres`
/// (uid 70), then `exec`; after a `docker stop`, `up` again starts the same container (what
/// reopening a folder in VS Code does) without running the post-create command again.
#[test]
fn devcontainer_up_image_then_exec_and_reopen() {
    let e = Engine::start();
    let registry = &Registry::shared().addr;
    let settings = format!(r#""name": "berth image", "image": "{registry}/busybox:latest""#);
    let dir = project(&e, "dc-image", &settings, "postgres", &[]);
    let id = up(&e, None, &dir, "postgres");
    let image = e.docker_ok(&["inspect", "-f", "{{.Config.Image}}", &id]);
    assert!(image.contains("busybox"), "{image}");
    exec_sees_workspace_env_user(&e, None, &dir, "postgres");

    std::fs::remove_file(dir.join("post-create.txt")).expect("remove the post-create file");
    e.docker_ok(&["stop", "-t", "1", &id]);
    assert_eq!(up(&e, None, &dir, "postgres"), id, "the same container");
    let running = e.docker_ok(&["inspect", "-f", "{{.State.Running}}", &id]);
    assert_eq!(running.trim(), "true");
    assert!(
        !dir.join("post-create.txt").exists(),
        "the post-create command ran again on reopen"
    );
}

/// A project whose image is built from its own Dockerfile by `builder`, as a user `dev` the
/// Dockerfile adds, with an explicit workspace mount.
fn dockerfile_project_up_then_exec(plugins: Option<Plugin>, name: &str) {
    let e = Engine::start();
    let registry = &Registry::shared().addr;
    // busybox-static has no adduser.
    let dockerfile = format!(
        "FROM {registry}/busybox:latest\n\
         RUN echo 'dev:x:1000:1000:dev:/home/dev:/bin/sh' >> /etc/passwd \\\n\
         \x20 && echo 'dev:x:1000:' >> /etc/group && mkdir -p /home/dev && chown dev:dev /home/dev\n\
         LABEL org.berth.devcontainer=built\n"
    );
    let settings = format!(
        r#""name": "berth build",
  "build": {{ "dockerfile": "Dockerfile", "context": "." }},
  "workspaceMount": "source=${{localWorkspaceFolder}},target=/workspaces/{name},type=bind",
  "workspaceFolder": "/workspaces/{name}""#
    );
    let dir = project(
        &e,
        name,
        &settings,
        "dev",
        &[(".devcontainer/Dockerfile", &dockerfile)],
    );
    let id = up(&e, plugins, &dir, "dev");
    assert_eq!(label(&e, &id, "org.berth.devcontainer"), "built");
    exec_sees_workspace_env_user(&e, plugins, &dir, "dev");
}

/// `build.dockerfile` through the classic builder (the CLI's `--target` build of its own
/// Dockerfile with an `ARG` before `FROM`).
#[test]
fn devcontainer_up_dockerfile_classic_then_exec() {
    dockerfile_project_up_then_exec(None, "dc-classic");
}

/// `build.dockerfile` through `docker buildx build --load` (BuildKit).
#[test]
fn devcontainer_up_dockerfile_buildx_then_exec() {
    dockerfile_project_up_then_exec(Some(Plugin::Buildx), "dc-buildx");
}

/// A `dockerComposeFile` project (compose v2): the dev container is one service of two, with the
/// workspace bind-mounted by the compose file; `containerEnv`, `remoteUser` and the post-create
/// command apply to it, and its post-start command reaches the other service by name.
#[test]
fn devcontainer_up_compose_then_exec() {
    let e = Engine::start();
    let registry = &Registry::shared().addr;
    let compose = format!(
        "services:\n\
         \x20 app:\n\
         \x20   image: {registry}/busybox:latest\n\
         \x20   command: sleep infinity\n\
         \x20   volumes: [\"..:/workspaces/dc-compose:cached\"]\n\
         \x20 web:\n\
         \x20   image: {registry}/berth-test/httpd:latest\n"
    );
    let settings = r#""name": "berth compose",
  "dockerComposeFile": ["compose.yaml"],
  "service": "app",
  "runServices": ["app", "web"],
  "workspaceFolder": "/workspaces/dc-compose""#;
    let dir = project(
        &e,
        "dc-compose",
        &format!("{settings},\n  \"postStartCommand\": \"wget -q -O- http://web/ > /tmp/web.txt\""),
        "postgres",
        &[(".devcontainer/compose.yaml", &compose)],
    );
    let id = up(&e, Some(Plugin::Compose), &dir, "postgres");
    assert_eq!(label(&e, &id, "com.docker.compose.service"), "app");
    exec_sees_workspace_env_user(&e, Some(Plugin::Compose), &dir, "postgres");
    let out = run_in(
        devcontainer(
            &e,
            Some(Plugin::Compose),
            "exec",
            &dir,
            &["cat", "/tmp/web.txt"],
        ),
        &dir,
    );
    let web = expect_ok(&e, &["devcontainer exec"], out);
    assert!(web.contains("berth-httpd-ok"), "{web}");
}

/// A Dev Container feature from the project's own folder (no registry: `"./hello-feature"`),
/// installed by the CLI's generated Dockerfile through the classic builder: its option reaches
/// `install.sh`, its `containerEnv` the container. (Through buildx the CLI passes the features
/// as a named build context, `--build-context NAME=DIR`, which the engine's BuildKit frontend
/// does not serve yet.)
#[test]
fn devcontainer_up_local_feature_classic_then_exec() {
    let e = Engine::start();
    let registry = &Registry::shared().addr;
    let settings = format!(
        r#""name": "berth feature", "image": "{registry}/busybox:latest",
  "features": {{ "./hello-feature": {{ "greeting": "hi-from-feature" }} }}"#
    );
    let feature = r#"{ "id": "hello-feature", "version": "1.0.0", "name": "hello",
  "options": { "greeting": { "type": "string", "default": "hello" } },
  "containerEnv": { "BERTH_FEATURE_ENV": "set-by-feature" } }"#;
    let install = "#!/bin/sh\nset -e\necho \"$GREETING\" > /usr/local/bin/greeting.txt\n";
    let dir = project(
        &e,
        "dc-feature",
        &settings,
        "postgres",
        &[
            (
                ".devcontainer/hello-feature/devcontainer-feature.json",
                feature,
            ),
            (".devcontainer/hello-feature/install.sh", install),
        ],
    );
    let script = dir.join(".devcontainer/hello-feature/install.sh");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    up(&e, None, &dir, "postgres");
    exec_sees_workspace_env_user(&e, None, &dir, "postgres");
    let out = run_in(
        devcontainer(
            &e,
            None,
            "exec",
            &dir,
            &[
                "sh",
                "-c",
                "cat /usr/local/bin/greeting.txt; echo \"$BERTH_FEATURE_ENV\"",
            ],
        ),
        &dir,
    );
    let text = expect_ok(&e, &["devcontainer exec"], out);
    assert_eq!(text.trim(), "hi-from-feature\nset-by-feature", "{text}");
}
