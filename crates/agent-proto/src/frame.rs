//! Length-delimited JSON frames: a 4-byte big-endian body length, then the JSON body.

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest accepted frame body (1 MiB); a bigger length means a broken or hostile peer.
pub const MAX_FRAME: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("control channel i/o failed")]
    Io(#[from] std::io::Error),
    #[error("frame of {0} bytes exceeds the limit of {MAX_FRAME}")]
    TooLarge(usize),
    #[error("invalid frame body")]
    Json(#[from] serde_json::Error),
}

/// Encodes `msg` as one frame (length prefix included).
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let body = serde_json::to_vec(msg)?;
    if body.len() > MAX_FRAME {
        return Err(FrameError::TooLarge(body.len()));
    }
    let len = u32::try_from(body.len()).map_err(|_| FrameError::TooLarge(body.len()))?;
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Writes one frame and flushes.
pub async fn write_frame<W, T>(w: &mut W, msg: &T) -> Result<(), FrameError>
where
    W: AsyncWrite + Unpin,
    T: Serialize,
{
    let buf = encode(msg)?;
    w.write_all(&buf).await?;
    w.flush().await?;
    Ok(())
}

/// Reads a length prefix; `Ok(None)` when the stream ends before its first byte. A stream
/// that ends inside it was cut, which is an error (`UnexpectedEof`), not a clean end.
pub(crate) async fn read_prefix<R, const N: usize>(r: &mut R) -> std::io::Result<Option<[u8; N]>>
where
    R: AsyncRead + Unpin,
{
    let mut prefix = [0u8; N];
    if r.read(&mut prefix[..1]).await? == 0 {
        return Ok(None);
    }
    r.read_exact(&mut prefix[1..]).await?;
    Ok(Some(prefix))
}

/// Reads one frame; `Ok(None)` on a clean end of stream before a length prefix.
pub async fn read_frame<R, T>(r: &mut R) -> Result<Option<T>, FrameError>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    let Some(len) = read_prefix::<_, 4>(r).await? else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    Ok(Some(serde_json::from_slice(&body)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HostFrame, Request};

    #[tokio::test]
    async fn frame_round_trips() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        let sent = HostFrame {
            id: 7,
            request: Request::Health,
        };
        write_frame(&mut a, &sent).await.unwrap();
        drop(a);
        let got: HostFrame = read_frame(&mut b).await.unwrap().unwrap();
        assert_eq!(got, sent);
        assert!(read_frame::<_, HostFrame>(&mut b).await.unwrap().is_none());
    }

    /// Found by `frames_round_trip`: a stream cut inside the length prefix read as a clean end.
    #[tokio::test]
    async fn stream_cut_inside_the_length_prefix_is_an_error() {
        let wire = encode(&HostFrame {
            id: 1,
            request: Request::Health,
        })
        .unwrap();
        for cut in 1..4 {
            assert!(
                read_frame::<_, HostFrame>(&mut &wire[..cut]).await.is_err(),
                "{cut}"
            );
        }
        assert!(read_frame::<_, HostFrame>(&mut &wire[..0])
            .await
            .unwrap()
            .is_none());
    }

    #[tokio::test]
    async fn oversized_length_is_rejected() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&(u32::MAX).to_be_bytes()).await.unwrap();
        let err = read_frame::<_, HostFrame>(&mut b).await.unwrap_err();
        assert!(matches!(err, FrameError::TooLarge(_)));
    }

    mod props {
        use super::*;
        use crate::datagram::{read_datagram, write_datagram};
        use crate::{FileEvent, FileEventKind, GuestFrame, Reply, Share, ShareTransport};
        use proptest::prelude::*;

        fn block_on<F: std::future::Future>(f: F) -> F::Output {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(f)
        }

        fn request() -> impl Strategy<Value = Request> {
            prop_oneof![
                (any::<u32>(), ".*").prop_map(|(protocol_version, host_version)| {
                    Request::Hello {
                        protocol_version,
                        host_version,
                    }
                }),
                Just(Request::Health),
                Just(Request::Shutdown),
                Just(Request::Trim),
                any::<i64>().prop_map(|unix_nanos| Request::TimeSync { unix_nanos }),
                (".*", ".*", any::<bool>()).prop_map(|(tag, guest_path, read_only)| {
                    Request::Mount(Share {
                        tag,
                        guest_path,
                        read_only,
                        transport: if read_only {
                            ShareTransport::NineP
                        } else {
                            ShareTransport::Virtiofs
                        },
                    })
                }),
                prop::collection::vec((".*", 0..4u8, ".*"), 0..4).prop_map(|v| {
                    Request::FileEvents {
                        events: v
                            .into_iter()
                            .map(|(path, k, from)| match k {
                                0 => FileEvent::new(path, FileEventKind::Create),
                                1 => FileEvent::new(path, FileEventKind::Modify),
                                2 => FileEvent::new(path, FileEventKind::Remove),
                                _ => FileEvent::rename(from, path),
                            })
                            .collect(),
                    }
                }),
            ]
        }

        /// Every frame type a peer reads, from `bytes`: a value, an error, or the end.
        fn read_all_types(bytes: &[u8]) {
            block_on(async {
                let _ = read_frame::<_, HostFrame>(&mut &bytes[..]).await;
                let _ = read_frame::<_, GuestFrame>(&mut &bytes[..]).await;
                let _ = read_frame::<_, crate::ForwardHeader>(&mut &bytes[..]).await;
                let mut buf = Vec::new();
                let mut r = bytes;
                while let Ok(true) = read_datagram(&mut r, &mut buf).await {}
            });
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

            /// A hostile or broken peer's bytes never panic a reader.
            #[test]
            fn any_bytes_are_read_or_refused(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
                read_all_types(&bytes);
                let mut framed = u32::try_from(bytes.len()).unwrap().to_be_bytes().to_vec();
                framed.extend_from_slice(&bytes);
                read_all_types(&framed);
            }

            /// Frames written back to back read back in order, then a clean end; a stream cut
            /// anywhere inside a frame is an error, never a frame.
            #[test]
            fn frames_round_trip(reqs in prop::collection::vec(request(), 1..5), ids in any::<u64>(), cut in any::<prop::sample::Index>()) {
                let sent: Vec<HostFrame> = reqs
                    .into_iter()
                    .enumerate()
                    .map(|(i, request)| HostFrame { id: ids.wrapping_add(i as u64), request })
                    .collect();
                let mut wire = Vec::new();
                for f in &sent {
                    wire.extend(encode(f).unwrap());
                }
                let got = block_on(async {
                    let mut r = &wire[..];
                    let mut got = Vec::new();
                    while let Some(f) = read_frame::<_, HostFrame>(&mut r).await.unwrap() {
                        got.push(f);
                    }
                    got
                });
                prop_assert_eq!(got, sent.clone());
                let first = encode(&sent[0]).unwrap();
                let cut = 1 + cut.index(first.len() - 1);
                let partial = block_on(read_frame::<_, HostFrame>(&mut &first[..cut]));
                prop_assert!(partial.is_err(), "cut at {} of {}", cut, first.len());
                let reply = GuestFrame::Reply { id: ids, reply: Reply::Error { message: format!("{:?}", sent[0]) } };
                let back: GuestFrame = block_on(read_frame(&mut &encode(&reply).unwrap()[..])).unwrap().unwrap();
                prop_assert_eq!(back, reply);
            }

            /// Datagrams keep their bytes and boundaries on the stream.
            #[test]
            fn datagrams_round_trip(sent in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..700), 0..6)) {
                let got = block_on(async {
                    let mut wire = Vec::new();
                    for d in &sent {
                        write_datagram(&mut wire, d).await.unwrap();
                    }
                    let (mut r, mut got, mut buf) = (&wire[..], Vec::new(), Vec::new());
                    while read_datagram(&mut r, &mut buf).await.unwrap() {
                        got.push(buf.clone());
                    }
                    got
                });
                prop_assert_eq!(got, sent);
            }
        }
    }
}
