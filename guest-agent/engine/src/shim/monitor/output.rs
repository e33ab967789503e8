//! The container's output in the shim: one pump thread per stream copies it to the json-file
//! log and to every attached client, held back until the runtime has succeeded ([`Gate`]).

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use super::Shared;

/// An attached client and the streams it asked for.
pub(super) struct Client {
    pub(super) stream: UnixStream,
    pub(super) stdout: bool,
    pub(super) stderr: bool,
}

/// Output read while the runtime runs is held, in the order it arrived on either pipe: once
/// the runtime succeeded it is the container's and goes out in that order; after a failure it
/// is the runtime's own error text (reported from its log file) and is dropped. The pumps
/// read from the start, so stdout and stderr keep their relative order.
pub(super) enum Gate {
    Holding(Vec<(u8, Vec<u8>)>),
    Open,
    Closed,
}

/// The pump threads started so far, and the channel each reports its end on.
pub(super) struct Pumps {
    shared: Arc<Shared>,
    done_tx: mpsc::Sender<()>,
    done_rx: mpsc::Receiver<()>,
    started: usize,
}

impl Pumps {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        let (done_tx, done_rx) = mpsc::channel();
        Self {
            shared,
            done_tx,
            done_rx,
            started: 0,
        }
    }

    /// Starts a pump per `(stream, file)`.
    pub(super) fn spawn(&mut self, outputs: Vec<(u8, File)>) {
        for (stream, file) in outputs {
            self.started += 1;
            let s = self.shared.clone();
            let done = self.done_tx.clone();
            std::thread::spawn(move || {
                pump(&s, stream, file);
                let _ = done.send(());
            });
        }
    }

    /// Waits until every pump has read to its end, or `deadline`.
    pub(super) fn drain(&self, deadline: Instant) {
        for _ in 0..self.started {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.done_rx.recv_timeout(left).is_err() {
                break;
            }
        }
    }
}

/// Wires a TTY container's pty master: stdin (if open), resize, and the one output stream.
pub(super) fn tty_io(s: &Shared, master: File) -> Vec<(u8, File)> {
    let mut outputs = vec![];
    if s.cfg.open_stdin {
        if let (Ok(w), Ok(mut g)) = (master.try_clone(), s.stdin.lock()) {
            *g = Some(w);
        }
    }
    if let Ok(r) = master.try_clone() {
        outputs.push((1, r));
    }
    let _ = s.master.set(master);
    outputs
}

/// Copies one output stream to the log and every attached client.
fn pump(s: &Shared, stream: u8, mut src: File) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let Ok(mut gate) = s.gate.lock() else {
            break;
        };
        match &mut *gate {
            Gate::Holding(held) => held.push((stream, buf[..n].to_vec())),
            Gate::Open => deliver(s, stream, &buf[..n]),
            Gate::Closed => {}
        }
    }
}

/// Ends the holding period: delivers what was held (the runtime succeeded) or drops it.
pub(super) fn open_gate(s: &Shared, launched: bool) {
    let Ok(mut gate) = s.gate.lock() else {
        return;
    };
    let next = if launched { Gate::Open } else { Gate::Closed };
    if let Gate::Holding(held) = std::mem::replace(&mut *gate, next) {
        if launched {
            for (stream, data) in held {
                deliver(s, stream, &data);
            }
        }
    }
}

/// Writes output to the log and to every attached client that wants its stream.
fn deliver(s: &Shared, stream: u8, data: &[u8]) {
    if let Ok(mut log) = s.log.lock() {
        let _ = log.write(stream, data);
    }
    let Ok(mut clients) = s.clients.lock() else {
        return;
    };
    clients.retain_mut(|c| {
        let wanted = if stream == 2 { c.stderr } else { c.stdout };
        if !wanted {
            return true;
        }
        if s.cfg.tty {
            c.stream.write_all(data).is_ok()
        } else {
            let mut frame = Vec::with_capacity(8 + data.len());
            frame.extend_from_slice(&crate::stream::frame_header(stream, data.len()));
            frame.extend_from_slice(data);
            c.stream.write_all(&frame).is_ok()
        }
    });
}
