//! `docker` CLI tests: networks, published ports, network modes, NAT to the bridge gateway,
//! and ports that survive an engine restart. Traffic goes only to loopback, to the engine's
//! own bridge and to its containers.

use std::net::TcpListener;
use std::time::Duration;

use berth_test_support::{free_port, http_get, serve_http_once, wait_until, Engine, FROM_HOST};

/// Text of the fixture busybox image's `/www/index.html`.
const PAGE_MARKER: &str = "berth-httpd-ok";

/// Starts busybox httpd serving the fixture page on port 80 of a detached container.
fn run_httpd(e: &Engine, args: &[&str]) -> String {
    let mut full = vec!["run", "-d"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["busybox", "httpd", "-f", "-p", "80", "-h", "/www"]);
    e.docker_ok(&full).trim().to_string()
}

/// Waits until `127.0.0.1:port` serves the fixture page.
fn serves_page(port: u16) -> bool {
    wait_until(Duration::from_secs(15), || {
        http_get(&format!("127.0.0.1:{port}"), "/")
            .map(|r| r.contains(PAGE_MARKER))
            .unwrap_or(false)
    })
}

fn netns_files(e: &Engine) -> Vec<String> {
    std::fs::read_dir(e.scratch().join("run/netns"))
        .map(|d| {
            d.filter_map(|x| x.ok())
                .map(|x| x.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn publish_port_serves_http_and_docker_port_lists_it() {
    let e = Engine::start();
    let port = free_port();
    let id = run_httpd(&e, &["-p", &format!("{port}:80")]);
    assert!(serves_page(port), "no page on {port}\n{}", e.log_tail());
    let listed = e.docker_ok(&["port", &id]);
    assert_eq!(listed.trim(), format!("80/tcp -> 0.0.0.0:{port}"));
    assert_eq!(
        e.docker_ok(&["port", &id, "80"]).trim(),
        format!("0.0.0.0:{port}")
    );
    let ps = e.docker_ok(&["ps", "--format", "{{.Ports}}"]);
    assert!(ps.contains(&format!("0.0.0.0:{port}->80/tcp")), "{ps}");
    e.docker_ok(&["rm", "-f", &id]);
    assert!(
        wait_until(Duration::from_secs(5), || http_get(
            &format!("127.0.0.1:{port}"),
            "/"
        )
        .is_err()),
        "port still served after rm"
    );
    assert!(netns_files(&e).is_empty(), "{:?}", netns_files(&e));
}

#[test]
fn publish_all_uses_ephemeral_ports_and_loopback_binding() {
    let e = Engine::start();
    let id = run_httpd(&e, &["-P", "--expose", "80"]);
    let out = e.docker_ok(&["port", &id, "80/tcp"]);
    let port: u16 = out
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no host port in {out:?}"));
    assert!(serves_page(port), "no page on -P port {port}");

    let lport = free_port();
    let id2 = run_httpd(&e, &["-p", &format!("127.0.0.1:{lport}:80")]);
    assert_eq!(
        e.docker_ok(&["port", &id2]).trim(),
        format!("80/tcp -> 127.0.0.1:{lport}")
    );
    assert!(serves_page(lport));
    e.docker_ok(&["rm", "-f", &id, &id2]);
}

#[test]
fn port_in_use_is_a_clear_error_and_leaves_nothing() {
    let e = Engine::start();
    // Held by another process (this test): the OS refuses the bind.
    let holder = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let err = e.docker_err(&[
        "run",
        "-d",
        "--name",
        "busy",
        "-p",
        &format!("{port}:80"),
        "busybox",
        "sleep",
        "60",
    ]);
    assert!(
        err.contains(&format!("0.0.0.0:{port}")) && err.contains("address already in use"),
        "{err}"
    );
    assert!(netns_files(&e).is_empty(), "{:?}", netns_files(&e));
    drop(holder);

    // Held by another container of this engine: dockerd's "port is already allocated".
    let port = free_port();
    let first = run_httpd(&e, &["-p", &format!("{port}:80")]);
    let err = e.docker_err(&[
        "run",
        "-d",
        "-p",
        &format!("{port}:80"),
        "busybox",
        "sleep",
        "60",
    ]);
    assert!(
        err.contains(&format!(
            "Bind for 0.0.0.0:{port} failed: port is already allocated"
        )),
        "{err}"
    );
    assert_eq!(netns_files(&e).len(), 1, "only the first container's netns");
    assert!(serves_page(port), "first container unaffected");
    e.docker_ok(&["rm", "-f", &first]);
}

#[test]
fn network_modes_host_and_none() {
    let e = Engine::start();
    let host = e.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "ip",
        "-4",
        "addr",
    ]);
    assert!(
        host.contains(&format!("inet {}/", e.gateway())),
        "host mode sees the host's bridge address: {host}"
    );
    let none = e.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "ip",
        "-o",
        "link",
    ]);
    let links: Vec<&str> = none.lines().collect();
    assert_eq!(links.len(), 1, "{none}");
    assert!(
        links[0].contains("lo:") && links[0].contains("UP"),
        "{none}"
    );
    let bridged = e.docker_ok(&["run", "--rm", "busybox", "ip", "-4", "route"]);
    assert!(
        bridged.contains(&format!("default via {}", e.gateway())),
        "{bridged}"
    );
}

#[test]
fn container_reaches_a_listener_on_the_bridge_gateway() {
    let e = Engine::start();
    let gw = e.gateway();
    let (port, server) = serve_http_once(&gw);
    let out = e.docker_ok(&[
        "run",
        "--rm",
        "busybox",
        "wget",
        "-q",
        "-O",
        "-",
        &format!("http://{gw}:{port}/"),
    ]);
    assert_eq!(out, FROM_HOST);
    let peer = server.join().unwrap().expect("the container connected");
    // Outbound NAT for the engine's subnet, in the engine's own chain.
    let link = std::process::Command::new("ip")
        .args(["-o", "-4", "addr", "show", "to", &gw])
        .output()
        .unwrap();
    let link = String::from_utf8_lossy(&link.stdout);
    let bridge = link
        .split_whitespace()
        .nth(1)
        .expect("bridge holding the gateway");
    let rules = std::process::Command::new("iptables")
        .args(["-w", "-t", "nat", "-S", &format!("BERTH-NAT-{bridge}")])
        .output()
        .unwrap();
    let rules = String::from_utf8_lossy(&rules.stdout);
    assert!(
        rules.contains(&format!("! -o {bridge} -j MASQUERADE")),
        "{rules}"
    );
    let subnet_prefix = gw.rsplit_once('.').unwrap().0;
    assert!(
        peer.ip().to_string().starts_with(subnet_prefix),
        "the container's own address, {peer}"
    );
}

#[test]
fn network_create_ls_inspect_rm_prune() {
    let e = Engine::start();
    let id = e
        .docker_ok(&["network", "create", "--label", "team=a", "n1"])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64);
    e.docker_ok(&["network", "create", "--subnet", "10.233.77.0/24", "n2"]);
    let dup = e.docker_err(&["network", "create", "n1"]);
    assert!(dup.contains("network with name n1 already exists"), "{dup}");

    let ls = e.docker_ok(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    for want in [
        "bridge bridge",
        "host host",
        "none null",
        "n1 bridge",
        "n2 bridge",
    ] {
        assert!(ls.lines().any(|l| l == want), "{want:?} in {ls}");
    }
    let labelled = e.docker_ok(&["network", "ls", "-q", "--filter", "label=team=a"]);
    assert_eq!(labelled.trim(), &id[..12]);

    let subnet = e.docker_ok(&[
        "network",
        "inspect",
        "-f",
        "{{(index .IPAM.Config 0).Subnet}} {{(index .IPAM.Config 0).Gateway}}",
        "n2",
    ]);
    assert_eq!(subnet.trim(), "10.233.77.0/24 10.233.77.1");

    // A container on a user network gets an address from it and shows up in inspect.
    let c = e.docker_ok(&["run", "-d", "--network", "n2", "busybox", "sleep", "60"]);
    let c = c.trim();
    let ip = e.docker_ok(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.n2.IPAddress}}",
        c,
    ]);
    assert!(ip.trim().starts_with("10.233.77."), "{ip}");
    let members = e.docker_ok(&["network", "inspect", "-f", "{{len .Containers}}", "n2"]);
    assert_eq!(members.trim(), "1");
    let busy = e.docker_err(&["network", "rm", "n2"]);
    assert!(busy.contains("has active endpoints"), "{busy}");
    e.docker_ok(&["rm", "-f", c]);

    let pre = e.docker_err(&["network", "rm", "bridge"]);
    assert!(pre.contains("pre-defined network"), "{pre}");
    e.docker_ok(&["network", "rm", "n1"]);
    let pruned = e.docker_ok(&["network", "prune", "-f"]);
    assert!(pruned.contains("n2"), "{pruned}");
    let ls = e.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(ls.lines().count(), 3, "{ls}");

    let events = e.past_events("type=network", "{{.Action}} {{.Actor.Attributes.name}}");
    for want in [
        "create n1",
        "create n2",
        "connect n2",
        "disconnect n2",
        "destroy n1",
        "destroy n2",
    ] {
        assert!(events.lines().any(|l| l == want), "{want:?} in {events}");
    }
}

#[test]
fn published_ports_survive_an_engine_restart() {
    let mut e = Engine::start();
    let port = free_port();
    let id = run_httpd(&e, &["-p", &format!("{port}:80")]);
    assert!(serves_page(port));
    e.restart();
    assert!(
        serves_page(port),
        "port {port} not served after restart\n{}",
        e.log_tail()
    );
    // A crash (no shutdown, NAT chains left in place) is recovered the same way.
    e.kill();
    e.start_again();
    assert!(
        serves_page(port),
        "port {port} not served after a crash\n{}",
        e.log_tail()
    );
    assert_eq!(
        e.docker_ok(&["port", &id]).trim(),
        format!("80/tcp -> 0.0.0.0:{port}")
    );
    e.docker_ok(&["rm", "-f", &id]);
}

#[test]
fn user_network_dns_resolves_container_names() {
    let e = Engine::start();
    e.docker_ok(&["network", "create", "dnsnet"]);
    let web = e.docker_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "dnsnet",
        "busybox",
        "sleep",
        "60",
    ]);
    let web_ip = e.docker_ok(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.dnsnet.IPAddress}}",
        "web",
    ]);
    let out = e.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "dnsnet",
        "busybox",
        "nslookup",
        "web",
        "127.0.0.11",
    ]);
    assert!(
        out.contains(&format!("Address: {}", web_ip.trim())),
        "{out}"
    );
    // The default bridge has no embedded DNS, as with dockerd.
    let out = e.docker(&["run", "--rm", "busybox", "nslookup", "web", "127.0.0.11"]);
    assert!(!out.status.success() || !String::from_utf8_lossy(&out.stdout).contains(web_ip.trim()));
    e.docker_ok(&["rm", "-f", web.trim()]);
}

/// A one-record DNS server on a loopback address of its own: answers every A query with
/// `answer` until `stop` is set (bounded by the socket's read timeout).
fn fake_resolver(
    answer: [u8; 4],
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (String, std::thread::JoinHandle<usize>) {
    use std::net::UdpSocket;
    use std::sync::atomic::Ordering;
    let pid = std::process::id();
    #[allow(clippy::cast_possible_truncation)]
    let (a, b) = ((pid >> 8) as u8, pid as u8);
    let addr = format!("127.53.{a}.{}", b.max(1));
    let sock = UdpSocket::bind((addr.as_str(), 53)).expect("bind the fake resolver");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let handle = std::thread::spawn(move || {
        let mut answered = 0;
        let mut buf = [0u8; 512];
        while !stop.load(Ordering::Relaxed) {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            // Header: same id, response + recursion available, one question, one answer.
            let mut r = buf[..n].to_vec();
            r[2] = 0x81;
            r[3] = 0x80;
            r[6..8].copy_from_slice(&1u16.to_be_bytes());
            r[8..12].fill(0);
            let qtype = &buf[n - 4..n - 2];
            if qtype == [0, 1] {
                r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
                r.extend_from_slice(&answer);
            } else {
                r[6..8].fill(0);
            }
            let _ = sock.send_to(&r, from);
            answered += 1;
        }
        answered
    });
    (addr, handle)
}

#[test]
fn user_network_dns_forwards_to_the_containers_dns_servers() {
    let e = Engine::start();
    e.docker_ok(&["network", "create", "fwdnet"]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (resolver, server) = fake_resolver([10, 9, 8, 7], stop.clone());
    let run = |cmd: &[&str]| {
        let mut args = vec![
            "run",
            "--rm",
            "--network",
            "fwdnet",
            "--dns",
            &resolver,
            "busybox",
        ];
        args.extend_from_slice(cmd);
        e.docker(&args)
    };
    let out = run(&["nslookup", "outside.example"]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let answered = server.join().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Address: 10.9.8.7"),
        "not forwarded to {resolver} ({answered} answered): {text}{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        e.log_tail()
    );
    // The container still asks the embedded DNS, which answers its network's names itself.
    let conf = String::from_utf8_lossy(&run(&["cat", "/etc/resolv.conf"]).stdout).into_owned();
    assert!(conf.contains("nameserver 127.0.0.11"), "{conf}");
}

#[test]
fn host_aliases_name_the_host_gateway_address() {
    let mut e = Engine::start();
    let gw = e.gateway();
    // As in the VM (where the address is slirp's host loopback), here the default bridge's.
    e.restart_with_args(&[
        "--host-gateway-ip",
        &gw,
        "--host-alias",
        "host.docker.internal",
        "--host-alias",
        "gateway.docker.internal",
    ]);
    e.docker_ok(&["network", "create", "aliasnet"]);
    let (port, server) = serve_http_once(&gw);
    // On a user network too, whose own gateway is another address.
    let out = e.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "aliasnet",
        "--add-host",
        "other:host-gateway",
        "busybox",
        "sh",
        "-c",
        &format!(
            "grep -E 'internal|other' /etc/hosts; wget -qO- http://host.docker.internal:{port}/"
        ),
    ]);
    server.join().unwrap().expect("the container connected");
    for name in ["host.docker.internal", "gateway.docker.internal", "other"] {
        assert!(out.contains(&format!("{gw}\t{name}\n")), "{name}: {out}");
    }
    assert!(out.ends_with(FROM_HOST), "{out}");
}
