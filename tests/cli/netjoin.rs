//! `--network container:<name>`: a container in another's network namespace, checked with the
//! docker CLI against what the reference dockerd 20.10 answers for the same commands.

use berth_test_support::{free_port, Engine};

/// Text of the fixture busybox image's `/www/index.html`.
const PAGE_MARKER: &str = "berth-httpd-ok";

/// `docker create --name <name> --network container:<target> busybox <cmd>`.
fn create_joined(e: &Engine, name: &str, target: &str, cmd: &[&str]) {
    let network = format!("container:{target}");
    let mut args = vec!["create", "--name", name, "--network", &network, "busybox"];
    args.extend_from_slice(cmd);
    e.docker_ok(&args);
}

#[test]
fn a_joined_container_reaches_the_targets_loopback_and_has_no_endpoint() {
    let e = Engine::start();
    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let web = e.docker_ok(&[
        "run", "-d", "--name", "web", "busybox", "httpd", "-f", "-p", &listen, "-h", "/www",
    ]);
    let web = web.trim();
    // Only the target's loopback serves the page: a joined container shares it, a bridged
    // one does not (bounded retries: httpd may not listen yet when the first wget runs).
    let fetch =
        format!("for i in $(seq 50); do wget -qO- {listen} && exit 0; usleep 100000; done; exit 1");
    let page = e.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "container:web",
        "busybox",
        "sh",
        "-c",
        &fetch,
    ]);
    assert!(page.contains(PAGE_MARKER), "{page}");
    let own = e.docker(&["run", "--rm", "busybox", "wget", "-qO-", "-T", "2", &listen]);
    assert!(
        !own.status.success(),
        "a bridged container reached {listen}"
    );

    create_joined(&e, "side", "web", &["sleep", "300"]);
    e.docker_ok(&["start", "side"]);
    let facts = e.docker_ok(&[
        "inspect",
        "-f",
        "{{.HostConfig.NetworkMode}} {{json .NetworkSettings.Networks}} [{{.NetworkSettings.IPAddress}}] [{{.NetworkSettings.SandboxKey}}]",
        "side",
    ]);
    // dockerd stores the target's full id, and the joined container has no network of its own.
    assert_eq!(facts.trim(), format!("container:{web} {{}} [] []"));
    let names = e.docker_ok(&["exec", "side", "sh", "-c", "hostname; echo $HOSTNAME"]);
    assert_eq!(
        names.trim(),
        format!("{0}\n{0}", &web[..12]),
        "the target's hostname"
    );
    // As dockerd does at start, the joined container's own record takes the target's name.
    let own = e.docker_ok(&["inspect", "-f", "{{.Config.Hostname}}", "side"]);
    assert_eq!(own.trim(), &web[..12], "Config.Hostname");
    let side_id = e.docker_ok(&["inspect", "-f", "{{.Id}}", "side"]);
    let netns = super::crash::names(&e.scratch().join("run/netns"));
    assert!(!netns.contains(&side_id.trim().to_string()), "{netns:?}");
    let ps = e.docker_ok(&[
        "ps",
        "--filter",
        "name=side",
        "--format",
        "{{.Networks}}|{{.Ports}}",
    ]);
    assert_eq!(ps.trim(), "|");
}

#[test]
fn options_needing_an_own_network_and_stopped_targets_are_refused_as_dockerd_does() {
    let e = Engine::start();
    let web = e.docker_ok(&["create", "--name", "web", "busybox", "sleep", "300"]);
    let web = web.trim();
    for (flags, said) in [
        (&["-p", "8080:80"][..], "conflicting options: port publishing and the container type network mode"),
        (&["-P"][..], "conflicting options: port publishing and the container type network mode"),
        (&["-h", "foo"][..], "conflicting options: hostname and the network mode"),
        (&["--expose", "80"][..], "conflicting options: port exposing and the container type network mode"),
        (&["--dns", "1.1.1.1"][..], "conflicting options: dns and the network mode"),
        (&["--add-host", "a:1.2.3.4"][..], "conflicting options: custom host-to-IP mapping and the network mode"),
        (&["--link", "web:w"][..], "conflicting options: container type network can't be used with links. This would result in undefined behavior"),
    ] {
        let mut args = vec!["create", "--network", "container:web"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["busybox", "true"]);
        let err = e.docker_err(&args);
        assert!(err.contains(&format!("Error response from daemon: {said}")), "{flags:?}: {err}");
    }
    let (status, body) = e.api(
        "POST",
        "/containers/create",
        Some(r#"{"Image":"busybox","HostConfig":{"NetworkMode":"container:"}}"#),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("Invalid network mode: invalid container format container:<name|id>"),
        "{body}"
    );
    let (status, body) = e.api(
        "POST",
        "/containers/create",
        Some(r#"{"Image":"busybox","HostConfig":{"NetworkMode":"container:web","PortBindings":{"80/tcp":[{"HostPort":"8080"}]}}}"#),
    );
    assert_eq!(status, 400, "{body}");
    // Nothing was made by the refused creates.
    assert_eq!(e.docker_ok(&["ps", "-aq"]).lines().count(), 1);

    // A target that does not run: the create is taken, the start refused with a 409.
    create_joined(&e, "side", "web", &["true"]);
    let err = e.docker_err(&["start", "side"]);
    assert!(
        err.contains(&format!(
            "cannot join network of a non running container: {web}"
        )),
        "{err}"
    );
    let (status, _) = e.api("POST", "/containers/side/start", None);
    assert_eq!(status, 409);
    // A missing one at create is kept as sent and is "No such container" at start.
    create_joined(&e, "lost", "nosuch", &["true"]);
    let mode = e.docker_ok(&["inspect", "-f", "{{.HostConfig.NetworkMode}}", "lost"]);
    assert_eq!(mode.trim(), "container:nosuch");
    let err = e.docker_err(&["start", "lost"]);
    assert!(err.contains("No such container: nosuch"), "{err}");
    // Once the target runs, the same container starts.
    e.docker_ok(&["start", "web"]);
    let out = e.docker_ok(&["start", "-a", "side"]);
    assert!(out.trim().is_empty(), "{out}");
}
