//! Everyday options dockerd honours: `local` volume driver options, `network create --ip-range`,
//! MTU, bridge name, refused drivers, legacy `--link` and `--volumes-from`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_test_support::{wait_until, Engine};

/// Whether `path` is a mount point in this (the engine's) mount namespace.
fn mounted(path: &Path) -> bool {
    let want = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| Path::new(m) == want)
}

fn mountpoint(e: &Engine, vol: &str) -> PathBuf {
    let mp = e.docker_ok(&["volume", "inspect", "--format", "{{.Mountpoint}}", vol]);
    PathBuf::from(mp.trim())
}

fn wait_unmounted(path: &Path) -> bool {
    wait_until(Duration::from_secs(10), || !mounted(path))
}

#[test]
fn netvol_volume_bind_device_survives_restart_and_rm_keeps_the_device() {
    let mut e = Engine::start();
    let dev = e.scratch().join("device");
    std::fs::create_dir_all(&dev).unwrap();
    std::fs::write(dev.join("h"), "host\n").unwrap();
    let device = format!("device={}", dev.display());
    e.docker_ok(&[
        "volume",
        "create",
        "--driver",
        "local",
        "--opt",
        "type=none",
        "--opt",
        &device,
        "--opt",
        "o=bind",
        "bv",
    ]);
    let opts = e.docker_ok(&["volume", "inspect", "--format", "{{json .Options}}", "bv"]);
    let want = format!(
        "{{\"device\":\"{}\",\"o\":\"bind\",\"type\":\"none\"}}",
        dev.display()
    );
    assert_eq!(opts.trim(), want);
    let data = mountpoint(&e, "bv");
    assert!(!mounted(&data), "mounted before first use");
    let out = e.docker_ok(&[
        "run",
        "--rm",
        "--network=none",
        "-v",
        "bv:/x",
        "busybox",
        "sh",
        "-c",
        "cat /x/h && echo c > /x/c",
    ]);
    assert_eq!(out, "host\n");
    assert_eq!(std::fs::read_to_string(dev.join("c")).unwrap(), "c\n");
    assert!(wait_unmounted(&data), "left mounted after the last user");

    // A running user keeps it mounted; its stop unmounts it.
    e.docker_ok(&[
        "run",
        "-d",
        "--name",
        "user",
        "--network=none",
        "-v",
        "bv:/x",
        "busybox",
        "sleep",
        "300",
    ]);
    assert!(mounted(&data));
    e.docker_ok(&["stop", "-t", "0", "user"]);
    assert!(wait_unmounted(&data), "left mounted after stop");

    e.restart();
    let opts = e.docker_ok(&["volume", "inspect", "--format", "{{json .Options}}", "bv"]);
    assert_eq!(opts.trim(), want);
    let out = e.docker_ok(&[
        "run",
        "--rm",
        "--network=none",
        "-v",
        "bv:/x",
        "busybox",
        "cat",
        "/x/c",
    ]);
    assert_eq!(out, "c\n");

    // Removal never deletes the device's files, nor leaves it mounted.
    e.docker_ok(&["start", "user"]);
    assert!(mounted(&data));
    e.docker_ok(&["rm", "-f", "user"]);
    e.docker_ok(&["volume", "rm", "bv"]);
    assert!(!mounted(&data));
    assert!(!data.exists());
    assert_eq!(std::fs::read_to_string(dev.join("h")).unwrap(), "host\n");
}

#[test]
fn netvol_volume_options_are_checked_like_dockerd() {
    let e = Engine::start();
    let err = e.docker_err(&["volume", "create", "--driver", "nosuch", "xx"]);
    assert!(
        err.contains(
            "create xx: error looking up volume plugin nosuch: plugin \"nosuch\" not found"
        ),
        "{err}"
    );
    let err = e.docker_err(&["volume", "create", "--opt", "foo=bar", "v1"]);
    assert!(err.contains("invalid option: \"foo\""), "{err}");
    let err = e.docker_err(&["volume", "create", "--opt", "device=/tmp", "v2"]);
    assert!(err.contains("missing required option: \"type\""), "{err}");
    let missing = e.scratch().join("missing");
    let device = format!("device={}", missing.display());
    let err = e.docker_err(&[
        "volume",
        "create",
        "--opt",
        "type=none",
        "--opt",
        &device,
        "--opt",
        "o=bind",
        "v3",
    ]);
    assert!(err.contains("failed to mount local volume: mount"), "{err}");
    assert!(err.contains("no such file or directory"), "{err}");
    let ls = e.docker_ok(&["volume", "ls", "-q"]);
    assert_eq!(ls.trim(), "", "a refused volume was kept");
}

#[test]
fn netvol_volume_tmpfs_through_mount_volume_opt() {
    let e = Engine::start();
    let out = e.docker_ok(&[
        "run", "--rm", "--network=none", "--mount",
        "type=volume,src=tv,dst=/t,volume-opt=type=tmpfs,volume-opt=device=tmpfs,volume-opt=o=size=1m",
        "busybox", "sh", "-c", "grep ' /t ' /proc/mounts; df -k /t | tail -n 1",
    ]);
    assert!(out.starts_with("tmpfs /t tmpfs"), "{out}");
    let total: Vec<&str> = out.lines().last().unwrap().split_whitespace().collect();
    assert_eq!(total[1], "1024", "{out}");
    let opts = e.docker_ok(&["volume", "inspect", "--format", "{{json .Options}}", "tv"]);
    assert_eq!(
        opts.trim(),
        r#"{"device":"tmpfs","o":"size=1m","type":"tmpfs"}"#
    );
    let data = mountpoint(&e, "tv");
    assert!(wait_unmounted(&data));
    e.docker_ok(&["volume", "rm", "tv"]);
}

/// `N` of this engine's slot (`10.231.N.1`): `10.234.N.0/24` and `bnvN` are this test's own.
fn slot(e: &Engine) -> String {
    e.gateway().split('.').nth(2).unwrap().to_string()
}

#[test]
fn netvol_network_ip_range_mtu_and_bridge_name() {
    let mut e = Engine::start();
    let n = slot(&e);
    let subnet = format!("10.234.{n}.0/24");
    let range = format!("10.234.{n}.128/25");
    let bridge = format!("bnv{n}");
    e.docker_ok(&[
        "network",
        "create",
        "--subnet",
        &subnet,
        "--ip-range",
        &range,
        "-o",
        "com.docker.network.driver.mtu=1400",
        "-o",
        &format!("com.docker.network.bridge.name={bridge}"),
        "rng",
    ]);
    let ipam = e.docker_ok(&[
        "network",
        "inspect",
        "--format",
        "{{json .IPAM.Config}}",
        "rng",
    ]);
    assert_eq!(
        ipam.trim(),
        format!(r#"[{{"Subnet":"{subnet}","IPRange":"{range}","Gateway":"10.234.{n}.1"}}]"#)
    );
    let link = std::fs::read_to_string(format!("/sys/class/net/{bridge}/mtu")).unwrap();
    assert_eq!(link.trim(), "1400", "bridge MTU");
    let out = eth0_of(&e, "rng");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("1400"), "{out}");
    assert!(
        lines
            .next()
            .unwrap()
            .contains(&format!("inet 10.234.{n}.128/24")),
        "first address of the range: {out}"
    );
    // Survives a restart: the range and the MTU still apply.
    e.restart();
    let ipam2 = e.docker_ok(&[
        "network",
        "inspect",
        "--format",
        "{{json .IPAM.Config}}",
        "rng",
    ]);
    assert_eq!(ipam2, ipam);
    let out = eth0_of(&e, "rng");
    assert!(out.starts_with("1400\n"), "{out}");
    assert!(out.contains(&format!("inet 10.234.{n}.128/24")), "{out}");
    e.docker_ok(&["network", "rm", "rng"]);
    assert!(!Path::new(&format!("/sys/class/net/{bridge}")).exists());

    let outside = format!("10.99.{n}.0/25");
    let err = e.docker_err(&[
        "network",
        "create",
        "--subnet",
        &subnet,
        "--ip-range",
        &outside,
        "bad",
    ]);
    assert!(
        err.contains(&format!("no matching subnet for range {outside}")),
        "{err}"
    );
    let err = e.docker_err(&[
        "network",
        "create",
        "-o",
        "com.docker.network.driver.mtu=abc",
        "bad",
    ]);
    assert!(err.contains("invalid MTU"), "{err}");
}

#[test]
fn netvol_network_refused_drivers_and_ipv6() {
    let e = Engine::start();
    let err = e.docker_err(&["network", "create", "--driver", "overlay", "ov"]);
    assert!(
        err.contains("This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again."),
        "{err}"
    );
    let err = e.docker_err(&["network", "create", "--ipv6", "v6"]);
    assert!(
        err.contains("could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network"),
        "{err}"
    );
    let (status, _) = e.api(
        "POST",
        "/networks/create",
        Some(r#"{"Name":"ov2","Driver":"overlay"}"#),
    );
    assert_eq!(status, 503);
    let ls = e.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!ls.contains("ov") && !ls.contains("v6"), "{ls}");
}

#[test]
fn netvol_link_adds_hosts_line_and_checks_the_target() {
    let e = Engine::start();
    let err = e.docker_err(&["run", "--rm", "--link", "nosuch:db", "busybox", "true"]);
    assert!(
        err.contains("could not get container for nosuch: No such container: nosuch"),
        "{err}"
    );
    let id = e.docker_ok(&[
        "run",
        "-d",
        "--name",
        "other",
        "--expose",
        "6379",
        "-e",
        "SECRET=s=1",
        "busybox",
        "sleep",
        "300",
    ]);
    let ip = e.docker_ok(&[
        "inspect",
        "--format",
        "{{.NetworkSettings.Networks.bridge.IPAddress}}",
        "other",
    ]);
    let hosts = e.docker_ok(&[
        "run",
        "--rm",
        "--link",
        "other:db",
        "busybox",
        "cat",
        "/etc/hosts",
    ]);
    let want = format!("{}\tdb {} other", ip.trim(), &id.trim()[..12]);
    assert!(hosts.lines().any(|l| l == want), "{want:?} not in\n{hosts}");
    // Reachable under the alias.
    e.docker_ok(&[
        "run", "--rm", "--link", "other:db", "busybox", "ping", "-c", "1", "-W", "5", "db",
    ]);
    // dockerd's link variables; the container's own environment wins.
    let env = e.docker_ok(&[
        "run",
        "--rm",
        "--name",
        "web",
        "--link",
        "other:db",
        "-e",
        "DB_PORT=mine",
        "busybox",
        "env",
    ]);
    let ip = ip.trim();
    for want in [
        "DB_PORT=mine".to_string(),
        format!("DB_PORT_6379_TCP=tcp://{ip}:6379"),
        format!("DB_PORT_6379_TCP_ADDR={ip}"),
        "DB_PORT_6379_TCP_PORT=6379".into(),
        "DB_PORT_6379_TCP_PROTO=tcp".into(),
        "DB_NAME=/web/db".into(),
        "DB_ENV_SECRET=s=1".into(),
    ] {
        assert!(env.lines().any(|l| l == want), "{want} not in\n{env}");
    }
    assert!(!env.contains("DB_ENV_PATH"), "{env}");
    // `docker exec` processes get them too, with HOSTNAME, as under dockerd.
    e.docker_ok(&[
        "run",
        "-d",
        "--name",
        "web2",
        "--hostname",
        "h2",
        "--link",
        "other:db",
        "busybox",
        "sleep",
        "300",
    ]);
    let env = e.docker_ok(&["exec", "web2", "env"]);
    for want in [
        "HOSTNAME=h2".to_string(),
        format!("DB_PORT_6379_TCP_ADDR={ip}"),
        "DB_NAME=/web2/db".into(),
    ] {
        assert!(env.lines().any(|l| l == want), "{want} not in\n{env}");
    }
    e.docker_ok(&["rm", "-f", "web2"]);
    e.docker_ok(&["stop", "-t", "0", "other"]);
    let err = e.docker_err(&["run", "--rm", "--link", "other:db", "busybox", "true"]);
    assert!(
        err.contains("Cannot link to a non running container: /other AS /"),
        "{err}"
    );
}

#[test]
fn netvol_rm_link_removes_only_the_link() {
    let e = Engine::start();
    e.docker_ok(&["run", "-d", "--name", "other", "busybox", "sleep", "300"]);
    e.docker_ok(&[
        "run", "-d", "--name", "web", "--link", "other:db", "busybox", "sleep", "300",
    ]);
    let hosts = e.docker_ok(&["exec", "web", "cat", "/etc/hosts"]);
    assert!(hosts.contains("\tdb "), "{hosts}");
    // `docker rm --link name` names no link: refused, and the container stays.
    let err = e.docker_err(&["rm", "--link", "web"]);
    assert!(
        err.contains("Conflict, cannot remove the default link name of the container"),
        "{err}"
    );
    let out = e.docker_ok(&["rm", "--link", "web/db"]);
    assert_eq!(out.trim(), "web/db");
    let links = e.docker_ok(&["inspect", "--format", "{{json .HostConfig.Links}}", "web"]);
    assert_eq!(links.trim(), "null");
    let err = e.docker_err(&["rm", "--link", "web/db"]);
    assert!(err.contains("No such container: web/db"), "{err}");
    // Both containers stay; the next start has no link.
    let names = e.docker_ok(&["ps", "--format", "{{.Names}}"]);
    assert!(names.contains("web") && names.contains("other"), "{names}");
    e.docker_ok(&["restart", "-t", "1", "web"]);
    let hosts = e.docker_ok(&["exec", "web", "cat", "/etc/hosts"]);
    assert!(!hosts.contains("\tdb "), "{hosts}");
}

#[test]
fn netvol_volumes_from_shares_volumes_and_binds() {
    let e = Engine::start();
    let err = e.docker_err(&["create", "--volumes-from", "nosuch", "busybox"]);
    assert!(err.contains("No such container: nosuch"), "{err}");
    let host = e.scratch().join("shared");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("b"), "bind\n").unwrap();
    let bind = format!("{}:/b", host.display());
    e.docker_ok(&[
        "run",
        "--name",
        "src",
        "--network=none",
        "-v",
        "named:/n",
        "-v",
        "/anon",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        "echo n > /n/f; echo a > /anon/f",
    ]);
    let out = e.docker_ok(&[
        "run",
        "--rm",
        "--network=none",
        "--volumes-from",
        "src",
        "busybox",
        "sh",
        "-c",
        "cat /n/f /anon/f /b/b; echo w > /n/w && echo writable",
    ]);
    assert_eq!(out, "n\na\nbind\nwritable\n");
    let err = e.docker_err(&[
        "run",
        "--rm",
        "--network=none",
        "--volumes-from",
        "src:ro",
        "busybox",
        "sh",
        "-c",
        "echo x > /n/x",
    ]);
    assert!(err.contains("Read-only file system"), "{err}");
    // The anonymous volume stays the source's: removing a borrower keeps it.
    e.docker_ok(&[
        "run",
        "--name",
        "borrower",
        "--network=none",
        "--volumes-from",
        "src",
        "busybox",
        "true",
    ]);
    e.docker_ok(&["rm", "-v", "borrower"]);
    let n = e.docker_ok(&["volume", "ls", "-q"]).lines().count();
    assert_eq!(n, 2, "named and anonymous volumes are kept");
}

/// The MTU and IPv4 address line of eth0 in a container on `network`.
fn eth0_of(e: &Engine, network: &str) -> String {
    e.docker_ok(&[
        "run",
        "--rm",
        "--network",
        network,
        "busybox",
        "sh",
        "-c",
        "cat /sys/class/net/eth0/mtu; ip -4 -o addr show eth0",
    ])
}
