//! The embedded DNS server of user-defined networks (dockerd's 127.0.0.11): inside each
//! container's namespace, answers A queries for the names, aliases and short ids of the
//! containers on the user networks it is on, and forwards everything else to the
//! container's `--dns` servers or, without them, to the host's resolvers.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket as StdUdpSocket};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sched::{setns, CloneFlags};
use tokio::net::UdpSocket;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::store::State;

/// The address containers on user networks put in their resolv.conf.
pub(crate) const DNS_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
const TTL: u32 = 600;
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);

/// Binds `127.0.0.11:53/udp` inside the namespace pinned at `netns` (blocking: runs a
/// short-lived thread that joins the namespace).
pub(crate) fn bind_in(netns: &Path) -> io::Result<StdUdpSocket> {
    let file = std::fs::File::open(netns)?;
    std::thread::Builder::new()
        .name("netns-dns".into())
        .spawn(move || {
            setns(&file, CloneFlags::CLONE_NEWNET)?;
            let s = StdUdpSocket::bind(SocketAddr::from((DNS_ADDR, 53)))?;
            s.set_nonblocking(true)?;
            Ok(s)
        })?
        .join()
        .map_err(|_| io::Error::other("dns thread panicked"))?
}

/// A running DNS server for one container; stops when stopped or dropped. It reads the
/// container's networks from the shared state at each query, so joining or leaving a network
/// needs no restart.
pub(crate) struct DnsServer {
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl DnsServer {
    pub(crate) fn start(
        sock: StdUdpSocket,
        state: Arc<Mutex<State>>,
        container_id: String,
        upstreams: Vec<SocketAddr>,
    ) -> io::Result<Self> {
        let sock = Arc::new(UdpSocket::from_std(sock)?);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(serve(sock, state, container_id, upstreams, cancel.clone()));
        Ok(Self { cancel, task })
    }

    pub(crate) async fn stop(mut self) {
        self.cancel.cancel();
        let _ = (&mut self.task).await;
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.task.abort();
    }
}

/// The container's `--dns` servers, or the host's resolvers when it has none (dockerd's
/// embedded DNS forwards the same way).
pub(crate) fn upstreams(dns: &[String]) -> Vec<SocketAddr> {
    let given: Vec<SocketAddr> = dns
        .iter()
        .filter_map(|a| a.trim().parse::<std::net::IpAddr>().ok())
        .map(|a| SocketAddr::new(a, 53))
        .collect();
    if given.is_empty() {
        host_upstreams()
    } else {
        given
    }
}

/// The host's resolvers from /etc/resolv.conf, without loopback ones (unreachable from a
/// container's point of view and possibly ourselves).
fn host_upstreams() -> Vec<SocketAddr> {
    std::fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().parse::<std::net::IpAddr>().ok())
        .filter(|a| !a.is_loopback())
        .map(|a| SocketAddr::new(a, 53))
        .collect()
}

async fn serve(
    sock: Arc<UdpSocket>,
    state: Arc<Mutex<State>>,
    container_id: String,
    upstreams: Vec<SocketAddr>,
    cancel: CancellationToken,
) {
    let mut forwards = JoinSet::new();
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, client) = tokio::select! {
            _ = cancel.cancelled() => break,
            Some(_) = forwards.join_next(), if !forwards.is_empty() => continue,
            r = sock.recv_from(&mut buf) => match r {
                Ok(v) => v,
                Err(_) => continue,
            },
        };
        let query = &buf[..n];
        let Some(q) = parse_query(query) else {
            continue;
        };
        let local = {
            let st = state.lock().unwrap_or_else(|e| e.into_inner());
            lookup(&st, &container_id, &q.name)
        };
        let reply = match (local, q.qtype) {
            (Some(ip), TYPE_A) => Some(answer(query, &q, &[ip], 0)),
            // Known name, other type (AAAA…): no records, but the name exists.
            (Some(_), _) => Some(answer(query, &q, &[], 0)),
            (None, _) if upstreams.is_empty() => Some(answer(query, &q, &[], RCODE_SERVFAIL)),
            (None, _) => {
                let (sock, upstreams, query) = (sock.clone(), upstreams.clone(), query.to_vec());
                forwards.spawn(async move {
                    if let Some(r) = forward(&upstreams, &query).await {
                        let _ = sock.send_to(&r, client).await;
                    }
                });
                None
            }
        };
        if let Some(r) = reply {
            let _ = sock.send_to(&r, client).await;
        }
    }
}

async fn forward(upstreams: &[SocketAddr], query: &[u8]) -> Option<Vec<u8>> {
    for up in upstreams {
        let s = UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], 0)))
            .await
            .ok()?;
        if s.send_to(query, up).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        if let Ok(Ok((n, _))) = tokio::time::timeout(UPSTREAM_TIMEOUT, s.recv_from(&mut buf)).await
        {
            buf.truncate(n);
            return Some(buf);
        }
    }
    None
}

/// The address of the container called `name` (name, alias or short id) on one of the user
/// networks `asker` is on, in the order of the asker's interfaces.
fn lookup(st: &State, asker: &str, name: &str) -> Option<Ipv4Addr> {
    let user_net = |id: &str| {
        st.networks
            .iter()
            .find(|n| n.id == id)
            .is_some_and(|n| !n.is_predefined())
    };
    st.endpoints_of_container(asker)
        .into_iter()
        .filter(|mine| user_net(&mine.network_id))
        .find_map(|mine| {
            st.endpoints
                .values()
                .filter(|e| e.network_id == mine.network_id)
                .find(|e| {
                    e.container_name.eq_ignore_ascii_case(name)
                        || e.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
                        || (name.len() == 12 && e.container_id.starts_with(name))
                })
                .map(|e| e.ip)
        })
}

const TYPE_A: u16 = 1;
const RCODE_SERVFAIL: u16 = 2;

#[derive(Debug, PartialEq)]
struct Question {
    name: String,
    qtype: u16,
    /// Offset just past the question section.
    end: usize,
}

/// The first question of a standard query, name lower-cased without the final dot.
fn parse_query(m: &[u8]) -> Option<Question> {
    if m.len() < 12 || m[2] & 0x80 != 0 || u16::from_be_bytes([m[4], m[5]]) == 0 {
        return None;
    }
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*m.get(i)?);
        i += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return None;
        }
        labels.push(String::from_utf8_lossy(m.get(i..i + len)?).to_ascii_lowercase());
        i += len;
    }
    let qtype = u16::from_be_bytes([*m.get(i)?, *m.get(i + 1)?]);
    m.get(i + 2..i + 4)?;
    Some(Question {
        name: labels.join("."),
        qtype,
        end: i + 4,
    })
}

/// A response to `query` with A records for `ips` and `rcode`.
fn answer(query: &[u8], q: &Question, ips: &[Ipv4Addr], rcode: u16) -> Vec<u8> {
    let mut r = Vec::with_capacity(q.end + ips.len() * 16);
    r.extend_from_slice(&query[..2]);
    let rd = u16::from_be_bytes([query[2], query[3]]) & 0x0100;
    r.extend_from_slice(&(0x8080 | rd | rcode).to_be_bytes());
    r.extend_from_slice(&1u16.to_be_bytes());
    let count = u16::try_from(ips.len()).unwrap_or(u16::MAX);
    r.extend_from_slice(&count.to_be_bytes());
    r.extend_from_slice(&[0, 0, 0, 0]);
    r.extend_from_slice(&query[12..q.end]);
    for ip in ips {
        r.extend_from_slice(&[0xc0, 0x0c]);
        r.extend_from_slice(&TYPE_A.to_be_bytes());
        r.extend_from_slice(&1u16.to_be_bytes());
        r.extend_from_slice(&TTL.to_be_bytes());
        r.extend_from_slice(&4u16.to_be_bytes());
        r.extend_from_slice(&ip.octets());
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::store::EndpointRecord;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            m.push(u8::try_from(l.len()).unwrap());
            m.extend_from_slice(l.as_bytes());
        }
        m.push(0);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        m
    }

    fn endpoint(cid: &str, name: &str, net: &str, ip: [u8; 4], aliases: &[&str]) -> EndpointRecord {
        EndpointRecord {
            container_id: cid.into(),
            container_name: name.into(),
            network_id: net.into(),
            endpoint_id: format!("{cid}-{net}"),
            ip: Ipv4Addr::from(ip),
            mac: String::new(),
            veth: String::new(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            interface: "eth0".into(),
        }
    }

    /// `web` on n1; `db` on n2; `client` on n1 and n2 (eth1); `bridged` on the default
    /// bridge and n2.
    fn state() -> State {
        let mut st = State::default();
        for (id, name) in [("n1", "one"), ("n2", "two"), ("b", "bridge")] {
            st.networks.push(crate::network::store::NetworkRecord {
                id: id.into(),
                name: name.into(),
                driver: "bridge".into(),
                ..Default::default()
            });
        }
        let mut client2 = endpoint("client", "client", "n2", [10, 8, 0, 3], &[]);
        client2.interface = "eth1".into();
        for e in [
            endpoint(
                "0123456789abcdef",
                "proj-web-1",
                "n1",
                [10, 9, 0, 2],
                &["web"],
            ),
            endpoint("db", "db", "n2", [10, 8, 0, 2], &["database"]),
            endpoint("client", "client", "n1", [10, 9, 0, 3], &[]),
            client2,
            endpoint("bridged", "bridged", "b", [172, 17, 0, 2], &[]),
        ] {
            st.endpoints.insert(e.endpoint_id.clone(), e);
        }
        let mut b2 = endpoint("bridged", "bridged", "n2", [10, 8, 0, 4], &[]);
        b2.interface = "eth1".into();
        st.endpoints.insert(b2.endpoint_id.clone(), b2);
        st
    }

    #[test]
    fn parses_and_answers_a_query() {
        let m = query("Web", TYPE_A);
        let q = parse_query(&m).unwrap();
        assert_eq!(q.name, "web");
        assert_eq!(q.end, m.len());
        let st = state();
        let ip = lookup(&st, "client", &q.name).unwrap();
        let r = answer(&m, &q, &[ip], 0);
        assert_eq!(&r[..2], &[0x12, 0x34]);
        assert_eq!(u16::from_be_bytes([r[2], r[3]]), 0x8180);
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 1, "one answer");
        assert_eq!(&r[r.len() - 4..], &[10, 9, 0, 2]);
    }

    #[test]
    fn lookup_covers_the_askers_user_networks_only() {
        let st = state();
        let ip = |a: [u8; 4]| Some(Ipv4Addr::from(a));
        assert_eq!(lookup(&st, "client", "proj-web-1"), ip([10, 9, 0, 2]));
        assert_eq!(lookup(&st, "client", "0123456789ab"), ip([10, 9, 0, 2]));
        assert_eq!(lookup(&st, "client", "database"), ip([10, 8, 0, 2]));
        assert_eq!(lookup(&st, "db", "web"), None, "web is not on n2");
        assert_eq!(
            lookup(&st, "db", "client"),
            ip([10, 8, 0, 3]),
            "client's n2 address"
        );
        assert_eq!(lookup(&st, "0123456789abcdef", "client"), ip([10, 9, 0, 3]));
        // The default bridge has no names; its user network does.
        assert_eq!(lookup(&st, "bridged", "db"), ip([10, 8, 0, 2]));
        assert_eq!(lookup(&st, "db", "bridged"), ip([10, 8, 0, 4]));
        assert_eq!(lookup(&st, "nobody", "db"), None);
    }

    #[test]
    fn rejects_responses_and_truncated_queries() {
        let mut m = query("web", TYPE_A);
        assert!(parse_query(&m[..m.len() - 1]).is_none());
        m[2] |= 0x80;
        assert!(parse_query(&m).is_none());
    }

    #[tokio::test]
    async fn server_answers_over_udp() {
        let std_sock = StdUdpSocket::bind("127.0.0.1:0").unwrap();
        std_sock.set_nonblocking(true).unwrap();
        let addr = std_sock.local_addr().unwrap();
        let srv = DnsServer::start(
            std_sock,
            Arc::new(Mutex::new(state())),
            "client".into(),
            vec![],
        )
        .unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        c.send_to(&query("web", TYPE_A), addr).await.unwrap();
        let mut buf = [0u8; 512];
        let n = tokio::time::timeout(Duration::from_secs(5), c.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf[n - 4..n], &[10, 9, 0, 2]);
        c.send_to(&query("nowhere", TYPE_A), addr).await.unwrap();
        let n = tokio::time::timeout(Duration::from_secs(5), c.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(buf[3] & 0x0f, 2, "SERVFAIL without upstreams");
        assert!(n >= 12);
        srv.stop().await;
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn label() -> impl Strategy<Value = String> {
            "[A-Za-z0-9-]{1,63}"
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

            /// Whatever a container sends to 127.0.0.11, parsing it (and answering what
            /// parses) never panics, and an answer repeats the id and the question.
            #[test]
            fn any_datagram_is_parsed_or_ignored(m in proptest::collection::vec(any::<u8>(), 0..600)) {
                if let Some(q) = parse_query(&m) {
                    prop_assert!(q.end <= m.len());
                    let r = answer(&m, &q, &[Ipv4Addr::new(10, 0, 0, 1)], 0);
                    prop_assert_eq!(&r[..2], &m[..2]);
                    prop_assert_eq!(&r[12..q.end], &m[12..q.end]);
                }
            }

            /// A query encoded from labels parses back to its lower-cased name and type, and
            /// the answer carries one A record per address at the end.
            #[test]
            fn encoded_queries_round_trip(
                labels in proptest::collection::vec(label(), 1..6),
                qtype in any::<u16>(),
                ips in proptest::collection::vec(any::<[u8; 4]>(), 0..4),
            ) {
                let name = labels.join(".");
                let m = query(&name, qtype);
                let q = parse_query(&m).unwrap();
                prop_assert_eq!(&q.name, &name.to_ascii_lowercase());
                prop_assert_eq!(q.qtype, qtype);
                prop_assert_eq!(q.end, m.len());
                let ips: Vec<Ipv4Addr> = ips.into_iter().map(Ipv4Addr::from).collect();
                let r = answer(&m, &q, &ips, 0);
                prop_assert_eq!(usize::from(u16::from_be_bytes([r[6], r[7]])), ips.len());
                prop_assert_eq!(r.len(), m.len() + 16 * ips.len());
                for (i, ip) in ips.iter().enumerate() {
                    let at = m.len() + 16 * i;
                    prop_assert_eq!(&r[at + 12..at + 16], &ip.octets());
                }
            }
        }
    }
}
