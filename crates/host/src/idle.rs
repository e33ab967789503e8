//! Auto-pause: a VM with nothing to do stops costing CPU. After `Config::auto_pause_secs` with
//! no client connected through the host's endpoints and no container running in the guest, the
//! supervisor pauses the VM's CPUs; the next client (a `docker` command, the app, `berth` asking
//! the guest) resumes it before its connection reaches the guest, so nobody sees the pause but
//! for the resume's latency.
//!
//! [`IdleGate`] is the one place that knows: every forwarded connection holds an
//! [`Activity`] while it lasts; [`IdleGate::run`] waits for the quiet period, asks whether the
//! guest is busy (running containers: their ports and timers must keep working), and pauses.
//! A long-lived client (`docker events`, the app's event subscription) keeps the VM awake, as
//! any client does while it is connected.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use crate::error::Result;
use crate::vm::Pauser;

/// Longest wait for the guest to say whether containers run; no answer counts as busy.
const BUSY_ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// Clients and quiet time, kept apart from the VM side so an [`Activity`]'s drop never waits.
#[derive(Debug)]
struct Clients {
    connected: usize,
    /// When the last client left (or the VM was attached).
    quiet_since: Instant,
}

/// The VM being gated, if one is running.
#[derive(Default)]
struct VmSide {
    pauser: Option<Arc<dyn Pauser>>,
    paused: bool,
}

/// Counts the clients of the guest and pauses/resumes the VM around them.
pub struct IdleGate {
    clients: Mutex<Clients>,
    vm: tokio::sync::Mutex<VmSide>,
    left: Notify,
    paused_tx: watch::Sender<bool>,
}

impl Default for IdleGate {
    fn default() -> Self {
        Self {
            clients: Mutex::new(Clients {
                connected: 0,
                quiet_since: Instant::now(),
            }),
            vm: tokio::sync::Mutex::new(VmSide::default()),
            left: Notify::new(),
            paused_tx: watch::channel(false).0,
        }
    }
}

/// Held by a client while it is connected: the VM runs until it is dropped.
pub struct Activity {
    gate: Arc<IdleGate>,
}

impl Drop for Activity {
    fn drop(&mut self) {
        let mut c = self.gate.clients.lock().unwrap_or_else(|e| e.into_inner());
        c.connected -= 1;
        c.quiet_since = Instant::now();
        drop(c);
        self.gate.left.notify_one();
    }
}

impl IdleGate {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A client arrives: resumes the VM if it is paused, and keeps it running until the
    /// returned [`Activity`] is dropped.
    pub async fn enter(self: &Arc<Self>) -> Result<Activity> {
        self.clients_mut().connected += 1;
        let activity = Activity { gate: self.clone() };
        let mut vm = self.vm.lock().await;
        if vm.paused {
            if let Some(p) = &vm.pauser {
                let started = Instant::now();
                p.resume().await?;
                tracing::info!(ms = started.elapsed().as_millis(), "VM resumed");
            }
            vm.paused = false;
            self.paused_tx.send_replace(false);
        }
        Ok(activity)
    }

    /// Whether the VM is paused now, and its changes (the supervisor writes them to the status).
    pub fn paused(&self) -> watch::Receiver<bool> {
        self.paused_tx.subscribe()
    }

    /// A VM came up: from now on it may be paused through `pauser`.
    pub async fn attach(&self, pauser: Option<Arc<dyn Pauser>>) {
        let mut vm = self.vm.lock().await;
        *vm = VmSide {
            pauser,
            paused: false,
        };
        self.clients_mut().quiet_since = Instant::now();
        self.paused_tx.send_replace(false);
    }

    /// The VM is going away (stop, crash): resumes it if paused (an orderly shutdown needs its
    /// CPUs) and stops gating it.
    pub async fn detach(&self) {
        let mut vm = self.vm.lock().await;
        if let (true, Some(p)) = (vm.paused, &vm.pauser) {
            if let Err(e) = p.resume().await {
                tracing::warn!(error = %e, "resuming the VM before it stops failed");
            }
        }
        *vm = VmSide::default();
        self.paused_tx.send_replace(false);
    }

    /// Pauses the VM whenever it has been quiet for `after` and `busy` says the guest has
    /// nothing running; returns when `cancel` fires. `busy` is asked once per quiet period.
    pub async fn run<F, Fut>(
        self: Arc<Self>,
        after: Duration,
        busy: F,
        cancel: tokio_util::sync::CancellationToken,
    ) where
        F: Fn() -> Fut,
        Fut: Future<Output = bool>,
    {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = self.quiet_for(after) => {}
            }
            tracing::debug!("VM quiet: checking whether it may pause");
            let pauser = {
                let vm = self.vm.lock().await;
                vm.pauser.clone().filter(|_| !vm.paused)
            };
            let Some(pauser) = pauser else {
                // Nothing to pause (no VM, no pauser, or paused already): wait for a client.
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = self.left.notified() => continue,
                }
            };
            // Asked without the VM's lock, and bounded: a client arriving meanwhile must get
            // in at once, whatever the guest does with the question.
            tracing::debug!("asking the guest whether containers run");
            let busy_now = tokio::time::timeout(BUSY_ANSWER_WITHIN, busy())
                .await
                .unwrap_or_else(|_| {
                    tracing::warn!(
                        ?BUSY_ANSWER_WITHIN,
                        "the guest did not say whether containers run: not paused"
                    );
                    true
                });
            if busy_now {
                tracing::info!("VM idle but containers run: not paused");
                self.clients_mut().quiet_since = Instant::now();
                continue;
            }
            let mut vm = self.vm.lock().await;
            // A client that came while the guest was asked is in: no pause. Nor when the VM
            // went (or came anew) meanwhile.
            let same_vm = vm.pauser.as_ref().is_some_and(|p| Arc::ptr_eq(p, &pauser));
            if self.clients_mut().connected > 0 || vm.paused || !same_vm {
                continue;
            }
            match pauser.pause().await {
                Ok(()) => {
                    vm.paused = true;
                    self.paused_tx.send_replace(true);
                    tracing::info!(idle_secs = after.as_secs(), "VM paused: nothing to do");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "pausing the idle VM failed");
                    self.clients_mut().quiet_since = Instant::now();
                }
            }
        }
    }

    /// Resolves once no client has been connected for `after`.
    async fn quiet_for(&self, after: Duration) {
        loop {
            let (connected, since) = {
                let c = self.clients_mut();
                (c.connected, c.quiet_since)
            };
            if connected == 0 && since.elapsed() >= after {
                return;
            }
            if connected > 0 {
                self.left.notified().await;
            } else {
                tokio::select! {
                    _ = tokio::time::sleep_until(since + after) => {}
                    _ = self.left.notified() => {}
                }
            }
        }
    }

    fn clients_mut(&self) -> std::sync::MutexGuard<'_, Clients> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Resumes the VM if auto-pause paused it, with a call through the Docker endpoint (whose
/// clients the supervisor's gate wakes it for): for the side connections to the guest that
/// bypass the supervisor (`berth disk usage`, trim).
pub async fn wake(state: &crate::StateDir) {
    if crate::supervisor::Status::read(state).is_some_and(|s| s.paused) {
        if let Err(e) = crate::api::get(&state.docker_endpoint(), "/_ping").await {
            tracing::debug!(error = %e, "waking the paused VM failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::future::BoxFuture;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio_util::sync::CancellationToken;

    /// Records pause/resume calls in order.
    #[derive(Default)]
    struct FakePauser {
        calls: Mutex<Vec<&'static str>>,
    }

    impl Pauser for FakePauser {
        fn pause(&self) -> BoxFuture<'_, Result<()>> {
            self.calls.lock().unwrap().push("pause");
            Box::pin(async { Ok(()) })
        }
        fn resume(&self) -> BoxFuture<'_, Result<()>> {
            self.calls.lock().unwrap().push("resume");
            Box::pin(async { Ok(()) })
        }
    }

    impl FakePauser {
        fn calls(&self) -> Vec<&'static str> {
            self.calls.lock().unwrap().clone()
        }
    }

    const AFTER: Duration = Duration::from_secs(30);

    /// A gate with a VM attached and its pausing loop running; `busy` is what the guest says.
    async fn gated(busy: Arc<AtomicBool>) -> (Arc<IdleGate>, Arc<FakePauser>, CancellationToken) {
        let gate = IdleGate::new();
        let pauser = Arc::new(FakePauser::default());
        gate.attach(Some(pauser.clone())).await;
        let cancel = CancellationToken::new();
        tokio::spawn(gate.clone().run(
            AFTER,
            move || {
                let b = busy.load(Ordering::SeqCst);
                async move { b }
            },
            cancel.clone(),
        ));
        (gate, pauser, cancel)
    }

    /// Waits for the pause, bounded (time is paused and auto-advances: this returns at once).
    async fn until_paused(rx: &mut watch::Receiver<bool>) {
        tokio::time::timeout(AFTER * 100, rx.wait_for(|p| *p))
            .await
            .expect("the VM was never paused")
            .unwrap();
    }

    /// Lets the loop run until it waits again (time is paused: this does not advance it).
    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_idle_vm_is_paused_and_the_next_client_resumes_it() {
        let (gate, pauser, _cancel) = gated(Arc::new(AtomicBool::new(false))).await;
        let mut paused = gate.paused();
        tokio::time::advance(AFTER - Duration::from_secs(1)).await;
        settle().await;
        assert!(pauser.calls().is_empty(), "paused before the quiet period");
        tokio::time::advance(Duration::from_secs(2)).await;
        until_paused(&mut paused).await;
        assert_eq!(pauser.calls(), ["pause"]);

        let client = gate.enter().await.unwrap();
        assert!(!*gate.paused().borrow());
        assert_eq!(pauser.calls(), ["pause", "resume"]);
        // While the client stays, however long, the VM runs.
        tokio::time::advance(AFTER * 3).await;
        settle().await;
        assert_eq!(pauser.calls(), ["pause", "resume"]);
        drop(client);
        tokio::time::advance(AFTER + Duration::from_secs(1)).await;
        until_paused(&mut paused).await;
        assert_eq!(pauser.calls(), ["pause", "resume", "pause"]);
    }

    #[tokio::test(start_paused = true)]
    async fn running_containers_keep_it_awake_until_they_stop() {
        let busy = Arc::new(AtomicBool::new(true));
        let (gate, pauser, _cancel) = gated(busy.clone()).await;
        let mut paused = gate.paused();
        for _ in 0..4 {
            tokio::time::advance(AFTER + Duration::from_secs(1)).await;
            settle().await;
        }
        assert!(pauser.calls().is_empty());
        busy.store(false, Ordering::SeqCst);
        tokio::time::advance(AFTER + Duration::from_secs(1)).await;
        until_paused(&mut paused).await;
        assert_eq!(pauser.calls(), ["pause"]);
    }

    // The gate asks the guest with no lock held and for a bounded time: a guest that never
    // answers neither keeps a client out nor gets paused.
    #[tokio::test(start_paused = true)]
    async fn a_guest_that_never_answers_keeps_no_client_out_and_is_not_paused() {
        let gate = IdleGate::new();
        let pauser = Arc::new(FakePauser::default());
        gate.attach(Some(pauser.clone())).await;
        let asked = Arc::new(Notify::new());
        let asking = asked.clone();
        tokio::spawn(gate.clone().run(
            AFTER,
            move || {
                asking.notify_one();
                std::future::pending::<bool>()
            },
            CancellationToken::new(),
        ));
        tokio::time::timeout(AFTER * 2, asked.notified())
            .await
            .expect("the guest was never asked");
        let client = tokio::time::timeout(Duration::from_millis(1), gate.enter())
            .await
            .expect("a client waited on the guest's answer")
            .unwrap();
        drop(client);
        tokio::time::advance(BUSY_ANSWER_WITHIN + Duration::from_secs(1)).await;
        settle().await;
        assert!(pauser.calls().is_empty(), "paused without an answer");
    }

    #[tokio::test(start_paused = true)]
    async fn detaching_a_paused_vm_resumes_it_for_its_shutdown() {
        let (gate, pauser, cancel) = gated(Arc::new(AtomicBool::new(false))).await;
        tokio::time::advance(AFTER + Duration::from_secs(1)).await;
        until_paused(&mut gate.paused()).await;
        gate.detach().await;
        assert_eq!(pauser.calls(), ["pause", "resume"]);
        // Without a VM nothing is paused, and a client passes straight through.
        tokio::time::advance(AFTER * 2).await;
        settle().await;
        drop(gate.enter().await.unwrap());
        assert_eq!(pauser.calls(), ["pause", "resume"]);
        cancel.cancel();
    }
}
