//! UDP datagrams on a byte stream (a [`crate::FORWARD_PORT`] stream whose header says `udp`):
//! each datagram is a 2-byte big-endian length, then its bytes. Datagram boundaries survive the
//! stream; an empty datagram is a zero length.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest datagram that can be framed (the UDP payload limit).
pub const MAX_DATAGRAM: usize = u16::MAX as usize;

/// Writes one datagram and flushes.
pub async fn write_datagram<W>(w: &mut W, data: &[u8]) -> std::io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let len = u16::try_from(data.len()).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("datagram of {} bytes is too large", data.len()),
        )
    })?;
    let mut buf = Vec::with_capacity(2 + data.len());
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(data);
    w.write_all(&buf).await?;
    w.flush().await
}

/// Reads one datagram into `buf` (resized to fit); `Ok(false)` on a clean end of stream before
/// a length prefix.
pub async fn read_datagram<R>(r: &mut R, buf: &mut Vec<u8>) -> std::io::Result<bool>
where
    R: AsyncRead + Unpin,
{
    let Some(len) = crate::frame::read_prefix::<_, 2>(r).await? else {
        return Ok(false);
    };
    buf.resize(usize::from(u16::from_be_bytes(len)), 0);
    r.read_exact(buf).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn datagrams_keep_their_boundaries() {
        let (mut a, mut b) = tokio::io::duplex(1 << 17);
        let sent: [&[u8]; 3] = [b"one", b"", &[7u8; MAX_DATAGRAM]];
        for d in sent {
            write_datagram(&mut a, d).await.unwrap();
        }
        assert!(write_datagram(&mut a, &[0u8; MAX_DATAGRAM + 1])
            .await
            .is_err());
        drop(a);
        let mut buf = Vec::new();
        for d in sent {
            assert!(read_datagram(&mut b, &mut buf).await.unwrap());
            assert_eq!(buf, d);
        }
        assert!(!read_datagram(&mut b, &mut buf).await.unwrap());
    }

    /// A stream cut after the first byte of a length is an error, not a clean end.
    #[tokio::test]
    async fn stream_cut_inside_the_length_is_an_error() {
        let mut buf = Vec::new();
        assert!(read_datagram(&mut &[0u8][..], &mut buf).await.is_err());
        assert!(!read_datagram(&mut &[][..], &mut buf).await.unwrap());
    }
}
