//! Testcontainers for Rust (the `testcontainers` crate, pinned in tests/Cargo.toml) against a
//! fresh engine, as a Rust test suite uses it: the fixture httpd image from the loopback
//! registry, started on a network the crate creates, with an environment variable and a file
//! copied in before start, a wait for a log line and for a Docker health check, its port 80
//! mapped to a host port the test reaches, a command run in it, and the container and network
//! removed when the handle is dropped. The crate has no Ryuk reaper (nothing to disable): dropping
//! `ContainerAsync` removes the container with the API's `DELETE /containers/{id}?force=true&v=true`.

use std::time::Duration;

use berth_test_support::{http_get, wait_until, Engine, Registry};
use testcontainers::core::{ExecCommand, IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, Healthcheck, ImageExt};

const READY: &str = "berth-ready";
/// What the fixture httpd serves (tests/fixtures/images.py).
const MARKER: &str = "berth-httpd-ok";

/// A file the crate copies into the container before it starts (httpd serves it).
const COPIED: &str = "copied-by-testcontainers";
/// The network the crate creates for the container (and removes after it).
const NETWORK: &str = "berth-tc-net";

/// The fixture httpd from `registry` on [`NETWORK`], with an environment variable and a file
/// copied in, logging [`READY`] before it serves, healthy once it answers on port 80.
async fn start_httpd(registry: &str) -> ContainerAsync<GenericImage> {
    GenericImage::new(format!("{registry}/berth-test/httpd"), "latest".to_string())
        .with_exposed_port(80.tcp())
        .with_wait_for(WaitFor::message_on_stdout(READY))
        .with_wait_for(WaitFor::healthcheck())
        .with_cmd([
            "sh".to_string(),
            "-c".to_string(),
            format!("echo {READY}; exec httpd -f -p 80 -h /www"),
        ])
        .with_health_check(
            Healthcheck::cmd_shell("wget -q -O- http://127.0.0.1/ | grep -q berth-httpd-ok")
                .with_interval(Duration::from_millis(200))
                .with_retries(100),
        )
        .with_env_var("BERTH_TC", "from-testcontainers")
        .with_copy_to("/www/copied.html", COPIED.as_bytes().to_vec())
        .with_network(NETWORK)
        .with_startup_timeout(Duration::from_secs(60))
        .start()
        .await
        .expect("testcontainers starts the httpd container")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn testcontainers_rs_log_health_port_exec_drop() {
    let e = Engine::start();
    // The crate reads DOCKER_HOST from the environment; this test binary's other tests never
    // do, and each test in nextest is its own process.
    std::env::set_var("DOCKER_HOST", e.host());
    let registry = Registry::shared().addr.clone();
    let c = start_httpd(&registry).await;
    let id = c.id().to_string();
    let logs = String::from_utf8(c.stdout_to_vec().await.expect("logs")).unwrap();
    assert!(logs.contains(READY), "{logs}");

    let port = c.get_host_port_ipv4(80).await.expect("mapped port");
    assert_ne!(port, 80);
    let addr = format!("127.0.0.1:{port}");
    let mut body = String::new();
    let reached = wait_until(Duration::from_secs(30), || {
        body = http_get(&addr, "/").unwrap_or_default();
        body.contains(MARKER)
    });
    assert!(reached, "{addr} did not serve the fixture page: {body:?}");
    let copied = http_get(&addr, "/copied.html").expect("the copied file");
    assert!(copied.contains(COPIED), "{copied}");
    let networks = e.docker_ok(&["inspect", "-f", "{{json .NetworkSettings.Networks}}", &id]);
    assert!(networks.contains(NETWORK), "{networks}");

    let mut r = c
        .exec(ExecCommand::new([
            "sh",
            "-c",
            "echo \"out $BERTH_TC\"; echo err >&2; exit 3",
        ]))
        .await
        .expect("exec");
    let out = String::from_utf8(r.stdout_to_vec().await.unwrap()).unwrap();
    let err = String::from_utf8(r.stderr_to_vec().await.unwrap()).unwrap();
    assert_eq!(
        (out.as_str(), err.as_str()),
        ("out from-testcontainers\n", "err\n")
    );
    assert_eq!(r.exit_code().await.expect("exit code"), Some(3));
    assert!(c.is_running().await.expect("state"));

    drop(c);
    let left = e.docker_ok(&["ps", "-aq", "--no-trunc", "--filter", &format!("id={id}")]);
    assert!(
        left.trim().is_empty(),
        "container {id} left after drop: {left}"
    );
    let nets = e.docker_ok(&[
        "network",
        "ls",
        "-q",
        "--filter",
        &format!("name={NETWORK}"),
    ]);
    assert!(
        nets.trim().is_empty(),
        "network {NETWORK} left after drop: {nets}"
    );
}
