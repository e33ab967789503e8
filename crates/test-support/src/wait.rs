//! Bounded waiting and small loopback helpers.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Polls `f` every 20 ms until it returns true or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A TCP port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral loopback port")
}

/// A plain HTTP/1.0 GET to a loopback address; returns the whole response (headers + body).
pub fn http_get(addr: &str, path: &str) -> std::io::Result<String> {
    assert!(
        addr.starts_with("127.") || addr.starts_with("localhost"),
        "tests only talk to loopback"
    );
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// HTTP body [`serve_http_once`] answers with.
pub const FROM_HOST: &str = "from-host";

/// Answers one HTTP request on `ip` (on a port of its own) with the body [`FROM_HOST`],
/// waiting at most 60 s for it. Returns the port and a handle that yields the peer's address
/// (`None` when nobody came).
pub fn serve_http_once(ip: &str) -> (u16, std::thread::JoinHandle<Option<std::net::SocketAddr>>) {
    let listener = TcpListener::bind((ip, 0)).expect("bind the one-shot HTTP server");
    let port = listener.local_addr().expect("its address").port();
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    let server = std::thread::spawn(move || {
        let mut accepted = None;
        wait_until(Duration::from_secs(60), || {
            accepted = listener.accept().ok();
            accepted.is_some()
        });
        let (mut s, peer) = accepted?;
        s.set_nonblocking(false).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        let mut buf = [0u8; 512];
        let _ = s.read(&mut buf);
        let reply = format!(
            "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{FROM_HOST}",
            FROM_HOST.len()
        );
        s.write_all(reply.as_bytes()).ok()?;
        Some(peer)
    });
    (port, server)
}
