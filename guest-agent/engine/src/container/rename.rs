//! `docker rename`.

use super::Svc;
use crate::{EngineError, Result};

impl Svc {
    /// `POST /containers/{id}/rename?name=`.
    pub async fn rename(&self, key: &str, new_name: &str) -> Result<()> {
        let c = self.get(key)?;
        let n = new_name.strip_prefix('/').unwrap_or(new_name);
        if !super::names::valid(n) {
            return Err(EngineError::invalid(format!(
                "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let _g = self.names.lock().unwrap_or_else(|e| e.into_inner());
        let old = c.snapshot().record.name;
        if old == n {
            return Err(EngineError::invalid(
                "Renaming a container with the same name as its current name",
            ));
        }
        if let Some(owner) = self.name_owner(n) {
            return Err(Self::name_conflict(n, &owner));
        }
        let paths = self.paths(&c.id);
        {
            let mut g = c.stored.lock().unwrap_or_else(|e| e.into_inner());
            g.record.name = n.to_string();
            crate::fsutil::write_json_atomic(&paths.config(), &g.record)?;
        }
        drop(_g);
        if let Err(e) = self.networks.rename_container(&c.id, n).await {
            tracing::warn!(id = %c.id, error = %e, "network endpoints keep the old name");
        }
        self.publish(&c, "rename", &[("oldName", format!("/{old}"))]);
        Ok(())
    }
}
