//! The per-container monitor (`berth-agent shim <config.json>`): holds the container's stdio
//! and exit status so containers outlive the engine.
//!
//! Life of a shim (synchronous, std + nix only):
//! 1. the engine writes a [`ShimConfig`] and spawns `berth-agent shim <file>` with its stdout
//!    on a pipe; the shim calls `setsid`, becomes child subreaper, mounts the rootfs, binds its
//!    control socket and prepares the container's stdio (pipes, or a console socket for a TTY);
//! 2. it reports `ok 0` (or `error <msg>`) on stdout and closes it;
//! 3. the engine connects pending attaches, then sends `start`; only then the shim runs the
//!    runtime's `run --detach` (one runtime process instead of `create` + `start`), so no early
//!    output is lost; the container's init is reparented to the shim, which reaps it;
//! 4. output goes to the json-file log and to every attached client; when the container's init
//!    exits the shim drains the output, writes the exit file atomically, answers `wait`ers,
//!    then deletes the runtime container, unmounts the rootfs, removes its socket and exits
//!    (the engine waits for a live socket to go before it starts the container again).
//!
//! The engine reaches shims through the [`Shims`] seam ([`seam`]), so tests can run fake ones;
//! the shim process itself uses the real runtime and mounts.
//!
//! Control protocol (one request line per connection, see [`Request`], one reply line, see
//! [`Reply`]): `hello` → `berth-shim <version>` ([`PROTOCOL_VERSION`]); `attach <stdin>
//! <stdout> <stderr>` → `ok`, then output (raw for a TTY, else Docker's multiplexed frames)
//! and stdin the other way; `start` → `ok <pid>` | `error <msg>`; `resize <h> <w>` → `ok`;
//! `wait` → `exit <code>` once the container has exited. Shims outlive engine restarts and
//! upgrades, so an engine may meet an older shim: version 0 (before `hello`) answers it with
//! `error unknown request`, which [`Reply::version`] reads as 0. The lines of every version
//! are pinned by a golden test (`testdata/protocol.golden`).

pub mod client;
pub(crate) mod console;
pub mod jsonlog;
mod monitor;
pub mod seam;

pub use seam::{HostShims, Shim, Shims};

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::mount::RootfsMount;
use crate::runtime::RuntimeSpec;

/// Everything a shim needs, written by the engine next to the bundle.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ShimConfig {
    pub id: String,
    pub bundle: PathBuf,
    pub runtime: RuntimeSpec,
    pub rootfs: Option<RootfsMount>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub log_path: PathBuf,
    /// Rotate when the log would exceed this many bytes (0: never).
    pub log_max_size: u64,
    /// Files kept including the current one (at least 1).
    pub log_max_files: u32,
    pub socket: PathBuf,
    pub exit_file: PathBuf,
    pub console_size: Option<(u16, u16)>,
}

/// Written atomically by the shim when the container's init has exited.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExitRecord {
    pub exit_code: i32,
    pub finished_at: String,
    #[serde(default)]
    pub oom_killed: bool,
}

/// The control protocol's version this engine's shims speak (see the module doc).
pub const PROTOCOL_VERSION: u32 = 1;

/// A control request, one line.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Asks the shim for its protocol version (since 1).
    Hello,
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    Start,
    Resize {
        height: u16,
        width: u16,
    },
    Wait,
}

impl Request {
    pub fn encode(&self) -> String {
        let b = |x: bool| u8::from(x);
        match self {
            Request::Hello => "hello\n".into(),
            Request::Attach {
                stdin,
                stdout,
                stderr,
            } => format!("attach {} {} {}\n", b(*stdin), b(*stdout), b(*stderr)),
            Request::Start => "start\n".into(),
            Request::Resize { height, width } => format!("resize {height} {width}\n"),
            Request::Wait => "wait\n".into(),
        }
    }

    pub fn parse(line: &str) -> Option<Request> {
        let mut it = line.split_whitespace();
        let verb = it.next()?;
        let mut num = || it.next().and_then(|s| s.parse::<u16>().ok());
        Some(match verb {
            "hello" => Request::Hello,
            "attach" => Request::Attach {
                stdin: num()? == 1,
                stdout: num()? == 1,
                stderr: num()? == 1,
            },
            "start" => Request::Start,
            "resize" => Request::Resize {
                height: num()?,
                width: num()?,
            },
            "wait" => Request::Wait,
            _ => return None,
        })
    }
}

/// A control reply, one line.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `berth-shim <version>`: the answer to [`Request::Hello`].
    Hello { version: u32 },
    /// `ok`, or `ok <pid>` after a start.
    Ok { pid: Option<i32> },
    /// `exit <code>`: the answer to [`Request::Wait`].
    Exit { code: i32 },
    /// `error <message>` (one line: newlines become spaces).
    Error { message: String },
}

impl Reply {
    pub fn encode(&self) -> String {
        match self {
            Reply::Hello { version } => format!("berth-shim {version}\n"),
            Reply::Ok { pid: None } => "ok\n".into(),
            Reply::Ok { pid: Some(p) } => format!("ok {p}\n"),
            Reply::Exit { code } => format!("exit {code}\n"),
            Reply::Error { message } => format!("error {}\n", message.replace('\n', " ")),
        }
    }

    /// Parses a reply line (without its newline); `None` for anything else.
    pub fn parse(line: &str) -> Option<Reply> {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        Some(match word {
            "berth-shim" => Reply::Hello {
                version: rest.parse().ok()?,
            },
            "ok" if rest.is_empty() => Reply::Ok { pid: None },
            "ok" => Reply::Ok {
                pid: Some(rest.parse().ok()?),
            },
            "exit" => Reply::Exit {
                code: rest.parse().ok()?,
            },
            "error" => Reply::Error {
                message: rest.to_string(),
            },
            _ => return None,
        })
    }

    /// The protocol version a reply to `hello` shows: a shim of version 0 refuses the request.
    pub fn version(&self) -> Option<u32> {
        match self {
            Reply::Hello { version } => Some(*version),
            Reply::Error { message } if message == "unknown request" => Some(0),
            _ => None,
        }
    }
}

/// Entry point of `berth-agent shim <config>`; returns the process exit code.
pub fn main(args: &[String]) -> i32 {
    let Some(path) = args.first() else {
        eprintln!("usage: berth-agent shim <config.json>");
        return 2;
    };
    match monitor::run(std::path::Path::new(path)) {
        Ok(()) => 0,
        Err(e) => {
            monitor::log_line(&format!("berth-agent shim: {e}"));
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One request of each kind.
    fn every_request() -> [Request; 5] {
        [
            Request::Hello,
            Request::Attach {
                stdin: true,
                stdout: true,
                stderr: false,
            },
            Request::Start,
            Request::Resize {
                height: 24,
                width: 80,
            },
            Request::Wait,
        ]
    }

    #[test]
    fn requests_round_trip() {
        for r in every_request() {
            assert_eq!(Request::parse(r.encode().trim_end()), Some(r));
        }
        assert_eq!(Request::parse("bogus"), None);
        assert_eq!(Request::parse("resize x"), None);
    }

    /// Every line of the protocol, as the shims that are running today write and read them:
    /// a change here breaks engines talking to shims that outlived them. Bump
    /// [`PROTOCOL_VERSION`] and keep the old lines readable instead.
    #[test]
    fn lines_match_the_golden_file() {
        let replies = [
            Reply::Hello {
                version: PROTOCOL_VERSION,
            },
            Reply::Ok { pid: None },
            Reply::Ok { pid: Some(4242) },
            Reply::Exit { code: 137 },
            Reply::Error {
                message: "exec: \"x\": executable file not found\nin $PATH".into(),
            },
        ];
        let mut text = String::new();
        for r in every_request() {
            text += &format!("request {}", r.encode());
        }
        for r in &replies {
            let line = r.encode();
            let back = Reply::parse(line.trim_end()).expect("parses");
            if let Reply::Error { message } = r {
                assert_eq!(
                    back,
                    Reply::Error {
                        message: message.replace('\n', " ")
                    }
                );
            } else {
                assert_eq!(&back, r);
            }
            text += &format!("reply {line}");
        }
        let golden = include_str!("testdata/protocol.golden");
        assert_eq!(text, golden, "the shim protocol's lines changed");
    }

    #[test]
    fn a_shim_before_hello_is_version_0() {
        let old = Reply::parse("error unknown request").unwrap();
        assert_eq!(old.version(), Some(0));
        assert_eq!(Reply::parse("berth-shim 1").unwrap().version(), Some(1));
        assert_eq!(Reply::parse("ok").unwrap().version(), None);
        assert_eq!(Reply::parse("ok x"), None);
        assert_eq!(Reply::parse("nonsense"), None);
    }
}
