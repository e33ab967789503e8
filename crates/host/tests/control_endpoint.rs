//! The supervisor's control endpoint between two processes: the real supervisor runs in a
//! child process (this test binary again) with a fake hypervisor whose guest agent speaks the
//! control protocol in-process; this process uses the CLI's own calls — `berth status`'s guest
//! memory, `berth disk compact`'s trim and `berth stop`'s request — and checks that the stop was
//! orderly (the guest was asked to shut down and powered off; nothing was killed). On unix the
//! one-off requests take the hybrid-vsock socket, on Windows (under wine) the control pipe.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use berth_agent_proto::{
    read_frame, write_frame, GuestFrame, GuestMemory, HostFrame, Reply, Request, CONTROL_PORT,
    PROTOCOL_VERSION,
};
use berth_host::supervisor::{Status, VmState};
use berth_host::vm::{Hypervisor, Shares, VmHandle, VmSpec};
use berth_host::{Config, StateDir};
use berth_vsock::{Connector, MemoryConnector};
use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const CHILD_ENV: &str = "BERTH_TEST_SUPERVISOR_HOME";
const MEMORY: GuestMemory = GuestMemory {
    total_kib: 977 * 1024,
    available_kib: 801 * 1024,
    free_kib: 700 * 1024,
};
const TRIMMED: u64 = 12_345 * 4096;
const ORDERLY: &str = "child: the guest shut down and powered off";

/// A VM that is only a power state: the fake agent powers it off on `shutdown`.
struct FakeVm {
    off: watch::Receiver<bool>,
    off_tx: Arc<watch::Sender<bool>>,
    killed: Arc<AtomicBool>,
}

impl VmHandle for FakeVm {
    fn pid(&self) -> Option<u32> {
        None
    }
    fn wait(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let _ = self.off.wait_for(|off| *off).await;
        })
    }
    fn power_button(&mut self) -> BoxFuture<'_, berth_host::error::Result<()>> {
        self.off_tx.send_replace(true);
        Box::pin(async { Ok(()) })
    }
    fn kill(&mut self) -> BoxFuture<'_, ()> {
        self.killed.store(true, Ordering::SeqCst);
        self.off_tx.send_replace(true);
        Box::pin(async {})
    }
}

struct FakeHv {
    connector: Arc<MemoryConnector>,
    off_tx: Arc<watch::Sender<bool>>,
    killed: Arc<AtomicBool>,
}

impl Hypervisor for FakeHv {
    fn name(&self) -> &'static str {
        "fake"
    }
    fn start(&self, _spec: &VmSpec) -> berth_host::error::Result<Box<dyn VmHandle>> {
        Ok(Box::new(FakeVm {
            off: self.off_tx.subscribe(),
            off_tx: self.off_tx.clone(),
            killed: self.killed.clone(),
        }))
    }
    fn shares(&self) -> Shares {
        Shares::Builtin
    }
    fn connector(&self) -> Option<Arc<dyn Connector>> {
        Some(self.connector.clone())
    }
    fn prepare_data_disk<'a>(
        &'a self,
        qcow2: &'a std::path::Path,
        _gib: u32,
    ) -> BoxFuture<'a, berth_host::error::Result<std::path::PathBuf>> {
        Box::pin(async move { Ok(qcow2.to_path_buf()) })
    }
}

/// The guest agent's control port: hello, health with [`MEMORY`], trim, and shutdown, which
/// powers the VM off after its reply (as the real agent does).
fn fake_agent(c: &MemoryConnector, off: Arc<watch::Sender<bool>>) {
    let mut l = c.listen(CONTROL_PORT);
    tokio::spawn(async move {
        while let Some(mut s) = l.recv().await {
            let off = off.clone();
            tokio::spawn(async move {
                while let Ok(Some(HostFrame { id, request })) = read_frame(&mut s).await {
                    let shutdown = request == Request::Shutdown;
                    let reply = match request {
                        Request::Hello { .. } => Reply::Hello {
                            protocol_version: PROTOCOL_VERSION,
                            agent_version: "fake".into(),
                            features: vec![],
                        },
                        Request::Health => Reply::Health {
                            engine_ready: true,
                            uptime_secs: 1,
                            memory: Some(MEMORY),
                            disk: None,
                            engine_pid: None,
                        },
                        Request::Trim => Reply::Trimmed { bytes: TRIMMED },
                        _ => Reply::Ok,
                    };
                    if write_frame(&mut s, &GuestFrame::Reply { id, reply })
                        .await
                        .is_err()
                    {
                        break;
                    }
                    if shutdown {
                        println!("{ORDERLY}");
                        off.send_replace(true);
                    }
                }
            });
        }
    });
}

/// The supervisor process: only when the parent test runs this binary for it.
#[tokio::test]
#[ignore = "the second process of the test below"]
async fn supervisor_child() {
    let Some(home) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let state = StateDir::new(&home);
    let config = Config {
        shares: vec![],
        image_dir: std::path::Path::new(&home).join("image"),
        max_restarts: 0,
        ..Config::default()
    };
    let (off_tx, _) = watch::channel(false);
    let hv = FakeHv {
        connector: Arc::new(MemoryConnector::new()),
        off_tx: Arc::new(off_tx),
        killed: Arc::default(),
    };
    fake_agent(&hv.connector, hv.off_tx.clone());
    let killed = hv.killed.clone();
    let run = berth_host::supervisor::run(state, config, Arc::new(hv), CancellationToken::new());
    tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the supervisor did not stop")
        .expect("the supervisor failed");
    assert!(!killed.load(Ordering::SeqCst), "the VM was killed");
}

#[tokio::test]
async fn one_off_requests_and_an_orderly_stop_from_another_process() {
    let d = tempfile::tempdir().unwrap();
    let image = d.path().join("image");
    std::fs::create_dir_all(&image).unwrap();
    std::fs::write(image.join("cmdline"), "console=ttyS0").unwrap();
    let state = StateDir::new(d.path());
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "supervisor_child", "--ignored", "--nocapture"])
        .env(CHILD_ENV, d.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    // Running, bounded; a child that ends first fails the test with its output.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while Status::read(&state).is_none_or(|s| s.state != VmState::Running) {
        if let Ok(Some(rc)) = child.try_wait() {
            let out = child.wait_with_output().await.unwrap();
            panic!("the supervisor ended early ({rc}): {out:?}");
        }
        assert!(tokio::time::Instant::now() < deadline, "never running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let m = berth_host::memory::read(&state, None).await;
    assert_eq!(m.guest, Some(MEMORY));
    assert_eq!(
        berth_host::disk::trim_online(&state).await.unwrap(),
        TRIMMED
    );

    berth_host::control::request_stop(&state).await.unwrap();
    let out = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .expect("the supervisor did not exit after the stop request")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(ORDERLY), "{stdout}");
    assert_eq!(
        Status::read(&state).map(|s| s.state),
        Some(VmState::Stopped)
    );
    // Its socket or pipe is gone with it.
    assert!(berth_host::control::request_stop(&state).await.is_err());
}
