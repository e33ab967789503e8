//! `docker pause` and `docker unpause`.

use std::sync::Arc;

use super::{not_running, Svc};
use crate::{EngineError, Result};

impl Svc {
    /// `POST /containers/{id}/pause` and `/unpause`.
    pub async fn pause(self: &Arc<Self>, key: &str, pause: bool) -> Result<()> {
        let c = self.get(key)?;
        let s = c.snapshot().state.state;
        if !s.running {
            return Err(not_running(&c.id));
        }
        if pause && s.paused {
            return Err(EngineError::conflict(format!(
                "Container {} is already paused",
                c.id
            )));
        }
        if !pause && !s.paused {
            return Err(EngineError::conflict(format!(
                "Container {} is not paused",
                c.id
            )));
        }
        if pause {
            self.runtime_call(&c, |rt, id| rt.pause(id)).await?;
        } else {
            self.runtime_call(&c, |rt, id| rt.resume(id)).await?;
        }
        c.update(&self.paths(&c.id), |st| {
            st.state.state.paused = pause;
            st.state.state.status = if pause { "paused" } else { "running" }.into();
        })?;
        self.publish(&c, if pause { "pause" } else { "unpause" }, &[]);
        Ok(())
    }
}
