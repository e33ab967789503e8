//! Health checks (`Config.Healthcheck`): a probe exec'd in the container every interval,
//! recorded in `State.Health` with `health_status: …` events, as dockerd does.

use std::sync::Arc;
use std::time::Duration;

use berth_docker_api::container::{ExecConfig, Health, HealthConfig, HealthcheckResult};

use super::{Container, Svc};
use crate::runtime::ExecOptions;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// Between probes during the start period (`StartInterval`, API 1.44).
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: i64 = 3;
const MAX_LOG: usize = 5;
const MAX_OUTPUT: usize = 4096;

fn dur(ns: i64, default: Duration) -> Duration {
    if ns > 0 {
        Duration::from_nanos(ns as u64)
    } else {
        default
    }
}

/// The probe command, or `None` when checks are off (`NONE` or no test).
pub fn probe_command(h: &HealthConfig) -> Option<Vec<String>> {
    let t = h.test.as_ref()?;
    match t.first().map(String::as_str) {
        Some("CMD") => Some(t[1..].to_vec()).filter(|c| !c.is_empty()),
        Some("CMD-SHELL") => Some(vec!["/bin/sh".into(), "-c".into(), t[1..].join(" ")]),
        _ => None,
    }
}

/// The status after a probe with `exit_code`, given the previous state.
pub fn next_state(prev: &Health, exit_code: i64, retries: i64, in_start_period: bool) -> Health {
    let mut h = prev.clone();
    if exit_code == 0 {
        h.failing_streak = 0;
        h.status = "healthy".into();
    } else if !(in_start_period && h.status == "starting") {
        h.failing_streak += 1;
        if h.failing_streak >= retries {
            h.status = "unhealthy".into();
        }
    }
    h
}

impl Svc {
    /// Starts the probe loop of a freshly started container; it ends when the container stops
    /// or is started again.
    pub(crate) fn spawn_health(self: &Arc<Self>, c: &Arc<Container>) {
        let s = c.snapshot();
        let Some(cfg) = s.record.config.healthcheck.clone() else {
            return;
        };
        let Some(cmd) = probe_command(&cfg) else {
            return;
        };
        let started_at = s.state.state.started_at.clone();
        let paths = self.paths(&c.id);
        let _ = c.update(&paths, |st| {
            st.state.state.health = Some(Health {
                status: "starting".into(),
                ..Default::default()
            })
        });
        let svc = self.clone();
        let token = c.tasks.clone();
        let c = c.clone();
        self.tasks.spawn_until(&token, async move {
            let interval = dur(cfg.interval, DEFAULT_INTERVAL);
            let timeout = dur(cfg.timeout, DEFAULT_TIMEOUT);
            let retries = if cfg.retries > 0 {
                cfg.retries
            } else {
                DEFAULT_RETRIES
            };
            let start_period = dur(cfg.start_period, Duration::ZERO);
            let start_interval = dur(cfg.start_interval, DEFAULT_START_INTERVAL);
            let begun = tokio::time::Instant::now();
            let mut status = c.subscribe();
            loop {
                // Within the start period, probes come every start interval until one passes.
                let starting = begun.elapsed() < start_period
                    && c.snapshot()
                        .state
                        .state
                        .health
                        .is_some_and(|h| h.status == "starting");
                let wait = if starting { start_interval } else { interval };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    r = status.wait_for(|s| !s.running) => { let _ = r; return; }
                }
                let s = c.snapshot();
                if !s.state.state.running || s.state.state.started_at != started_at {
                    return;
                }
                if s.state.state.paused {
                    continue;
                }
                let start = crate::shim::jsonlog::now_rfc3339();
                let (code, output) = svc.probe(&c, &cmd, timeout).await;
                let result = HealthcheckResult {
                    start,
                    end: crate::shim::jsonlog::now_rfc3339(),
                    exit_code: code,
                    output,
                };
                let in_start = begun.elapsed() < start_period;
                let changed = c
                    .update(&paths, |st| {
                        let prev = st.state.state.health.clone().unwrap_or_default();
                        let mut next = next_state(&prev, code, retries, in_start);
                        next.log.push(result);
                        let n = next.log.len();
                        if n > MAX_LOG {
                            next.log.drain(..n - MAX_LOG);
                        }
                        let changed = (prev.status != next.status).then(|| next.status.clone());
                        st.state.state.health = Some(next);
                        changed
                    })
                    .unwrap_or_else(|e| {
                        tracing::warn!(id = %c.id, error = %e, "cannot record a health check");
                        None
                    });
                if let Some(st) = changed {
                    svc.publish(&c, &format!("health_status: {st}"), &[]);
                }
            }
        });
    }

    /// Runs one probe; returns its exit code (−1 on timeout or failure to run) and output.
    async fn probe(&self, c: &Container, cmd: &[String], timeout: Duration) -> (i64, String) {
        let s = c.snapshot();
        let cfg = ExecConfig {
            cmd: Some(cmd.to_vec()),
            ..Default::default()
        };
        let run = async {
            let process = self
                .exec_process(&s, &cfg, None)
                .map_err(|e| e.to_string())?;
            let bundle = self.paths(&c.id).bundle();
            let file = bundle.join(format!(
                "health-{}.json",
                crate::id::new_id().get(..8).unwrap_or("x")
            ));
            std::fs::write(
                &file,
                serde_json::to_vec(&process).map_err(|e| e.to_string())?,
            )
            .map_err(|e| e.to_string())?;
            let rt = self.runtime(
                &self
                    .runtime_spec(&s.host.runtime)
                    .map_err(|e| e.to_string())?,
            );
            let opts = ExecOptions {
                process_file: file.clone(),
                tty: false,
                log_file: None,
            };
            let mut cmd = tokio::process::Command::from(rt.exec_command(&c.id, &opts));
            cmd.stdin(std::process::Stdio::null()).kill_on_drop(true);
            let out = tokio::time::timeout(timeout, cmd.output()).await;
            let _ = std::fs::remove_file(&file);
            match out {
                Ok(Ok(o)) => {
                    let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
                    text.push_str(&String::from_utf8_lossy(&o.stderr));
                    text.truncate(MAX_OUTPUT);
                    Ok((i64::from(o.status.code().unwrap_or(-1)), text))
                }
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Ok((-1, format!("Health check exceeded timeout ({timeout:?})"))),
            }
        };
        run.await.unwrap_or_else(|e: String| (-1, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_forms() {
        let h = |t: &[&str]| HealthConfig {
            test: Some(t.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        };
        assert_eq!(
            probe_command(&h(&["CMD", "true"])),
            Some(vec!["true".into()])
        );
        assert_eq!(
            probe_command(&h(&["CMD-SHELL", "exit 1"])),
            Some(vec!["/bin/sh".into(), "-c".into(), "exit 1".into()])
        );
        assert_eq!(probe_command(&h(&["NONE"])), None);
        assert_eq!(probe_command(&HealthConfig::default()), None);
    }

    #[test]
    fn status_moves_with_retries() {
        let starting = Health {
            status: "starting".into(),
            ..Default::default()
        };
        let h = next_state(&starting, 1, 2, false);
        assert_eq!((h.status.as_str(), h.failing_streak), ("starting", 1));
        let h = next_state(&h, 1, 2, false);
        assert_eq!(h.status, "unhealthy");
        let h = next_state(&h, 0, 2, false);
        assert_eq!((h.status.as_str(), h.failing_streak), ("healthy", 0));
        // Failures in the start period do not count while starting.
        let h = next_state(&starting, 1, 1, true);
        assert_eq!(h.status, "starting");
    }
}
