//! Long-lived streams to the UI (logs follow, pull progress, stats, exec). Each runs as one task
//! owned by [`Streams`]: the UI gets a numeric id back and stops it with `system_stream_stop`;
//! a stream that ends on its own removes itself; quitting the app cancels them all. Data goes
//! to the UI over the `tauri::ipc::Channel` passed to the command, one [`StreamEvent`] a message.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tauri::ipc::Channel;
use tokio::io::AsyncWrite;
use tokio_util::sync::CancellationToken;

use crate::error::{AppError, Result};

pub type StreamId = u64;

/// One message of a stream, tagged by `kind` for the UI.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StreamEvent {
    /// Text from a container (logs) or an exec session; `stream` is stdout, stderr or console.
    Output { stream: &'static str, text: String },
    /// A pull progress line, as `docker pull` prints it.
    Progress {
        id: Option<String>,
        status: String,
        progress: Option<String>,
    },
    /// One stats sample.
    Stats(crate::commands::containers::StatsSample),
    /// The stream is over; `error` says why when it failed.
    End { error: Option<AppError> },
}

/// The hijacked stdin of an exec session.
pub type ExecInput = Arc<tokio::sync::Mutex<Pin<Box<dyn AsyncWrite + Send>>>>;

struct Entry {
    cancel: CancellationToken,
    /// Exec sessions: where keystrokes go and the exec id (for resize).
    exec: Option<(ExecInput, String)>,
}

/// The registry of running streams (Tauri managed state).
pub struct Streams {
    next: Mutex<StreamId>,
    entries: Arc<Mutex<HashMap<StreamId, Entry>>>,
    /// Parent of every stream's token: cancelled when the app quits.
    root: CancellationToken,
}

impl Default for Streams {
    fn default() -> Self {
        Self {
            next: Mutex::new(1),
            entries: Arc::default(),
            root: CancellationToken::new(),
        }
    }
}

impl Streams {
    /// Runs `body` as a stream: it sends its data on `channel`; when it returns, an `End` is
    /// sent with its error, if any. Stopping the stream drops `body` (no `End` is sent then;
    /// the UI asked for it).
    pub fn spawn<F>(
        &self,
        channel: Channel<StreamEvent>,
        exec: Option<(ExecInput, String)>,
        body: F,
    ) -> StreamId
    where
        F: Future<Output = Result<()>> + Send + 'static,
    {
        let id = {
            let mut n = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let id = *n;
            *n += 1;
            id
        };
        let cancel = self.root.child_token();
        self.lock().insert(
            id,
            Entry {
                cancel: cancel.clone(),
                exec,
            },
        );
        let entries = self.entries.clone();
        tauri::async_runtime::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => tracing::debug!(id, "stream stopped"),
                r = body => {
                    if let Err(e) = &r {
                        tracing::debug!(id, error = %e, "stream failed");
                    }
                    let _ = channel.send(StreamEvent::End { error: r.err() });
                }
            }
            entries
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
        });
        id
    }

    /// Stops stream `id`; stopping one that already ended is not an error.
    pub fn stop(&self, id: StreamId) {
        if let Some(e) = self.lock().remove(&id) {
            e.cancel.cancel();
        }
    }

    /// Stops every stream (app exit).
    pub fn stop_all(&self) {
        self.root.cancel();
        self.lock().clear();
    }

    /// The stdin and exec id of exec stream `id`.
    pub fn exec(&self, id: StreamId) -> Result<(ExecInput, String)> {
        self.lock()
            .get(&id)
            .and_then(|e| e.exec.clone())
            .ok_or(AppError::NoStream(id))
    }

    /// How many streams run now (for tests and the log).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<StreamId, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}
