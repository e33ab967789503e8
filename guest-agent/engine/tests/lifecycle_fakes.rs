//! The container lifecycle through the engine's seams: the engine opened with a fake host
//! (`berth_test_support::fake`: runtime, shims, mounter and host network that record what they
//! are asked and run fake containers), so create, start, stop, rm, the restart policy, network
//! connect and disconnect, port publishing and the restore after an engine restart are checked
//! call by call, without runc, bridges or namespaces. Two tests keep the real shim seam with a
//! shim binary that does not exist, so every start fails at launch and its undo can be checked
//! step by step.
//!
//! Needs the offline fixture images (`python3 tests/fixtures/images.py build`); bridge names
//! and subnets come from a test slot shared with the e2e harness, though nothing is made.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_docker_api::container::ContainerCreateRequest;
use berth_engine::container::record::{Paths, Stored};
use berth_engine::container::{Status, WaitCondition};
use berth_engine::network::driver::Link;
use berth_engine::shim::HostShims;
use berth_engine::{Engine, EngineConfig, ErrorKind, Seams};
use berth_test_support::fake::{Call, FakeHost, MountCall, NetCall, RuntimeCall, ShimCall};
use berth_test_support::{repo_root, NetSlot};

/// Bound of every wait for the engine to react to a fake container's exit.
const REACT: Duration = Duration::from_secs(20);

struct Fixture {
    dir: tempfile::TempDir,
    slot: NetSlot,
    engine: Arc<Engine>,
    host: FakeHost,
    /// Whether the engine spawns real shims (of a binary that does not exist).
    real_shims: bool,
    /// Where the runtime keeps a container's state (`<exec root>/runc/<id>`).
    runtime_root: PathBuf,
}

/// The docker-archive of a fixture image.
fn fixture(tag: &str) -> PathBuf {
    let out = std::process::Command::new("python3")
        .arg(repo_root().join("tests/fixtures/images.py"))
        .args(["path", tag])
        .output()
        .expect("python3 runs the fixtures script");
    assert!(
        out.status.success(),
        "no fixture {tag} (run tests/fixtures/images.py build): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

impl Fixture {
    /// An engine over the fake host, with busybox loaded.
    async fn open() -> Self {
        Self::open_with(false).await
    }

    /// An engine whose shims are real and cannot be spawned.
    async fn open_failing_shims() -> Self {
        Self::open_with(true).await
    }

    async fn open_with(real_shims: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let slot = NetSlot::claim();
        let host = FakeHost::default();
        let engine = Self::engine(dir.path(), &slot, &host, real_shims).await;
        let images = engine.images.clone();
        let archive = fixture("busybox:latest");
        tokio::task::spawn_blocking(move || {
            images.load_archive(std::fs::File::open(archive).unwrap())
        })
        .await
        .unwrap()
        .unwrap();
        Self {
            runtime_root: dir.path().join("exec/runc"),
            dir,
            slot,
            engine,
            host,
            real_shims,
        }
    }

    async fn engine(
        dir: &std::path::Path,
        slot: &NetSlot,
        host: &FakeHost,
        real_shims: bool,
    ) -> Arc<Engine> {
        let mut config = EngineConfig::new(dir.join("data"));
        config.exec_root = dir.join("exec");
        config.bridge_name = slot.bridge.clone();
        config.bridge_cidr = slot.bip.clone();
        config.self_exe = dir.join("no-such-shim");
        let mut seams = host.seams();
        if real_shims {
            seams = Seams {
                shims: Arc::new(HostShims),
                ..seams
            };
        }
        Engine::open_with(config, seams).await.unwrap()
    }

    /// Ends this engine as its process ending would (the containers' shims live on) and opens
    /// a new one over the same state and the same host.
    async fn reopen(&mut self) {
        self.engine.shutdown().await;
        self.engine = Self::engine(self.dir.path(), &self.slot, &self.host, self.real_shims).await;
    }

    async fn create(&self, req: serde_json::Value) -> String {
        let req: ContainerCreateRequest = serde_json::from_value(req).unwrap();
        self.engine
            .containers
            .create(None, None, req)
            .await
            .unwrap()
    }

    fn stored(&self, id: &str) -> Stored {
        self.engine.containers.get(id).unwrap().snapshot()
    }

    fn rootfs(&self, id: &str) -> PathBuf {
        Paths::new(&self.dir.path().join("data"), id).rootfs()
    }

    /// Waits (bounded) until the status of `id` satisfies `done`.
    async fn until(&self, id: &str, what: &str, done: impl FnMut(&Status) -> bool) {
        let mut rx = self.engine.containers.get(id).unwrap().subscribe();
        tokio::time::timeout(REACT, rx.wait_for(done))
            .await
            .unwrap_or_else(|_| panic!("{id}: not {what} within {REACT:?}"))
            .unwrap();
    }

    /// The calls of the runtime, shims and mounter, in order (the host network's apart).
    fn container_calls(&self) -> Vec<Call> {
        self.host
            .calls()
            .into_iter()
            .filter(|c| !matches!(c, Call::Net(_)))
            .collect()
    }

    /// The host-network calls after the first `from` of them.
    fn net_calls_since(&self, from: usize) -> Vec<NetCall> {
        self.host.net_calls().split_off(from)
    }

    fn netns(&self, id: &str) -> PathBuf {
        self.dir.path().join("exec/netns").join(id)
    }

    /// The host address `id`'s port `port` is published on, as inspect shows it.
    fn published(&self, id: &str, port: &str) -> std::net::SocketAddr {
        let v = self.engine.containers.inspect(id, false).unwrap();
        let b = &v["NetworkSettings"]["Ports"][port][0];
        format!(
            "{}:{}",
            b["HostIp"].as_str().unwrap(),
            b["HostPort"].as_str().unwrap()
        )
        .parse()
        .unwrap()
    }

    /// Waits (bounded) until the network detach after `id`'s exit is done, background veth
    /// deletions included.
    async fn until_detached(&self, id: &str) {
        tokio::time::timeout(REACT, async {
            while self.on_bridge(id) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{id}: not detached within {REACT:?}"));
        self.engine.networks.settle().await;
    }

    /// Whether the default network lists `id` as an endpoint.
    fn on_bridge(&self, id: &str) -> bool {
        let net = self.engine.networks.inspect("bridge").unwrap();
        net.containers.contains_key(id)
    }
}

fn delete(id: &str) -> RuntimeCall {
    RuntimeCall::Delete {
        id: id.into(),
        force: true,
    }
}

#[tokio::test]
async fn a_failed_start_is_undone_and_rm_clears_runtime_leftovers() {
    let fx = Fixture::open_failing_shims().await;
    let c = &fx.engine.containers;
    let id = fx
        .create(serde_json::json!({"Image": "busybox", "Cmd": ["true"]}))
        .await;

    // Verbs that need a running container refuse without asking the runtime.
    for err in [
        c.kill(&id, None).await.unwrap_err(),
        c.pause(&id, true).await.unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    }
    assert_eq!(fx.host.runtime_calls(), vec![]);

    // A runtime state an engine crash left behind is deleted before the start; the start
    // then fails at the shim's launch, after the network was attached.
    std::fs::create_dir_all(fx.runtime_root.join(&id)).unwrap();
    let err = c.start(&id).await.unwrap_err();
    assert!(err.message().contains("failed to spawn the shim"), "{err}");
    assert_eq!(fx.host.runtime_calls(), vec![delete(&id)]);

    // Undone: the error recorded as dockerd does, the endpoint released, nothing running.
    let s = c.get(&id).unwrap().snapshot();
    assert_eq!(s.state.state.exit_code, 128);
    assert!(s.state.state.error.contains("failed to spawn the shim"));
    assert!(!s.state.state.running);
    assert!(s.attachment.is_none());
    assert!(
        !fx.on_bridge(&id),
        "endpoint released after the failed start"
    );

    // `rm`: no shim answers for the runtime state still there, so the runtime deletes it.
    c.remove(&id, false, false).await.unwrap();
    assert_eq!(fx.host.runtime_calls(), vec![delete(&id), delete(&id)]);
    assert_eq!(
        c.get(&id).err().map(|e| e.kind()),
        Some(ErrorKind::NotFound)
    );
    fx.engine.shutdown().await;
}

#[tokio::test]
async fn a_failed_start_with_autoremove_removes_the_container() {
    let fx = Fixture::open_failing_shims().await;
    let c = &fx.engine.containers;
    let id = fx
        .create(serde_json::json!({
            "Image": "busybox",
            "Cmd": ["true"],
            "HostConfig": {"AutoRemove": true},
        }))
        .await;
    let removed = c.wait(&id, WaitCondition::Removed).unwrap();
    c.start(&id).await.unwrap_err();
    tokio::time::timeout(Duration::from_secs(30), removed)
        .await
        .expect("`--rm` container removed after its failed start");
    assert_eq!(
        c.get(&id).err().map(|e| e.kind()),
        Some(ErrorKind::NotFound)
    );
    assert!(!fx.on_bridge(&id));
    // Nothing was left for the runtime: the start failed before any runtime call.
    assert_eq!(fx.host.runtime_calls(), vec![]);
    fx.engine.shutdown().await;
}

fn shim(call: fn(String) -> ShimCall, id: &str) -> Call {
    Call::Shim(call(id.to_string()))
}

fn spawn_and_start(id: &str) -> [Call; 2] {
    [
        shim(|id| ShimCall::Spawn { id }, id),
        shim(|id| ShimCall::Start { id }, id),
    ]
}

fn unmount(target: PathBuf) -> Call {
    Call::Mount(MountCall::Unmount { target })
}

#[tokio::test]
async fn lifecycle_makes_its_calls_in_order() {
    let fx = Fixture::open().await;
    let c = &fx.engine.containers;
    let id = fx
        .create(serde_json::json!({"Image": "busybox", "Cmd": ["sleep", "1000"]}))
        .await;
    assert_eq!(
        fx.container_calls(),
        vec![],
        "create asks nothing of the host"
    );

    c.start(&id).await.unwrap();
    assert_eq!(fx.container_calls(), spawn_and_start(&id));
    let st = fx.stored(&id).state;
    assert!(st.state.running && st.state.pid > 0 && st.has_been_started);
    assert_eq!(st.state.status, "running");
    assert!(fx.on_bridge(&id));

    // `docker stop`: SIGTERM through the runtime; the fake init ends with it; the exit
    // unmounts the rootfs (the shim has done so already: only a leftover would be there).
    c.stop(&id, None, Some(10)).await.unwrap();
    let mut want = spawn_and_start(&id).to_vec();
    want.extend([
        Call::Runtime(RuntimeCall::Kill {
            id: id.clone(),
            signal: libc::SIGTERM,
            all: false,
        }),
        unmount(fx.rootfs(&id)),
    ]);
    assert_eq!(fx.container_calls(), want);
    let st = fx.stored(&id).state;
    assert_eq!((st.state.running, st.state.exit_code), (false, 143));
    assert_eq!(st.state.status, "exited");
    assert!(st.manually_stopped);
    assert!(!fx.host.shim_alive(&id));

    // `docker rm`: the rootfs once more; no runtime state was left, so no delete.
    c.remove(&id, false, false).await.unwrap();
    want.push(unmount(fx.rootfs(&id)));
    assert_eq!(fx.container_calls(), want);
    assert_eq!(
        c.get(&id).err().map(|e| e.kind()),
        Some(ErrorKind::NotFound)
    );
    assert!(!fx.on_bridge(&id));
    fx.engine.shutdown().await;
}

#[tokio::test]
async fn stop_escalates_to_sigkill_when_the_init_ignores_the_signal() {
    let fx = Fixture::open().await;
    let c = &fx.engine.containers;
    let id = fx
        .create(serde_json::json!({"Image": "busybox", "Cmd": ["sleep", "1000"]}))
        .await;
    fx.host.ignore_signal(&id, libc::SIGTERM);
    c.start(&id).await.unwrap();
    c.stop(&id, None, Some(0)).await.unwrap();
    let kills: Vec<(i32, bool)> = fx
        .host
        .runtime_calls()
        .into_iter()
        .filter_map(|r| match r {
            RuntimeCall::Kill { signal, all, .. } => Some((signal, all)),
            _ => None,
        })
        .collect();
    assert_eq!(kills, vec![(libc::SIGTERM, false), (libc::SIGKILL, true)]);
    assert_eq!(fx.stored(&id).state.state.exit_code, 137);
    fx.engine.shutdown().await;
}

#[tokio::test]
async fn restart_policy_restarts_after_exits_until_its_retries_are_spent() {
    let fx = Fixture::open().await;
    let c = &fx.engine.containers;
    let id = fx
        .create(serde_json::json!({
            "Image": "busybox",
            "Cmd": ["sleep", "1000"],
            "HostConfig": {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}},
        }))
        .await;
    c.start(&id).await.unwrap();
    for exits in 1..=2 {
        assert!(fx.host.exit(&id, 1));
        fx.until(&id, "restarted", |s| s.exits == exits && s.running)
            .await;
        assert_eq!(
            fx.stored(&id).state.restart_count,
            i64::try_from(exits).unwrap()
        );
    }
    // The third failure finds the retries spent: the container stays exited.
    assert!(fx.host.exit(&id, 1));
    fx.until(&id, "exited", |s| s.exits == 3 && !s.running)
        .await;
    let st = fx.stored(&id).state;
    assert_eq!(
        (st.state.status.as_str(), st.state.exit_code),
        ("exited", 1)
    );
    assert!(!st.state.restarting);
    let starts = fx.container_calls();
    let starts = starts
        .iter()
        .filter(|c| matches!(c, Call::Shim(ShimCall::Start { .. })))
        .count();
    assert_eq!(starts, 3, "the first start and two restarts");
    fx.engine.shutdown().await;
}

#[tokio::test]
async fn restore_reconnects_records_exits_and_restarts_after_an_engine_restart() {
    let mut fx = Fixture::open().await;
    let sleeper = serde_json::json!({"Image": "busybox", "Cmd": ["sleep", "1000"]});
    let mut always = sleeper.clone();
    always["HostConfig"] = serde_json::json!({"RestartPolicy": {"Name": "always"}});
    let kept = fx.create(sleeper.clone()).await;
    let ended = fx.create(sleeper).await;
    let revived = fx.create(always).await;
    for id in [&kept, &ended, &revived] {
        fx.engine.containers.start(id).await.unwrap();
    }
    let kept_pid = fx.stored(&kept).state.state.pid;

    // While no engine runs, two containers exit; their shims record it and go.
    fx.engine.shutdown().await;
    assert!(fx.host.exit(&ended, 7));
    assert!(fx.host.exit(&revived, 3));
    let before = fx.container_calls().len();
    fx.reopen().await;

    // The running one is monitored again, same process: no new shim for it.
    let st = fx.stored(&kept).state.state;
    assert!(st.running && st.pid == kept_pid, "{st:?}");
    // The exit while the engine was down is read from the shim's exit file.
    let st = fx.stored(&ended).state.state;
    assert_eq!(
        (st.running, st.exit_code, st.status.as_str()),
        (false, 7, "exited")
    );
    // `always` restarts it.
    fx.until(&revived, "restarted", |s| s.running).await;
    let after = fx.container_calls().split_off(before);
    let shims: Vec<&Call> = after
        .iter()
        .filter(|c| matches!(c, Call::Shim(_)))
        .collect();
    assert_eq!(shims, spawn_and_start(&revived).iter().collect::<Vec<_>>());
    for id in [&ended, &revived] {
        assert!(
            after.contains(&unmount(fx.rootfs(id))),
            "{id}: rootfs unmounted at its exit"
        );
    }
    assert_eq!(fx.stored(&revived).state.restart_count, 1);

    // The new engine's monitor sees the next exit of the container it reconnected to.
    assert!(fx.host.exit(&kept, 0));
    fx.until(&kept, "exited", |s| !s.running).await;
    assert_eq!(fx.stored(&kept).state.state.exit_code, 0);
    fx.engine.shutdown().await;
}

/// A container publishing its port 80 on a free loopback port.
fn web() -> serde_json::Value {
    serde_json::json!({
        "Image": "busybox",
        "Cmd": ["sleep", "1000"],
        "ExposedPorts": {"80/tcp": {}},
        "HostConfig": {"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}},
    })
}

fn primary_ip(fx: &Fixture, id: &str) -> std::net::Ipv4Addr {
    let v = fx.engine.containers.inspect(id, false).unwrap();
    v["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// The calls that end a run published by `publish` on the default bridge: ports
/// unpublished, namespace removed, the veth deleted (in the background).
fn ended_run(fx: &Fixture, publish: &NetCall, veth: &str, id: &str) -> Vec<NetCall> {
    let NetCall::Publish { target, ports } = publish.clone() else {
        panic!("not a publish: {publish:?}")
    };
    vec![
        NetCall::Unpublish { target, ports },
        NetCall::RemoveSandbox {
            netns: fx.netns(id),
        },
        NetCall::DeleteLink { name: veth.into() },
    ]
}

/// The run's start calls: the namespace with its one link, then the publish.
fn started_run(calls: &[NetCall]) -> (&Link, &NetCall) {
    match calls {
        [NetCall::CreateSandbox { links, .. }, publish @ NetCall::Publish { .. }]
            if links.len() == 1 =>
        {
            (&links[0], publish)
        }
        _ => panic!("a start makes a namespace with one link and publishes: {calls:?}"),
    }
}

#[tokio::test]
async fn start_stop_restart_wire_and_publish_through_the_host_network() {
    let fx = Fixture::open().await;
    let c = &fx.engine.containers;
    let id = fx.create(web()).await;
    let base = fx.host.net_calls().len();

    // `docker start`: one namespace with eth0 on the default bridge, then the port relayed.
    c.start(&id).await.unwrap();
    let calls = fx.net_calls_since(base);
    let (link, publish) = started_run(&calls);
    let ip = primary_ip(&fx, &id);
    let host = fx.published(&id, "80/tcp");
    assert!(host.ip().is_loopback() && host.port() != 0, "{host}");
    assert!(matches!(&calls[0], NetCall::CreateSandbox { netns, .. } if netns == &fx.netns(&id)));
    assert_eq!(
        (&link.bridge, link.interface.as_str()),
        (&fx.slot.bridge, "eth0")
    );
    assert_eq!(link.ip, ip);
    assert!(link.gateway.is_some(), "eth0 carries the default route");
    let key = berth_engine::network::ports::PortKey::parse("80/tcp").unwrap();
    assert_eq!(
        publish,
        &NetCall::Publish {
            target: ip,
            ports: vec![(host, key)]
        }
    );

    // `docker stop`: everything of the run undone (the detach runs after the exit).
    let base = fx.host.net_calls().len();
    c.stop(&id, None, Some(10)).await.unwrap();
    fx.until_detached(&id).await;
    assert_eq!(
        fx.net_calls_since(base),
        ended_run(&fx, publish, &link.veth, &id)
    );

    // `docker restart` of a running container: the old run undone, a new one wired and
    // published on the same host port.
    let base = fx.host.net_calls().len();
    c.start(&id).await.unwrap();
    let calls = fx.net_calls_since(base);
    let (link, publish) = started_run(&calls);
    let base = fx.host.net_calls().len();
    c.restart(&id, None, Some(10)).await.unwrap();
    fx.engine.networks.settle().await;
    let mut calls = fx.net_calls_since(base);
    // The old veth's deletion runs in the background, maybe after the new run's calls.
    let old_veth = NetCall::DeleteLink {
        name: link.veth.clone(),
    };
    let at = calls
        .iter()
        .position(|c| c == &old_veth)
        .expect("old veth deleted");
    calls.remove(at);
    assert_eq!(calls[..2], ended_run(&fx, publish, &link.veth, &id)[..2]);
    let (new_link, new_publish) = started_run(&calls[2..]);
    assert_ne!(new_link.veth, link.veth, "a fresh endpoint");
    let port_of = |p: &NetCall| match p {
        NetCall::Publish { ports, .. } => ports.iter().map(|(_, k)| *k).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        port_of(new_publish),
        port_of(publish),
        "the same port published again"
    );
    fx.engine.shutdown().await;
}

#[tokio::test]
async fn connect_and_disconnect_add_and_remove_a_link() {
    let fx = Fixture::open().await;
    let c = &fx.engine.containers;
    let req: berth_docker_api::network::NetworkCreateRequest =
        serde_json::from_value(serde_json::json!({"Name": "backend"})).unwrap();
    let base = fx.host.net_calls().len();
    fx.engine.networks.create(req).await.unwrap();
    let calls = fx.net_calls_since(base);
    let NetCall::EnsureBridge(bridge) = &calls[0] else {
        panic!("network create makes its bridge: {calls:?}")
    };
    assert!(
        matches!(&calls[1], NetCall::ApplyNat { nets } if nets.iter().any(|n| n.bridge == bridge.name)),
        "NAT rules cover the new bridge: {calls:?}"
    );

    let id = fx
        .create(serde_json::json!({"Image": "busybox", "Cmd": ["sleep", "1000"]}))
        .await;
    c.start(&id).await.unwrap();
    let base = fx.host.net_calls().len();
    c.network_connect("backend", &id, &serde_json::json!({}))
        .await
        .unwrap();
    let calls = fx.net_calls_since(base);
    let [NetCall::AddLink { netns, link }, NetCall::BindDns { netns: dns_ns }] = calls.as_slice()
    else {
        panic!("connect adds eth1 and starts the embedded DNS: {calls:?}")
    };
    assert_eq!((netns, dns_ns), (&fx.netns(&id), &fx.netns(&id)));
    assert_eq!(
        (link.interface.as_str(), &link.bridge),
        ("eth1", &bridge.name)
    );
    assert_eq!(link.gateway, None, "the default route stays on eth0");

    let base = fx.host.net_calls().len();
    c.network_disconnect("backend", &id, false).await.unwrap();
    assert_eq!(
        fx.net_calls_since(base),
        [NetCall::DeleteLink {
            name: link.veth.clone()
        }]
    );
    let v = c.inspect(&id, false).unwrap();
    assert!(v["NetworkSettings"]["Networks"]["backend"].is_null(), "{v}");
    fx.engine.shutdown().await;
}

#[tokio::test]
async fn published_ports_come_back_after_an_engine_restart() {
    let mut fx = Fixture::open().await;
    let id = fx.create(web()).await;
    fx.engine.containers.start(&id).await.unwrap();
    let host = fx.published(&id, "80/tcp");
    let publish = fx.host.net_calls().pop().unwrap();
    assert!(matches!(publish, NetCall::Publish { .. }), "{publish:?}");

    // The engine's end unpublishes and removes its NAT rules; the namespace stays. The next
    // engine adopts the bridge, restores NAT and republishes the running container's port on
    // the same host address, without a new namespace.
    let base = fx.host.net_calls().len();
    fx.reopen().await;
    let NetCall::Publish { target, ports } = publish.clone() else {
        unreachable!()
    };
    let calls = fx.net_calls_since(base);
    assert_eq!(
        calls[..2],
        [NetCall::Unpublish { target, ports }, NetCall::RemoveNat]
    );
    assert!(fx.netns(&id).exists());
    assert!(
        matches!(&calls[2], NetCall::EnsureBridge(b) if b.name == fx.slot.bridge),
        "{calls:?}"
    );
    assert!(matches!(&calls[3], NetCall::ApplyNat { .. }), "{calls:?}");
    assert_eq!(calls[4..], [publish], "only the ports come back");
    assert_eq!(fx.published(&id, "80/tcp"), host);
    fx.engine.shutdown().await;
}
