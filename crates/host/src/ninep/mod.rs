//! Shared folders over 9P2000.L, for hosts without virtiofsd (Windows: QEMU there has no
//! vhost-user). The host serves each share's folder as a 9P file server on a connection to the
//! guest's SHARE_PORT, whose socket the agent hands to the kernel's 9p client
//! (`mount -t 9p -o trans=fd`), as WSL 2 serves Windows drives to its VM.
//!
//! Hand-written rather than taken from a crate: the published Rust 9P server crates are
//! unix-only (they call `nix`/`libc` for every operation) and serve sockets they open themselves, while
//! this one must run on Windows and over a stream it is given. It speaks only 9P2000.L, only
//! the messages the Linux client sends, with path-based fids over `std::fs`.
//!
//! - [`wire`]: framing and decoding;
//! - [`server`]: fids and file operations, the request loop; [`stream`], on a guest connection;
//! - [`attr`]: attributes to and from the host's;
//! - [`ids`]: qid paths; [`errno`]: Linux error numbers.

pub mod attr;
pub mod errno;
pub mod ids;
pub mod server;
pub mod stream;
pub mod wire;

pub use server::Server;

#[cfg(test)]
mod tests;
