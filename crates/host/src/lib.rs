//! berth-host: runs Berth's VM and connects the host to it.
//!
//! - [`state`]: the state directory (`~/.berth`) and what lives where;
//! - [`boot`]: start phases with their times, and why a VM stopped early;
//! - [`config`]: CPUs, memory, disk size, shares, image location;
//! - [`daemon_json`]: the engine's `daemon.json`, checked and passed to the guest;
//! - [`vm`]: the [`vm::Hypervisor`] seam with the QEMU back-ends (Linux; Windows with WHPX;
//!   macOS: see `docs/design/host.md`);
//! - [`disk`]: the qcow2 data disk, and [`usage`], where its space goes;
//! - [`helpers`]: vhost-device-vsock and virtiofsd processes;
//! - [`memory`]: the VM's memory as the host and the guest see it;
//! - [`control`]: the host end of the control protocol, and [`control_endpoint`], the
//!   supervisor's own (one-off guest requests and `berth stop` from other processes);
//! - [`engine_restart`]: restarting the guest's engine without the VM;
//! - [`api`]: plain requests to a Docker API (whole bodies, JSON-lines progress);
//! - [`docker_context`]: the docker CLI's contexts (list, switch, the `berth` one);
//! - [`reset`]: back to factory defaults (what it deletes, and deleting it);
//! - [`endpoint`]: where the Docker API is served (unix socket, or named pipe on Windows);
//! - [`forward`]: the Docker endpoint and published ports over multiplexed vsock;
//! - [`share`]: host file events under shared folders; [`share_mount`], mounting them in the
//!   guest; [`ninep`], shares served over 9P;
//! - [`system_socket`]: the opt-in `/var/run/docker.sock` link (unix);
//! - [`supervisor`]: the daemon that owns all of the above and restarts a dead VM.

pub mod api;
pub mod boot;
pub mod config;
pub mod control;
pub mod control_endpoint;
pub mod daemon_json;
pub mod disk;
pub mod docker_context;
pub mod doctor;
pub mod endpoint;
pub mod engine_restart;
pub mod error;
pub mod forward;
pub mod helpers;
pub mod idle;
pub mod memory;
pub mod ninep;
pub mod process;
pub mod reset;
pub mod share;
pub mod share_mount;
pub mod state;
pub mod supervisor;
#[cfg(unix)]
pub mod system_socket;
pub mod usage;
pub mod vm;

pub use config::Config;
pub use error::HostError;
pub use state::StateDir;
