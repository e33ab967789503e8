//! The engine connection: which socket ([`socket`]) and the Docker client on it ([`client`]).

pub mod client;
pub mod socket;

pub use client::Engine;
pub use socket::{resolve, SocketChoice, SocketSource};
