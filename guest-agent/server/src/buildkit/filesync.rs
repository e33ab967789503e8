//! Receiving a directory from the client's session: `moby.filesync.v1.FileSync/DiffCopy`
//! with fsutil's packet protocol. The sender streams one `STAT` per entry (walk order, an
//! empty `STAT` ends the list; every entry takes the next id, regular files can be asked
//! for by it), the receiver asks for files with `REQ id`, the sender answers with `DATA`
//! chunks ended by an empty `DATA`, and a `FIN` from each side closes the exchange. Modes
//! are Go `os.FileMode` bits.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use bollard_buildkit_proto::fsutil::types::packet::PacketType;
use bollard_buildkit_proto::fsutil::types::{Packet, Stat};
use bollard_buildkit_proto::moby::filesync::v1::file_sync_client::FileSyncClient;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::session::{origin, SessionClient};

pub(crate) const DIFF_COPY: &str = "/moby.filesync.v1.FileSync/DiffCopy";

pub(crate) const MODE_DIR: u32 = 1 << 31;
pub(crate) const MODE_SYMLINK: u32 = 1 << 27;
const MODE_TYPE: u32 = MODE_DIR
    | MODE_SYMLINK
    | (1 << 26) // device
    | (1 << 25) // named pipe
    | (1 << 24) // socket
    | (1 << 21) // char device
    | (1 << 19); // irregular

/// What to fetch from a session directory.
#[derive(Debug, Clone, Default)]
pub(crate) struct SyncRequest {
    /// The directory's name in the session (`context`, `dockerfile`).
    pub dir_name: String,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SyncError {
    #[error("the session does not serve file sync")]
    Unsupported,
    #[error("file sync: {0}")]
    Rpc(#[from] tonic::Status),
    #[error("file sync: sender failed: {0}")]
    Sender(String),
    #[error("file sync: invalid path {0:?}")]
    BadPath(String),
    #[error("file sync: unexpected packet {0}")]
    Protocol(String),
    #[error("file sync: {0}")]
    Io(#[from] std::io::Error),
}

/// Copies the session directory into `dest` (which exists).
pub(crate) async fn fetch(
    session: &SessionClient,
    req: &SyncRequest,
    dest: &Path,
) -> Result<(), SyncError> {
    if !session.supports(DIFF_COPY) {
        return Err(SyncError::Unsupported);
    }
    let mut client = FileSyncClient::with_origin(session.channel.clone(), origin())
        .max_decoding_message_size(64 << 20);
    let (tx, rx) = mpsc::unbounded_channel::<Packet>();
    let mut request = tonic::Request::new(UnboundedReceiverStream::new(rx));
    let md = request.metadata_mut();
    append(md, "dir-name", std::slice::from_ref(&req.dir_name));
    append(md, "include-patterns", &req.include);
    append(md, "exclude-patterns", &req.exclude);
    let incoming = client.diff_copy(request).await?.into_inner();
    receive(incoming, tx, dest).await
}

fn append(md: &mut tonic::metadata::MetadataMap, key: &'static str, values: &[String]) {
    let mut encoded = false;
    for v in values {
        let printable = v.bytes().all(|b| (0x20..0x7f).contains(&b));
        let text = if printable {
            v.clone()
        } else {
            encoded = true;
            url_encode(v)
        };
        if let Ok(val) = text.parse() {
            md.append(key, val);
        }
    }
    if encoded {
        let k: tonic::metadata::MetadataKey<tonic::metadata::Ascii> =
            match format!("{key}-encoded").parse() {
                Ok(k) => k,
                Err(_) => return,
            };
        md.insert(k, tonic::metadata::MetadataValue::from_static("1"));
    }
}

/// Go's `url.QueryEscape`, which the sender undoes.
fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A relative path inside the destination, refusing escapes.
fn safe_join(dest: &Path, p: &str) -> Result<PathBuf, SyncError> {
    let rel = Path::new(p);
    if p.is_empty()
        || rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(SyncError::BadPath(p.to_string()));
    }
    Ok(dest.join(rel))
}

/// What one `STAT` made.
enum Made {
    /// A directory or symlink, complete.
    Entry(PathBuf),
    /// An empty regular file whose content is still to be asked for.
    File(PathBuf),
    /// Nothing (a device, pipe or socket).
    Nothing,
}

/// Makes the entry of one `STAT`.
fn make_entry(dest: &Path, st: &Stat) -> Result<Made, SyncError> {
    use std::os::unix::fs::PermissionsExt;
    let path = safe_join(dest, &st.path)?;
    let perm = std::fs::Permissions::from_mode(go_mode_to_unix(st.mode));
    if st.mode & MODE_DIR != 0 {
        std::fs::create_dir_all(&path)?;
        std::fs::set_permissions(&path, perm)?;
        Ok(Made::Entry(path))
    } else if st.mode & MODE_SYMLINK != 0 {
        std::os::unix::fs::symlink(&st.linkname, &path)?;
        Ok(Made::Entry(path))
    } else if st.mode & MODE_TYPE != 0 {
        // Devices, pipes and sockets have no place in a build context.
        Ok(Made::Nothing)
    } else {
        let f = std::fs::File::create(&path)?;
        f.set_permissions(perm)?;
        Ok(Made::File(path))
    }
}

/// Gives every received entry the sender's modification time (`mod_time`, in nanoseconds),
/// as BuildKit's copy of a context keeps them, so a `COPY` of unchanged files makes the same
/// layer bytes in every build. Entries come in walk order, parents first: setting them in
/// reverse order sets a directory's time after its children were written.
fn set_mtimes(made: &[(PathBuf, i64)]) -> Result<(), SyncError> {
    const NANOS: i64 = 1_000_000_000;
    for (path, mod_time) in made.iter().rev() {
        let (secs, nanos) = (mod_time.div_euclid(NANOS), mod_time.rem_euclid(NANOS));
        berth_engine::fsutil::set_times_nofollow(path, secs, nanos)?;
    }
    Ok(())
}

/// Permission, setuid/setgid and sticky bits of a Go file mode as `st_mode` bits.
fn go_mode_to_unix(m: u32) -> u32 {
    let mut out = m & 0o777;
    if m & (1 << 23) != 0 {
        out |= 0o4000;
    }
    if m & (1 << 22) != 0 {
        out |= 0o2000;
    }
    if m & (1 << 20) != 0 {
        out |= 0o1000;
    }
    out
}

fn packet(t: PacketType, id: u32) -> Packet {
    Packet {
        r#type: t as i32,
        stat: None,
        id,
        data: vec![],
    }
}

/// The receiving side of the packet protocol, writing into `dest`.
pub(crate) async fn receive<S>(
    mut incoming: S,
    tx: mpsc::UnboundedSender<Packet>,
    dest: &Path,
) -> Result<(), SyncError>
where
    S: Stream<Item = Result<Packet, tonic::Status>> + Unpin,
{
    let mut index: u32 = 0;
    let mut wanted: HashMap<u32, PathBuf> = HashMap::new();
    let mut made: Vec<(PathBuf, i64)> = Vec::new();
    // The file list.
    loop {
        let p = next(&mut incoming).await?;
        match PacketType::try_from(p.r#type) {
            Ok(PacketType::PacketStat) => match &p.stat {
                None => break,
                Some(st) => {
                    match make_entry(dest, st)? {
                        Made::File(path) => {
                            wanted.insert(index, path.clone());
                            made.push((path, st.mod_time));
                        }
                        Made::Entry(path) => made.push((path, st.mod_time)),
                        Made::Nothing => {}
                    }
                    index += 1;
                }
            },
            Ok(PacketType::PacketErr) => {
                return Err(SyncError::Sender(String::from_utf8_lossy(&p.data).into()))
            }
            _ => {
                return Err(SyncError::Protocol(format!(
                    "{} before the list end",
                    p.r#type
                )))
            }
        }
    }
    // The files' contents: all asked for at once, chunks of different files interleave.
    let mut open: HashMap<u32, std::fs::File> = HashMap::new();
    for (id, path) in &wanted {
        open.insert(*id, std::fs::OpenOptions::new().write(true).open(path)?);
        let _ = tx.send(packet(PacketType::PacketReq, *id));
    }
    while !open.is_empty() {
        let p = next(&mut incoming).await?;
        match PacketType::try_from(p.r#type) {
            Ok(PacketType::PacketData) => {
                if p.data.is_empty() {
                    open.remove(&p.id);
                } else {
                    let f = open
                        .get_mut(&p.id)
                        .ok_or_else(|| SyncError::Protocol(format!("data for {}", p.id)))?;
                    f.write_all(&p.data)?;
                }
            }
            Ok(PacketType::PacketErr) => {
                return Err(SyncError::Sender(String::from_utf8_lossy(&p.data).into()))
            }
            _ => return Err(SyncError::Protocol(format!("{} during data", p.r#type))),
        }
    }
    set_mtimes(&made)?;
    let _ = tx.send(packet(PacketType::PacketFin, 0));
    // The sender answers FIN; the stream may also just end.
    while let Some(p) = incoming.next().await {
        if p?.r#type == PacketType::PacketFin as i32 {
            break;
        }
    }
    Ok(())
}

async fn next<S>(incoming: &mut S) -> Result<Packet, SyncError>
where
    S: Stream<Item = Result<Packet, tonic::Status>> + Unpin,
{
    match incoming.next().await {
        Some(p) => Ok(p?),
        None => Err(SyncError::Protocol("end of stream".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2021-01-01T00:00:00.5Z, the sender's mtime of every test entry.
    const MOD_TIME: i64 = 1_609_459_200_500_000_000;

    fn stat(path: &str, mode: u32, linkname: &str) -> Result<Packet, tonic::Status> {
        Ok(Packet {
            r#type: PacketType::PacketStat as i32,
            stat: Some(Stat {
                path: path.into(),
                mode,
                linkname: linkname.into(),
                mod_time: MOD_TIME,
                ..Stat::default()
            }),
            id: 0,
            data: vec![],
        })
    }

    fn data(id: u32, d: &[u8]) -> Result<Packet, tonic::Status> {
        Ok(Packet {
            r#type: PacketType::PacketData as i32,
            stat: None,
            id,
            data: d.to_vec(),
        })
    }

    #[tokio::test]
    async fn receives_dirs_files_and_symlinks_with_interleaved_data() {
        let dir = tempfile::tempdir().unwrap();
        let packets = vec![
            stat("a", MODE_DIR | 0o755, ""),
            stat("a/x.sh", 0o755, ""),
            stat("b.txt", 0o644, ""),
            stat("l", MODE_SYMLINK | 0o777, "b.txt"),
            Ok(packet(PacketType::PacketStat, 0)),
            data(2, b"hel"),
            data(1, b"#!/bin/sh\n"),
            data(2, b"lo"),
            data(1, b""),
            data(2, b""),
            Ok(packet(PacketType::PacketFin, 0)),
        ];
        let (tx, mut rx) = mpsc::unbounded_channel();
        receive(futures::stream::iter(packets), tx, dir.path())
            .await
            .unwrap();
        let mut sent = vec![];
        while let Ok(p) = rx.try_recv() {
            sent.push((p.r#type, p.id));
        }
        sent.sort();
        let req = PacketType::PacketReq as i32;
        let fin = PacketType::PacketFin as i32;
        assert_eq!(sent, vec![(req, 1), (req, 2), (fin, 0)]);
        let p = dir.path();
        assert_eq!(std::fs::read(p.join("b.txt")).unwrap(), b"hello");
        assert_eq!(std::fs::read(p.join("a/x.sh")).unwrap(), b"#!/bin/sh\n");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(p.join("a/x.sh")).unwrap().permissions();
        assert_eq!(mode.mode() & 0o777, 0o755);
        assert_eq!(std::fs::read_link(p.join("l")).unwrap(), Path::new("b.txt"));
        // Every entry has the sender's mtime, directories too (set after their children).
        use std::os::unix::fs::MetadataExt;
        for name in ["a", "a/x.sh", "b.txt", "l"] {
            let m = std::fs::symlink_metadata(p.join(name)).unwrap();
            assert_eq!(
                (m.mtime(), m.mtime_nsec()),
                (1_609_459_200, 500_000_000),
                "{name}"
            );
        }
    }

    #[tokio::test]
    async fn refuses_paths_outside_the_destination() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, _rx) = mpsc::unbounded_channel();
        let err = receive(
            futures::stream::iter(vec![stat("../evil", 0o644, "")]),
            tx,
            dir.path(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, SyncError::BadPath(_)), "{err}");
    }

    #[tokio::test]
    async fn a_sender_error_fails_the_copy() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, _rx) = mpsc::unbounded_channel();
        let err = receive(
            futures::stream::iter(vec![Ok(Packet {
                r#type: PacketType::PacketErr as i32,
                stat: None,
                id: 0,
                data: b"no such dir".to_vec(),
            })]),
            tx,
            dir.path(),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("no such dir"), "{err}");
    }
}
