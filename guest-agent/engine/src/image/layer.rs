//! One pass per layer on a blocking thread: the downloaded bytes are hashed (blob digest),
//! decompressed (gzip, zstd or none, sniffed from the magic), hashed again (diff id) and
//! unpacked. The layer only counts when both digests match.

use std::io::{self, BufReader, Read};
use std::path::Path;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc::Receiver;

use super::unpack::{unpack, UnpackStats};
use crate::{EngineError, Result};

/// Reads the chunks a download task sends; an `Err` chunk is a download failure.
pub struct ChannelReader {
    rx: Receiver<io::Result<Bytes>>,
    cur: Bytes,
}

impl ChannelReader {
    pub fn new(rx: Receiver<io::Result<Bytes>>) -> Self {
        Self {
            rx,
            cur: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur.split_to(n));
        Ok(n)
    }
}

/// Hashes everything read through it.
struct HashReader<'h, R> {
    inner: R,
    hasher: &'h mut Sha256,
}

impl<R: Read> Read for HashReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Copies everything read through it to `out` (a blob being kept).
pub struct TeeReader<R, W> {
    pub inner: R,
    pub out: W,
}

impl<R: Read, W: io::Write> Read for TeeReader<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// What [`extract`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    pub stats: UnpackStats,
    /// Digest of the bytes read (the blob as stored or sent).
    pub blob_digest: String,
    /// Digest of the uncompressed tar.
    pub diff_id: String,
}

fn digest_of(h: Sha256) -> String {
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// The error for content whose digest is not the one asked for.
fn mismatch(want: Option<&str>, got: &str) -> Option<EngineError> {
    want.filter(|w| *w != got).map(|want| {
        EngineError::invalid(format!(
            "digest mismatch for layer {want}: downloaded content has {got}"
        ))
    })
}

/// Unpacks a (possibly compressed) layer stream into `dir`, checking the compressed bytes
/// against `blob_digest` and the tar against `diff_id` when they are known.
pub fn extract(
    input: impl Read,
    blob_digest: Option<&str>,
    diff_id: Option<&str>,
    dir: &Path,
) -> Result<Extracted> {
    let mut blob_hash = Sha256::new();
    let mut diff_hash = Sha256::new();
    let stats = {
        let mut compressed = BufReader::with_capacity(
            256 * 1024,
            HashReader {
                inner: input,
                hasher: &mut blob_hash,
            },
        );
        let unpacked = (|| -> Result<UnpackStats> {
            let decoded = crate::compression::decoder(&mut compressed)?;
            let mut tar = HashReader {
                inner: decoded,
                hasher: &mut diff_hash,
            };
            let stats = unpack(&mut tar, dir)?;
            // The end-of-archive blocks and any padding count towards the diff id.
            io::copy(&mut tar, &mut io::sink())?;
            Ok(stats)
        })();
        // Trailing bytes after the compressed stream still belong to the blob; after a failed
        // unpack, the rest tells whether the content was what was asked for at all.
        let rest = io::copy(&mut compressed, &mut io::sink());
        match (unpacked, rest) {
            (Ok(stats), rest) => {
                rest?;
                stats
            }
            (Err(e), Ok(_)) => {
                drop(compressed);
                return Err(mismatch(blob_digest, &digest_of(blob_hash)).unwrap_or(e));
            }
            (Err(e), Err(_)) => return Err(e),
        }
    };
    let blob = digest_of(blob_hash);
    if let Some(e) = mismatch(blob_digest, &blob) {
        return Err(e);
    }
    let diff = digest_of(diff_hash);
    if let Some(want) = diff_id.filter(|w| *w != diff) {
        return Err(EngineError::invalid(format!(
            "layer does not match its diff id {want}: got {diff}"
        )));
    }
    Ok(Extracted {
        stats,
        blob_digest: blob,
        diff_id: diff,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn layer_tar() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        b.append_data(&mut h, "hello.txt", &b"hello"[..]).unwrap();
        b.into_inner().unwrap()
    }

    fn sha(d: &[u8]) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(d)))
    }

    #[test]
    fn gzip_zstd_and_plain_layers_unpack_and_verify() {
        let tar = layer_tar();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(&tar[..], 1).unwrap();
        for blob in [tar.clone(), gz, zst] {
            let dir = tempfile::tempdir().unwrap();
            let x = extract(&blob[..], Some(&sha(&blob)), Some(&sha(&tar)), dir.path()).unwrap();
            assert_eq!(x.stats.size, 5);
            assert_eq!(x.blob_digest, sha(&blob));
            assert_eq!(x.diff_id, sha(&tar));
            assert_eq!(
                std::fs::read(dir.path().join("hello.txt")).unwrap(),
                b"hello"
            );
        }
    }

    #[test]
    fn digest_mismatches_are_errors() {
        let tar = layer_tar();
        let dir = tempfile::tempdir().unwrap();
        let wrong = sha(b"other");
        assert!(extract(&tar[..], Some(&wrong), Some(&sha(&tar)), dir.path()).is_err());
        let dir = tempfile::tempdir().unwrap();
        assert!(extract(&tar[..], Some(&sha(&tar)), Some(&wrong), dir.path()).is_err());
    }

    #[test]
    fn corrupt_content_is_reported_as_a_digest_mismatch_not_a_format_error() {
        let tar = layer_tar();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();
        let mut bad = gz.clone();
        let mid = bad.len() / 2;
        bad[mid..].iter_mut().for_each(|b| *b ^= 0x5a);
        let dir = tempfile::tempdir().unwrap();
        let e = extract(&bad[..], Some(&sha(&gz)), Some(&sha(&tar)), dir.path()).unwrap_err();
        assert!(
            e.message().starts_with("digest mismatch for layer"),
            "{}",
            e.message()
        );
        // Without a digest to compare with, the format error stays.
        let dir = tempfile::tempdir().unwrap();
        let e = extract(&bad[..], None, None, dir.path()).unwrap_err();
        assert!(!e.message().contains("digest mismatch"), "{}", e.message());
    }

    #[test]
    fn channel_reader_reassembles_chunks_and_reports_errors() {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        std::thread::spawn(move || {
            tx.blocking_send(Ok(Bytes::from_static(b"ab"))).unwrap();
            tx.blocking_send(Ok(Bytes::from_static(b"cd"))).unwrap();
            tx.blocking_send(Err(io::Error::other("reset"))).unwrap();
        });
        let mut r = ChannelReader::new(rx);
        let mut s = String::new();
        assert!(r.read_to_string(&mut s).is_err());
        assert_eq!(s, "abcd");
    }
}
