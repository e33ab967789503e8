//! A container's exit from the network: its services stopped, its veths deleted (in the
//! background), its namespace and endpoints released; and the release of what a crash left.

use std::collections::{BTreeSet, HashSet};
use std::time::Instant;

use super::store::EndpointRecord;
use super::{lock, Attachment, NetworkService};
use crate::Result;

impl NetworkService {
    /// Unpublishes ports, removes every endpoint of the container and its network namespace.
    /// Idempotent.
    pub async fn detach(&self, container_id: &str, att: &Attachment) -> Result<()> {
        let started = Instant::now();
        self.stop_services(container_id).await;
        let records: Vec<EndpointRecord> = lock(&self.state)
            .endpoints_of_container(container_id)
            .into_iter()
            .cloned()
            .collect();
        let veths: Vec<String> = if records.is_empty() {
            att.endpoints()
                .filter(|e| e.endpoint_id.len() >= 7)
                .map(|e| format!("veth{}", &e.endpoint_id[..7]))
                .collect()
        } else {
            records.iter().map(|r| r.veth.clone()).collect()
        };
        if !veths.is_empty() {
            // Deleting a veth waits for an RCU grace period (~20 ms): keep it off the
            // container's exit path, and off the connection the next start uses. The names
            // are unique to the endpoints, so nothing waits on them.
            let driver = self.driver.clone();
            let mut jobs = lock(&self.cleanups);
            while jobs.try_join_next().is_some() {}
            jobs.spawn(async move {
                for v in veths {
                    if let Err(e) = driver.delete_link(&v).await {
                        tracing::warn!(veth = %v, error = %e, "cannot delete veth");
                    }
                }
            });
        }
        if let Some(path) = &att.netns_path {
            self.driver.remove_sandbox(path).await?;
        }
        if !records.is_empty() {
            lock(&self.state).take_container(container_id);
            self.save().await?;
            for r in &records {
                let net = lock(&self.state)
                    .networks
                    .iter()
                    .find(|n| n.id == r.network_id)
                    .cloned();
                if let Some(net) = net {
                    self.publish_event("disconnect", &net, Some(container_id));
                }
            }
        }
        tracing::debug!(
            id = %container_id,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "network detached"
        );
        Ok(())
    }

    /// Detaches whatever the state and the namespace directory still have of `container_id`
    /// without its attachment at hand (a crash between an exit and its detach).
    pub(super) async fn release(&self, container_id: &str) -> Result<()> {
        let att = Attachment {
            netns_path: Some(self.netns_dir.join(container_id)),
            ..Attachment::default()
        };
        self.detach(container_id, &att).await
    }

    /// Releases the endpoints and namespace pins of containers that no longer hold an
    /// attachment: an engine stopped between recording a container's exit (or removal) and
    /// detaching it leaves them behind, and they would keep the network busy and its
    /// addresses taken for ever. Called once at start-up, before any container starts.
    pub async fn release_orphans(&self, holders: &HashSet<String>) {
        let mut orphans: BTreeSet<String> = lock(&self.state)
            .endpoints
            .values()
            .map(|e| e.container_id.clone())
            .filter(|id| !holders.contains(id))
            .collect();
        if let Ok(dir) = std::fs::read_dir(&self.netns_dir) {
            orphans.extend(
                dir.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|id| id.len() == 64 && !holders.contains(id)),
            );
        }
        for id in orphans {
            tracing::info!(container = %id, "releasing the network of a container that no longer holds it");
            if let Err(e) = self.release(&id).await {
                tracing::warn!(container = %id, error = %e, "cannot release orphaned endpoints");
            }
        }
    }
}
