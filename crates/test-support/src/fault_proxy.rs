//! A faulty registry: a loopback HTTP/1.1 proxy in front of the fixture registry that breaks
//! layer downloads on demand, and counts the blob downloads it sees.
//!
//! Faults hit the next layer blobs (`GET …/blobs/sha256:…` answers of at least
//! [`LAYER_MIN_BYTES`], so manifests and configs pass untouched) halfway through their body:
//! [`Fault::Stall`] stops sending and holds the connection, [`Fault::Reset`] closes it with a
//! TCP RST, [`Fault::Truncate`] closes it cleanly before the announced length, and
//! [`Fault::Corrupt`] sends every byte but flips the second half (a blob whose bytes do not
//! match its digest).
//!
//! Hand-rolled on std threads rather than a proxy crate: the faults live at byte offsets inside
//! one response body and at the socket level (RST via `SO_LINGER` 0), which general-purpose
//! proxies (and toxiproxy, an external Go daemon) do not offer per request. One request per
//! connection (`Connection: close` both ways) keeps the relay a plain byte copy.

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Answers at least this long are layers (fixture configs and manifests are a few KB).
pub const LAYER_MIN_BYTES: u64 = 64 * 1024;
/// How long a stalled download is held before the proxy gives up on the client.
const STALL_LIMIT: Duration = Duration::from_secs(120);

/// A way to break one layer download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Stall,
    Reset,
    Truncate,
    Corrupt,
}

#[derive(Default)]
struct Shared {
    /// Faults for the next layer downloads, in order.
    faults: Mutex<VecDeque<Fault>>,
    /// `GET` requests per blob digest.
    blob_gets: Mutex<HashMap<String, usize>>,
    /// Layer answers started (faulty or not).
    layer_gets: Mutex<usize>,
    stopping: AtomicBool,
}

/// The proxy; stopped when dropped.
pub struct FaultProxy {
    /// `127.0.0.1:PORT`
    pub addr: String,
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// Starts a proxy for the registry at `upstream` (`127.0.0.1:PORT`) on a free loopback port.
    pub fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fault proxy");
        let addr = listener.local_addr().expect("proxy address").to_string();
        let shared = Arc::new(Shared::default());
        let upstream = upstream.to_string();
        let state = shared.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if state.stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                let (state, upstream) = (state.clone(), upstream.clone());
                std::thread::spawn(move || {
                    if let Err(e) = relay(client, &upstream, &state) {
                        eprintln!("fault proxy: {e}");
                    }
                });
            }
        });
        FaultProxy { addr, shared }
    }

    /// Breaks the next `times` layer downloads with `fault`.
    pub fn inject(&self, fault: Fault, times: usize) {
        let mut f = self.shared.faults.lock().unwrap();
        f.extend(std::iter::repeat_n(fault, times));
    }

    /// Forgets the faults not used yet.
    pub fn heal(&self) {
        self.shared.faults.lock().unwrap().clear();
    }

    /// Layer downloads started so far.
    pub fn layer_gets(&self) -> usize {
        *self.shared.layer_gets.lock().unwrap()
    }

    /// `GET`s of each blob digest so far.
    pub fn blob_gets(&self) -> HashMap<String, usize> {
        self.shared.blob_gets.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(&self.addr);
    }
}

/// A parsed HTTP head: the request or status line, then the headers.
struct Head {
    first: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn read(r: &mut impl BufRead) -> io::Result<Head> {
        let mut first = String::new();
        r.read_line(&mut first)?;
        if first.is_empty() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no HTTP head"));
        }
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
                break;
            }
            if let Some((k, v)) = line.trim_end().split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        Ok(Head {
            first: first.trim_end().to_string(),
            headers,
        })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The head as sent on, with `Connection: close`.
    fn encode(&self) -> Vec<u8> {
        let mut s = format!("{}\r\n", self.first);
        for (k, v) in &self.headers {
            if !k.eq_ignore_ascii_case("connection") && !k.eq_ignore_ascii_case("keep-alive") {
                s.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        s.push_str("Connection: close\r\n\r\n");
        s.into_bytes()
    }
}

/// The digest a `GET /v2/<name>/blobs/<digest>` asks for.
fn blob_digest(request_line: &str) -> Option<String> {
    let mut parts = request_line.split_whitespace();
    if parts.next()? != "GET" {
        return None;
    }
    let path = parts.next()?.split('?').next()?;
    let (_, digest) = path.rsplit_once("/blobs/")?;
    digest.starts_with("sha256:").then(|| digest.to_string())
}

/// Relays one request and its answer, breaking the answer when a fault is due.
fn relay(client: TcpStream, upstream: &str, state: &Shared) -> io::Result<()> {
    let mut from_client = BufReader::new(client.try_clone()?);
    let request = Head::read(&mut from_client)?;
    let body_len: usize = request
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; body_len];
    from_client.read_exact(&mut body)?;

    let mut up = TcpStream::connect(upstream)?;
    up.write_all(&request.encode())?;
    up.write_all(&body)?;
    let mut from_up = BufReader::new(up);
    let answer = Head::read(&mut from_up)?;
    let length: Option<u64> = answer.get("content-length").and_then(|v| v.parse().ok());
    let digest = blob_digest(&request.first);
    if let Some(d) = &digest {
        *state
            .blob_gets
            .lock()
            .unwrap()
            .entry(d.clone())
            .or_default() += 1;
    }
    let is_layer = digest.is_some()
        && answer.first.contains(" 200 ")
        && length.is_some_and(|l| l >= LAYER_MIN_BYTES);
    let fault = if is_layer {
        *state.layer_gets.lock().unwrap() += 1;
        state.faults.lock().unwrap().pop_front()
    } else {
        None
    };

    let mut to_client = client;
    to_client.write_all(&answer.encode())?;
    let Some(fault) = fault else {
        io::copy(&mut from_up, &mut to_client)?;
        return Ok(());
    };
    let half = length.unwrap_or(0) / 2;
    io::copy(&mut (&mut from_up).take(half), &mut to_client)?;
    match fault {
        Fault::Truncate => to_client.shutdown(Shutdown::Both),
        Fault::Reset => reset(to_client),
        Fault::Stall => hold_until_client_leaves(to_client),
        Fault::Corrupt => {
            let mut rest = Vec::new();
            from_up.read_to_end(&mut rest)?;
            rest.iter_mut().for_each(|b| *b ^= 0x5a);
            to_client.write_all(&rest)
        }
    }
}

/// Closes with a TCP RST instead of a FIN.
fn reset(stream: TcpStream) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket we own, with a correctly sized `linger`.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    drop(stream);
    Ok(())
}

/// Sends nothing more until the client closes (bounded by [`STALL_LIMIT`]).
fn hold_until_client_leaves(mut stream: TcpStream) -> io::Result<()> {
    stream.set_read_timeout(Some(STALL_LIMIT))?;
    let mut buf = [0u8; 512];
    while stream.read(&mut buf)? > 0 {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::blob_digest;

    #[test]
    fn blob_gets_are_recognised() {
        assert_eq!(
            blob_digest("GET /v2/library/busybox/blobs/sha256:ab12 HTTP/1.1").as_deref(),
            Some("sha256:ab12")
        );
        assert_eq!(
            blob_digest("HEAD /v2/busybox/blobs/sha256:ab12 HTTP/1.1"),
            None
        );
        assert_eq!(
            blob_digest("GET /v2/busybox/manifests/latest HTTP/1.1"),
            None
        );
    }
}
