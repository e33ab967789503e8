//! `docker stop`, `docker kill` and `docker restart`, and the runtime calls they make.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::signal::parse_signal;
use super::{not_running, Container, Status, Svc};
use crate::runtime::Runtime;
use crate::{EngineError, Result};

impl Svc {
    pub(crate) async fn runtime_call<F>(&self, c: &Container, f: F) -> Result<()>
    where
        F: FnOnce(&dyn Runtime, &str) -> Result<()> + Send + 'static,
    {
        let rt = self.runtime_for(&c.snapshot())?;
        let id = c.id.clone();
        tokio::task::spawn_blocking(move || f(rt.as_ref(), &id))
            .await
            .map_err(|e| EngineError::internal(e.to_string()))?
    }

    pub(super) async fn wait_stopped(rx: &mut watch::Receiver<Status>, limit: Duration) -> bool {
        tokio::time::timeout(limit, rx.wait_for(|s| !s.running))
            .await
            .is_ok()
    }

    /// `POST /containers/{id}/stop`.
    #[tracing::instrument(name = "container_stop", skip_all, fields(id = %key))]
    pub async fn stop(
        self: &Arc<Self>,
        key: &str,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<()> {
        let c = self.get(key)?;
        let _op = c.op.lock().await;
        self.stop_locked(&c, signal, timeout).await
    }

    async fn stop_locked(
        self: &Arc<Self>,
        c: &Arc<Container>,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<()> {
        let s = c.snapshot();
        if !s.state.state.running {
            return Err(EngineError::not_modified("container already stopped"));
        }
        let sig_name = signal
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .or(s.record.config.stop_signal.clone())
            .unwrap_or_else(|| "SIGTERM".into());
        let sig = parse_signal(&sig_name)?;
        let t = timeout.or(s.record.config.stop_timeout).unwrap_or(10);
        let paths = self.paths(&c.id);
        c.update(&paths, |st| st.state.manually_stopped = true)?;
        let mut rx = c.subscribe();
        let paused = s.state.state.paused;
        if self
            .runtime_call(c, move |rt, id| rt.kill(id, sig, false))
            .await
            .is_ok()
        {
            self.publish(c, "kill", &[("signal", sig.to_string())]);
        }
        if paused {
            let _ = self.runtime_call(c, |rt, id| rt.resume(id)).await;
        }
        let limit = Duration::from_secs(u64::try_from(t).unwrap_or(0));
        if t < 0
            || !Self::wait_stopped(
                &mut rx,
                if t < 0 {
                    Duration::from_secs(3600)
                } else {
                    limit
                },
            )
            .await
        {
            let _ = self
                .runtime_call(c, |rt, id| rt.kill(id, libc::SIGKILL, true))
                .await;
            self.publish(c, "kill", &[("signal", libc::SIGKILL.to_string())]);
            if !Self::wait_stopped(&mut rx, Duration::from_secs(15)).await {
                return Err(EngineError::internal(format!(
                    "cannot stop container: {}: tried to kill container, but did not receive an exit event",
                    c.id
                )));
            }
        }
        self.publish(c, "stop", &[]);
        Ok(())
    }

    /// `POST /containers/{id}/kill`.
    #[tracing::instrument(name = "container_kill", skip_all, fields(id = %key))]
    pub async fn kill(self: &Arc<Self>, key: &str, signal: Option<&str>) -> Result<()> {
        let c = self.get(key)?;
        let s = c.snapshot();
        if !s.state.state.running {
            return Err(not_running(&c.id));
        }
        let sig = parse_signal(signal.unwrap_or(""))?;
        if sig == libc::SIGKILL || sig == libc::SIGTERM || sig == libc::SIGINT {
            c.update(&self.paths(&c.id), |st| st.state.manually_stopped = true)?;
        }
        self.runtime_call(&c, move |rt, id| rt.kill(id, sig, false))
            .await?;
        self.publish(&c, "kill", &[("signal", sig.to_string())]);
        if sig == libc::SIGKILL {
            let mut rx = c.subscribe();
            Self::wait_stopped(&mut rx, Duration::from_secs(10)).await;
        }
        Ok(())
    }

    /// `POST /containers/{id}/restart`.
    #[tracing::instrument(name = "container_restart", skip_all, fields(id = %key))]
    pub async fn restart(
        self: &Arc<Self>,
        key: &str,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<()> {
        let c = self.get(key)?;
        let _op = c.op.lock().await;
        match self.stop_locked(&c, signal, timeout).await {
            Ok(()) => {}
            Err(e) if e.kind() == crate::ErrorKind::NotModified => {}
            Err(e) => return Err(e),
        }
        self.start_locked(&c).await?;
        self.publish(&c, "restart", &[]);
        Ok(())
    }
}
