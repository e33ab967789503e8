//! Long-lived streams to the UI (logs follow, pull progress, stats, exec). Each runs as one task
//! owned by [`Streams`]: the UI gets a numeric id back and stops it with `system_stream_stop`;
//! a stream that ends on its own removes itself; quitting the app cancels them all. Data goes
//! to the UI over the `tauri::ipc::Channel` passed to the command, one [`StreamEvent`] a message.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tauri::ipc::Channel;
use tokio::io::{AsyncWrite, AsyncWriteExt};
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

/// Turns bytes that arrive in arbitrary chunks into text: a UTF-8 sequence cut between two
/// chunks is held back until the rest of it arrives (decoding each chunk alone would turn both
/// halves into U+FFFD). Bytes that are not UTF-8 at all become U+FFFD, as with `from_utf8_lossy`.
#[derive(Debug, Default)]
pub struct Utf8Chunks {
    held: Vec<u8>,
}

impl Utf8Chunks {
    /// The text that `bytes` completes.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.held.extend_from_slice(bytes);
        let cut = incomplete_tail(&self.held);
        let text = String::from_utf8_lossy(&self.held[..cut]).into_owned();
        self.held.drain(..cut);
        text
    }
}

/// Where the unfinished UTF-8 sequence at the end of `b` starts (`b.len()` when there is none).
fn incomplete_tail(b: &[u8]) -> usize {
    // A sequence is at most 4 bytes: look back over at most 3 for its leading byte.
    for back in 1..=b.len().min(3) {
        let i = b.len() - back;
        let lead = b[i];
        if lead & 0xC0 == 0x80 {
            continue; // a continuation byte: the lead is further back
        }
        let needs = match lead {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        return if back < needs { i } else { b.len() };
    }
    b.len()
}

/// The hijacked stdin of a terminal session.
pub type ExecInput = Arc<tokio::sync::Mutex<Pin<Box<dyn AsyncWrite + Send>>>>;

/// What runs after a session is closed (the debug shell's sidecar removal).
pub type Cleanup = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Whose TTY a terminal session resizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tty {
    /// An exec process (`POST /exec/{id}/resize`).
    Exec(String),
    /// A container's own TTY: attach and the debug shell's sidecar (`/containers/{id}/resize`).
    Container(String),
}

/// A terminal session: where keystrokes go, whose TTY it is, how it is closed.
pub struct Session {
    pub input: ExecInput,
    pub tty: Tty,
    /// Write [`EXEC_HANGUP`] when closed: a shell the app started (exec, debug shell). Never for
    /// an attach, whose ^C ^D would reach the container's own main process.
    pub hang_up: bool,
    /// Runs once the session is over, however it ended.
    pub cleanup: Option<Cleanup>,
}

struct Entry {
    cancel: CancellationToken,
    session: Option<Session>,
}

/// What an exec session gets when it is closed: ^C for a program in the foreground, then ^D
/// for the shell. The Docker API cannot hang up a TTY, and an exec process outlives its client
/// (as with dockerd), so without this every closed terminal would leave a shell behind.
pub const EXEC_HANGUP: &[u8] = b"\x03\x04";

/// How long closing sessions may take: the hang-up, then each cleanup.
const CLOSE_BOUND: Duration = Duration::from_secs(2);

/// Ends streams: shells the app started get [`EXEC_HANGUP`] (2 s at most), then all are
/// cancelled and the sessions' cleanups run (bounded too).
async fn end(entries: Vec<Entry>) {
    let hang_ups = entries
        .iter()
        .filter_map(|e| e.session.as_ref().filter(|s| s.hang_up))
        .map(|s| s.input.clone())
        .map(|input| async move {
            let mut w = input.lock().await;
            let _ = w.write_all(EXEC_HANGUP).await;
            let _ = w.flush().await;
        });
    let hung_up = futures::future::join_all(hang_ups);
    if tokio::time::timeout(CLOSE_BOUND, hung_up).await.is_err() {
        tracing::debug!("exec hang-up timed out");
    }
    let mut cleanups = Vec::new();
    for e in entries {
        e.cancel.cancel();
        cleanups.extend(e.session.and_then(|s| s.cleanup));
    }
    run_cleanups(cleanups).await;
}

/// Runs session cleanups together, each bounded.
async fn run_cleanups(cleanups: Vec<Cleanup>) {
    let bounded = cleanups.into_iter().map(|c| async move {
        if tokio::time::timeout(CLOSE_BOUND * 5, c).await.is_err() {
            tracing::warn!("a session cleanup timed out");
        }
    });
    futures::future::join_all(bounded).await;
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
        session: Option<Session>,
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
                session,
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
            let ended = entries
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            // Ended by itself (not stopped): its cleanup is still due.
            let cleanup = ended.and_then(|e| e.session).and_then(|s| s.cleanup);
            run_cleanups(cleanup.into_iter().collect()).await;
        });
        id
    }

    /// Stops stream `id`; stopping one that already ended is not an error.
    pub fn stop(&self, id: StreamId) {
        if let Some(e) = self.lock().remove(&id) {
            tauri::async_runtime::spawn(end(vec![e]));
        }
    }

    /// Stops the streams running now; new ones may start after (UI reload).
    pub fn stop_all_current(&self) {
        let all: Vec<Entry> = self.lock().drain().map(|(_, e)| e).collect();
        tauri::async_runtime::spawn(end(all));
    }

    /// Stops every stream for good (app exit; call it outside the async runtime): exec
    /// sessions are hung up first (bounded), then everything is cancelled and later streams
    /// start cancelled.
    pub fn stop_all(&self) {
        let all: Vec<Entry> = self.lock().drain().map(|(_, e)| e).collect();
        tauri::async_runtime::block_on(end(all));
        self.root.cancel();
    }

    /// The stdin and TTY of terminal stream `id`.
    pub fn session(&self, id: StreamId) -> Result<(ExecInput, Tty)> {
        self.lock()
            .get(&id)
            .and_then(|e| e.session.as_ref())
            .map(|s| (s.input.clone(), s.tty.clone()))
            .ok_or(AppError::NoStream(id))
    }

    /// How many streams run now (for tests and the log).
    pub fn running(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<StreamId, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Sets the flag when dropped: tells whether a stream's future was dropped.
    struct DropFlag(Arc<AtomicBool>);
    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    fn channel(sent: Arc<Mutex<Vec<String>>>) -> Channel<StreamEvent> {
        Channel::new(move |body| {
            if let tauri::ipc::InvokeResponseBody::Json(j) = body {
                sent.lock().unwrap().push(j);
            }
            Ok(())
        })
    }

    fn wait(mut f: impl FnMut() -> bool) -> bool {
        (0..250).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            f()
        })
    }

    #[test]
    fn stopping_a_stream_drops_its_task() {
        let streams = Streams::default();
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = DropFlag(dropped.clone());
        let sent = Arc::default();
        let id = streams.spawn(channel(Arc::clone(&sent)), None, async move {
            let _flag = flag;
            std::future::pending::<()>().await;
            Ok(())
        });
        assert_eq!(streams.running(), 1);
        streams.stop(id);
        assert!(wait(|| dropped.load(Ordering::SeqCst)), "task not dropped");
        assert_eq!(streams.running(), 0);
        assert!(sent.lock().unwrap().is_empty(), "no End after a stop");
    }

    #[test]
    fn a_stream_that_ends_sends_end_and_unregisters() {
        let streams = Streams::default();
        let sent: Arc<Mutex<Vec<String>>> = Arc::default();
        streams.spawn(channel(Arc::clone(&sent)), None, async {
            Err(AppError::Invalid("bad".into()))
        });
        assert!(wait(|| streams.running() == 0));
        assert!(wait(|| !sent.lock().unwrap().is_empty()));
        let v: serde_json::Value = serde_json::from_str(&sent.lock().unwrap()[0]).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"kind": "end", "error": {"code": "invalid", "message": "bad"}})
        );
    }

    #[test]
    fn stop_all_current_leaves_the_registry_usable() {
        let streams = Streams::default();
        let first = Arc::new(AtomicBool::new(false));
        let flag = DropFlag(first.clone());
        streams.spawn(channel(Arc::default()), None, async move {
            let _flag = flag;
            std::future::pending::<()>().await;
            Ok(())
        });
        streams.stop_all_current();
        assert!(wait(|| first.load(Ordering::SeqCst)));
        let sent: Arc<Mutex<Vec<String>>> = Arc::default();
        streams.spawn(channel(Arc::clone(&sent)), None, async { Ok(()) });
        assert!(
            wait(|| !sent.lock().unwrap().is_empty()),
            "a new stream runs"
        );
    }

    /// An exec stdin that records what it gets.
    struct Recorder(Arc<Mutex<Vec<u8>>>);
    impl AsyncWrite for Recorder {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            self.0.lock().unwrap().extend_from_slice(buf);
            std::task::Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(
            self: Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_shutdown(
            self: Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    /// A session whose stdin records what it gets and whose cleanup sets a flag.
    fn recorded_session(
        tty: Tty,
        hang_up: bool,
    ) -> (Session, Arc<Mutex<Vec<u8>>>, Arc<AtomicBool>) {
        let got: Arc<Mutex<Vec<u8>>> = Arc::default();
        let cleaned = Arc::new(AtomicBool::new(false));
        let flag = cleaned.clone();
        let session = Session {
            input: Arc::new(tokio::sync::Mutex::new(Box::pin(Recorder(got.clone())))),
            tty,
            hang_up,
            cleanup: Some(Box::pin(async move { flag.store(true, Ordering::SeqCst) })),
        };
        (session, got, cleaned)
    }

    /// Spawns a session that runs until stopped; the flag tells when its future was dropped.
    fn pending_session(streams: &Streams, session: Session) -> (StreamId, Arc<AtomicBool>) {
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = DropFlag(dropped.clone());
        let id = streams.spawn(channel(Arc::default()), Some(session), async move {
            let _flag = flag;
            std::future::pending::<()>().await;
            Ok(())
        });
        (id, dropped)
    }

    #[test]
    fn stopping_an_exec_hangs_it_up_first() {
        let streams = Streams::default();
        let (session, got, cleaned) = recorded_session(Tty::Exec("exec1".into()), true);
        let (id, dropped) = pending_session(&streams, session);
        assert_eq!(streams.session(id).unwrap().1, Tty::Exec("exec1".into()));
        streams.stop(id);
        assert!(wait(|| dropped.load(Ordering::SeqCst)));
        assert_eq!(got.lock().unwrap().as_slice(), EXEC_HANGUP);
        assert!(wait(|| cleaned.load(Ordering::SeqCst)), "cleanup ran");
        assert!(streams.session(id).is_err(), "gone from the registry");
    }

    #[test]
    fn stopping_an_attach_sends_nothing_to_the_container() {
        let streams = Streams::default();
        let (session, got, _) = recorded_session(Tty::Container("c1".into()), false);
        let (id, dropped) = pending_session(&streams, session);
        streams.stop(id);
        assert!(wait(|| dropped.load(Ordering::SeqCst)));
        assert!(
            got.lock().unwrap().is_empty(),
            "no ^C ^D to the main process"
        );
    }

    #[test]
    fn a_session_that_ends_by_itself_is_cleaned_up() {
        let streams = Streams::default();
        let (session, _, cleaned) = recorded_session(Tty::Container("c1".into()), true);
        streams.spawn(channel(Arc::default()), Some(session), async { Ok(()) });
        assert!(wait(|| cleaned.load(Ordering::SeqCst)), "cleanup ran");
        assert_eq!(streams.running(), 0);
    }

    #[test]
    fn quitting_cleans_up_every_session() {
        let streams = Streams::default();
        let (session, _, cleaned) = recorded_session(Tty::Container("c1".into()), true);
        pending_session(&streams, session);
        streams.stop_all();
        assert!(
            cleaned.load(Ordering::SeqCst),
            "done before stop_all returns"
        );
    }

    #[test]
    fn utf8_cut_between_chunks_arrives_whole() {
        let text = "é→😀 ok";
        let bytes = text.as_bytes();
        // Every way of cutting it in two gives the same text, never U+FFFD.
        for cut in 0..=bytes.len() {
            let mut d = Utf8Chunks::default();
            let mut got = d.push(&bytes[..cut]);
            got += &d.push(&bytes[cut..]);
            assert_eq!(got, text, "cut at {cut}");
        }
        // One byte at a time too.
        let mut d = Utf8Chunks::default();
        let got: String = bytes.iter().map(|b| d.push(&[*b])).collect();
        assert_eq!(got, text);
    }

    #[test]
    fn bytes_that_are_not_utf8_are_replaced_not_held() {
        let mut d = Utf8Chunks::default();
        assert_eq!(d.push(b"a\xffb"), "a\u{FFFD}b");
        // A lone continuation byte at the end is not the start of anything: out at once.
        assert_eq!(d.push(b"c\x80"), "c\u{FFFD}");
        assert_eq!(d.push(b"\xe2\x86"), "", "held: two bytes of three");
        assert_eq!(d.push(b"\x92"), "→");
    }

    #[test]
    fn stop_all_cancels_every_stream() {
        let streams = Streams::default();
        let flags: Vec<_> = (0..3).map(|_| Arc::new(AtomicBool::new(false))).collect();
        for f in &flags {
            let flag = DropFlag(f.clone());
            streams.spawn(channel(Arc::default()), None, async move {
                let _flag = flag;
                std::future::pending::<()>().await;
                Ok(())
            });
        }
        streams.stop_all();
        assert!(wait(|| flags.iter().all(|f| f.load(Ordering::SeqCst))));
    }
}
