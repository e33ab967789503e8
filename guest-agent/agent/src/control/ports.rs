//! Which host ports running containers publish, kept current from the engine's event bus (no
//! polling): on `start` the container is inspected through the API router, on `die` its ports go.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::Router;
use berth_agent_proto::{Proto, PublishedPort};
use berth_engine::EventBus;
use http_body_util::BodyExt;
use tokio::sync::broadcast;
use tower::ServiceExt;

/// One change to the published set.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PortsDiff {
    pub(crate) published: Vec<PublishedPort>,
    pub(crate) unpublished: Vec<PublishedPort>,
}

/// Where a published port leads inside the guest, for the forwarder's fallback.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Target {
    pub(crate) container_ip: Option<String>,
    pub(crate) private_port: u16,
}

#[derive(Default)]
struct State {
    by_container: BTreeMap<String, BTreeMap<PublishedPort, Target>>,
}

/// Shared tracker; cheap to clone.
#[derive(Clone)]
pub(crate) struct PortTracker {
    state: Arc<Mutex<State>>,
    tx: broadcast::Sender<PortsDiff>,
}

impl PortTracker {
    /// Starts following `events`; inspects containers through `app`.
    pub(crate) fn start(app: Router, events: &EventBus) -> Self {
        let (tx, _) = broadcast::channel(256);
        let t = Self {
            state: Arc::new(Mutex::new(State::default())),
            tx,
        };
        let (_history, mut rx) = events.subscribe();
        let tracker = t.clone();
        tokio::spawn(async move {
            // Containers already running when the agent starts (restart of the agent).
            tracker.resync(&app).await;
            loop {
                match rx.recv().await {
                    Ok(ev) if ev.typ == "container" => match ev.action.as_str() {
                        "start" => tracker.container_started(&app, &ev.actor.id).await,
                        "die" | "destroy" => tracker.container_stopped(&ev.actor.id),
                        _ => {}
                    },
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "port tracker lagged; resyncing");
                        tracker.resync(&app).await;
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        t
    }

    /// The current published set and a receiver for later changes, taken together.
    pub(crate) fn subscribe(&self) -> (Vec<PublishedPort>, broadcast::Receiver<PortsDiff>) {
        let s = self.lock();
        let rx = self.tx.subscribe();
        let all: BTreeSet<PublishedPort> = s
            .by_container
            .values()
            .flat_map(|m| m.keys().cloned())
            .collect();
        (all.into_iter().collect(), rx)
    }

    /// Where host port `port` leads, if a running container publishes it (on any address).
    pub(crate) fn target(&self, proto: Proto, port: u16) -> Option<Target> {
        self.lock().by_container.values().find_map(|m| {
            m.iter()
                .find(|(p, _)| p.proto == proto && p.host_port == port)
                .map(|(_, t)| t.clone())
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, id: &str, ports: BTreeMap<PublishedPort, Target>) {
        let diff = {
            let mut s = self.lock();
            let old = s.by_container.remove(id).unwrap_or_default();
            let published: Vec<_> = ports
                .keys()
                .filter(|p| !old.contains_key(*p))
                .cloned()
                .collect();
            let unpublished: Vec<_> = old
                .keys()
                .filter(|p| !ports.contains_key(*p))
                .cloned()
                .collect();
            if !ports.is_empty() {
                s.by_container.insert(id.to_string(), ports);
            }
            PortsDiff {
                published,
                unpublished,
            }
        };
        if !diff.published.is_empty() || !diff.unpublished.is_empty() {
            tracing::debug!(?diff, container = id, "published ports changed");
            let _ = self.tx.send(diff);
        }
    }

    async fn container_started(&self, app: &Router, id: &str) {
        match get_json(app, &format!("/containers/{id}/json")).await {
            Some(v) => self.set(id, ports_of_inspect(&v)),
            None => tracing::warn!(container = id, "cannot inspect started container"),
        }
    }

    fn container_stopped(&self, id: &str) {
        self.set(id, BTreeMap::new());
    }

    async fn resync(&self, app: &Router) {
        let Some(list) = get_json(app, "/containers/json").await else {
            return;
        };
        for c in list.as_array().into_iter().flatten() {
            if let Some(id) = c.get("Id").and_then(|v| v.as_str()) {
                self.container_started(app, id).await;
            }
        }
    }
}

async fn get_json(app: &Router, uri: &str) -> Option<serde_json::Value> {
    let req = http::Request::get(uri).body(Body::empty()).ok()?;
    let resp = app.clone().oneshot(req).await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let bytes = resp.into_body().collect().await.ok()?.to_bytes();
    serde_json::from_slice(&bytes).ok()
}

/// Published ports from an inspect body: `NetworkSettings.Ports` is
/// `{"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "18080"}], …}`.
fn ports_of_inspect(v: &serde_json::Value) -> BTreeMap<PublishedPort, Target> {
    let mut out = BTreeMap::new();
    let ns = &v["NetworkSettings"];
    let ip = ns["IPAddress"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .or_else(|| {
            ns["Networks"].as_object().and_then(|m| {
                m.values()
                    .filter_map(|n| n["IPAddress"].as_str())
                    .find(|s| !s.is_empty())
                    .map(str::to_string)
            })
        });
    let Some(ports) = ns["Ports"].as_object() else {
        return out;
    };
    for (key, bindings) in ports {
        let (private, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
        let proto = match proto {
            "udp" => Proto::Udp,
            "tcp" => Proto::Tcp,
            _ => continue,
        };
        let Ok(private_port) = private.parse::<u16>() else {
            continue;
        };
        for b in bindings.as_array().into_iter().flatten() {
            let host_port = b["HostPort"].as_str().and_then(|p| p.parse::<u16>().ok());
            if let Some(host_port) = host_port.filter(|p| *p != 0) {
                out.insert(
                    PublishedPort {
                        proto,
                        host_port,
                        host_ip: specific_ip(b["HostIp"].as_str()),
                    },
                    Target {
                        container_ip: ip.clone(),
                        private_port,
                    },
                );
            }
        }
    }
    out
}

/// The address a binding names, `None` for every address (`0.0.0.0`, `::` or none): the host
/// then binds all of its addresses, both families, as `docker ps` shows `0.0.0.0:P`.
fn specific_ip(host_ip: Option<&str>) -> Option<std::net::IpAddr> {
    host_ip
        .and_then(|s| s.trim_matches(['[', ']']).parse::<std::net::IpAddr>().ok())
        .filter(|ip| !ip.is_unspecified())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_ports_are_parsed() {
        let v = serde_json::json!({"NetworkSettings": {
            "IPAddress": "",
            "Networks": {"bridge": {"IPAddress": "172.17.0.2"}},
            "Ports": {
                "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "18080"}, {"HostIp": "::", "HostPort": "18080"}],
                "53/udp": [{"HostIp": "0.0.0.0", "HostPort": "5353"}],
                "81/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18081"}],
                "443/tcp": null
            }
        }});
        let p = ports_of_inspect(&v);
        // 0.0.0.0 and :: are one "every address" port.
        assert_eq!(p.len(), 3);
        let t = &p[&PublishedPort {
            proto: Proto::Tcp,
            host_port: 18080,
            host_ip: None,
        }];
        assert_eq!(t.private_port, 80);
        assert_eq!(t.container_ip.as_deref(), Some("172.17.0.2"));
        assert!(p.contains_key(&PublishedPort {
            proto: Proto::Udp,
            host_port: 5353,
            host_ip: None,
        }));
        assert!(p.contains_key(&PublishedPort {
            proto: Proto::Tcp,
            host_port: 18081,
            host_ip: Some([127, 0, 0, 1].into()),
        }));
    }

    #[tokio::test]
    async fn diffs_report_new_and_gone_ports() {
        let bus = EventBus::new();
        let t = PortTracker::start(Router::new(), &bus);
        let (now, mut rx) = t.subscribe();
        assert!(now.is_empty());
        let p = PublishedPort {
            proto: Proto::Tcp,
            host_port: 8080,
            host_ip: None,
        };
        let target = Target {
            container_ip: None,
            private_port: 80,
        };
        t.set("c1", BTreeMap::from([(p.clone(), target)]));
        assert_eq!(rx.recv().await.unwrap().published, vec![p.clone()]);
        t.container_stopped("c1");
        assert_eq!(rx.recv().await.unwrap().unpublished, vec![p]);
    }
}
