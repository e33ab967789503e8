//! Forwarding without a VM: the guest side is a yamux server on a unix socket
//! (`UnixDirConnector`), like the agent's `mux+unix://` listener.

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_agent_proto::{read_frame, Event, ForwardHeader, Proto, PublishedPort};
use berth_host::forward::{docker, ports::PortForwarder};
use berth_vsock::mux::{self, MuxClient, MuxStream};
use berth_vsock::UnixDirConnector;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// A fake guest on `port`: runs `handler` for every stream.
fn fake_guest<H, F>(dir: &std::path::Path, port: u32, handler: H)
where
    H: Fn(MuxStream) -> F + Clone + Send + Sync + 'static,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let l = tokio::net::UnixListener::bind(UnixDirConnector::path(dir, port)).unwrap();
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            tokio::spawn(mux::serve(Box::new(s), handler.clone()));
        }
    });
}

#[tokio::test]
async fn docker_socket_keeps_half_close_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    // Guest: read the request to EOF (the client's half-close), then answer and close.
    fake_guest(dir.path(), 2375, |mut s: MuxStream| async move {
        let mut req = Vec::new();
        s.read_to_end(&mut req).await.unwrap();
        s.write_all(format!("got {} bytes", req.len()).as_bytes())
            .await
            .unwrap();
        s.shutdown().await.unwrap();
    });
    let sock = dir.path().join("docker.sock");
    let l = docker::bind_owner_only(&sock).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&sock).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let client = Arc::new(MuxClient::new(
        Arc::new(UnixDirConnector::new(dir.path())),
        2375,
    ));
    tokio::spawn(docker::serve(l, client, CancellationToken::new()));
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
async fn published_port_opens_fast_tunnels_and_closes() {
    let dir = tempfile::tempdir().unwrap();
    // Guest: answer with the port named in the header.
    fake_guest(dir.path(), 2377, |mut s: MuxStream| async move {
        let h: ForwardHeader = read_frame(&mut s).await.unwrap().unwrap();
        s.write_all(format!("port {}", h.port).as_bytes())
            .await
            .unwrap();
        s.shutdown().await.unwrap();
    });
    let fwd = PortForwarder::new(Arc::new(MuxClient::new(
        Arc::new(UnixDirConnector::new(dir.path())),
        2377,
    )));
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let p = PublishedPort {
        proto: Proto::Tcp,
        host_port: port,
    };
    let t = Instant::now();
    fwd.apply(&Event::PortsChanged {
        published: vec![p.clone()],
        unpublished: vec![],
    })
    .await;
    let mut c = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    assert!(t.elapsed() < Duration::from_millis(50), "{:?}", t.elapsed());
    let mut back = String::new();
    c.read_to_string(&mut back).await.unwrap();
    assert_eq!(back, format!("port {port}"));
    assert_eq!(fwd.ports(), vec![p.clone()]);

    fwd.apply(&Event::PortsChanged {
        published: vec![],
        unpublished: vec![p],
    })
    .await;
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
}
