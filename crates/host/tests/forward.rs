//! Forwarding without a VM: the guest side is a yamux server on in-process streams
//! (`MemoryConnector`), like the agent's `mux+unix://` listener; the host side is the real
//! Docker endpoint of this platform (a unix socket, or a named pipe on Windows) and real
//! loopback TCP/UDP ports.

use std::sync::Arc;
use std::time::Duration;

use berth_agent_proto::{
    read_datagram, read_frame, write_datagram, Event, ForwardHeader, Proto, PublishedPort,
};
use berth_host::endpoint::{self, Listener};
use berth_host::forward::docker;
use berth_host::forward::ports::{self, PortForwarder};
use berth_host::StateDir;
use berth_vsock::mux::{self, MuxClient, MuxStream};
use berth_vsock::MemoryConnector;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// A fake guest on `port` of `c`: runs `handler` for every stream.
fn fake_guest<H, F>(c: &MemoryConnector, port: u32, handler: H)
where
    H: Fn(MuxStream) -> F + Clone + Send + Sync + 'static,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let mut l = c.listen(port);
    tokio::spawn(async move {
        while let Some(s) = l.recv().await {
            tokio::spawn(mux::serve(Box::new(s), handler.clone()));
        }
    });
}

/// The forwarder serving this platform's Docker endpoint of a temp state dir, in front of a
/// fake guest whose Docker API port runs `handler`.
fn docker_forwarder<H, F>(dir: &std::path::Path, handler: H) -> endpoint::Endpoint
where
    H: Fn(MuxStream) -> F + Clone + Send + Sync + 'static,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let connector = Arc::new(MemoryConnector::new());
    fake_guest(&connector, 2375, handler);
    let state = StateDir::new(dir);
    state.create().unwrap();
    let e = state.docker_endpoint();
    let l = Listener::bind(&e).unwrap();
    let client = Arc::new(MuxClient::new(connector, 2375));
    let gate = berth_host::idle::IdleGate::new();
    tokio::spawn(docker::serve(l, client, gate, CancellationToken::new()));
    e
}

/// A fake engine: answers HTTP/1.1 requests (keep-alive) for `/_ping` and `/version` the way
/// Docker's API does, until the client closes.
async fn fake_engine(s: MuxStream) {
    let mut s = tokio::io::BufReader::new(s);
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            match tokio::io::AsyncBufReadExt::read_line(&mut s, &mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) if line == "\r\n" => break,
                Ok(_) => head.push(line),
            }
        }
        let path = head
            .first()
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or_default()
            .to_string();
        let (ctype, body) = if path.ends_with("/_ping") {
            ("text/plain", "OK".to_string())
        } else if path.ends_with("/version") {
            (
                "application/json",
                r#"{"Version":"28.0.0-fake","ApiVersion":"1.48","Os":"linux","Arch":"amd64"}"#
                    .to_string(),
            )
        } else {
            (
                "application/json",
                r#"{"message":"page not found"}"#.to_string(),
            )
        };
        let status = if ctype == "application/json" && body.contains("message") {
            "404 Not Found"
        } else {
            "200 OK"
        };
        let reply = format!(
            "HTTP/1.1 {status}\r\nApi-Version: 1.48\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if s.get_mut().write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn a_docker_client_reaches_the_engine_through_the_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let e = docker_forwarder(dir.path(), fake_engine);
    // Several clients, each with keep-alive requests, at once.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let e = e.clone();
        tasks.spawn(async move {
            let mut c = endpoint::connect(&e).await.unwrap();
            let mut r = tokio::io::BufReader::new(&mut c);
            for path in ["/_ping", "/v1.48/version"] {
                r.get_mut()
                    .write_all(format!("GET {path} HTTP/1.1\r\nHost: docker\r\n\r\n").as_bytes())
                    .await
                    .unwrap();
                let mut len = 0;
                loop {
                    let mut line = String::new();
                    tokio::io::AsyncBufReadExt::read_line(&mut r, &mut line)
                        .await
                        .unwrap();
                    if line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.strip_prefix("Content-Length: ") {
                        len = v.trim().parse().unwrap();
                    }
                    if path == "/_ping" && line.starts_with("HTTP/") {
                        assert_eq!(line, "HTTP/1.1 200 OK\r\n");
                    }
                }
                let mut body = vec![0u8; len];
                r.read_exact(&mut body).await.unwrap();
                let body = String::from_utf8(body).unwrap();
                match path {
                    "/_ping" => assert_eq!(body, "OK"),
                    _ => assert!(body.contains("28.0.0-fake"), "{body}"),
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
}

#[cfg(unix)]
#[tokio::test]
async fn docker_socket_keeps_half_close_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    // Guest: read the request to EOF (the client's half-close), then answer and close.
    let e = docker_forwarder(dir.path(), |mut s: MuxStream| async move {
        let mut req = Vec::new();
        s.read_to_end(&mut req).await.unwrap();
        s.write_all(format!("got {} bytes", req.len()).as_bytes())
            .await
            .unwrap();
        s.shutdown().await.unwrap();
    });
    let endpoint::Endpoint::Unix(sock) = e else {
        panic!("unix hosts serve a unix socket")
    };
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&sock).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for i in 1..=20usize {
        let sock = sock.clone();
        tasks.spawn(async move {
            let mut c = tokio::net::UnixStream::connect(&sock).await.unwrap();
            c.write_all(&vec![b'x'; i * 1000]).await.unwrap();
            c.shutdown().await.unwrap();
            let mut back = String::new();
            c.read_to_string(&mut back).await.unwrap();
            assert_eq!(back, format!("got {} bytes", i * 1000));
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
}

#[tokio::test]
async fn published_port_opens_at_once_tunnels_and_closes() {
    let dir = tempfile::tempdir().unwrap();
    let connector = Arc::new(MemoryConnector::new());
    // Guest: answer with the port named in the header.
    fake_guest(&connector, 2377, |mut s: MuxStream| async move {
        let h: ForwardHeader = read_frame(&mut s).await.unwrap().unwrap();
        s.write_all(format!("port {}", h.port).as_bytes())
            .await
            .unwrap();
        s.shutdown().await.unwrap();
    });
    let record = dir.path().join("ports.json");
    let fwd =
        PortForwarder::new(Arc::new(MuxClient::new(connector, 2377))).with_record(record.clone());
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let p = PublishedPort {
        proto: Proto::Tcp,
        host_port: port,
        host_ip: Some([127, 0, 0, 1].into()),
    };
    publish(&fwd, &p).await;
    let mut c = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    // Bound when `apply` returns (how fast that is: bench/, not a CI assertion).
    let mut back = String::new();
    c.read_to_string(&mut back).await.unwrap();
    assert_eq!(back, format!("port {port}"));
    assert_eq!(fwd.ports(), vec![p.clone()]);
    // `berth status` reads the record.
    let rec = ports::read_record(&record);
    assert_eq!(rec.len(), 1);
    assert_eq!(ports::describe(&rec[0]), format!("127.0.0.1:{port}/tcp"));
    // Published on 127.0.0.1: another loopback address is not served.
    assert!(std::net::TcpStream::connect(("127.0.0.2", port)).is_err());

    unpublish(&fwd, &p).await;
    let mut closed = false;
    for _ in 0..50 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(closed, "port still open after unpublish");
    assert!(fwd.ports().is_empty());
    assert!(ports::read_record(&record).is_empty());
}

#[tokio::test]
async fn udp_port_relays_datagrams_per_flow_and_ends_idle_flows() {
    let connector = Arc::new(MemoryConnector::new());
    // Guest: echo each datagram as "<port>/<flow number>:<datagram>"; report each flow's end.
    let (ended_tx, mut ended) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let flows = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = flows.clone();
    fake_guest(&connector, 2377, move |mut s: MuxStream| {
        let (ended_tx, counter) = (ended_tx.clone(), counter.clone());
        async move {
            let h: ForwardHeader = read_frame(&mut s).await.unwrap().unwrap();
            assert_eq!(h.proto, Proto::Udp);
            let flow = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            let mut buf = Vec::new();
            while read_datagram(&mut s, &mut buf).await.unwrap() {
                let mut reply = format!("{}/{flow}:", h.port).into_bytes();
                reply.extend_from_slice(&buf);
                write_datagram(&mut s, &reply).await.unwrap();
            }
            let _ = ended_tx.send(flow);
        }
    });
    let fwd = PortForwarder::new(Arc::new(MuxClient::new(connector, 2377)))
        .with_udp_idle(Duration::from_millis(300));
    let port = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let p = PublishedPort {
        proto: Proto::Udp,
        host_port: port,
        host_ip: None,
    };
    publish(&fwd, &p).await;
    assert_eq!(fwd.ports(), vec![p.clone()]);

    async fn ask(c: &tokio::net::UdpSocket, msg: &[u8]) -> String {
        c.send(msg).await.unwrap();
        let mut buf = vec![0u8; 70_000];
        let n = tokio::time::timeout(Duration::from_secs(5), c.recv(&mut buf))
            .await
            .expect("no udp reply")
            .unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
    let a = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    a.connect(("127.0.0.1", port)).await.unwrap();
    let b = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    b.connect(("127.0.0.1", port)).await.unwrap();
    // Each client is one flow; datagram boundaries survive, a large one included.
    assert_eq!(ask(&a, b"hello").await, format!("{port}/1:hello"));
    assert_eq!(ask(&b, b"other").await, format!("{port}/2:other"));
    assert_eq!(ask(&a, b"again").await, format!("{port}/1:again"));
    let big = vec![b'z'; 60_000];
    let back = ask(&b, &big).await;
    assert_eq!(back.len(), format!("{port}/2:").len() + big.len());

    // Both flows end after the idle timeout; a later datagram starts a new flow.
    let mut gone = Vec::new();
    for _ in 0..2 {
        let f = tokio::time::timeout(Duration::from_secs(5), ended.recv())
            .await
            .expect("idle flow not closed")
            .unwrap();
        gone.push(f);
    }
    gone.sort();
    assert_eq!(gone, vec![1, 2]);
    assert_eq!(ask(&a, b"later").await, format!("{port}/3:later"));

    // Unpublishing frees the port.
    unpublish(&fwd, &p).await;
    let mut freed = false;
    for _ in 0..50 {
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(freed, "udp port still bound after unpublish");
    assert!(fwd.ports().is_empty());
}

/// A free TCP port on every address (checked on 0.0.0.0).
fn free_port_any() -> u16 {
    let l = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Whether the host has IPv6 loopback (containers may not).
fn has_ipv6_loopback() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

#[tokio::test]
async fn port_on_every_address_binds_all_host_addresses_unless_kept_on_localhost() {
    let connector = Arc::new(MemoryConnector::new());
    fake_guest(&connector, 2377, |mut s: MuxStream| async move {
        let h: ForwardHeader = read_frame(&mut s).await.unwrap().unwrap();
        s.write_all(format!("port {}", h.port).as_bytes())
            .await
            .unwrap();
        s.shutdown().await.unwrap();
    });
    let mux = Arc::new(MuxClient::new(connector, 2377));
    let answers = |addr: std::net::SocketAddr| async move {
        let mut c = tokio::net::TcpStream::connect(addr).await.ok()?;
        let mut back = String::new();
        c.read_to_string(&mut back).await.ok()?;
        Some(back)
    };

    // `-p P:80`: 0.0.0.0 and [::]. 127.0.0.2 stands for "an address other than 127.0.0.1"
    // (a listener on 127.0.0.1 does not take it); the VM test uses a non-loopback one.
    let fwd = PortForwarder::new(mux.clone());
    let port = free_port_any();
    let p = PublishedPort {
        proto: Proto::Tcp,
        host_port: port,
        host_ip: None,
    };
    publish(&fwd, &p).await;
    let want = format!("port {port}");
    assert_eq!(
        answers(([127, 0, 0, 2], port).into()).await,
        Some(want.clone())
    );
    let f = fwd.forwarded();
    assert_eq!(f.len(), 1);
    if has_ipv6_loopback() {
        assert_eq!(
            answers((std::net::Ipv6Addr::LOCALHOST, port).into()).await,
            Some(want.clone())
        );
        assert_eq!(
            ports::describe(&f[0]),
            format!("0.0.0.0:{port}/tcp, [::]:{port}/tcp")
        );
    }
    fwd.clear();

    // `ports_on_localhost`: the same port on the loopback only.
    let fwd = PortForwarder::new(mux).localhost_only(true);
    let port = free_port_any();
    let p = PublishedPort {
        proto: Proto::Tcp,
        host_port: port,
        host_ip: None,
    };
    publish(&fwd, &p).await;
    assert_eq!(
        answers(([127, 0, 0, 1], port).into()).await,
        Some(format!("port {port}"))
    );
    assert!(std::net::TcpStream::connect(("127.0.0.2", port)).is_err());
    assert!(ports::describe(&fwd.forwarded()[0]).starts_with(&format!("127.0.0.1:{port}/tcp")));
}

/// The engine's event for `p` published.
async fn publish(fwd: &PortForwarder, p: &PublishedPort) {
    fwd.apply(&Event::PortsChanged {
        published: vec![p.clone()],
        unpublished: vec![],
    })
    .await;
}

/// The engine's event for `p` unpublished.
async fn unpublish(fwd: &PortForwarder, p: &PublishedPort) {
    fwd.apply(&Event::PortsChanged {
        published: vec![],
        unpublished: vec![p.clone()],
    })
    .await;
}
