//! Compose v2 (the Go CLI plugin, 2.26 from Debian trixie) drives whole projects against the
//! engine: start order by `depends_on` conditions (`service_completed_successfully`,
//! `service_healthy`) with `up --wait`, profiles, `env_file`, file-based `secrets` and `configs`,
//! `config`; the day-two verbs (`port`, `exec`, `run --rm`, `cp` both ways, `top`, `pause`,
//! `--scale`, `restart`, `logs`, `events`, `down -v --rmi local`); and `compose watch` syncing
//! host edits into the container and rebuilding on a Dockerfile change. Builds go through
//! BuildKit (the engine's `/grpc`) in one project and the classic builder in another.
//! busybox's `httpd` and `sleep` ignore SIGTERM as PID 1, so services stop with a 1 s grace.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use berth_test_support::{free_port, http_get, wait_until, Engine};

use crate::plugins::{docker_with, expect_ok, run_in, write_files, Plugin};

/// `docker compose` for one project folder.
struct Project<'a> {
    e: &'a Engine,
    dir: PathBuf,
    env: Vec<(&'static str, String)>,
}

impl<'a> Project<'a> {
    fn new(e: &'a Engine, name: &str, files: &[(&str, &str)]) -> Self {
        let dir = e.scratch().join(name);
        write_files(&dir, files);
        Project {
            e,
            dir,
            env: Vec::new(),
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut full = vec!["compose", "--ansi", "never", "--progress", "plain"];
        full.extend_from_slice(args);
        let mut c = docker_with(self.e, &[Plugin::Compose, Plugin::Buildx], &full);
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        run_in(self.cmd(args), &self.dir)
    }

    /// stdout of a compose command that must succeed.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        expect_ok(self.e, args, out);
        stdout
    }

    /// Spawns a long-running compose command (`watch`, `events`) with its stdout read line by
    /// line into a channel.
    fn spawn(&self, args: &[&str]) -> (ChildGuard, mpsc::Receiver<String>) {
        let mut c = self.cmd(args);
        c.current_dir(&self.dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn docker compose");
        let (tx, rx) = mpsc::channel();
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        (ChildGuard(child), rx)
    }

    /// The file's content in the service's container, if it can be read.
    fn read_in(&self, service: &str, path: &str) -> Option<String> {
        let out = self.run(&["exec", "-T", service, "cat", path]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

/// A spawned compose command, killed (it is ours) and reaped when the test ends.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits (bounded) for a line containing `needle`; returns the lines seen so far on failure.
fn wait_line(rx: &mpsc::Receiver<String>, needle: &str, timeout: Duration) -> Result<(), String> {
    let deadline = std::time::Instant::now() + timeout;
    let mut seen = String::new();
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return Ok(()),
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
            }
            Err(_) => break,
        }
    }
    Err(seen)
}

/// The body of `GET /` on the loopback port.
fn page(port: u16) -> Option<String> {
    let reply = http_get(&format!("127.0.0.1:{port}"), "/").ok()?;
    reply
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
}

const ORDERED: &str = r#"name: berthv2
services:
  init:
    image: busybox
    volumes: [data:/data]
    command: ["sh", "-c", "echo seeded > /data/seed"]
  db:
    build: ./db
    image: berthv2-db
    stop_grace_period: 1s
    volumes: [data:/data]
    depends_on:
      init:
        condition: service_completed_successfully
    command: ["sh", "-c", "mkdir -p /www && cat /data/seed /built > /www/index.html && exec httpd -f -p 8000 -h /www"]
    healthcheck:
      test: ["CMD", "wget", "-qO", "/dev/null", "http://127.0.0.1:8000/"]
      interval: 1s
      timeout: 2s
      retries: 60
  web:
    image: busybox
    stop_grace_period: 1s
    depends_on:
      db:
        condition: service_healthy
    env_file: web.env
    secrets: [token]
    configs:
      - source: site
        target: /etc/site.conf
    ports: ["127.0.0.1:${WEB_PORT}:80"]
    command: ["sh", "-c", "mkdir -p /www && wget -qO /www/index.html http://db:8000/ && echo \"$$GREETING $$(cat /run/secrets/token) $$(cat /etc/site.conf)\" >> /www/index.html && exec httpd -f -p 80 -h /www"]
  tools:
    image: busybox
    profiles: [debug]
    stop_grace_period: 1s
    command: ["sleep", "600"]
secrets:
  token:
    file: ./token.txt
configs:
  site:
    file: ./site.conf
volumes:
  data:
"#;

#[test]
fn compose_v2_up_wait_follows_conditions_with_secrets_configs_and_profiles() {
    let e = Engine::start();
    let mut p = Project::new(
        &e,
        "ordered",
        &[
            ("compose.yaml", ORDERED),
            (
                "db/Dockerfile",
                "FROM busybox\nRUN echo built-by-buildkit > /built\n",
            ),
            ("web.env", "# a comment\nGREETING=hello-from-env-file\n"),
            ("token.txt", "s3cret-token\n"),
            ("site.conf", "site-config\n"),
        ],
    );
    let port = free_port();
    p.env.push(("WEB_PORT", port.to_string()));

    let services = p.ok(&["config", "--services"]);
    let mut listed: Vec<&str> = services.lines().collect();
    listed.sort_unstable();
    assert_eq!(listed, ["db", "init", "web"], "profiled service listed");

    // `up --wait` returns once init has completed, db is healthy and web runs.
    p.ok(&["up", "-d", "--build", "--wait"]);
    let init = e.docker_ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        "berthv2-init-1",
    ]);
    assert_eq!(init.trim(), "exited 0");
    let health = e.docker_ok(&["inspect", "-f", "{{.State.Health.Status}}", "berthv2-db-1"]);
    assert_eq!(health.trim(), "healthy");
    let served = wait_until(Duration::from_secs(30), || {
        page(port).is_some_and(|b| b.contains("site-config"))
    });
    let body = page(port).unwrap_or_default();
    assert!(
        served,
        "web's page on 127.0.0.1:{port}: {body:?}\n{}",
        e.log_tail()
    );
    assert_eq!(
        body,
        "seeded\nbuilt-by-buildkit\nhello-from-env-file s3cret-token site-config\n"
    );

    // The secret is a read-only file; the profiled service starts only when asked for.
    let write = p.run(&[
        "exec",
        "-T",
        "web",
        "sh",
        "-c",
        "echo x > /run/secrets/token",
    ]);
    assert!(!write.status.success(), "secret was writable");
    assert!(!p.ok(&["ps", "--services"]).contains("tools"));
    p.ok(&["--profile", "debug", "up", "-d", "--wait", "tools"]);
    assert!(p.ok(&["ps", "--services"]).contains("tools"));

    p.ok(&["--profile", "debug", "down", "-v", "-t", "1"]);
    let left = e.docker_ok(&[
        "ps",
        "-aq",
        "--filter",
        "label=com.docker.compose.project=berthv2",
    ]);
    assert_eq!(left, "", "containers left after down");
    assert!(!e
        .docker_ok(&["volume", "ls", "-q"])
        .contains("berthv2_data"));
}

const DAY_TWO: &str = r#"name: berthday
services:
  app:
    build: ./app
    stop_grace_period: 1s
    ports: ["127.0.0.1::80"]
    volumes: [state:/state]
  worker:
    image: busybox
    stop_grace_period: 1s
    command: ["sh", "-c", "i=0; while true; do echo tick $$i; i=$$((i+1)); sleep 1; done"]
volumes:
  state:
"#;

/// The host port `compose port app 80` names.
fn host_port(p: &Project) -> u16 {
    let port = p.ok(&["port", "app", "80"]);
    port.trim().rsplit(':').next().unwrap().parse().unwrap()
}

const APP_DOCKERFILE: &str = "FROM busybox\n\
RUN mkdir -p /www && echo app-page > /www/index.html\n\
CMD [\"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/www\"]\n";

#[test]
fn compose_v2_day_two_verbs_with_the_classic_builder() {
    let e = Engine::start();
    let mut p = Project::new(
        &e,
        "daytwo",
        &[
            ("compose.yaml", DAY_TWO),
            ("app/Dockerfile", APP_DOCKERFILE),
            ("note.txt", "copied-in\n"),
        ],
    );
    p.env.push(("DOCKER_BUILDKIT", "0".into()));
    p.ok(&["up", "-d", "--wait"]);

    // `port` names the ephemeral host port, which serves the built page.
    let port = host_port(&p);
    assert_eq!(page(port).as_deref(), Some("app-page\n"));

    assert_eq!(
        p.read_in("app", "/www/index.html").as_deref(),
        Some("app-page")
    );
    let one_off = p.ok(&["run", "--rm", "-T", "worker", "echo", "one-off"]);
    assert_eq!(one_off.trim(), "one-off");
    let runs = e.docker_ok(&[
        "ps",
        "-aq",
        "--filter",
        "label=com.docker.compose.oneoff=True",
    ]);
    assert_eq!(runs, "", "run --rm left its container");

    // `cp` into the service and back out.
    p.ok(&["cp", "note.txt", "app:/state/note.txt"]);
    assert_eq!(
        p.read_in("app", "/state/note.txt").as_deref(),
        Some("copied-in")
    );
    p.ok(&["cp", "app:/www/index.html", "out.html"]);
    assert_eq!(
        std::fs::read_to_string(p.dir.join("out.html")).unwrap(),
        "app-page\n"
    );

    assert!(p.ok(&["top", "app"]).contains("httpd"));
    p.ok(&["pause", "app"]);
    let state = e.docker_ok(&["inspect", "-f", "{{.State.Status}}", "berthday-app-1"]);
    assert_eq!(state.trim(), "paused");
    p.ok(&["unpause", "app"]);
    assert_eq!(page(port).as_deref(), Some("app-page\n"));

    p.ok(&["up", "-d", "--wait", "--scale", "worker=2"]);
    assert_eq!(p.ok(&["ps", "-q", "worker"]).lines().count(), 2);
    let mut logs = String::new();
    let second_ticks = wait_until(Duration::from_secs(20), || {
        logs = p.ok(&["logs", "--no-color", "worker"]);
        logs.lines()
            .any(|l| l.contains("worker-2") && l.contains("| tick 1"))
    });
    assert!(
        second_ticks,
        "no tick of the second worker in compose logs:\n{logs}"
    );

    // `events` reports the restart it sees.
    let (_events, rx) = p.spawn(&["events"]);
    let mut printed = String::new();
    let restarted = wait_until(Duration::from_secs(60), || {
        p.ok(&["restart", "-t", "1", "app"]);
        wait_line(&rx, "container restart", Duration::from_secs(5))
            .map_err(|seen| printed.push_str(&seen))
            .is_ok()
    });
    assert!(
        restarted,
        "compose events showed no restart; it printed:\n{printed}\n{}",
        e.log_tail()
    );
    // An ephemeral host port may change with the restart, as with dockerd: ask again.
    let port = host_port(&p);
    assert!(wait_until(Duration::from_secs(20), || page(port).is_some()));

    // `down -v --rmi local` leaves nothing of the project: containers, network, volume, and
    // the image built without a custom tag.
    p.ok(&["down", "-v", "--rmi", "local", "-t", "1"]);
    let label = "label=com.docker.compose.project=berthday";
    assert_eq!(e.docker_ok(&["ps", "-aq", "--filter", label]), "");
    assert_eq!(e.docker_ok(&["network", "ls", "-q", "--filter", label]), "");
    assert_eq!(e.docker_ok(&["volume", "ls", "-q", "--filter", label]), "");
    let images = e.docker_ok(&["images", "--format", "{{.Repository}}"]);
    assert!(!images.contains("berthday-app"), "{images}");
}

const WATCHED: &str = r#"name: berthwatch
services:
  web:
    build: .
    stop_grace_period: 1s
    develop:
      watch:
        - action: sync
          path: ./src
          target: /src
        - action: rebuild
          path: ./version.txt
"#;

fn watched_dockerfile() -> &'static str {
    "FROM busybox\nCOPY src /src\nCOPY version.txt /version\nCMD [\"sleep\", \"600\"]\n"
}

#[test]
fn compose_v2_watch_syncs_edits_and_rebuilds() {
    let e = Engine::start();
    let p = Project::new(
        &e,
        "watched",
        &[
            ("compose.yaml", WATCHED),
            ("Dockerfile", watched_dockerfile()),
            ("src/a.txt", "one\n"),
            ("version.txt", "v1\n"),
        ],
    );
    let (_watch, rx) = p.spawn(&["watch"]);
    let reads = |path: &str, want: &str| {
        wait_until(Duration::from_secs(90), || {
            p.read_in("web", path).as_deref() == Some(want)
        })
    };
    assert!(
        reads("/src/a.txt", "one"),
        "watch did not bring the service up"
    );
    if let Err(seen) = wait_line(&rx, "Watch enabled", Duration::from_secs(60)) {
        panic!(
            "compose watch never said it watches:\n{seen}\n{}",
            e.log_tail()
        );
    }

    // A host edit and a new file are synced into the running container.
    std::fs::write(p.dir.join("src/a.txt"), "two\n").unwrap();
    std::fs::write(p.dir.join("src/b.txt"), "new\n").unwrap();
    assert!(
        reads("/src/a.txt", "two"),
        "edit not synced\n{}",
        e.log_tail()
    );
    assert!(reads("/src/b.txt", "new"), "new file not synced");

    // A change under a rebuild path rebuilds the image and recreates the container.
    std::fs::write(p.dir.join("version.txt"), "v2\n").unwrap();
    assert!(reads("/version", "v2"), "no rebuild\n{}", e.log_tail());
    drop(_watch);
    p.ok(&["down", "-t", "1", "--rmi", "local"]);
}
