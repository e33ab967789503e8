//! Stream framing shared by attach, exec and logs: Docker's multiplexed frames and the
//! server-side detach-key scanner.

/// Stream ids of multiplexed frames.
pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const SYSTEMERR: u8 = 3;

/// The 8-byte header `[stream, 0, 0, 0, len u32 BE]`.
pub fn frame_header(stream: u8, len: usize) -> [u8; 8] {
    let l = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
    [stream, 0, 0, 0, l[0], l[1], l[2], l[3]]
}

/// A whole frame.
pub fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + data.len());
    v.extend_from_slice(&frame_header(stream, data.len()));
    v.extend_from_slice(data);
    v
}

/// `data` as a frame of `stream` when `mux`, else as it is (a raw stream).
pub fn framed(mux: bool, stream: u8, data: &[u8]) -> Vec<u8> {
    if mux {
        frame(stream, data)
    } else {
        data.to_vec()
    }
}

/// Parses `detachKeys` (`ctrl-p,ctrl-q`, `a`, `ctrl-@` …) into bytes.
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>, String> {
    if s.is_empty() {
        return Ok(vec![0x10, 0x11]);
    }
    let mut out = vec![];
    for key in s.split(',') {
        let k = key.trim();
        if let Some(c) = k.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [b] if b.is_ascii_lowercase() => b - b'a' + 1,
                [b'@'] => 0,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => return Err(format!("Unknown character: '{k}'")),
            };
            out.push(b);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return Err(format!("Unknown character: '{k}'"));
        }
    }
    Ok(out)
}

/// Scans stdin for the detach sequence. Bytes that might start the sequence are held back
/// until it is clear they do not.
#[derive(Debug, Clone)]
pub struct DetachScanner {
    keys: Vec<u8>,
    matched: usize,
}

/// What a chunk of stdin amounts to.
#[derive(Debug, PartialEq)]
pub enum Scan {
    /// Forward these bytes.
    Data(Vec<u8>),
    /// The sequence was typed: forward these bytes (typed before it), then detach.
    Detach(Vec<u8>),
}

impl DetachScanner {
    pub fn new(keys: Vec<u8>) -> Self {
        Self { keys, matched: 0 }
    }

    pub fn feed(&mut self, input: &[u8]) -> Scan {
        let mut out = Vec::with_capacity(input.len());
        if self.keys.is_empty() {
            out.extend_from_slice(input);
            return Scan::Data(out);
        }
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return Scan::Detach(out);
                }
            } else {
                out.extend_from_slice(&self.keys[..self.matched]);
                self.matched = 0;
                if b == self.keys[0] {
                    self.matched = 1;
                } else {
                    out.push(b);
                }
            }
        }
        Scan::Data(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_docker_header() {
        assert_eq!(frame(STDERR, b"hi"), [2, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']);
        assert_eq!(frame_header(STDOUT, 258), [1, 0, 0, 0, 0, 0, 1, 2]);
    }

    #[test]
    fn detach_keys_parse() {
        assert_eq!(parse_detach_keys("").unwrap(), [16, 17]);
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), [16, 17]);
        assert_eq!(parse_detach_keys("ctrl-a,x").unwrap(), [1, b'x']);
        assert!(parse_detach_keys("ctrl-1").is_err());
        assert!(parse_detach_keys("abc").is_err());
    }

    #[test]
    fn scanner_detaches_across_chunks_and_passes_false_starts() {
        let mut s = DetachScanner::new(vec![16, 17]);
        assert_eq!(s.feed(b"ab\x10"), Scan::Data(b"ab".to_vec()));
        assert_eq!(s.feed(b"c"), Scan::Data(b"\x10c".to_vec()));
        assert_eq!(s.feed(b"x\x10"), Scan::Data(b"x".to_vec()));
        assert_eq!(s.feed(b"\x11rest"), Scan::Detach(vec![]));
        let mut s = DetachScanner::new(vec![16, 17]);
        assert_eq!(s.feed(b"\x10\x10\x11"), Scan::Detach(b"\x10".to_vec()));
    }
}
