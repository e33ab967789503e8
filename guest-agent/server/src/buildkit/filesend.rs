//! Sending a build's result back to the client (`--output type=local,dest=DIR` and
//! `type=tar,dest=FILE`): the engine calls `moby.filesync.v1.FileSend/DiffCopy` on the
//! client's session, where buildx writes what it gets.
//!
//! - `local`: fsutil's packet protocol with the engine as the sender (the mirror of
//!   [`super::filesync`]): one `STAT` per entry of the final stage's filesystem in walk
//!   order (names sorted in each directory, a directory before its contents; an empty
//!   `STAT` ends the list), then the client asks for files by index (`REQ`), each answered
//!   with `DATA` chunks and an empty `DATA`, and `FIN` from the client is answered with `FIN`.
//! - `tar`: the tar of that filesystem as raw `BytesMessage` chunks; the client writes them
//!   to the file (or stdout) until the stream ends.
//!
//! Device nodes, fifos and sockets are left out of both, as BuildKit's exporters leave them.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use berth_engine::container::archive::tarball::go_file_mode;
use bollard_buildkit_proto::fsutil::types::packet::PacketType;
use bollard_buildkit_proto::fsutil::types::{Packet, Stat};
use bollard_buildkit_proto::moby::filesync::v1::BytesMessage;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::filesync::{SyncError, MODE_DIR, MODE_SYMLINK};
use super::session::{origin, SessionClient};

pub(crate) const FILE_SEND: &str = "/moby.filesync.v1.FileSend/DiffCopy";

/// Which of the client's output targets the stream is for (buildx registers one per output).
const EXPORTER_ID: &str = "buildkit-attachable-exporter-id";

/// Chunk size of file data and tar bytes (below gRPC's 4 MiB message limit).
const CHUNK: usize = 1 << 20;

/// One entry of the tree sent.
struct Entry {
    path: PathBuf,
    stat: Stat,
}

/// The Go `os.FileMode` of a directory, regular file or symlink; `None` for other types.
fn go_mode(meta: &std::fs::Metadata) -> Option<u32> {
    let ft = meta.file_type();
    (ft.is_dir() || ft.is_symlink() || ft.is_file()).then(|| go_file_mode(meta))
}

/// The entries under `root` in fsutil's walk order.
fn walk(root: &Path) -> std::io::Result<Vec<Entry>> {
    fn visit(root: &Path, rel: &str, out: &mut Vec<Entry>) -> std::io::Result<()> {
        let dir = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(rel)
        };
        let mut names: Vec<String> = std::fs::read_dir(&dir)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<std::io::Result<_>>()?;
        names.sort();
        for name in names {
            let rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let path = root.join(&rel);
            let meta = std::fs::symlink_metadata(&path)?;
            let Some(mode) = go_mode(&meta) else {
                continue;
            };
            let linkname = if meta.file_type().is_symlink() {
                std::fs::read_link(&path)?.to_string_lossy().into_owned()
            } else {
                String::new()
            };
            out.push(Entry {
                path,
                stat: Stat {
                    path: rel.clone(),
                    mode,
                    uid: meta.uid(),
                    gid: meta.gid(),
                    size: if meta.is_file() {
                        i64::try_from(meta.len()).unwrap_or(i64::MAX)
                    } else {
                        0
                    },
                    mod_time: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
                    linkname,
                    ..Stat::default()
                },
            });
            if meta.is_dir() {
                visit(root, &rel, out)?;
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    visit(root, "", &mut out)?;
    Ok(out)
}

/// The client's answer stream of a `FileSend/DiffCopy` call. The client's gRPC server sends
/// its headers only once its handler writes or returns, which it does only after reading:
/// the call runs in its own task while the engine writes.
type Answer<T> = tokio::task::JoinHandle<Result<tonic::Streaming<T>, tonic::Status>>;

async fn push<T>(tx: &mpsc::Sender<T>, m: T) -> Result<(), SyncError> {
    tx.send(m)
        .await
        .map_err(|_| SyncError::Protocol("the client closed the stream".into()))
}

async fn answer<T>(answer: Answer<T>) -> Result<tonic::Streaming<T>, SyncError> {
    Ok(answer
        .await
        .map_err(|e| SyncError::Protocol(format!("FileSend call failed: {e}")))??)
}

/// Opens `FileSend/DiffCopy` on the session with messages of type `T`.
async fn open<T>(session: &SessionClient) -> Result<(mpsc::Sender<T>, Answer<T>), SyncError>
where
    T: prost::Message + Default + Send + Sync + 'static,
{
    if !session.supports(FILE_SEND) {
        return Err(SyncError::Unsupported);
    }
    let mut grpc = tonic::client::Grpc::with_origin(session.channel.clone(), origin())
        .max_decoding_message_size(64 << 20);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(format!("session: {e}")))?;
    let (tx, rx) = mpsc::channel::<T>(8);
    let mut req = tonic::Request::new(ReceiverStream::new(rx));
    req.metadata_mut().insert(
        EXPORTER_ID,
        tonic::metadata::MetadataValue::from_static("0"),
    );
    let answer = tokio::spawn(async move {
        let codec = tonic_prost::ProstCodec::<T, T>::default();
        let path = http::uri::PathAndQuery::from_static(FILE_SEND);
        Ok(grpc.streaming(req, path, codec).await?.into_inner())
    });
    Ok((tx, answer))
}

fn packet(t: PacketType, id: u32, data: Vec<u8>) -> Packet {
    Packet {
        r#type: t as i32,
        stat: None,
        id,
        data,
    }
}

/// Sends the file `path` as `DATA` packets of `id`, then the empty `DATA` that ends it.
async fn send_file(tx: &mpsc::Sender<Packet>, id: u32, path: &Path) -> Result<(), SyncError> {
    let mut f = std::fs::File::open(path)?;
    loop {
        let mut buf = vec![0u8; CHUNK];
        let n = f.read(&mut buf)?;
        buf.truncate(n);
        push(tx, packet(PacketType::PacketData, id, buf)).await?;
        if n == 0 {
            return Ok(());
        }
    }
}

/// Waits for the end of the client's answer stream.
async fn drain<T>(mut incoming: tonic::Streaming<T>) -> Result<(), SyncError> {
    while let Some(m) = incoming.next().await {
        m?;
    }
    Ok(())
}

/// Sends the tree at `root` to the client's `type=local` output.
pub(crate) async fn send_dir(session: &SessionClient, root: &Path) -> Result<(), SyncError> {
    let r = root.to_path_buf();
    let entries = tokio::task::spawn_blocking(move || walk(&r))
        .await
        .map_err(|e| SyncError::Protocol(format!("walking the output: {e}")))??;
    let (tx, call) = open::<Packet>(session).await?;
    let mut files: HashMap<u32, PathBuf> = HashMap::new();
    for (id, e) in (0u32..).zip(entries) {
        if e.stat.mode & (MODE_DIR | MODE_SYMLINK) == 0 {
            files.insert(id, e.path);
        }
        let mut p = packet(PacketType::PacketStat, id, vec![]);
        p.stat = Some(e.stat);
        push(&tx, p).await?;
    }
    push(&tx, packet(PacketType::PacketStat, 0, vec![])).await?;
    let mut incoming = answer(call).await?;
    while let Some(p) = incoming.next().await {
        let p = p?;
        tracing::debug!(packet = p.r#type, id = p.id, "FileSend packet");
        match PacketType::try_from(p.r#type) {
            Ok(PacketType::PacketReq) => {
                let path = files
                    .get(&p.id)
                    .ok_or_else(|| SyncError::Protocol(format!("request for {}", p.id)))?;
                send_file(&tx, p.id, path).await?;
            }
            Ok(PacketType::PacketFin) => {
                push(&tx, packet(PacketType::PacketFin, 0, vec![])).await?;
                drop(tx);
                return drain(incoming).await;
            }
            Ok(PacketType::PacketErr) => {
                return Err(SyncError::Sender(String::from_utf8_lossy(&p.data).into()))
            }
            _ => return Err(SyncError::Protocol(format!("{} from the client", p.r#type))),
        }
    }
    Err(SyncError::Protocol(
        "the client ended the stream before FIN".into(),
    ))
}

/// Writes the tar of the tree at `root` into `tar_path`.
pub(crate) fn write_tar(root: &Path, tar_path: &Path) -> std::io::Result<()> {
    let f = std::fs::File::create(tar_path)?;
    let mut b = tar::Builder::new(std::io::BufWriter::new(f));
    b.follow_symlinks(false);
    for e in walk(root)? {
        b.append_path_with_name(&e.path, &e.stat.path)?;
    }
    b.into_inner()?.into_inner().map_err(|e| e.into_error())?;
    Ok(())
}

/// Sends the file `tar_path` to the client's `type=tar` output.
pub(crate) async fn send_tar(session: &SessionClient, tar_path: &Path) -> Result<(), SyncError> {
    let (tx, call) = open::<BytesMessage>(session).await?;
    let mut f = std::fs::File::open(tar_path)?;
    loop {
        let mut data = vec![0u8; CHUNK];
        let n = f.read(&mut data)?;
        if n == 0 {
            break;
        }
        data.truncate(n);
        push(&tx, BytesMessage { data }).await?;
    }
    drop(tx);
    drain(answer(call).await?).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_walk_is_sorted_parents_first_with_go_modes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("b/c")).unwrap();
        std::fs::write(root.join("b/c/f"), "x").unwrap();
        std::fs::write(root.join("a"), "abc").unwrap();
        std::os::unix::fs::symlink("a", root.join("l")).unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(root.join("s")).unwrap();
        let entries = walk(root).unwrap();
        let names: Vec<&str> = entries.iter().map(|e| e.stat.path.as_str()).collect();
        assert_eq!(names, ["a", "b", "b/c", "b/c/f", "l"]);
        assert_eq!(entries[0].stat.size, 3);
        assert!(entries[1].stat.mode & MODE_DIR != 0);
        assert_eq!(entries[4].stat.linkname, "a");
        assert!(entries[4].stat.mode & MODE_SYMLINK != 0);
    }
}
