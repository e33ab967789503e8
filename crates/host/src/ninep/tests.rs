//! The server driven as the Linux client drives it, against a temporary folder (on Windows
//! too: the cross-platform run executes these under wine).

use std::fs;

use super::errno::{EBADF, EINVAL, ENOENT, EOPNOTSUPP};
use super::server::{Server, MAX_MSIZE};
use super::wire::{self, kind, Fields, Frame, Out, QT_DIR, QT_FILE};

const O_RDONLY: u32 = 0;
const O_RDWR: u32 = 2;
const O_CREAT: u32 = 0o100;

/// A client talking to a server in the same thread.
struct Client {
    srv: Server,
    tag: u16,
}

impl Client {
    fn new(root: &std::path::Path) -> Self {
        let mut c = Client {
            srv: Server::new(root.to_path_buf()),
            tag: 0,
        };
        let mut v = Out::default();
        v.u32(65536).str("9P2000.L");
        let r = c.ok(kind::TVERSION, v);
        assert_eq!(Fields::new(&r).u32().unwrap(), 65536);
        let mut a = Out::default();
        a.u32(1).u32(u32::MAX).str("root").str("").u32(0);
        let r = c.ok(kind::TATTACH, a);
        assert_eq!(Fields::new(&r).qid().unwrap().kind, QT_DIR);
        c
    }

    /// Sends a request; the reply's type and fields.
    fn call(&mut self, k: u8, body: Out) -> (u8, Vec<u8>) {
        self.tag += 1;
        let (rk, out) = self.srv.answer(&Frame {
            kind: k,
            tag: self.tag,
            body: body.0,
        });
        (rk, out.0)
    }

    fn ok(&mut self, k: u8, body: Out) -> Vec<u8> {
        let (rk, b) = self.call(k, body);
        assert_eq!(
            rk,
            k + 1,
            "request {k} failed with errno {:?}",
            errno_of(rk, &b)
        );
        b
    }

    fn err(&mut self, k: u8, body: Out) -> u32 {
        let (rk, b) = self.call(k, body);
        errno_of(rk, &b).unwrap_or_else(|| panic!("request {k} succeeded"))
    }

    fn walk(&mut self, fid: u32, newfid: u32, names: &[&str]) -> (u8, Vec<u8>) {
        let mut o = Out::default();
        o.u32(fid).u32(newfid).u16(names.len() as u16);
        for n in names {
            o.str(n);
        }
        self.call(kind::TWALK, o)
    }

    fn fid_op(&mut self, k: u8, fid: u32) -> (u8, Vec<u8>) {
        let mut o = Out::default();
        o.u32(fid);
        self.call(k, o)
    }

    fn names(&mut self, fid: u32, count: u32) -> Vec<String> {
        let mut names = Vec::new();
        let mut offset = 0u64;
        for _ in 0..100 {
            let mut o = Out::default();
            o.u32(fid).u64(offset).u32(count);
            let r = self.ok(kind::TREADDIR, o);
            let mut f = Fields::new(&r);
            let n = f.u32().unwrap() as usize;
            if n == 0 {
                return names;
            }
            let mut e = Fields::new(&r[4..4 + n]);
            while let Ok(_q) = e.qid() {
                offset = e.u64().unwrap();
                let _t = e.u8().unwrap();
                names.push(e.str().unwrap());
            }
        }
        panic!("readdir never ended")
    }
}

fn errno_of(rk: u8, b: &[u8]) -> Option<u32> {
    (rk == kind::RLERROR).then(|| Fields::new(b).u32().unwrap())
}

#[test]
fn create_write_read_rename_and_remove_reach_the_host_folder() {
    let d = tempfile::tempdir().unwrap();
    let mut c = Client::new(d.path());
    assert_eq!(c.walk(1, 2, &[]).0, kind::TWALK + 1);
    let mut o = Out::default();
    o.u32(2)
        .str("a.txt")
        .u32(O_RDWR | O_CREAT)
        .u32(0o644)
        .u32(0);
    let r = c.ok(kind::TLCREATE, o);
    let mut f = Fields::new(&r);
    assert_eq!(f.qid().unwrap().kind, QT_FILE);
    assert_eq!(f.u32().unwrap(), 65536 - wire::IO_HEADER);
    let mut o = Out::default();
    o.u32(2).u64(0).u32(5);
    o.0.extend_from_slice(b"hello");
    assert_eq!(Fields::new(&c.ok(kind::TWRITE, o)).u32().unwrap(), 5);
    let mut o = Out::default();
    o.u32(2).u64(1).u32(100);
    let r = c.ok(kind::TREAD, o);
    assert_eq!(&r[4..], b"ello");
    assert_eq!(fs::read(d.path().join("a.txt")).unwrap(), b"hello");
    c.fid_op(kind::TCLUNK, 2);

    let mut o = Out::default();
    o.u32(1).str("sub").u32(0o755).u32(0);
    c.ok(kind::TMKDIR, o);
    assert!(d.path().join("sub").is_dir());
    let mut o = Out::default();
    o.u32(1).str("a.txt").u32(1).str("b.txt");
    c.ok(kind::TRENAMEAT, o);
    assert!(d.path().join("b.txt").is_file() && !d.path().join("a.txt").exists());

    assert_eq!(c.walk(1, 3, &["b.txt"]).0, kind::TWALK + 1);
    let mut o = Out::default();
    o.u32(3).u64(0x7ff);
    let r = c.ok(kind::TGETATTR, o);
    let mut f = Fields::new(&r);
    let (_valid, _q, _mode) = (f.u64(), f.qid(), f.u32());
    let (_uid, _gid, _nlink, _rdev) = (f.u32(), f.u32(), f.u64(), f.u64());
    assert_eq!(f.u64().unwrap(), 5, "size");

    let mut o = Out::default();
    o.u32(1).str("b.txt").u32(0);
    c.ok(kind::TUNLINKAT, o);
    let mut o = Out::default();
    o.u32(1).str("sub").u32(0x200);
    c.ok(kind::TUNLINKAT, o);
    assert_eq!(fs::read_dir(d.path()).unwrap().count(), 0);
}

#[test]
fn readdir_pages_through_every_entry_once() {
    let d = tempfile::tempdir().unwrap();
    for i in 0..50 {
        fs::write(d.path().join(format!("file-{i:02}")), b"x").unwrap();
    }
    let mut c = Client::new(d.path());
    c.walk(1, 2, &[]);
    let mut o = Out::default();
    o.u32(2).u32(O_RDONLY);
    c.ok(kind::TLOPEN, o);
    // Room for a handful of entries per reply: the client comes back with the last offset.
    let mut names = c.names(2, 200);
    names.sort();
    let mut want: Vec<String> = (0..50).map(|i| format!("file-{i:02}")).collect();
    want.extend([".".to_string(), "..".to_string()]);
    want.sort();
    assert_eq!(names, want);
}

#[test]
fn walks_stay_below_the_root_and_bad_names_are_refused() {
    let d = tempfile::tempdir().unwrap();
    fs::create_dir(d.path().join("sub")).unwrap();
    let mut c = Client::new(d.path());
    // `..` from the root is the root.
    let (k, r) = c.walk(1, 2, &["..", "sub"]);
    assert_eq!(k, kind::TWALK + 1);
    assert_eq!(Fields::new(&r).u16().unwrap(), 2);
    // A first name that is missing fails; a later one answers the qids so far, no new fid.
    let (k, r) = c.walk(1, 3, &["nope"]);
    assert_eq!(errno_of(k, &r), Some(ENOENT));
    let (k, r) = c.walk(1, 4, &["sub", "nope"]);
    assert_eq!(k, kind::TWALK + 1);
    assert_eq!(Fields::new(&r).u16().unwrap(), 1);
    let (k, r) = c.fid_op(kind::TCLUNK, 4);
    assert_eq!(errno_of(k, &r), Some(EBADF));
    let mut o = Out::default();
    o.u32(1).str("x/y").u32(O_RDWR | O_CREAT).u32(0o644).u32(0);
    assert_eq!(c.err(kind::TLCREATE, o), EINVAL);
    let mut o = Out::default();
    o.u32(1).str("..").u32(0);
    assert_eq!(c.err(kind::TUNLINKAT, o), EINVAL);
    assert!(d.path().join("sub").is_dir());
    // A short request of a known type is invalid; a type the server does not know is
    // unsupported (the client then falls back, as for Tmknod).
    let mut o = Out::default();
    o.u32(1);
    assert_eq!(c.err(kind::TREAD, o), EINVAL);
    assert_eq!(c.err(250, Out::default()), EOPNOTSUPP);
}

#[cfg(unix)]
#[test]
fn symlinks_are_read_not_followed() {
    let d = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/etc", d.path().join("out")).unwrap();
    let mut c = Client::new(d.path());
    assert_eq!(c.walk(1, 2, &["out"]).0, kind::TWALK + 1);
    let (k, r) = c.fid_op(kind::TREADLINK, 2);
    assert_eq!(k, kind::TREADLINK + 1);
    assert_eq!(Fields::new(&r).str().unwrap(), "/etc");
    // Through the link would leave the share: the client must resolve it itself.
    let (k, r) = c.walk(1, 3, &["out", "passwd"]);
    assert_eq!(k, kind::TWALK + 1);
    assert_eq!(Fields::new(&r).u16().unwrap(), 1, "stopped at the link");
}

#[test]
fn serve_answers_every_frame_in_order_until_the_stream_ends() {
    let d = tempfile::tempdir().unwrap();
    let mut input = Vec::new();
    let mut v = Out::default();
    v.u32(MAX_MSIZE * 2).str("9P2000.L");
    wire::write_frame(&mut input, kind::TVERSION, 0xffff, &v.0).unwrap();
    let mut a = Out::default();
    a.u32(1).u32(u32::MAX).str("").str("").u32(0);
    wire::write_frame(&mut input, kind::TATTACH, 1, &a.0).unwrap();
    wire::write_frame(&mut input, 250, 2, &[]).unwrap();
    let mut output = Vec::new();
    Server::new(d.path().to_path_buf())
        .serve(input.as_slice(), &mut output)
        .unwrap();
    let mut r = output.as_slice();
    let v = wire::read_frame(&mut r, MAX_MSIZE).unwrap().unwrap();
    assert_eq!((v.kind, v.tag), (kind::TVERSION + 1, 0xffff));
    assert_eq!(
        Fields::new(&v.body).u32().unwrap(),
        MAX_MSIZE,
        "msize capped"
    );
    let a = wire::read_frame(&mut r, MAX_MSIZE).unwrap().unwrap();
    assert_eq!((a.kind, a.tag), (kind::TATTACH + 1, 1));
    let e = wire::read_frame(&mut r, MAX_MSIZE).unwrap().unwrap();
    assert_eq!((e.kind, e.tag), (kind::RLERROR, 2));
    assert!(wire::read_frame(&mut r, MAX_MSIZE).unwrap().is_none());
}
