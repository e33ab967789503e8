//! Names shared with the UI and the tray, in one table, and the engine watcher that feeds them.
//!
//! The watcher keeps one `/events` subscription open on the current engine and re-emits each
//! event to the UI ([`ENGINE_EVENT`]), which reloads the affected list: push, not polling. It
//! also reports the engine state ([`ENGINE_STATUS`]) to the UI and the tray, and tells the tray
//! when containers change. When the engine is
//! down it retries every [`RETRY`] (the bounded fallback); a settings change or `berth start`
//! wakes it at once.

use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;
use tauri::{AppHandle, Emitter, Manager};
use tokio_util::sync::CancellationToken;

use crate::commands::system::EngineStatus;
use crate::state::AppState;

/// Tauri event: the engine state changed (payload [`EngineStatus`]).
pub const ENGINE_STATUS: &str = "engine://status";
/// Tauri event: a Docker event (payload [`EngineEvent`]).
pub const ENGINE_EVENT: &str = "engine://event";

/// How long the watcher waits before probing a down engine again.
pub const RETRY: Duration = Duration::from_secs(2);

/// A Docker event as the UI gets it.
#[derive(Debug, Clone, Serialize)]
pub struct EngineEvent {
    /// `container`, `image`, `volume`, `network`, …
    #[serde(rename = "type")]
    pub typ: String,
    pub action: String,
    pub id: String,
    pub name: Option<String>,
}

impl From<bollard::models::EventMessage> for EngineEvent {
    fn from(m: bollard::models::EventMessage) -> Self {
        let actor = m.actor.unwrap_or_default();
        Self {
            typ: m.typ.map(|t| t.to_string()).unwrap_or_default(),
            action: m.action.unwrap_or_default(),
            name: actor
                .attributes
                .as_ref()
                .and_then(|a| a.get("name").cloned()),
            id: actor.id.unwrap_or_default(),
        }
    }
}

impl EngineEvent {
    /// Whether the set of running containers may have changed (not an exec, attach, resize…).
    pub fn changes_containers(&self) -> bool {
        const QUIET: [&str; 7] = [
            "exec_",
            "attach",
            "resize",
            "top",
            "archive-path",
            "extract-to-dir",
            "export",
        ];
        self.typ == "container" && !QUIET.iter().any(|q| self.action.starts_with(q))
    }
}

/// Whether an event is about one of the app's volume helpers (by their label).
fn from_helper(m: &bollard::models::EventMessage) -> bool {
    let attrs = m.actor.as_ref().and_then(|a| a.attributes.as_ref());
    crate::commands::volume_helper::is_helper(attrs)
}

/// How far back the subscription replays (covers the request's delay and clock skew with a VM).
pub const REPLAY: Duration = Duration::from_secs(2);

/// The `since` of a subscription made at `now`: Unix seconds with a fraction, [`REPLAY`] earlier.
pub fn replay_from(now: std::time::SystemTime) -> String {
    let t = now
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_sub(REPLAY);
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}

/// Runs the watcher until `cancel` fires.
pub fn spawn_watcher(app: AppHandle, cancel: CancellationToken) {
    tauri::async_runtime::spawn(async move {
        let mut last: Option<&'static str> = None;
        loop {
            let state = app.state::<AppState>();
            let status = EngineStatus::probe(&state).await;
            let ready = status.state == "ready";
            if last != Some(status.state) {
                tracing::info!(state = status.state, socket = %status.socket.path.display(), "engine");
                last = Some(status.state);
            }
            crate::tray::engine_changed(&app, &status);
            let e = state.engine();
            // Ready means the version call went through, so the client exists.
            let docker = e.docker().ok().filter(|_| ready);
            if let Some(docker) = docker {
                // The request goes out on the first poll, after the UI was told to reload: ask
                // the engine to replay from a little before now, so an event between the UI's
                // reload and the subscription is not lost (a replayed one only reloads again).
                let opts = bollard::query_parameters::EventsOptionsBuilder::new()
                    .since(&replay_from(std::time::SystemTime::now()))
                    .build();
                let mut events = docker.events(Some(opts));
                let _ = app.emit(ENGINE_STATUS, &status);
                loop {
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = state.reconnect.notified() => break,
                        ev = events.next() => match ev {
                            // The app's own volume helpers change nothing a view shows.
                            Some(Ok(m)) if from_helper(&m) => {}
                            Some(Ok(m)) => {
                                let ev = EngineEvent::from(m);
                                if ev.changes_containers() {
                                    crate::tray::containers_changed(&app);
                                }
                                let _ = app.emit(ENGINE_EVENT, ev);
                            }
                            Some(Err(err)) => {
                                tracing::warn!(error = %e.err(err), "event stream broke");
                                break;
                            }
                            None => break,
                        },
                    }
                }
            } else {
                let _ = app.emit(ENGINE_STATUS, &status);
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = state.reconnect.notified() => {}
                    _ = tokio::time::sleep(RETRY) => {}
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_starts_before_the_subscription() {
        let now = std::time::UNIX_EPOCH + Duration::new(1_700_000_010, 250_000_000);
        assert_eq!(replay_from(now), "1700000008.250000000");
        assert_eq!(replay_from(std::time::UNIX_EPOCH), "0.000000000");
    }

    #[test]
    fn exec_and_attach_do_not_change_the_running_set() {
        let ev = |typ: &str, action: &str| EngineEvent {
            typ: typ.into(),
            action: action.into(),
            id: "x".into(),
            name: None,
        };
        assert!(ev("container", "die").changes_containers());
        assert!(ev("container", "start").changes_containers());
        assert!(!ev("container", "exec_start: sh").changes_containers());
        assert!(!ev("container", "attach").changes_containers());
        assert!(!ev("image", "pull").changes_containers());
    }

    #[test]
    fn events_keep_type_action_and_name() {
        let m: bollard::models::EventMessage = serde_json::from_value(serde_json::json!({
            "Type": "container", "Action": "start",
            "Actor": {"ID": "abc", "Attributes": {"name": "web", "image": "busybox"}}
        }))
        .unwrap();
        let e = EngineEvent::from(m);
        assert_eq!(
            (
                e.typ.as_str(),
                e.action.as_str(),
                e.id.as_str(),
                e.name.as_deref()
            ),
            ("container", "start", "abc", Some("web"))
        );
    }
}
