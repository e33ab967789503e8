//! Exit handling: the monitor that waits for a container's exit, the record of the exit, and
//! what follows it (network release, AutoRemove, the restart policy).

use std::sync::Arc;
use std::time::Duration;

use berth_docker_api::container::RestartPolicy;

use super::record::{Paths, Stored};
use super::{Container, Svc};
use crate::fsutil::read_json;
use crate::mount::Mounter;
use crate::shim::{ExitRecord, Shim};

/// Whether the restart policy restarts a container that exited with `code` (dockerd's rules:
/// never after a user's stop; `on-failure[:N]` only on a non-zero code, at most N times).
pub(super) fn should_restart(policy: &RestartPolicy, code: i32, s: &Stored) -> bool {
    !s.state.manually_stopped
        && match policy.name.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => {
                code != 0
                    && (policy.maximum_retry_count == 0
                        || s.state.restart_count < policy.maximum_retry_count)
            }
            _ => false,
        }
}

/// The delay before the restart after `restart_count` restarts: 100 ms doubling, at most 60 s.
pub(super) fn restart_delay(restart_count: i64) -> Duration {
    let n = restart_count.clamp(0, 9) as u32;
    Duration::from_millis(100 << n).min(Duration::from_secs(60))
}

/// What an exit leaves to do: the attachment to release, and whether the restart policy
/// restarts the container.
struct ExitOutcome {
    attachment: Option<crate::network::Attachment>,
    restart: bool,
}

/// Records the exit in the state. A container the policy restarts is `restarting` from this
/// very update on (as in dockerd), so a plain `docker rm` between its exit and its restart
/// is refused instead of racing the restart.
fn mark_exited(st: &mut Stored, code: i32, finished_at: String) -> ExitOutcome {
    let restart = should_restart(&st.host.restart_policy, code, st);
    let s = &mut st.state.state;
    s.status = if restart { "restarting" } else { "exited" }.into();
    s.restarting = restart;
    s.running = false;
    s.paused = false;
    s.pid = 0;
    s.exit_code = i64::from(code);
    s.finished_at = finished_at;
    ExitOutcome {
        attachment: st.attachment.take(),
        restart,
    }
}

/// Leaves the `restarting` state (the restart did not happen) for `exited`.
fn mark_not_restarting(st: &mut Stored) {
    st.state.state.restarting = false;
    if !st.state.state.running {
        st.state.state.status = "exited".into();
    }
}

impl Svc {
    /// Unmounts the devices of `c`'s volumes that no other running container uses.
    fn release_volumes(&self, c: &Container) {
        let mounts = c.snapshot().record.mounts;
        for m in mounts.iter().filter(|m| m.typ == "volume") {
            let busy = self.all().into_iter().any(|o| {
                let s = o.snapshot();
                o.id != c.id
                    && s.state.state.running
                    && s.record
                        .mounts
                        .iter()
                        .any(|x| x.typ == "volume" && x.name == m.name)
            });
            if !busy {
                self.volumes.release(&m.name);
            }
        }
    }

    /// Waits for the shim to report the exit, then records it.
    pub(super) fn spawn_monitor(self: &Arc<Self>, c: Arc<Container>, shim: Box<dyn Shim>) {
        let svc = self.clone();
        let token = c.tasks.clone();
        self.tasks.spawn_until(&token, async move {
            let code = match shim.wait().await {
                Ok(code) => Some(code),
                Err(e) => {
                    // A short-lived container may be gone before we ask; the exit file tells.
                    tracing::debug!(id = %c.id, error = %e, "shim wait failed");
                    None
                }
            };
            svc.handle_exit(&c, code).await;
        });
    }

    /// The exit code (from the shim, else from the exit file, else 255) and finish time;
    /// unmounts the rootfs in case the shim died uncleanly.
    async fn exit_status(
        mounter: Arc<dyn Mounter>,
        paths: &Paths,
        id: &str,
        code: Option<i32>,
    ) -> (i32, String) {
        let p = paths.clone();
        let rec = tokio::task::spawn_blocking(move || {
            let rec: Option<ExitRecord> = match read_json(&p.exit_file()) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "unreadable exit record");
                    None
                }
            };
            mounter.unmount(&p.rootfs());
            rec
        })
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(%id, error = %e, "exit record task failed");
            None
        });
        if code.is_none() && rec.is_none() {
            tracing::warn!(%id, "shim gone without an exit record; assuming 255");
        }
        let code = code.or(rec.as_ref().map(|r| r.exit_code)).unwrap_or(255);
        let finished = rec
            .map(|r| r.finished_at)
            .unwrap_or_else(crate::shim::jsonlog::now_rfc3339);
        (code, finished)
    }

    /// Records an exit, releases the network, and applies AutoRemove and the restart policy.
    pub(super) async fn handle_exit(self: &Arc<Self>, c: &Arc<Container>, code: Option<i32>) {
        let paths = self.paths(&c.id);
        let (code, finished) = Self::exit_status(self.mounter.clone(), &paths, &c.id, code).await;
        // Stands in memory when it cannot be written (a full disk): waiters get the code, the
        // network is released and the policy applies; the write is retried.
        let outcome = self.record_state(c, &paths, "exit", |st| mark_exited(st, code, finished));
        if let Some(att) = outcome.attachment {
            // Off the exit path: the next start of this container awaits it.
            let svc = self.clone();
            let id = c.id.clone();
            let task = self.tasks.spawn(async move {
                if let Err(e) = svc.networks.detach(&id, &att).await {
                    tracing::warn!(%id, error = %e, "network detach failed");
                }
            });
            *c.detaching.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        }
        self.release_volumes(c);
        self.publish(c, "die", &[("exitCode", code.to_string())]);
        c.status.send_modify(|st| {
            st.running = false;
            st.exits += 1;
            st.exit_code = i64::from(code);
        });
        if outcome.restart {
            self.schedule_restart(c.clone(), paths);
        } else if c.snapshot().host.auto_remove {
            self.spawn_auto_remove(c);
        }
    }

    /// `--rm`: removes the container after its exit.
    fn spawn_auto_remove(self: &Arc<Self>, c: &Container) {
        let svc = self.clone();
        let id = c.id.clone();
        self.tasks.spawn_until(&c.tasks, async move {
            if let Err(e) = svc.remove(&id, true, true).await {
                if e.kind() != crate::ErrorKind::NotFound {
                    tracing::warn!(%id, error = %e, "auto-remove failed");
                }
            }
        });
    }

    /// The restart policy's restart (the container is already `restarting`): the delay, then
    /// a start, unless the user stopped, started or removed the container meanwhile.
    fn schedule_restart(self: &Arc<Self>, c: Arc<Container>, paths: Paths) {
        let svc = self.clone();
        let token = c.tasks.clone();
        self.tasks.spawn_until(&token, async move {
            let delay = restart_delay(c.snapshot().state.restart_count);
            let log = |r: crate::Result<()>| {
                if let Err(e) = r {
                    tracing::warn!(id = %c.id, error = %e, "cannot record the restart state");
                }
            };
            tokio::time::sleep(delay).await;
            let _op = c.op.lock().await;
            let s = c.snapshot();
            if s.state.manually_stopped || s.state.state.running || c.status.borrow().removed {
                log(c.update(&paths, mark_not_restarting));
                return;
            }
            log(c.update(&paths, |st| st.state.restart_count += 1));
            if let Err(e) = svc.start_locked(&c).await {
                tracing::warn!(id = %c.id, error = %e, "restart failed");
                log(c.update(&paths, |st| {
                    st.state.state.restarting = false;
                    st.state.state.status = "exited".into();
                }));
            } else {
                svc.publish(&c, "restart", &[]);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(
        policy: &str,
        max: i64,
        restarts: i64,
        manually_stopped: bool,
    ) -> (RestartPolicy, Stored) {
        let mut s =
            super::super::start_plan::tests::stored(serde_json::json!({}), serde_json::json!({}));
        s.state.restart_count = restarts;
        s.state.manually_stopped = manually_stopped;
        let p = RestartPolicy {
            name: policy.into(),
            maximum_retry_count: max,
        };
        (p, s)
    }

    #[test]
    fn restart_policy_table() {
        // (--restart, retries so far, stopped by the user, exit code, restarts?)
        let rows: &[(&str, i64, i64, bool, i32, bool)] = &[
            ("", 0, 0, false, 1, false),
            ("no", 0, 0, false, 1, false),
            ("always", 0, 5, false, 0, true),
            ("always", 0, 0, true, 1, false),
            ("unless-stopped", 0, 0, false, 0, true),
            ("unless-stopped", 0, 0, true, 0, false),
            ("on-failure", 0, 0, false, 0, false),
            ("on-failure", 0, 50, false, 3, true),
            ("on-failure", 2, 1, false, 3, true),
            ("on-failure", 2, 2, false, 3, false),
        ];
        for &(name, max, restarts, stopped, code, want) in rows {
            let (p, s) = stored(name, max, restarts, stopped);
            assert_eq!(
                should_restart(&p, code, &s),
                want,
                "--restart {name}:{max} after {restarts} restarts, stopped={stopped}, exit {code}"
            );
        }
    }

    /// The exit that the policy restarts leaves the container `restarting` at once (so a
    /// plain `docker rm` is refused from then on); any other exit leaves it `exited`.
    #[test]
    fn exit_marks_restarting_when_the_policy_restarts() {
        for (policy, want) in [("always", true), ("no", false)] {
            let (p, mut s) = stored(policy, 0, 0, false);
            s.host.restart_policy = p;
            s.state.state.running = true;
            let out = mark_exited(&mut s, 1, "2026-12-05T00:00:00Z".into());
            assert_eq!(out.restart, want, "--restart {policy}");
            assert_eq!(s.state.state.restarting, want, "--restart {policy}");
            assert!(!s.state.state.running);
            let status = if want { "restarting" } else { "exited" };
            assert_eq!(s.state.state.status, status, "--restart {policy}");
        }
    }

    #[test]
    fn restart_delay_doubles_to_a_bound() {
        assert_eq!(restart_delay(0), Duration::from_millis(100));
        assert_eq!(restart_delay(3), Duration::from_millis(800));
        assert_eq!(restart_delay(9), Duration::from_millis(51_200));
        assert_eq!(restart_delay(1000), Duration::from_millis(51_200));
        assert_eq!(restart_delay(-1), Duration::from_millis(100));
    }

    #[test]
    fn exit_is_recorded_with_its_code() {
        let (_, mut s) = stored("", 0, 0, false);
        s.state.state.running = true;
        s.state.state.pid = 42;
        s.attachment = Some(Default::default());
        let att = mark_exited(&mut s, 3, "2026-01-01T00:00:00Z".into());
        assert!(att.attachment.is_some() && s.attachment.is_none());
        let st = &s.state.state;
        assert_eq!(
            (st.running, st.pid, st.exit_code, st.status.as_str()),
            (false, 0, 3, "exited")
        );
        assert_eq!(st.finished_at, "2026-01-01T00:00:00Z");
    }
}
