//! The plan of a start, table-driven from real `docker run` flags: each row gives the flags,
//! the `Config`/`HostConfig`/`Mounts` the docker CLI 28 and create make of them, and what the
//! plan must contain. No root, no files: the plan is pure.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::*;
use crate::container::record::{Record, StateRecord};
use crate::network::Endpoint;

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The stored record `docker run [flags] busybox echo hi` makes, with the flags' `Config`
/// and `HostConfig` fields (as the CLI sends them) laid over the defaults.
pub(crate) fn stored(config: Value, host: Value) -> Stored {
    stored_with(config, host, json!([]))
}

fn stored_with(config: Value, host: Value, mounts: Value) -> Stored {
    let mut c = json!({"Hostname": "0123456789ab", "Image": "busybox", "Cmd": ["echo", "hi"]});
    merge(&mut c, config);
    let mut h = json!({"NetworkMode": "bridge", "LogConfig": {"Type": "json-file", "Config": {}}});
    merge(&mut h, host);
    Stored {
        record: Record {
            id: ID.into(),
            name: "web".into(),
            created: "2026-01-01T00:00:00Z".into(),
            path: "echo".into(),
            args: vec!["hi".into()],
            image: "busybox".into(),
            image_id: "sha256:00".into(),
            config: serde_json::from_value(c).unwrap(),
            mounts: serde_json::from_value(mounts).unwrap(),
            anonymous_volumes: vec![],
            networks: None,
        },
        host: serde_json::from_value(h).unwrap(),
        state: StateRecord::default(),
        attachment: None,
    }
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(a), Value::Object(b)) = (into.as_object_mut(), from) {
        a.extend(b);
    }
}

fn paths() -> Paths {
    Paths::new(Path::new("/data"), ID)
}

/// The default bridge's attachment: our netns, an address, no embedded DNS.
fn bridge() -> Attachment {
    Attachment {
        netns_path: Some("/run/berth/netns/0123".into()),
        primary: Endpoint {
            network_name: "bridge".into(),
            ip_address: "172.30.0.5".into(),
            ip_prefix_len: 16,
            gateway: "172.30.0.1".into(),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn host_net() -> Attachment {
    Attachment {
        netns_path: None,
        primary: Endpoint {
            network_name: "host".into(),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn facts() -> HostFacts {
    HostFacts {
        layers: vec!["/layers/base".into(), "/layers/top".into()],
        user: ResolvedUser {
            home: "/root".into(),
            ..Default::default()
        },
        host_hostname: "the-host".into(),
        runtime: RuntimeSpec {
            name: "runc".into(),
            path: "runc".into(),
            root: "/run/berth/runc".into(),
            args: vec![],
        },
        socket: "/run/berth/s/0123456789abcdef.sock".into(),
        ..Default::default()
    }
}

fn config() -> EngineConfig {
    let mut c = EngineConfig::new("/data".into());
    c.host_aliases = vec!["host.docker.internal".into()];
    c
}

struct Row {
    flags: &'static str,
    config: Value,
    host: Value,
    mounts: Value,
    att: Attachment,
    facts: HostFacts,
    check: fn(&StartPlan),
}

fn row(flags: &'static str, config: Value, host: Value, check: fn(&StartPlan)) -> Row {
    Row {
        flags,
        config,
        host,
        mounts: json!([]),
        att: bridge(),
        facts: facts(),
        check,
    }
}

fn run(rows: Vec<Row>) {
    for r in rows {
        let s = stored_with(r.config, r.host, r.mounts);
        let plan = plan(&s, &paths(), &r.att, r.facts, &config())
            .unwrap_or_else(|e| panic!("docker run {}: {e}", r.flags));
        // A failing check's output names its row.
        eprintln!("docker run {}", r.flags);
        (r.check)(&plan);
    }
}

fn destinations(p: &StartPlan) -> Vec<&str> {
    p.spec
        .mounts
        .iter()
        .map(|m| m.destination.as_str())
        .collect()
}

#[test]
fn defaults() {
    run(vec![row("busybox echo hi", json!({}), json!({}), |p| {
        assert_eq!(p.spec.process.args, ["echo", "hi"]);
        assert!(p
            .spec
            .process
            .env
            .contains(&"HOSTNAME=0123456789ab".to_string()));
        assert!(p.spec.process.env.contains(&"HOME=/root".to_string()));
        assert_eq!(p.spec.hostname, "0123456789ab");
        assert_eq!(
            destinations(p),
            ["/etc/resolv.conf", "/etc/hostname", "/etc/hosts"]
        );
        assert_eq!(
            p.spec.netns,
            Some(NetNs::Path("/run/berth/netns/0123".into()))
        );
        assert_eq!(
            p.spec.rootfs,
            PathBuf::from(format!("/data/containers/{ID}/rootfs"))
        );
        assert_eq!(p.spec.cgroups_path, format!("/berth/{ID}"));
        assert!(p.spec.seccomp.is_some(), "default seccomp profile");
        assert!(p.spec.process.caps.contains(&"CHOWN".to_string()));
        assert!(!p.spec.process.caps.contains(&"SYS_ADMIN".to_string()));
        assert_eq!(p.etc.ip, "172.30.0.5");
        assert_eq!(p.etc.settings.gateway, "172.30.0.1");
        assert_eq!(p.etc.settings.host_aliases, ["host.docker.internal"]);
        assert!(!p.etc.host_network);
        assert_eq!(p.shim.id, ID);
        assert_eq!(
            p.shim.log_path,
            PathBuf::from(format!("/data/containers/{ID}/{ID}-json.log"))
        );
        assert_eq!((p.shim.log_max_size, p.shim.log_max_files), (0, 1));
        let rootfs = p.shim.rootfs.as_ref().unwrap();
        assert_eq!(
            rootfs.lower,
            [PathBuf::from("/layers/base"), "/layers/top".into()]
        );
        assert_eq!(rootfs.target, p.spec.rootfs);
        assert!(p.volumes.is_empty() && p.mount_sources.is_empty());
    })]);
}

#[test]
fn process_flags() {
    run(vec![
        row(
            "-e A=1 -w /app -t",
            json!({"Env": ["A=1"], "WorkingDir": "/app", "Tty": true}),
            json!({"ConsoleSize": [30, 100]}),
            |p| {
                let env = &p.spec.process.env;
                assert!(
                    env.contains(&"A=1".to_string()) && env.contains(&"TERM=xterm".to_string())
                );
                assert_eq!(p.spec.process.cwd, "/app");
                assert!(p.spec.process.tty && p.shim.tty);
                assert_eq!(p.spec.process.console_size, Some((30, 100)));
                assert_eq!(p.shim.console_size, Some((30, 100)));
            },
        ),
        row(
            "--ulimit nofile=1024:2048 --security-opt no-new-privileges",
            json!({}),
            json!({"Ulimits": [{"Name": "nofile", "Hard": 2048, "Soft": 1024}],
                   "SecurityOpt": ["no-new-privileges"]}),
            |p| {
                assert_eq!(p.spec.process.rlimits, [("nofile".to_string(), 1024, 2048)]);
                assert!(p.spec.process.no_new_privileges);
            },
        ),
        row(
            "--security-opt no-new-privileges=false",
            json!({}),
            json!({"SecurityOpt": ["no-new-privileges=false"]}),
            |p| assert!(!p.spec.process.no_new_privileges),
        ),
        row(
            "--cap-add NET_ADMIN --cap-drop CHOWN",
            json!({}),
            json!({"CapAdd": ["NET_ADMIN"], "CapDrop": ["CHOWN"]}),
            |p| {
                // Within the host's bounding set, as the spec module computes it.
                let want = spec::capabilities(false, &["NET_ADMIN".into()], &["CHOWN".into()]);
                assert_eq!(p.spec.process.caps, want.unwrap());
                assert!(!p.spec.process.caps.contains(&"CHOWN".to_string()));
            },
        ),
    ]);
}

#[test]
fn init_mounts_the_binary_and_wraps_the_command() {
    let mut r = row("--init", json!({}), json!({"Init": true}), |p| {
        assert_eq!(
            p.spec.process.args,
            ["/sbin/docker-init", "--", "echo", "hi"]
        );
        let m = &p.spec.mounts[0];
        assert_eq!(m.source, PathBuf::from("/usr/bin/tini-static"));
        assert_eq!(
            (m.destination.as_str(), m.readonly),
            ("/sbin/docker-init", true)
        );
    });
    r.facts.init = Some("/usr/bin/tini-static".into());
    run(vec![r]);
}

#[test]
fn host_network_takes_the_hosts_name() {
    let mut r = row(
        "--network host",
        json!({}),
        json!({"NetworkMode": "host"}),
        |p| {
            assert_eq!(p.spec.hostname, "the-host");
            assert_eq!(p.etc.hostname, "the-host");
            assert!(p.etc.host_network);
            assert_eq!(p.spec.netns, Some(NetNs::Host));
            assert!(!p
                .spec
                .process
                .env
                .iter()
                .any(|e| e.starts_with("HOSTNAME=")));
        },
    );
    r.att = host_net();
    run(vec![r]);
}

#[test]
fn mounts_volumes_and_tmpfs() {
    let mut r = row(
        "-v data:/data -v /src:/src:ro --tmpfs /run:size=64m --mount type=tmpfs,dst=/t",
        json!({}),
        json!({"Tmpfs": {"/run": "size=64m"}}),
        |p| {
            assert_eq!(
                destinations(p),
                [
                    "/etc/resolv.conf",
                    "/etc/hostname",
                    "/etc/hosts",
                    "/data",
                    "/src"
                ]
            );
            assert!(!p.spec.mounts[3].readonly && p.spec.mounts[4].readonly);
            assert_eq!(
                p.volumes,
                [VolumeUse {
                    name: "data".into(),
                    source: "/data/volumes/data/_data".into(),
                    destination: "/data".into(),
                }]
            );
            assert_eq!(
                p.mount_sources,
                [PathBuf::from("/data/volumes/data/_data"), "/src".into()]
            );
            assert_eq!(
                p.spec.tmpfs,
                [
                    ("/run".to_string(), vec!["size=64m".to_string()]),
                    ("/t".to_string(), vec!["rw".to_string()]),
                ]
            );
        },
    );
    r.mounts = json!([
        {"Type": "volume", "Name": "data", "Source": "/data/volumes/data/_data",
         "Destination": "/data", "Mode": "z", "RW": true},
        {"Type": "bind", "Source": "/src", "Destination": "/src", "Mode": "ro", "RW": false},
        {"Type": "tmpfs", "Destination": "/t", "Mode": "", "RW": true}
    ]);
    run(vec![r]);
}

#[test]
fn isolation_flags() {
    let mut privileged = row(
        "--privileged",
        json!({}),
        json!({"Privileged": true}),
        |p| {
            assert!(p.spec.privileged);
            assert!(p.spec.seccomp.is_none(), "no seccomp for --privileged");
            assert_eq!(p.spec.devices.len(), 1);
            assert_eq!(p.spec.devices[0].container, "/dev/fuse");
            assert_eq!(
                p.spec.process.caps,
                spec::capabilities(true, &[], &[]).unwrap()
            );
        },
    );
    privileged.facts.host_devices = vec![DeviceMapping {
        host: "/dev/fuse".into(),
        container: "/dev/fuse".into(),
        permissions: "rwm".into(),
    }];
    let mut joined = row(
        "--pid container:db",
        json!({}),
        json!({"PidMode": "container:db"}),
        |p| {
            assert_eq!(p.spec.pid_ns, NsMode::Path("/proc/7/ns/pid".into()));
        },
    );
    joined.facts.pid_ns = NsMode::Path("/proc/7/ns/pid".into());
    // The target's attachment is what a start plans with: its address and names in /etc.
    let mut net_joined = row(
        "--network container:db",
        json!({}),
        json!({"NetworkMode": "container:db"}),
        |p| {
            assert_eq!(p.spec.netns, Some(NsMode::Path("/proc/7/ns/net".into())));
            assert_eq!(
                (p.spec.hostname.as_str(), p.etc.hostname.as_str()),
                ("db", "db")
            );
            assert_eq!(p.etc.ip, "172.30.0.5");
        },
    );
    net_joined.facts.net_join = Some(crate::container::net_join::NetJoin {
        netns: "/proc/7/ns/net".into(),
        hostname: "db".into(),
        target: bridge(),
    });
    run(vec![
        privileged,
        joined,
        net_joined,
        row(
            "--device /dev/fuse:/dev/f:r",
            json!({}),
            json!({"Devices": [{"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/f",
                                "CgroupPermissions": "r"}]}),
            |p| {
                let d = &p.spec.devices[0];
                assert_eq!(
                    (d.host.as_path(), d.container.as_str()),
                    (Path::new("/dev/fuse"), "/dev/f")
                );
                assert_eq!(d.permissions, "r");
            },
        ),
        row(
            "--read-only --ipc none --cgroupns private --cgroup-parent apps --shm-size 1m",
            json!({}),
            json!({"ReadonlyRootfs": true, "IpcMode": "none", "CgroupnsMode": "private",
                   "CgroupParent": "apps", "ShmSize": 1048576}),
            |p| {
                assert!(p.spec.readonly_rootfs && p.spec.no_shm && p.spec.cgroup_ns);
                assert_eq!(p.spec.cgroups_path, format!("/apps/{ID}"));
                assert_eq!(p.spec.shm_size, 1048576);
            },
        ),
        row(
            "-m 64m --cpus 0.5 --pids-limit 10",
            json!({}),
            json!({"Memory": 67108864, "NanoCpus": 500000000, "PidsLimit": 10}),
            |p| {
                let r = &p.spec.resources;
                assert_eq!(
                    (r.memory, r.nano_cpus, r.pids_limit),
                    (67108864, 500000000, Some(10))
                );
            },
        ),
    ]);
}

#[test]
fn names_and_logs() {
    let mut linked = row(
        "--link db:database --add-host gw:host-gateway --dns 1.1.1.1 --hostname h --domainname d",
        json!({"Hostname": "h", "Domainname": "d"}),
        json!({"Links": ["/db:/web/database"], "ExtraHosts": ["gw:host-gateway"], "Dns": ["1.1.1.1"]}),
        |p| {
            assert!(p
                .spec
                .process
                .env
                .contains(&"DATABASE_NAME=/web/database".to_string()));
            assert_eq!(p.etc.settings.links, ["172.30.0.9\tdatabase db"]);
            assert_eq!(p.etc.settings.extra_hosts, ["gw:host-gateway"]);
            assert_eq!(p.etc.settings.dns, ["1.1.1.1"]);
            assert_eq!(
                (p.spec.hostname.as_str(), p.spec.domainname.as_str()),
                ("h", "d")
            );
            assert_eq!(p.etc.hostname, "h");
        },
    );
    linked.facts.link_hosts = vec!["172.30.0.9\tdatabase db".into()];
    linked.facts.link_env = vec!["DATABASE_NAME=/web/database".into()];
    run(vec![
        linked,
        row(
            "--log-driver none",
            json!({}),
            json!({"LogConfig": {"Type": "none", "Config": {}}}),
            |p| assert_eq!(p.shim.log_path, PathBuf::from("/dev/null")),
        ),
        row(
            "--log-opt max-size=10m --log-opt max-file=3",
            json!({}),
            json!({"LogConfig": {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}}}),
            |p| assert_eq!((p.shim.log_max_size, p.shim.log_max_files), (10 << 20, 3)),
        ),
        row(
            "-i (stdin kept open, closed after the first attach)",
            json!({"OpenStdin": true, "StdinOnce": true}),
            json!({}),
            |p| assert!(p.shim.open_stdin && p.shim.stdin_once),
        ),
    ]);
}

#[test]
fn engine_host_gateway_ip_wins() {
    let s = stored(json!({}), json!({"ExtraHosts": ["gw:host-gateway"]}));
    let mut cfg = config();
    cfg.host_gateway_ip = Some("192.168.65.254".into());
    let p = plan(&s, &paths(), &bridge(), facts(), &cfg).unwrap();
    assert_eq!(p.etc.settings.gateway, "192.168.65.254");
}

#[test]
fn invalid_flags_fail_the_plan() {
    for (flags, host) in [
        (
            "--ulimit nofile=2048:1024",
            json!({"Ulimits": [{"Name": "nofile", "Soft": 2048, "Hard": 1024}]}),
        ),
        ("--device ''", json!({"Devices": [{"PathOnHost": ""}]})),
        ("--cap-add BOGUS", json!({"CapAdd": ["BOGUS"]})),
    ] {
        let s = stored(json!({}), host);
        assert!(
            plan(&s, &paths(), &bridge(), facts(), &config()).is_err(),
            "docker run {flags} must fail"
        );
    }
}

#[test]
fn attach_request_carries_ports_and_networks() {
    let s = stored(
        json!({"ExposedPorts": {"80/tcp": {}}}),
        json!({"PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
               "PublishAllPorts": true, "Dns": ["9.9.9.9"]}),
    );
    let req = attach_request(&s);
    assert_eq!(req.container_id, ID);
    assert_eq!(req.container_name, "web");
    assert_eq!(req.first.network, "bridge");
    assert!(req.extra.is_empty());
    assert_eq!(req.port_bindings["80/tcp"][0].host_port, "8080");
    assert!(req.publish_all);
    assert_eq!(req.exposed_ports, ["80/tcp"]);
    assert_eq!(req.dns, ["9.9.9.9"]);
}
