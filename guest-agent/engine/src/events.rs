//! The event bus behind `GET /events`: a broadcast channel for live subscribers plus a bounded
//! history so `since`/`until` can replay.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::broadcast;

const HISTORY: usize = 1024;

/// One event, in Docker's `EventMessage` shape (with the legacy `status`/`id`/`from` fields
/// that API 1.50 still sends).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Event {
    #[serde(rename = "Type")]
    pub typ: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    pub scope: String,
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

/// Shared handle to the bus; cheap to clone.
#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Event>,
    history: Arc<Mutex<VecDeque<Event>>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(HISTORY);
        Self {
            tx,
            history: Arc::new(Mutex::new(VecDeque::with_capacity(HISTORY))),
        }
    }

    /// Publishes an event of `typ` (`container`, `image`, `network`, `volume`) for the object
    /// `id` with its attributes (`name`, `image`, labels, …).
    pub fn publish(&self, typ: &str, action: &str, id: &str, attributes: BTreeMap<String, String>) {
        let now = chrono::Utc::now();
        let nanos = now.timestamp_nanos_opt().unwrap_or_default();
        let legacy = typ == "container";
        let ev = Event {
            typ: typ.to_string(),
            action: action.to_string(),
            scope: "local".into(),
            time: now.timestamp(),
            time_nano: nanos,
            status: legacy.then(|| action.to_string()),
            id: legacy.then(|| id.to_string()),
            from: if legacy {
                attributes.get("image").cloned()
            } else {
                None
            },
            actor: Actor {
                id: id.to_string(),
                attributes,
            },
        };
        tracing::debug!(typ, action, id, "event");
        {
            let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
            if h.len() == HISTORY {
                h.pop_front();
            }
            h.push_back(ev.clone());
        }
        let _ = self.tx.send(ev);
    }

    /// Subscribes to live events and returns the history recorded so far, taken atomically
    /// with the subscription so nothing falls between the two.
    pub fn subscribe(&self) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let rx = self.tx.subscribe();
        (h.iter().cloned().collect(), rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn publish_reaches_history_and_subscribers() {
        let bus = EventBus::new();
        bus.publish(
            "container",
            "create",
            "abc",
            BTreeMap::from([("image".into(), "busybox".into())]),
        );
        let (hist, mut rx) = bus.subscribe();
        assert_eq!(hist.len(), 1);
        assert_eq!(hist[0].from.as_deref(), Some("busybox"));
        bus.publish("image", "pull", "busybox:latest", BTreeMap::new());
        let ev = rx.recv().await.unwrap();
        assert_eq!(ev.action, "pull");
        assert!(ev.status.is_none());
    }
}
