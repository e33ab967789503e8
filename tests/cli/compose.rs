//! Docker Compose (Debian's docker-compose 1.29, the Python one: compose v2 is a Go plugin
//! with no Debian package) drives a two-service project in `tests/compose/app`: a built
//! image, a named volume, a health check that gates `depends_on`, service-name DNS, a
//! published port, `ps`, `exec -T`, `run --rm`, `port`, `--scale`, `logs`, `stop`/`start`, and
//! `down -v` that leaves nothing. busybox httpd as PID 1 ignores SIGTERM, so stops use `-t 1`.

use std::process::{Command, Output};
use std::time::Duration;

use berth_test_support::{free_port, http_get, repo_root, run_bounded, wait_until, Engine};

const PROJECT: &str = "berthproj";

struct Compose<'a> {
    e: &'a Engine,
    port: u16,
}

impl Compose<'_> {
    fn cmd(&self, args: &[&str]) -> Command {
        let file = repo_root().join("tests/compose/app/docker-compose.yml");
        let mut full = vec![
            "-f",
            file.to_str().unwrap(),
            "-p",
            PROJECT,
            "--ansi",
            "never",
        ];
        full.extend_from_slice(args);
        let mut c = self.e.client_cmd("docker-compose", &full);
        // `run` and `exec` go through the docker CLI, compose's default (its own attach path
        // attaches after the start and misses a short-lived command's output, with dockerd too).
        c.env("WEB_PORT", self.port.to_string())
            .env_remove("COMPOSE_INTERACTIVE_NO_CLI");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        run_bounded(self.cmd(args), Duration::from_secs(180))
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "docker-compose {args:?} failed ({}):\nstdout: {}\nstderr: {}\n--- engine log ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.e.log_tail()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn web_answers(port: u16, want: &str) -> bool {
    wait_until(Duration::from_secs(30), || {
        http_get(&format!("127.0.0.1:{port}"), "/").is_ok_and(|b| b.contains(want))
    })
}

#[test]
fn compose_up_ps_exec_logs_down() {
    let e = Engine::start();
    e.docker_ok(&["pull", "-q", "busybox"]);
    let c = Compose {
        e: &e,
        port: free_port(),
    };

    // `up -d` builds db, creates the network and volume, starts web once db is healthy.
    c.ok(&["up", "-d", "--build"]);
    assert!(
        web_answers(c.port, "built by compose"),
        "web did not serve db's page on 127.0.0.1:{}\n{}",
        c.port,
        e.log_tail()
    );
    let health = e.docker_ok(&[
        "inspect",
        "-f",
        "{{.State.Health.Status}}",
        &format!("{PROJECT}_db_1"),
    ]);
    assert_eq!(health.trim(), "healthy");

    let ps = c.ok(&["ps"]);
    for svc in ["db", "web"] {
        let line = ps
            .lines()
            .find(|l| l.starts_with(&format!("{PROJECT}_{svc}_1")))
            .unwrap_or_else(|| panic!("{svc} missing from compose ps:\n{ps}"));
        assert!(line.contains("Up"), "{svc} not up:\n{ps}");
    }
    assert!(
        ps.contains(&format!("127.0.0.1:{}->80/tcp", c.port)),
        "published port missing from compose ps:\n{ps}"
    );

    // Labels as compose reads them back, the project network and volume.
    let ids = e.docker_ok(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.compose.project={PROJECT}"),
    ]);
    assert_eq!(ids.lines().count(), 2, "{ids}");
    e.docker_ok(&["network", "inspect", &format!("{PROJECT}_default")]);
    e.docker_ok(&["volume", "inspect", &format!("{PROJECT}_data")]);

    assert_eq!(
        c.ok(&["exec", "-T", "db", "cat", "/data/v"]).trim(),
        "stored"
    );
    let out = c.run(&["exec", "-T", "web", "sh", "-c", "exit 4"]);
    assert_eq!(out.status.code(), Some(4), "exec exit code");
    // Service names resolve on the project network (the embedded DNS).
    let looked = c.ok(&["exec", "-T", "web", "nslookup", "db"]);
    assert!(looked.contains("Address"), "{looked}");

    // One-off `run`, `port`, and a second db through `--scale`, healthy like the first.
    assert_eq!(
        c.ok(&["run", "--rm", "web", "echo", "one-off"]).trim(),
        "one-off"
    );
    assert_eq!(
        c.ok(&["port", "web", "80"]).trim(),
        format!("127.0.0.1:{}", c.port)
    );
    c.ok(&["up", "-d", "--scale", "db=2", "--no-recreate"]);
    let ps = c.ok(&["ps"]);
    assert!(ps.contains(&format!("{PROJECT}_db_2")), "{ps}");

    // compose prefixes each log line with the service's container number.
    let logs = c.ok(&["logs", "--no-color", "db"]);
    assert!(
        logs.lines()
            .any(|l| l.starts_with("db_1") && l.ends_with("| db ready")),
        "{logs}"
    );

    // stop/start keep the volume's data; the page is served again.
    c.ok(&["stop", "-t", "1"]);
    assert_eq!(
        e.docker_ok(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.compose.project={PROJECT}")
        ])
        .trim(),
        ""
    );
    c.ok(&["start"]);
    assert!(web_answers(c.port, "built by compose"), "{}", e.log_tail());

    // `down -v` removes containers, network and volume: nothing of the project is left.
    c.ok(&["down", "-v", "-t", "1"]);
    let left = e.docker_ok(&[
        "ps",
        "-a",
        "-q",
        "--filter",
        &format!("label=com.docker.compose.project={PROJECT}"),
    ]);
    assert_eq!(left.trim(), "", "containers left");
    let nets = e.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.contains(PROJECT), "network left: {nets}");
    let vols = e.docker_ok(&["volume", "ls", "-q"]);
    assert!(!vols.contains(PROJECT), "volume left: {vols}");
    // The built image stays, as with dockerd.
    e.docker_ok(&["image", "inspect", "berth-compose-db"]);
}
