//! The container lifecycle through the engine's seams: the engine opened with fake runtimes
//! (`berth_test_support::fake`, which record what they are asked) and a shim binary that does
//! not exist, so every start fails at launch and its undo can be checked step by step.
//!
//! Needs root (the default network's bridge, in a test slot shared with the e2e harness) and
//! the offline fixture images (`python3 tests/fixtures/images.py build`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_docker_api::container::ContainerCreateRequest;
use berth_engine::container::WaitCondition;
use berth_engine::{Engine, EngineConfig, ErrorKind, Seams};
use berth_test_support::fake::{FakeRuntimes, RuntimeCall};
use berth_test_support::{repo_root, NetSlot};

struct Fixture {
    _dir: tempfile::TempDir,
    _slot: NetSlot,
    engine: Arc<Engine>,
    runtimes: FakeRuntimes,
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
    async fn open() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let slot = NetSlot::claim();
        let mut config = EngineConfig::new(dir.path().join("data"));
        config.exec_root = dir.path().join("exec");
        config.bridge_name = slot.bridge.clone();
        config.bridge_cidr = slot.bip.clone();
        config.self_exe = dir.path().join("no-such-shim");
        let runtime_root = config.exec_root.join("runc");
        let runtimes = FakeRuntimes::default();
        let seams = Seams {
            runtimes: Arc::new(runtimes.clone()),
        };
        let engine = Engine::open_with(config, seams).await.unwrap();
        let images = engine.images.clone();
        let archive = fixture("busybox:latest");
        tokio::task::spawn_blocking(move || {
            images.load_archive(std::fs::File::open(archive).unwrap())
        })
        .await
        .unwrap()
        .unwrap();
        Self {
            _dir: dir,
            _slot: slot,
            engine,
            runtimes,
            runtime_root,
        }
    }

    async fn create(&self, req: serde_json::Value) -> String {
        let req: ContainerCreateRequest = serde_json::from_value(req).unwrap();
        self.engine
            .containers
            .create(None, None, req)
            .await
            .unwrap()
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
    let fx = Fixture::open().await;
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
    assert_eq!(fx.runtimes.calls(), vec![]);

    // A runtime state an engine crash left behind is deleted before the start; the start
    // then fails at the shim's launch, after the network was attached.
    std::fs::create_dir_all(fx.runtime_root.join(&id)).unwrap();
    let err = c.start(&id).await.unwrap_err();
    assert!(err.message().contains("failed to spawn the shim"), "{err}");
    assert_eq!(fx.runtimes.calls(), vec![delete(&id)]);

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
    assert_eq!(fx.runtimes.calls(), vec![delete(&id), delete(&id)]);
    assert_eq!(
        c.get(&id).err().map(|e| e.kind()),
        Some(ErrorKind::NotFound)
    );
    fx.engine.shutdown().await;
}

#[tokio::test]
async fn a_failed_start_with_autoremove_removes_the_container() {
    let fx = Fixture::open().await;
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
    assert_eq!(fx.runtimes.calls(), vec![]);
    fx.engine.shutdown().await;
}
