//! `docker network connect/disconnect`, `--ip`, `--network-alias` and containers on several
//! networks: reachability by name through the embedded DNS, isolation between networks,
//! dockerd's errors, inspect shapes. Traffic stays between this engine's containers.

use berth_test_support::{assert_response, Engine};
use serde_json::Value;

/// `N` of this engine's slot (`10.231.N.1`): user subnets `10.236.N.0/24` do not collide
/// with other engines running tests at the same time.
fn slot(e: &Engine) -> String {
    e.gateway().split('.').nth(2).unwrap().to_string()
}

fn sleeper(e: &Engine, name: &str, args: &[&str]) -> String {
    let mut full = vec!["run", "-d", "--name", name];
    full.extend_from_slice(args);
    full.extend_from_slice(&["busybox", "sleep", "300"]);
    e.docker_ok(&full).trim().to_string()
}

fn ip_on(e: &Engine, container: &str, net: &str) -> String {
    e.docker_ok(&[
        "inspect",
        "-f",
        &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
        container,
    ])
    .trim()
    .to_string()
}

/// One ICMP echo from inside `from` to `to` (a name or an address), 1 s deadline.
fn pings(e: &Engine, from: &str, to: &str) -> bool {
    e.docker(&["exec", from, "ping", "-c", "1", "-W", "1", to])
        .status
        .success()
}

/// The container's default route goes via `net`'s gateway on `dev`.
fn assert_default_route(e: &Engine, container: &str, net: &str, dev: &str) {
    let gw = e.docker_ok(&[
        "network",
        "inspect",
        "-f",
        "{{(index .IPAM.Config 0).Gateway}}",
        net,
    ]);
    let routes = e.docker_ok(&["exec", container, "ip", "route"]);
    assert!(
        routes.contains(&format!("default via {} dev {dev}", gw.trim())),
        "{routes}"
    );
}

fn inspect_json(e: &Engine, path: &str, spec_path: &str) -> Value {
    let (status, body) = e.api("GET", path, None);
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_response("GET", spec_path, 200, &v);
    v
}

#[test]
fn connect_and_disconnect_a_running_container() {
    let e = Engine::start();
    e.docker_ok(&["network", "create", "neta"]);
    e.docker_ok(&["network", "create", "netb"]);
    sleeper(&e, "a1", &["--network", "neta"]);
    sleeper(&e, "b1", &["--network", "netb", "--network-alias", "bee"]);
    let both = sleeper(&e, "both", &["--network", "neta"]);
    let b1_ip = ip_on(&e, "b1", "netb");
    assert!(pings(&e, "both", "a1"), "{}", e.log_tail());
    // Networks are isolated: no route from neta to netb's addresses.
    assert!(!pings(&e, "both", &b1_ip));

    e.docker_ok(&[
        "network",
        "connect",
        "--alias",
        "both-alias",
        "netb",
        "both",
    ]);
    let both_b = ip_on(&e, "both", "netb");
    let eth1 = e.docker_ok(&["exec", "both", "ip", "-4", "addr", "show", "eth1"]);
    assert!(eth1.contains(&format!("inet {both_b}/")), "{eth1}");
    // Names and aliases of both networks resolve and answer; the default route stays on
    // the first network.
    assert!(pings(&e, "both", "b1"), "{}", e.log_tail());
    assert!(pings(&e, "both", "bee"));
    assert!(pings(&e, "both", "a1"));
    assert!(pings(&e, "b1", "both-alias"));
    assert!(pings(&e, "b1", "both"));
    assert!(pings(&e, "b1", &both[..12]), "short id resolves");
    assert_default_route(&e, "both", "neta", "eth0");

    // Inspect lists both networks with their own addresses; network inspect lists both.
    let v = inspect_json(&e, "/v1.50/containers/both/json", "/containers/{id}/json");
    let nets = &v["NetworkSettings"]["Networks"];
    assert_eq!(nets.as_object().unwrap().len(), 2, "{nets}");
    for n in ["neta", "netb"] {
        let ep = &nets[n];
        assert!(!ep["IPAddress"].as_str().unwrap().is_empty(), "{ep}");
        assert!(!ep["Gateway"].as_str().unwrap().is_empty(), "{ep}");
        assert!(
            ep["MacAddress"].as_str().unwrap().starts_with("02:42:"),
            "{ep}"
        );
        assert_eq!(ep["EndpointID"].as_str().unwrap().len(), 64, "{ep}");
        assert!(ep["IPPrefixLen"].as_u64().unwrap() > 0, "{ep}");
    }
    assert_eq!(nets["netb"]["Aliases"], serde_json::json!(["both-alias"]));
    assert_eq!(nets["netb"]["IPAddress"], both_b.as_str());
    let netb_id = e.docker_ok(&["network", "inspect", "-f", "{{.Id}}", "netb"]);
    assert_eq!(nets["netb"]["NetworkID"], netb_id.trim());
    let n = inspect_json(&e, "/v1.50/networks/netb", "/networks/{id}");
    let members = n["Containers"].as_object().unwrap();
    assert_eq!(members.len(), 2, "{members:?}");
    assert_eq!(members[&both]["Name"], "both");
    let prefix = &nets["netb"]["IPPrefixLen"];
    assert_eq!(members[&both]["IPv4Address"], format!("{both_b}/{prefix}"));

    // dockerd's refusals.
    let dup = e.docker_err(&["network", "connect", "netb", "both"]);
    assert!(
        dup.contains("endpoint with name both already exists in network netb"),
        "{dup}"
    );
    let host = e.docker_err(&["network", "connect", "host", "both"]);
    assert!(
        host.contains(
            "container cannot be disconnected from host network or connected to host network"
        ),
        "{host}"
    );
    let none = e.docker_err(&["network", "connect", "none", "both"]);
    assert!(none.contains("private (none) mode"), "{none}");
    let nonet = e.docker_err(&["network", "connect", "nosuchnet", "both"]);
    assert!(nonet.contains("network nosuchnet not found"), "{nonet}");
    let noctr = e.docker_err(&["network", "connect", "netb", "nosuchctr"]);
    assert!(noctr.contains("No such container: nosuchctr"), "{noctr}");
    let busy = e.docker_err(&["network", "rm", "netb"]);
    assert!(
        busy.contains(&format!(
            "error while removing network: network netb id {} has active endpoints",
            netb_id.trim()
        )),
        "{busy}"
    );
    let (status, _) = e.api(
        "POST",
        "/v1.50/networks/netb/connect",
        Some(r#"{"Container":"nosuchctr"}"#),
    );
    assert_eq!(status, 404);

    // Leaving netb removes eth1 and the reachability it gave.
    e.docker_ok(&["network", "disconnect", "netb", "both"]);
    let gone = e.docker(&["exec", "both", "ip", "link", "show", "eth1"]);
    assert!(!gone.status.success());
    assert!(!pings(&e, "both", &b1_ip));
    assert!(pings(&e, "both", "a1"));
    let again = e.docker_err(&["network", "disconnect", "netb", "both"]);
    assert!(
        again.contains("is not connected to network netb"),
        "{again}"
    );
    let listed = e.docker_ok(&["network", "inspect", "-f", "{{len .Containers}}", "netb"]);
    assert_eq!(listed.trim(), "1");

    // Leaving the first network hands the default route to the next one.
    e.docker_ok(&["network", "connect", "netb", "both"]);
    e.docker_ok(&["network", "disconnect", "neta", "both"]);
    assert_default_route(&e, "both", "netb", "eth1");
    assert!(pings(&e, "both", "b1"));
    let left = e.docker_ok(&[
        "inspect",
        "-f",
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
        "both",
    ]);
    assert_eq!(left.trim(), "netb");

    // rm -f releases every endpoint: both networks can go.
    e.docker_ok(&["network", "connect", "neta", "both"]);
    e.docker_ok(&["rm", "-f", "a1", "b1", "both"]);
    e.docker_ok(&["network", "rm", "neta", "netb"]);
}

#[test]
fn fixed_ip_aliases_and_several_networks_at_run() {
    let e = Engine::start();
    let n = slot(&e);
    let subnet = format!("10.236.{n}.0/24");
    let fixed_ip = format!("10.236.{n}.50");
    e.docker_ok(&["network", "create", "--subnet", &subnet, "fixnet"]);
    e.docker_ok(&["network", "create", "autonet"]);
    let id = sleeper(
        &e,
        "fixed",
        &[
            "--network",
            "fixnet",
            "--ip",
            &fixed_ip,
            "--network-alias",
            "svc",
        ],
    );
    assert_eq!(ip_on(&e, "fixed", "fixnet"), fixed_ip);
    let addr = e.docker_ok(&["exec", "fixed", "ip", "-4", "addr", "show", "eth0"]);
    assert!(addr.contains(&format!("inet {fixed_ip}/24")), "{addr}");
    // The embedded DNS is the container's resolver: aliases, names and short ids resolve.
    let resolv = e.docker_ok(&["exec", "fixed", "cat", "/etc/resolv.conf"]);
    assert!(resolv.contains("nameserver 127.0.0.11"), "{resolv}");
    for name in ["svc", "fixed", &id[..12]] {
        let out = e.docker_ok(&[
            "run",
            "--rm",
            "--network",
            "fixnet",
            "busybox",
            "ping",
            "-c",
            "1",
            "-W",
            "1",
            name,
        ]);
        assert!(out.contains(&fixed_ip), "{name}: {out}");
    }

    // dockerd's checks of --ip.
    let outside = e.docker_err(&[
        "run",
        "--network",
        "fixnet",
        "--ip",
        "10.99.99.9",
        "busybox",
        "true",
    ]);
    assert!(
        outside.contains("no configured subnet or ip-range contain the IP address 10.99.99.9"),
        "{outside}"
    );
    let on_bridge = e.docker_err(&["run", "--ip", &fixed_ip, "busybox", "true"]);
    assert!(
        on_bridge.contains("user specified IP address is supported on user defined networks only"),
        "{on_bridge}"
    );
    let auto = e.docker_err(&[
        "run",
        "--network",
        "autonet",
        "--ip",
        "10.1.2.3",
        "busybox",
        "true",
    ]);
    assert!(
        auto.contains("user specified IP address is supported only when connecting to networks with user configured subnets"),
        "{auto}"
    );
    let taken = e.docker_err(&[
        "run",
        "--network",
        "fixnet",
        "--ip",
        &fixed_ip,
        "busybox",
        "true",
    ]);
    assert!(
        taken.contains(&format!("Address already in use: {fixed_ip}")),
        "{taken}"
    );
    // (The CLI refuses this one itself; other clients get dockerd's answer.)
    let (status, body) = e.api(
        "POST",
        "/v1.50/containers/create",
        Some(r#"{"Image":"busybox","NetworkingConfig":{"EndpointsConfig":{"bridge":{"Aliases":["x"]}}}}"#),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains(
            "network-scoped alias is supported only for containers in user defined networks"
        ),
        "{body}"
    );

    // Two networks at run: eth0 and eth1, each with its address.
    sleeper(
        &e,
        "multi",
        &["--network", "fixnet", "--network", "autonet"],
    );
    let links = e.docker_ok(&["exec", "multi", "ip", "-4", "-o", "addr"]);
    let multi_fix = ip_on(&e, "multi", "fixnet");
    let multi_auto = ip_on(&e, "multi", "autonet");
    assert!(
        links.contains(&multi_fix) && links.contains(&multi_auto),
        "{links}"
    );
    assert!(pings(&e, "multi", "svc"));

    // A created container records connects and joins every network at start.
    e.docker_ok(&[
        "create",
        "--name",
        "later",
        "--network",
        "autonet",
        "busybox",
        "sleep",
        "300",
    ]);
    e.docker_ok(&[
        "network",
        "connect",
        "--ip",
        &format!("10.236.{n}.60"),
        "--alias",
        "late",
        "fixnet",
        "later",
    ]);
    let v = inspect_json(&e, "/v1.50/containers/later/json", "/containers/{id}/json");
    let nets = v["NetworkSettings"]["Networks"].as_object().unwrap();
    assert_eq!(nets.len(), 2, "{nets:?}");
    assert_eq!(
        nets["fixnet"]["IPAMConfig"]["IPv4Address"],
        format!("10.236.{n}.60")
    );
    let dup = e.docker_err(&["network", "connect", "fixnet", "later"]);
    assert!(dup.contains("already exists in network fixnet"), "{dup}");
    e.docker_ok(&["start", "later"]);
    assert_eq!(ip_on(&e, "later", "fixnet"), format!("10.236.{n}.60"));
    assert!(!ip_on(&e, "later", "autonet").is_empty());
    assert!(pings(&e, "fixed", "late"), "{}", e.log_tail());
    // Disconnecting a stopped container takes effect at the next start.
    e.docker_ok(&["stop", "-t", "0", "later"]);
    e.docker_ok(&["network", "disconnect", "fixnet", "later"]);
    e.docker_ok(&["start", "later"]);
    let links = e.docker_ok(&["exec", "later", "ip", "-o", "link"]);
    assert!(!links.contains("eth1"), "{links}");
    // A renamed container answers to its new name.
    e.docker_ok(&["rename", "fixed", "fixed2"]);
    assert!(pings(&e, "multi", "fixed2"));
    e.docker_ok(&["rm", "-f", "fixed2", "multi", "later"]);
    e.docker_ok(&["network", "rm", "fixnet", "autonet"]);
}

#[test]
fn endpoint_settings_show_in_inspect_like_dockerd() {
    let e = Engine::start();
    let n = slot(&e);
    // IPAM options not given are `null`, as dockerd shows them.
    let (status, body) = e.api(
        "POST",
        "/v1.50/networks/create",
        Some(r#"{"Name":"rawnet"}"#),
    );
    assert_eq!(status, 201, "{body}");
    let v = inspect_json(&e, "/v1.50/networks/rawnet", "/networks/{id}");
    assert!(v["IPAM"]["Options"].is_null(), "{}", v["IPAM"]);
    e.docker_ok(&[
        "network",
        "create",
        "--subnet",
        &format!("10.236.{n}.0/24"),
        "epnet",
    ]);
    e.docker_ok(&[
        "network",
        "create",
        "--subnet",
        &format!("10.237.{n}.0/24"),
        "epnet2",
    ]);
    sleeper(&e, "peer", &["--network", "epnet"]);
    let ip1 = format!("10.236.{n}.10");
    sleeper(
        &e,
        "ep",
        &[
            "--network",
            "epnet",
            "--ip",
            &ip1,
            "--network-alias",
            "x2",
            "--link-local-ip",
            "169.254.1.1",
        ],
    );
    let ip2 = format!("10.237.{n}.20");
    e.docker_ok(&[
        "network",
        "connect",
        "--ip",
        &ip2,
        "--alias",
        "y",
        "--link",
        "peer:pl",
        "--link-local-ip",
        "169.254.2.2",
        "--driver-opt",
        "com.example.a=b",
        "epnet2",
        "ep",
    ]);
    let v = inspect_json(&e, "/v1.50/containers/ep/json", "/containers/{id}/json");
    let nets = &v["NetworkSettings"]["Networks"];
    let first = &nets["epnet"];
    assert_eq!(
        first["IPAMConfig"],
        serde_json::json!({"IPv4Address": ip1, "LinkLocalIPs": ["169.254.1.1"]})
    );
    assert_eq!(first["Aliases"], serde_json::json!(["x2"]));
    assert!(
        first["Links"].is_null() && first["DriverOpts"].is_null(),
        "{first}"
    );
    assert_eq!(first["IPAddress"], ip1);
    let second = &nets["epnet2"];
    assert_eq!(
        second["IPAMConfig"],
        serde_json::json!({"IPv4Address": ip2, "LinkLocalIPs": ["169.254.2.2"]})
    );
    assert_eq!(second["Links"], serde_json::json!(["peer:pl"]));
    assert_eq!(second["Aliases"], serde_json::json!(["y"]));
    assert_eq!(
        second["DriverOpts"],
        serde_json::json!({"com.example.a": "b"})
    );
    assert_eq!(second["IPAddress"], ip2);
    assert!(
        second["MacAddress"].as_str().is_some_and(|m| m.len() == 17),
        "{second}"
    );

    // Created with `NetworkingConfig`: what was asked shows before the first start.
    let create = serde_json::json!({
        "Image": "busybox",
        "Cmd": ["sleep", "300"],
        "HostConfig": {"NetworkMode": "epnet"},
        "NetworkingConfig": {"EndpointsConfig": {"epnet": {
            "IPAMConfig": {
                "IPv4Address": format!("10.236.{n}.11"),
                "IPv6Address": "fd00::11",
                "LinkLocalIPs": ["169.254.3.3"],
            },
            "Aliases": ["rawalias"],
            "Links": ["peer:p3"],
            "DriverOpts": {"k": "v"},
            "MacAddress": "02:42:0a:ec:00:0b",
        }}},
    });
    let (status, body) = e.api(
        "POST",
        "/v1.50/containers/create?name=raw",
        Some(&create.to_string()),
    );
    assert_eq!(status, 201, "{body}");
    let v = inspect_json(&e, "/v1.50/containers/raw/json", "/containers/{id}/json");
    let ep = &v["NetworkSettings"]["Networks"]["epnet"];
    assert_eq!(
        ep["IPAMConfig"],
        serde_json::json!({
            "IPv4Address": format!("10.236.{n}.11"),
            "IPv6Address": "fd00::11",
            "LinkLocalIPs": ["169.254.3.3"],
        })
    );
    assert_eq!(ep["Aliases"], serde_json::json!(["rawalias"]));
    assert_eq!(ep["Links"], serde_json::json!(["peer:p3"]));
    assert_eq!(ep["DriverOpts"], serde_json::json!({"k": "v"}));
    assert_eq!(ep["MacAddress"], "02:42:0a:ec:00:0b");
}
