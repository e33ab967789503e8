//! The shim's control socket: one thread per connection, one request line each (see the
//! protocol in [`crate::shim`]).

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::mpsc;
use std::sync::Arc;

use super::output::Client;
use super::Shared;
use crate::shim::{Reply, Request, PROTOCOL_VERSION};

/// Serves the control socket until the process exits.
pub(super) fn serve(s: &Arc<Shared>, listener: UnixListener) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let s = s.clone();
        std::thread::spawn(move || {
            if let Err(e) = handle(&s, conn) {
                super::log_line(&format!("shim connection: {e}"));
            }
        });
    }
}

fn read_line(conn: &mut UnixStream) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while line.len() < 256 {
        if conn.read(&mut b)? == 0 {
            break;
        }
        if b[0] == b'\n' {
            break;
        }
        line.push(b[0]);
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

fn lock_error() -> std::io::Error {
    std::io::Error::other("lock")
}

fn handle(s: &Shared, mut conn: UnixStream) -> std::io::Result<()> {
    let line = read_line(&mut conn)?;
    let reply = match Request::parse(&line) {
        Some(Request::Hello) => Reply::Hello {
            version: PROTOCOL_VERSION,
        },
        Some(Request::Attach {
            stdin,
            stdout,
            stderr,
        }) => return attach(s, conn, stdin, stdout, stderr),
        Some(Request::Start) => start(s),
        Some(Request::Resize { height, width }) => {
            if let Some(m) = s.master.get() {
                crate::shim::console::resize(m, height, width);
            }
            Reply::Ok { pid: None }
        }
        Some(Request::Wait) => Reply::Exit { code: wait(s)? },
        None => Reply::Error {
            message: "unknown request".into(),
        },
    };
    conn.write_all(reply.encode().as_bytes())
}

/// Adds the connection to the output's clients (none once the container has exited) and
/// copies its input to the container's stdin when asked.
fn attach(
    s: &Shared,
    mut conn: UnixStream,
    stdin: bool,
    stdout: bool,
    stderr: bool,
) -> std::io::Result<()> {
    {
        let mut clients = s.clients.lock().map_err(|_| lock_error())?;
        conn.write_all(Reply::Ok { pid: None }.encode().as_bytes())?;
        if s.exit.lock().map(|e| e.is_some()).unwrap_or(true) {
            return Ok(());
        }
        clients.push(Client {
            stream: conn.try_clone()?,
            stdout,
            stderr,
        });
    }
    if stdin {
        copy_stdin(s, &mut conn);
    }
    Ok(())
}

/// Hands the engine's go to the main thread and waits for the launch's outcome; only the
/// first `start` is the go.
fn start(s: &Shared) -> Reply {
    let (tx, rx) = mpsc::channel();
    let sent = s
        .start_tx
        .lock()
        .ok()
        .and_then(|mut t| t.take())
        .is_some_and(|t| t.send(tx).is_ok());
    let reply = if sent {
        rx.recv().unwrap_or_else(|_| Err("shim is exiting".into()))
    } else {
        Err("container already started".into())
    };
    match reply {
        Ok(pid) => Reply::Ok { pid: Some(pid) },
        Err(message) => Reply::Error { message },
    }
}

/// Blocks until the container's exit is recorded; returns its code.
fn wait(s: &Shared) -> std::io::Result<i32> {
    let mut e = s.exit.lock().map_err(|_| lock_error())?;
    while e.is_none() {
        e = s.exited.wait(e).map_err(|_| lock_error())?;
    }
    Ok(e.unwrap_or(255))
}

/// Copies an attach client's bytes to the container's stdin; on EOF closes stdin when the
/// container was created with `StdinOnce`.
fn copy_stdin(s: &Shared, conn: &mut UnixStream) {
    let mut buf = [0u8; 8192];
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let Ok(mut g) = s.stdin.lock() else { return };
                let Some(f) = g.as_mut() else { continue };
                if f.write_all(&buf[..n]).is_err() {
                    *g = None;
                }
            }
        }
    }
    if s.cfg.stdin_once && !s.cfg.tty {
        if let Ok(mut g) = s.stdin.lock() {
            *g = None;
        }
    }
}
