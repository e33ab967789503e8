//! `Control.Status`: a build's progress as BuildKit vertexes. [`StatusHub`] keeps every update
//! so a reader that comes late replays them; [`Vertexes`] turns the classic builder's output
//! lines (`Step 2/5 : RUN …`, the command's output, ` ---> Using cache`) into vertexes with
//! start and end times, logs and cache hits, which buildx prints as its progress.

use std::pin::Pin;
use std::sync::Mutex;
use std::time::SystemTime;

use berth_docker_api::progress::ProgressMessage;
use bollard_buildkit_proto::google::protobuf::Timestamp;
use bollard_buildkit_proto::moby::buildkit::v1::{StatusResponse, Vertex, VertexLog};
use futures::Stream;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

pub(crate) type StatusStream =
    Pin<Box<dyn Stream<Item = Result<StatusResponse, tonic::Status>> + Send>>;

#[derive(Default)]
struct HubState {
    updates: Vec<StatusResponse>,
    closed: bool,
}

/// Every status update of one build, in order, until it is closed.
#[derive(Default)]
pub(crate) struct StatusHub {
    state: Mutex<HubState>,
    changed: Notify,
}

impl StatusHub {
    pub(crate) fn publish(&self, s: StatusResponse) {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .updates
            .push(s);
        self.changed.notify_waiters();
    }

    pub(crate) fn close(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
        self.changed.notify_waiters();
    }

    /// The update at `i`, waiting for it; `None` once the hub is closed and drained.
    async fn get(&self, i: usize) -> Option<StatusResponse> {
        loop {
            let notified = self.changed.notified();
            {
                let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(u) = st.updates.get(i) {
                    return Some(u.clone());
                }
                if st.closed {
                    return None;
                }
            }
            notified.await;
        }
    }
}

/// A stream of the build's updates from the first.
pub(crate) fn stream(entry: std::sync::Arc<super::registry::BuildEntry>) -> StatusStream {
    Box::pin(futures::stream::unfold(
        (entry, 0usize),
        |(entry, i)| async move {
            let u = entry.status.get(i).await?;
            Some((Ok(u), (entry, i + 1)))
        },
    ))
}

pub(crate) fn now() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

/// A vertex digest unique to this build and step.
fn digest(build: &str, n: usize, name: &str) -> String {
    let mut h = Sha256::new();
    h.update(build.as_bytes());
    h.update(n.to_le_bytes());
    h.update(name.as_bytes());
    format!("sha256:{}", hex_string(&h.finalize()))
}

fn hex_string(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The vertexes of one build, made from its output lines.
pub(crate) struct Vertexes {
    build: String,
    count: usize,
    current: Option<Vertex>,
}

impl Vertexes {
    pub(crate) fn new(build: &str) -> Self {
        Self {
            build: build.to_string(),
            count: 0,
            current: None,
        }
    }

    /// Starts a vertex named `name`, completing the current one.
    pub(crate) fn start(&mut self, name: &str) -> StatusResponse {
        let mut out = self.complete("");
        self.count += 1;
        let v = Vertex {
            digest: digest(&self.build, self.count, name),
            name: name.to_string(),
            started: Some(now()),
            ..Vertex::default()
        };
        out.vertexes.push(v.clone());
        self.current = Some(v);
        out
    }

    /// Completes the current vertex, with `error` when not empty.
    pub(crate) fn complete(&mut self, error: &str) -> StatusResponse {
        let mut out = StatusResponse::default();
        if let Some(mut v) = self.current.take() {
            v.completed = Some(now());
            v.error = error.to_string();
            out.vertexes.push(v);
        }
        out
    }

    /// A log line of the current vertex (a vertex is started if there is none).
    pub(crate) fn log(&mut self, msg: &str) -> StatusResponse {
        let mut out = StatusResponse::default();
        if self.current.is_none() {
            out = self.start("[internal] berth");
        }
        if let Some(v) = &self.current {
            out.logs.push(VertexLog {
                vertex: v.digest.clone(),
                timestamp: Some(now()),
                stream: 1,
                msg: msg.as_bytes().to_vec(),
            });
        }
        out
    }

    fn cached(&mut self) -> StatusResponse {
        let mut out = StatusResponse::default();
        if let Some(v) = self.current.as_mut() {
            v.cached = true;
            out.vertexes.push(v.clone());
        }
        out
    }

    /// The update for one line of the classic builder's output, if it shows.
    pub(crate) fn on_message(&mut self, m: &ProgressMessage) -> Option<StatusResponse> {
        if let Some(e) = &m.error {
            return Some(self.complete(e));
        }
        if let Some(s) = &m.stream {
            return self.on_line(s);
        }
        if let Some(s) = &m.status {
            let line = match &m.id {
                Some(id) => format!("{id}: {s}\n"),
                None => format!("{s}\n"),
            };
            if m.progress_detail
                .as_ref()
                .is_some_and(|d| d.total.is_some())
            {
                return None;
            }
            return Some(self.log(&line));
        }
        None
    }

    fn on_line(&mut self, s: &str) -> Option<StatusResponse> {
        if let Some(rest) = s.strip_prefix("Step ") {
            if let Some((count, instr)) = rest.split_once(" : ") {
                let name = format!("[{count}] {}", instr.trim_end());
                return Some(self.start(&name));
            }
        }
        let t = s.trim();
        if t == "---> Using cache" {
            return Some(self.cached());
        }
        if t.starts_with("--->")
            || t.starts_with("Removing intermediate container")
            || t.starts_with("Successfully built")
            || t.starts_with("Successfully tagged")
            || t.is_empty()
        {
            return None;
        }
        Some(self.log(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: &str) -> ProgressMessage {
        ProgressMessage {
            stream: Some(s.to_string()),
            ..ProgressMessage::default()
        }
    }

    #[test]
    fn steps_become_vertexes_with_logs_and_cache_hits() {
        let mut v = Vertexes::new("ref1");
        let a = v.on_message(&line("Step 1/2 : FROM busybox\n")).unwrap();
        assert_eq!(a.vertexes.len(), 1);
        assert_eq!(a.vertexes[0].name, "[1/2] FROM busybox");
        assert!(a.vertexes[0].started.is_some() && a.vertexes[0].completed.is_none());
        assert!(v.on_message(&line(" ---> 0123456789ab\n")).is_none());
        let b = v.on_message(&line("Step 2/2 : RUN echo hi\n")).unwrap();
        assert_eq!(
            b.vertexes.len(),
            2,
            "completes the first, starts the second"
        );
        assert!(b.vertexes[0].completed.is_some());
        assert_ne!(b.vertexes[0].digest, b.vertexes[1].digest);
        let c = v.on_message(&line("hi\n")).unwrap();
        assert_eq!(c.logs[0].msg, b"hi\n");
        assert_eq!(c.logs[0].vertex, b.vertexes[1].digest);
        let d = v.on_message(&line(" ---> Using cache\n")).unwrap();
        assert!(d.vertexes[0].cached);
        let e = v.on_message(&ProgressMessage::error("boom")).unwrap();
        assert_eq!(e.vertexes[0].error, "boom");
        assert!(e.vertexes[0].completed.is_some());
    }

    #[tokio::test]
    async fn late_readers_replay_and_end_at_close() {
        use futures::StreamExt;
        let entry = std::sync::Arc::new(super::super::registry::BuildEntry::default());
        entry.status.publish(StatusResponse::default());
        let mut s = stream(entry.clone());
        assert!(s.next().await.is_some());
        entry.status.publish(StatusResponse::default());
        entry.status.close();
        assert!(s.next().await.is_some());
        assert!(s.next().await.is_none());
    }
}
