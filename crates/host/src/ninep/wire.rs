//! 9P2000.L framing: `size[4] type[1] tag[2]` then the message's fields, little-endian; strings
//! are `len[2]` + UTF-8; a qid is `type[1] version[4] path[8]`. Only the messages the Linux
//! client (v9fs, `version=9p2000.L`) sends are decoded.

use std::io::{self, Read, Write};

/// Header bytes before a message's fields.
pub const HEADER: u32 = 7;
/// Read/write overhead the client reserves: header + fid + offset + count (`P9_IOHDRSZ`).
pub const IO_HEADER: u32 = 24;

/// A qid: what the client knows a file by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Qid {
    pub kind: u8,
    pub version: u32,
    pub path: u64,
}

/// `Qid::kind` bits.
pub const QT_DIR: u8 = 0x80;
pub const QT_SYMLINK: u8 = 0x02;
pub const QT_FILE: u8 = 0x00;

/// Settable attributes of `Tsetattr`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetAttr {
    pub valid: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub atime: (u64, u64),
    pub mtime: (u64, u64),
}

/// A decoded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Version {
        msize: u32,
        version: String,
    },
    Attach {
        fid: u32,
        uname: String,
        aname: String,
        n_uname: u32,
    },
    Auth,
    Flush,
    Walk {
        fid: u32,
        newfid: u32,
        names: Vec<String>,
    },
    Clunk {
        fid: u32,
    },
    Remove {
        fid: u32,
    },
    Statfs {
        fid: u32,
    },
    Lopen {
        fid: u32,
        flags: u32,
    },
    Lcreate {
        fid: u32,
        name: String,
        flags: u32,
        mode: u32,
    },
    Symlink {
        fid: u32,
        name: String,
        target: String,
    },
    Mknod,
    Rename {
        fid: u32,
        dfid: u32,
        name: String,
    },
    Readlink {
        fid: u32,
    },
    Getattr {
        fid: u32,
        mask: u64,
    },
    Setattr {
        fid: u32,
        attr: SetAttr,
    },
    Xattrwalk,
    Xattrcreate,
    Readdir {
        fid: u32,
        offset: u64,
        count: u32,
    },
    Fsync {
        fid: u32,
    },
    Lock,
    Getlock {
        fid: u32,
        kind: u8,
        start: u64,
        length: u64,
        proc_id: u32,
        client: String,
    },
    Link {
        dfid: u32,
        fid: u32,
        name: String,
    },
    Mkdir {
        dfid: u32,
        name: String,
        mode: u32,
    },
    Renameat {
        olddir: u32,
        oldname: String,
        newdir: u32,
        newname: String,
    },
    Unlinkat {
        dir: u32,
        name: String,
        flags: u32,
    },
    Read {
        fid: u32,
        offset: u64,
        count: u32,
    },
    Write {
        fid: u32,
        offset: u64,
        data: Vec<u8>,
    },
}

/// Message type numbers (T = request; the reply is T + 1, `Rlerror` is 7).
pub mod kind {
    pub const RLERROR: u8 = 7;
    pub const TSTATFS: u8 = 8;
    pub const TLOPEN: u8 = 12;
    pub const TLCREATE: u8 = 14;
    pub const TSYMLINK: u8 = 16;
    pub const TMKNOD: u8 = 18;
    pub const TRENAME: u8 = 20;
    pub const TREADLINK: u8 = 22;
    pub const TGETATTR: u8 = 24;
    pub const TSETATTR: u8 = 26;
    pub const TXATTRWALK: u8 = 30;
    pub const TXATTRCREATE: u8 = 32;
    pub const TREADDIR: u8 = 40;
    pub const TFSYNC: u8 = 50;
    pub const TLOCK: u8 = 52;
    pub const TGETLOCK: u8 = 54;
    pub const TLINK: u8 = 70;
    pub const TMKDIR: u8 = 72;
    pub const TRENAMEAT: u8 = 74;
    pub const TUNLINKAT: u8 = 76;
    pub const TVERSION: u8 = 100;
    pub const TAUTH: u8 = 102;
    pub const TATTACH: u8 = 104;
    pub const TFLUSH: u8 = 108;
    pub const TWALK: u8 = 110;
    pub const TREAD: u8 = 116;
    pub const TWRITE: u8 = 118;
    pub const TCLUNK: u8 = 120;
    pub const TREMOVE: u8 = 122;
}

/// One framed message as read: its type, tag and field bytes.
#[derive(Debug)]
pub struct Frame {
    pub kind: u8,
    pub tag: u16,
    pub body: Vec<u8>,
}

/// Reads one frame; `None` at a clean end of stream. Frames over `max` bytes are refused.
pub fn read_frame(r: &mut impl Read, max: u32) -> io::Result<Option<Frame>> {
    let mut size = [0u8; 4];
    match r.read_exact(&mut size) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let size = u32::from_le_bytes(size);
    if !(HEADER..=max).contains(&size) {
        return Err(invalid(format!("9p frame of {size} bytes")));
    }
    let mut rest = vec![0u8; size as usize - 4];
    r.read_exact(&mut rest)?;
    let body = rest.split_off(3);
    Ok(Some(Frame {
        kind: rest[0],
        tag: u16::from_le_bytes([rest[1], rest[2]]),
        body,
    }))
}

/// Writes a reply of `kind` with `body` as its fields.
pub fn write_frame(w: &mut impl Write, kind: u8, tag: u16, body: &[u8]) -> io::Result<()> {
    let size = HEADER + body.len() as u32;
    let mut out = Vec::with_capacity(size as usize);
    out.extend_from_slice(&size.to_le_bytes());
    out.push(kind);
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(body);
    w.write_all(&out)?;
    w.flush()
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Little-endian field reader over a message body.
pub struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Fields(b)
    }

    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(invalid("9p message too short".into()));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }

    pub fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub fn u16(&mut self) -> io::Result<u16> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }

    pub fn u32(&mut self) -> io::Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    pub fn u64(&mut self) -> io::Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    pub fn str(&mut self) -> io::Result<String> {
        let n = self.u16()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| invalid("9p string not UTF-8".into()))
    }

    pub fn bytes(&mut self, n: usize) -> io::Result<Vec<u8>> {
        Ok(self.take(n)?.to_vec())
    }

    pub fn qid(&mut self) -> io::Result<Qid> {
        Ok(Qid {
            kind: self.u8()?,
            version: self.u32()?,
            path: self.u64()?,
        })
    }
}

/// Little-endian field writer for a message body.
#[derive(Default)]
pub struct Out(pub Vec<u8>);

impl Out {
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }

    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A string; longer than a 9p string can be is cut at a character boundary.
    pub fn str(&mut self, s: &str) -> &mut Self {
        let mut n = s.len().min(u16::MAX as usize);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.u16(n as u16);
        self.0.extend_from_slice(&s.as_bytes()[..n]);
        self
    }

    pub fn qid(&mut self, q: Qid) -> &mut Self {
        self.u8(q.kind).u32(q.version).u64(q.path)
    }
}

/// Why a request frame did not decode: the server answers EOPNOTSUPP for a type it does not
/// know and EINVAL for a known one whose fields are short or malformed.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("9p message type {0} is not one this server decodes")]
    UnknownType(u8),
    #[error("malformed 9p message: {0}")]
    Malformed(#[from] io::Error),
}

/// Decodes a request frame's fields.
pub fn decode(f: &Frame) -> Result<Request, DecodeError> {
    use kind::*;
    let mut b = Fields::new(&f.body);
    Ok(match f.kind {
        TVERSION => Request::Version {
            msize: b.u32()?,
            version: b.str()?,
        },
        TATTACH => {
            let fid = b.u32()?;
            let _afid = b.u32()?;
            Request::Attach {
                fid,
                uname: b.str()?,
                aname: b.str()?,
                n_uname: b.u32()?,
            }
        }
        TAUTH => Request::Auth,
        TFLUSH => Request::Flush,
        TWALK => {
            let fid = b.u32()?;
            let newfid = b.u32()?;
            let n = b.u16()?;
            let names = (0..n).map(|_| b.str()).collect::<io::Result<_>>()?;
            Request::Walk { fid, newfid, names }
        }
        TCLUNK => Request::Clunk { fid: b.u32()? },
        TREMOVE => Request::Remove { fid: b.u32()? },
        TSTATFS => Request::Statfs { fid: b.u32()? },
        TLOPEN => Request::Lopen {
            fid: b.u32()?,
            flags: b.u32()?,
        },
        TLCREATE => Request::Lcreate {
            fid: b.u32()?,
            name: b.str()?,
            flags: b.u32()?,
            mode: b.u32()?,
        },
        TSYMLINK => Request::Symlink {
            fid: b.u32()?,
            name: b.str()?,
            target: b.str()?,
        },
        TMKNOD => Request::Mknod,
        TRENAME => Request::Rename {
            fid: b.u32()?,
            dfid: b.u32()?,
            name: b.str()?,
        },
        TREADLINK => Request::Readlink { fid: b.u32()? },
        TGETATTR => Request::Getattr {
            fid: b.u32()?,
            mask: b.u64()?,
        },
        TSETATTR => Request::Setattr {
            fid: b.u32()?,
            attr: SetAttr {
                valid: b.u32()?,
                mode: b.u32()?,
                uid: b.u32()?,
                gid: b.u32()?,
                size: b.u64()?,
                atime: (b.u64()?, b.u64()?),
                mtime: (b.u64()?, b.u64()?),
            },
        },
        TXATTRWALK => Request::Xattrwalk,
        TXATTRCREATE => Request::Xattrcreate,
        TREADDIR => Request::Readdir {
            fid: b.u32()?,
            offset: b.u64()?,
            count: b.u32()?,
        },
        TFSYNC => Request::Fsync { fid: b.u32()? },
        TLOCK => Request::Lock,
        TGETLOCK => Request::Getlock {
            fid: b.u32()?,
            kind: b.u8()?,
            start: b.u64()?,
            length: b.u64()?,
            proc_id: b.u32()?,
            client: b.str()?,
        },
        TLINK => Request::Link {
            dfid: b.u32()?,
            fid: b.u32()?,
            name: b.str()?,
        },
        TMKDIR => Request::Mkdir {
            dfid: b.u32()?,
            name: b.str()?,
            mode: b.u32()?,
        },
        TRENAMEAT => Request::Renameat {
            olddir: b.u32()?,
            oldname: b.str()?,
            newdir: b.u32()?,
            newname: b.str()?,
        },
        TUNLINKAT => Request::Unlinkat {
            dir: b.u32()?,
            name: b.str()?,
            flags: b.u32()?,
        },
        TREAD => Request::Read {
            fid: b.u32()?,
            offset: b.u64()?,
            count: b.u32()?,
        },
        TWRITE => {
            let fid = b.u32()?;
            let offset = b.u64()?;
            let n = b.u32()? as usize;
            Request::Write {
                fid,
                offset,
                data: b.bytes(n)?,
            }
        }
        other => return Err(DecodeError::UnknownType(other)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_round_trips_and_a_walk_decodes() {
        let mut body = Out::default();
        body.u32(1).u32(2).u16(2).str("a").str("b");
        let mut wire = Vec::new();
        write_frame(&mut wire, kind::TWALK, 9, &body.0).unwrap();
        let f = read_frame(&mut wire.as_slice(), 1024).unwrap().unwrap();
        assert_eq!((f.kind, f.tag), (kind::TWALK, 9));
        assert_eq!(
            decode(&f).unwrap(),
            Request::Walk {
                fid: 1,
                newfid: 2,
                names: vec!["a".into(), "b".into()]
            }
        );
    }

    #[test]
    fn short_oversized_and_unknown_frames_are_errors() {
        let f = Frame {
            kind: kind::TREAD,
            tag: 1,
            body: vec![1, 2],
        };
        assert!(matches!(decode(&f), Err(DecodeError::Malformed(_))));
        let huge = 2048u32.to_le_bytes();
        assert!(read_frame(&mut huge.as_slice(), 1024).is_err());
        let f = Frame {
            kind: 250,
            tag: 1,
            body: vec![],
        };
        assert!(matches!(decode(&f), Err(DecodeError::UnknownType(250))));
        assert!(read_frame(&mut [].as_slice(), 1024).unwrap().is_none());
    }

    #[test]
    fn long_strings_are_cut_on_a_character_boundary() {
        let s = "é".repeat(40_000);
        let mut o = Out::default();
        o.str(&s);
        let mut f = Fields::new(&o.0);
        let back = f.str().unwrap();
        assert!(back.len() <= u16::MAX as usize && back.chars().all(|c| c == 'é'));
    }
}
