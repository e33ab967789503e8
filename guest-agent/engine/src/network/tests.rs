//! Component tests: real namespaces, veths, a bridge and iptables chains, all named uniquely
//! for this test process. They need root; traffic stays on loopback and our own namespaces.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::Duration;

use berth_docker_api::network::NetworkCreateRequest;

use super::*;

struct Fixture {
    _dir: tempfile::TempDir,
    svc: NetworkService,
    events: EventBus,
    bridge: String,
}

impl Fixture {
    async fn new(tag: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pid = std::process::id();
        let bridge = format!("bt{tag}{}", pid % 100_000);
        let mut config = EngineConfig::new(dir.path().join("data"));
        config.exec_root = dir.path().join("exec");
        config.bridge_name = bridge.clone();
        // 10.200-229.x.y: clear of the e2e harness's 10.231.N.0/24 slots.
        let b = u8::try_from(200 + pid % 30).unwrap();
        let c = u8::try_from((pid / 30) % 250).unwrap();
        let d = match tag {
            "a" => 1,
            "b" => 65,
            "r" => 193,
            _ => 129,
        };
        config.bridge_cidr = format!("10.{b}.{c}.{d}/26");
        let events = EventBus::new();
        let svc = NetworkService::open(
            Arc::new(config),
            events.clone(),
            Arc::new(HostNet::default()),
        )
        .await
        .unwrap();
        Self {
            _dir: dir,
            svc,
            events,
            bridge,
        }
    }

    async fn cleanup(self) {
        self.svc.shutdown().await;
        let dir = self.svc.netns_dir.canonicalize().unwrap();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(&format!(" {} ", dir.display())),
            "netns dir unmounted at shutdown"
        );
    }
}

/// Removes what a test made on the host even when it panics: the bridge, the iptables chains
/// and the netns mounts.
impl Drop for Fixture {
    fn drop(&mut self) {
        let run = |args: &[&str]| {
            let _ = std::process::Command::new(args[0])
                .args(&args[1..])
                .stderr(std::process::Stdio::null())
                .status();
        };
        for (table, from, chain) in [
            ("nat", "POSTROUTING", format!("BERTH-NAT-{}", self.bridge)),
            ("filter", "FORWARD", format!("BERTH-FWD-{}", self.bridge)),
        ] {
            run(&["iptables", "-w", "-t", table, "-D", from, "-j", &chain]);
            run(&["iptables", "-w", "-t", table, "-F", &chain]);
            run(&["iptables", "-w", "-t", table, "-X", &chain]);
        }
        run(&["ip", "link", "del", &self.bridge]);
        if let Ok(entries) = std::fs::read_dir(&self.svc.netns_dir) {
            for e in entries.flatten() {
                let _ = netns::remove(&e.path());
            }
        }
        let _ = netns::release_dir(&self.svc.netns_dir);
    }
}

/// Runs `f` on a thread inside the namespace at `path`.
fn in_netns<T: Send + 'static>(
    path: &std::path::Path,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let file = std::fs::File::open(path).unwrap();
    std::thread::spawn(move || {
        nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
}

fn http_like_server(listener: TcpListener) {
    std::thread::spawn(move || {
        for conn in listener.incoming().take(4) {
            let mut s = conn.unwrap();
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf).unwrap();
            s.write_all(b"echo:").unwrap();
            s.write_all(&buf[..n]).unwrap();
        }
    });
}

fn request(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"ping").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Asks the embedded DNS inside `netns` for `name`; the A record's address, if any.
fn dns_lookup(netns: &std::path::Path, name: &str) -> Option<Ipv4Addr> {
    let mut q = vec![0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for l in name.split('.') {
        q.push(u8::try_from(l.len()).unwrap());
        q.extend_from_slice(l.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    in_netns(netns, move || {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.send_to(&q, "127.0.0.11:53").unwrap();
        let mut buf = [0u8; 512];
        let n = s.recv(&mut buf).unwrap();
        let answers = u16::from_be_bytes([buf[6], buf[7]]);
        (answers > 0).then(|| Ipv4Addr::new(buf[n - 4], buf[n - 3], buf[n - 2], buf[n - 1]))
    })
    .join()
    .unwrap()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_publishes_port_and_detach_cleans_up() {
    let fx = Fixture::new("a").await;
    let host_port = free_port();
    let req = AttachRequest {
        container_id: format!("{:0>64}", "c1"),
        container_name: "/web".into(),
        first: EndpointRequest {
            network: "default".into(),
            ..Default::default()
        },
        port_bindings: BTreeMap::from([(
            "80/tcp".to_string(),
            vec![PortBinding {
                host_ip: String::new(),
                host_port: host_port.to_string(),
            }],
        )]),
        ..Default::default()
    };
    let (_, mut rx) = fx.events.subscribe();
    let t = std::time::Instant::now();
    let att = fx.svc.attach(&req).await.unwrap();
    let attach_ms = t.elapsed().as_secs_f64() * 1e3;
    eprintln!("attach took {attach_ms:.1} ms");
    assert_eq!(att.primary.network_name, "bridge");
    assert_eq!(att.ports["80/tcp"][0].host_port, host_port.to_string());
    assert_eq!(att.ports["80/tcp"][0].host_ip, "0.0.0.0");
    let ip: Ipv4Addr = att.primary.ip_address.parse().unwrap();
    assert_eq!(
        att.primary.mac_address,
        ipam::format_mac(&ipam::mac_for(ip))
    );
    let netns = att.netns_path.clone().unwrap();
    assert_eq!(rx.recv().await.unwrap().action, "connect");

    // A server inside the namespace, reached through the proxy on the host's loopback.
    let listener = in_netns(&netns, || TcpListener::bind("0.0.0.0:80").unwrap())
        .join()
        .unwrap();
    http_like_server(listener);
    let got = tokio::task::spawn_blocking(move || request(&format!("127.0.0.1:{host_port}")))
        .await
        .unwrap();
    assert_eq!(got, "echo:ping");

    // From inside, the gateway (our bridge) is reachable over eth0 and the default route.
    let gw_listener = TcpListener::bind((att.primary.gateway.as_str(), 0)).unwrap();
    let gw_addr = gw_listener.local_addr().unwrap().to_string();
    http_like_server(gw_listener);
    let got = in_netns(&netns, move || request(&gw_addr)).join().unwrap();
    assert_eq!(got, "echo:ping");

    // A second container cannot take the same host port; nothing is left behind.
    let mut req2 = req.clone();
    req2.container_id = format!("{:0>64}", "c2");
    req2.container_name = "/web2".into();
    let err = fx.svc.attach(&req2).await.unwrap_err();
    assert!(
        err.message().contains(&format!(
            "Bind for 0.0.0.0:{host_port} failed: port is already allocated"
        )),
        "{err}"
    );
    assert!(!fx.svc.netns_dir.join(&req2.container_id).exists());
    assert!(!lock(&fx.svc.state)
        .endpoints
        .contains_key(&req2.container_id));

    // Inspect shows the endpoint.
    let n = fx.svc.inspect("bridge").unwrap();
    assert_eq!(n.containers[&req.container_id].name, "web");

    let t = std::time::Instant::now();
    fx.svc.detach(&req.container_id, &att).await.unwrap();
    eprintln!("detach took {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
    assert!(!netns.exists());
    assert!(TcpStream::connect(("127.0.0.1", host_port)).is_err());
    fx.svc.settle().await;
    let veth = format!("veth{}", &att.primary.endpoint_id[..7]);
    assert!(!fx.svc.driver.link_exists(&veth).await.unwrap());
    fx.svc.detach(&req.container_id, &att).await.unwrap();
    assert!(fx.svc.inspect("bridge").unwrap().containers.is_empty());
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_networks_restore_and_nat() {
    let fx = Fixture::new("b").await;
    // NAT chains exist while the engine runs.
    let chain = format!("BERTH-NAT-{}", fx.bridge);
    let out = std::process::Command::new("iptables")
        .args(["-w", "-t", "nat", "-S", &chain])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("MASQUERADE"),
        "{out:?}"
    );

    let (id, _) = fx
        .svc
        .create(NetworkCreateRequest {
            name: format!("n{}", fx.bridge),
            labels: BTreeMap::from([("k".to_string(), "v".to_string())]),
            ipam: Some(berth_docker_api::network::Ipam {
                config: vec![berth_docker_api::network::IpamConfig {
                    subnet: format!("10.199.{}.0/24", std::process::id() % 250),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let name = format!("n{}", fx.bridge);
    assert!(fx
        .svc
        .create(NetworkCreateRequest {
            name: name.clone(),
            ..Default::default()
        })
        .await
        .is_err());
    let listed = fx
        .svc
        .list(&BTreeMap::from([(
            "label".to_string(),
            vec!["k=v".to_string()],
        )]))
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, id);

    let host_port = free_port();
    let req = AttachRequest {
        container_id: format!("{:0>64}", "d1"),
        container_name: "/u".into(),
        first: EndpointRequest {
            network: name.clone(),
            aliases: vec!["svc-alias".into()],
            ..Default::default()
        },
        port_bindings: BTreeMap::from([(
            "7/tcp".to_string(),
            vec![PortBinding {
                host_ip: "127.0.0.1".into(),
                host_port: host_port.to_string(),
            }],
        )]),
        ..Default::default()
    };
    let mut fixed = req.clone();
    fixed.container_id = format!("{:0>64}", "d2");
    fixed.port_bindings.clear();
    fixed.first.ipv4_address = format!("10.199.{}.77", std::process::id() % 250);
    let fixed_att = fx.svc.attach(&fixed).await.unwrap();
    assert_eq!(fixed_att.primary.ip_address, fixed.first.ipv4_address);
    fixed.container_id = format!("{:0>64}", "d3");
    assert_eq!(
        fx.svc.attach(&fixed).await.unwrap_err().kind(),
        crate::ErrorKind::Conflict
    );
    fx.svc
        .detach(&format!("{:0>64}", "d2"), &fixed_att)
        .await
        .unwrap();
    let att = fx.svc.attach(&req).await.unwrap();
    assert!(
        att.primary
            .ip_address
            .starts_with(&format!("10.199.{}.", std::process::id() % 250)),
        "{att:?}"
    );
    // The embedded DNS answers for the container's own name and aliases.
    assert_eq!(att.dns_servers, ["127.0.0.11"]);
    let ns = att.netns_path.clone().unwrap();
    let me: Ipv4Addr = att.primary.ip_address.parse().unwrap();
    assert_eq!(dns_lookup(&ns, "u"), Some(me));
    assert_eq!(dns_lookup(&ns, "svc-alias"), Some(me));
    // In use: dockerd's 403.
    assert_eq!(
        fx.svc.remove(&name).await.unwrap_err().kind(),
        crate::ErrorKind::Forbidden
    );
    let listener = in_netns(att.netns_path.as_ref().unwrap(), || {
        TcpListener::bind("0.0.0.0:7").unwrap()
    })
    .join()
    .unwrap();
    http_like_server(listener);

    // Engine restart: proxies stop with the old service, come back with restore.
    let state_dir = fx.svc.state_dir.clone();
    fx.svc.shutdown().await;
    assert!(TcpStream::connect(("127.0.0.1", host_port)).is_err());
    let saved = State::load(&state_dir).unwrap();
    assert_eq!(saved.endpoints_of_container(&req.container_id).len(), 1);
    fx.svc.restore(&req.container_id, &att).await.unwrap();
    let addr = format!("127.0.0.1:{host_port}");
    let got = tokio::task::spawn_blocking(move || request(&addr))
        .await
        .unwrap();
    assert_eq!(got, "echo:ping");
    assert_eq!(dns_lookup(&ns, "u"), Some(me), "DNS back after restore");

    fx.svc.detach(&req.container_id, &att).await.unwrap();
    assert_eq!(
        fx.svc.prune(&BTreeMap::new()).await.unwrap(),
        vec![name.clone()]
    );
    assert!(fx.svc.inspect(&name).is_err());
    assert_eq!(
        fx.svc.remove("bridge").await.unwrap_err().kind(),
        crate::ErrorKind::Forbidden
    );
    fx.cleanup().await;
    let out = std::process::Command::new("iptables")
        .args(["-w", "-t", "nat", "-S", &chain])
        .output()
        .unwrap();
    assert!(!out.status.success(), "chain removed at shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn none_and_host_modes() {
    let fx = Fixture::new("c").await;
    let err = fx
        .svc
        .driver
        .ensure_bridge(&driver::Bridge {
            name: "lo".into(),
            gateway: Ipv4Addr::new(10, 1, 2, 3),
            prefix_len: 8,
            mtu: None,
        })
        .await;
    assert_eq!(
        err.unwrap_err().to_string(),
        "lo exists and is not a bridge"
    );
    let host = fx
        .svc
        .attach(&AttachRequest {
            container_id: format!("{:0>64}", "h1"),
            first: EndpointRequest {
                network: "host".into(),
                ..Default::default()
            },
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(host.primary.network_name, "host");
    assert!(host.netns_path.is_none());

    let id = format!("{:0>64}", "n1");
    let none = fx
        .svc
        .attach(&AttachRequest {
            container_id: id.clone(),
            first: EndpointRequest {
                network: "none".into(),
                ..Default::default()
            },
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(none.primary.network_name, "none");
    assert!(none.primary.ip_address.is_empty());
    let path = none.netns_path.clone().unwrap();
    // Loopback works inside; there is no other interface.
    let links = in_netns(&path, || {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        TcpStream::connect(addr).unwrap();
        let mut names: Vec<String> = nix::ifaddrs::getifaddrs()
            .unwrap()
            .map(|i| i.interface_name)
            .collect();
        names.dedup();
        names
    })
    .join()
    .unwrap();
    assert_eq!(links, ["lo"]);
    // A second start without a detach in between (engine crash) replaces the namespace.
    let again = fx
        .svc
        .attach(&AttachRequest {
            container_id: id.clone(),
            first: EndpointRequest {
                network: "none".into(),
                ..Default::default()
            },
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(again.netns_path, none.netns_path);
    fx.svc.detach(&id, &none).await.unwrap();
    assert!(!path.exists());
    fx.cleanup().await;
}

/// A minimal busybox bundle whose process runs `args` in the namespace at `netns`.
fn runc_bundle(dir: &std::path::Path, netns: &std::path::Path, args: &[&str]) {
    let rootfs = dir.join("rootfs");
    for d in ["bin", "proc", "dev", "sys", "tmp", "www", "etc"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    std::fs::write(rootfs.join("www/index.html"), "runc-page\n").unwrap();
    let out = std::process::Command::new("runc")
        .args(["spec", "--bundle"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let path = dir.join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = serde_json::json!(args);
    spec["root"]["readonly"] = false.into();
    for ns in spec["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "network" {
            ns["path"] = netns.to_string_lossy().into_owned().into();
        }
    }
    std::fs::write(&path, serde_json::to_vec(&spec).unwrap()).unwrap();
}

/// The real runtime joins the pinned namespace by path: busybox httpd under runc answers
/// through the proxy, and detach after the container is gone leaves nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runc_container_serves_through_published_port() {
    let fx = Fixture::new("r").await;
    let host_port = free_port();
    let cid = format!("berthnettest{}", std::process::id());
    let req = AttachRequest {
        container_id: cid.clone(),
        container_name: "/runc-web".into(),
        first: EndpointRequest {
            network: "bridge".into(),
            ..Default::default()
        },
        port_bindings: BTreeMap::from([(
            "80/tcp".to_string(),
            vec![PortBinding {
                host_ip: "127.0.0.1".into(),
                host_port: host_port.to_string(),
            }],
        )]),
        ..Default::default()
    };
    let att = fx.svc.attach(&req).await.unwrap();
    let bundle = fx._dir.path().join("bundle");
    runc_bundle(
        &bundle,
        att.netns_path.as_ref().unwrap(),
        &["/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www"],
    );
    let runc = |args: &[&str]| {
        std::process::Command::new("runc")
            .args(["--root"])
            .arg(fx._dir.path().join("runc-state"))
            .args(args)
            // The detached container inherits runc's stdio: files, never pipes we would
            // wait on for EOF.
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(fx._dir.path().join("runc.err")).unwrap())
            .status()
            .unwrap()
    };
    let bundle_s = bundle.to_string_lossy().into_owned();
    let status = runc(&["run", "-d", "--bundle", &bundle_s, &cid]);
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(fx._dir.path().join("runc.err")).unwrap_or_default()
    );
    let addr = format!("127.0.0.1:{host_port}");
    let page = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let got = TcpStream::connect(&addr).and_then(|mut s| {
                s.set_read_timeout(Some(Duration::from_secs(5)))?;
                s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
                let mut out = String::new();
                s.read_to_string(&mut out)?;
                Ok(out)
            });
            match got {
                Ok(p) if p.contains("runc-page") => return p,
                _ if std::time::Instant::now() > deadline => return format!("{got:?}"),
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    })
    .await
    .unwrap();
    let _ = runc(&["delete", "-f", &cid]);
    assert!(page.contains("runc-page"), "{page}");
    fx.svc.detach(&cid, &att).await.unwrap();
    assert!(!att.netns_path.as_ref().unwrap().exists());
    fx.cleanup().await;
}
