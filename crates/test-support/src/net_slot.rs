//! Per-engine network slots: a bridge name and subnet no other test on this machine uses at
//! the same time, claimed with an flock that the kernel releases if the test dies.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;

/// A claimed slot; the claim lasts as long as this value.
pub struct NetSlot {
    /// The bridge's name (`btN`).
    pub bridge: String,
    /// The bridge's address and prefix (`10.231.N.1/24`).
    pub bip: String,
    _lock: File,
}

impl NetSlot {
    /// Claims the first free slot.
    pub fn claim() -> NetSlot {
        let dir = std::env::temp_dir().join("berth-test-net-slots");
        std::fs::create_dir_all(&dir).expect("slot dir");
        for n in 0..250u32 {
            let f = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(dir.join(format!("{n}.lock")))
                .expect("slot lock file");
            // SAFETY: flock on an fd we own; no memory is involved.
            let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if r == 0 {
                return NetSlot {
                    bridge: format!("bt{n}"),
                    bip: format!("10.231.{n}.1/24"),
                    _lock: f,
                };
            }
        }
        panic!("no free test network slot");
    }
}
