//! Control-protocol messages. The JSON form is the wire form: tagged with `"type"`, snake case,
//! checked by the golden files in `tests/golden/`.

use serde::{Deserialize, Serialize};

/// A host request with the id its reply carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostFrame {
    pub id: u64,
    #[serde(flatten)]
    pub request: Request,
}

/// What the host asks the guest agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// First message on a connection; the guest answers [`Reply::Hello`] and then pushes the
    /// full set of published ports as a [`Event::PortsChanged`].
    Hello {
        protocol_version: u32,
        host_version: String,
    },
    /// Is the engine up?
    Health,
    /// Stop containers, sync and power off; the reply comes before the power-off.
    Shutdown,
    /// Set the guest clock (after boot and resume).
    TimeSync { unix_nanos: i64 },
    /// Mount a share at `guest_path` (virtiofs, or 9P over a forward stream: [`Share::transport`]).
    Mount(Share),
    /// Host file events under shared folders, so guest inotify watchers see them.
    FileEvents { events: Vec<FileEvent> },
    /// Trim the data disk's free blocks now (`berth disk compact`); replies [`Reply::Trimmed`].
    Trim,
    /// Restart the engine process, not the VM (`berth restart --engine`): the guest replies
    /// [`Reply::Ok`], then PID 1 stops the engine (SIGTERM; running containers keep running
    /// under their monitors) and starts it again at once, which re-attaches them. This control
    /// connection ends with the old engine; the host connects again. `daemon_json` is the
    /// host's `daemon.json` for the new engine (`None`: the guest's own, as at boot).
    RestartEngine {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        daemon_json: Option<String>,
    },
}

/// A host folder shared into the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    /// The share's tag: virtiofs's (the `tag=` of QEMU's vhost-user-fs device), or the one a
    /// 9P connection names ([`ShareHeader`]).
    pub tag: String,
    /// Mount point in the guest (the host path on unix hosts).
    pub guest_path: String,
    #[serde(default)]
    pub read_only: bool,
    /// How the folder reaches the guest; absent for virtiofs (as older hosts send it).
    #[serde(default, skip_serializing_if = "ShareTransport::is_virtiofs")]
    pub transport: ShareTransport,
}

/// How a share's files travel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShareTransport {
    /// A virtiofs device of the VM (virtiofsd, or Virtualization.framework's own).
    #[default]
    Virtiofs,
    /// 9P2000.L served by the host on a [`crate::SHARE_PORT`] connection, which the guest's
    /// kernel client reads (`mount -t 9p -o trans=fd`): hosts without virtiofs (Windows).
    #[serde(rename = "9p")]
    NineP,
}

impl ShareTransport {
    fn is_virtiofs(&self) -> bool {
        *self == ShareTransport::Virtiofs
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEvent {
    /// Absolute path, the same on host and guest; for a rename, the new one.
    pub path: String,
    pub kind: FileEventKind,
    /// For [`FileEventKind::Rename`]: the path before the rename.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

impl FileEvent {
    /// A create, modify or remove of `path`.
    pub fn new(path: impl Into<String>, kind: FileEventKind) -> Self {
        Self {
            path: path.into(),
            kind,
            from: None,
        }
    }

    /// `from` renamed to `to`.
    pub fn rename(from: impl Into<String>, to: impl Into<String>) -> Self {
        Self {
            path: to.into(),
            kind: FileEventKind::Rename,
            from: Some(from.into()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileEventKind {
    Create,
    Modify,
    Remove,
    /// Sent only to agents whose hello lists [`FEATURE_FILE_RENAME`] (an older agent would
    /// refuse the whole frame); to others a rename goes as a remove and a create.
    Rename,
}

/// In [`Reply::Hello`]'s `features`: the agent understands [`FileEventKind::Rename`].
pub const FEATURE_FILE_RENAME: &str = "file_rename";

/// What the guest sends: replies to requests and unsolicited events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GuestFrame {
    Reply { id: u64, reply: Reply },
    Event { event: Event },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    Hello {
        protocol_version: u32,
        agent_version: String,
        /// Additions to this protocol version the agent understands (such as
        /// [`FEATURE_FILE_RENAME`]); the host sends them only when listed. Absent from older
        /// agents; unknown names are ignored.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        features: Vec<String>,
    },
    Health {
        engine_ready: bool,
        uptime_secs: u64,
        /// The guest's own view of its memory (absent from older agents).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        memory: Option<GuestMemory>,
        /// The filesystem of the engine's data root (absent from older agents).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disk: Option<GuestDisk>,
        /// The engine process's pid in the guest; changes when the engine restarts (absent
        /// from older agents).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        engine_pid: Option<u32>,
    },
    Ok,
    Error {
        message: String,
    },
    /// Bytes of free space the guest's filesystem discarded.
    Trimmed {
        bytes: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// Host ports that containers published or stopped publishing since the last event.
    PortsChanged {
        published: Vec<PublishedPort>,
        unpublished: Vec<PublishedPort>,
    },
}

/// The guest's memory as its kernel sees it (`/proc/meminfo`), in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestMemory {
    pub total_kib: u64,
    pub available_kib: u64,
    pub free_kib: u64,
}

/// The guest's data filesystem as `statvfs` sees it, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestDisk {
    pub total_bytes: u64,
    /// Free for the engine (unprivileged view: the filesystem's `f_bavail`).
    pub available_bytes: u64,
}

/// A port bound on the guest's host side by a container (`-p [host_ip:]host_port:...`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PublishedPort {
    pub proto: Proto,
    pub host_port: u16,
    /// The address the port was published on (`-p 127.0.0.1:8080:80`); `None` for every
    /// address (`-p 8080:80`, shown as `0.0.0.0`). Absent from older agents' frames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<std::net::IpAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Proto {
    Tcp,
    Udp,
}

/// First frame of every stream on [`crate::FORWARD_PORT`]: the guest port to connect to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardHeader {
    pub proto: Proto,
    pub port: u16,
}

/// First frame of every connection on [`crate::SHARE_PORT`]: the share whose 9P it carries,
/// which a [`Request::Mount`] with [`ShareTransport::NineP`] then mounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareHeader {
    pub tag: String,
}
