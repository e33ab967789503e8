//! The wire form of every control message, pinned by golden files. A change here is a protocol
//! change: bump PROTOCOL_VERSION or keep the old form readable. `BLESS=1` rewrites the files.

use berth_agent_proto::*;

fn check<T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(
    name: &str,
    msg: &T,
) {
    let path = format!("{}/tests/golden/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let wire = serde_json::to_string(msg).unwrap();
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&path, format!("{wire}\n")).unwrap();
    }
    let golden = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(wire, golden.trim_end(), "wire form of {name} changed");
    let back: T = serde_json::from_str(golden.trim_end()).unwrap();
    assert_eq!(&back, msg);
}

fn req(id: u64, request: Request) -> HostFrame {
    HostFrame { id, request }
}

#[test]
fn host_requests_match_golden() {
    check(
        "hello",
        &req(
            1,
            Request::Hello {
                protocol_version: PROTOCOL_VERSION,
                host_version: "0.1.0".into(),
            },
        ),
    );
    check("health", &req(2, Request::Health));
    check("shutdown", &req(3, Request::Shutdown));
    check(
        "restart_engine",
        &req(
            7,
            Request::RestartEngine {
                daemon_json: Some("{\"debug\": true}".into()),
            },
        ),
    );
    check(
        "time_sync",
        &req(
            4,
            Request::TimeSync {
                unix_nanos: 1_790_000_000_123_456_789,
            },
        ),
    );
    check(
        "mount",
        &req(
            5,
            Request::Mount(Share {
                tag: "share0".into(),
                guest_path: "/root".into(),
                read_only: false,
                transport: ShareTransport::Virtiofs,
            }),
        ),
    );
    check(
        "mount_9p",
        &req(
            5,
            Request::Mount(Share {
                tag: "share0".into(),
                guest_path: "/mnt/host/c/Users/me".into(),
                read_only: false,
                transport: ShareTransport::NineP,
            }),
        ),
    );
    check(
        "file_events",
        &req(
            6,
            Request::FileEvents {
                events: vec![
                    FileEvent::new("/root/a", FileEventKind::Create),
                    FileEvent::new("/root/b", FileEventKind::Remove),
                ],
            },
        ),
    );
    check(
        "file_events_rename",
        &req(
            8,
            Request::FileEvents {
                events: vec![
                    FileEvent::new("/root/c", FileEventKind::Modify),
                    FileEvent::rename("/root/d", "/root/e"),
                ],
            },
        ),
    );
}

/// A hello reply from an agent that predates `features` still reads (with none).
#[test]
fn hello_reply_without_features_reads() {
    let old = r#"{"kind":"reply","id":1,"reply":{"type":"hello","protocol_version":1,"agent_version":"0.1.0"}}"#;
    let f: GuestFrame = serde_json::from_str(old).unwrap();
    assert_eq!(
        f,
        GuestFrame::Reply {
            id: 1,
            reply: Reply::Hello {
                protocol_version: 1,
                agent_version: "0.1.0".into(),
                features: vec![],
            },
        }
    );
}

#[test]
fn guest_frames_match_golden() {
    check(
        "reply_hello",
        &GuestFrame::Reply {
            id: 1,
            reply: Reply::Hello {
                protocol_version: PROTOCOL_VERSION,
                agent_version: "0.1.0".into(),
                features: vec![FEATURE_FILE_RENAME.into()],
            },
        },
    );
    check(
        "reply_health",
        &GuestFrame::Reply {
            id: 2,
            reply: Reply::Health {
                engine_ready: true,
                uptime_secs: 12,
                memory: Some(GuestMemory {
                    total_kib: 996_000,
                    available_kib: 900_000,
                    free_kib: 850_000,
                }),
                disk: Some(GuestDisk {
                    total_bytes: 68_719_476_736,
                    available_bytes: 60_000_000_000,
                }),
                engine_pid: None,
            },
        },
    );
    check(
        "trim",
        &HostFrame {
            id: 9,
            request: Request::Trim,
        },
    );
    check(
        "reply_trimmed",
        &GuestFrame::Reply {
            id: 9,
            reply: Reply::Trimmed { bytes: 67_108_864 },
        },
    );
    check(
        "reply_ok",
        &GuestFrame::Reply {
            id: 3,
            reply: Reply::Ok,
        },
    );
    check(
        "reply_error",
        &GuestFrame::Reply {
            id: 5,
            reply: Reply::Error {
                message: "failed to mount share0 at /root".into(),
            },
        },
    );
    check(
        "ports_changed",
        &GuestFrame::Event {
            event: Event::PortsChanged {
                published: vec![
                    PublishedPort {
                        proto: Proto::Tcp,
                        host_port: 18080,
                        host_ip: None,
                    },
                    PublishedPort {
                        proto: Proto::Tcp,
                        host_port: 18081,
                        host_ip: Some([127, 0, 0, 1].into()),
                    },
                ],
                unpublished: vec![PublishedPort {
                    proto: Proto::Udp,
                    host_port: 5353,
                    host_ip: None,
                }],
            },
        },
    );
    check(
        "forward_header",
        &ForwardHeader {
            proto: Proto::Tcp,
            port: 18080,
        },
    );
    check(
        "share_header",
        &ShareHeader {
            tag: "share0".into(),
        },
    );
}

#[test]
fn ports_are_pinned() {
    assert_eq!(DOCKER_API_PORT, 2375);
    assert_eq!(CONTROL_PORT, 2376);
    assert_eq!(FORWARD_PORT, 2377);
    assert_eq!(HOST_CID, 2);
}
