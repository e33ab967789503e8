//! The OCI runtime seam: runc and crun behind one narrow, synchronous trait.
//!
//! Both the engine (through `spawn_blocking`) and the synchronous shim use it. Back-ends:
//! [`cli::OciCli`], which execs a runc-compatible binary (runc, crun).

pub mod cgroup;
pub mod cgroup_stats;
pub mod cli;
pub mod seccomp;
pub mod spec;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::Result;

/// How to reach a runtime: its binary, state root and extra global arguments.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RuntimeSpec {
    pub name: String,
    pub path: PathBuf,
    pub root: PathBuf,
    #[serde(default)]
    pub args: Vec<String>,
}

/// The runtime's view of a container (`runc state`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct RuntimeState {
    pub id: String,
    #[serde(default)]
    pub pid: i64,
    pub status: String,
}

/// Options of `create`.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub pid_file: PathBuf,
    pub console_socket: Option<PathBuf>,
    /// File the runtime logs to (JSON lines), read back for error messages.
    pub log_file: Option<PathBuf>,
}

/// Options of `exec`.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub process_file: PathBuf,
    /// The process has a terminal: the runtime (not detached) makes the pty in the container
    /// and copies between it and its own stdio, which the caller makes a pty of its own.
    pub tty: bool,
    pub log_file: Option<PathBuf>,
}

/// The operations Berth needs from an OCI runtime. `create` and `exec` return the command to
/// spawn, so the caller wires stdio; the others run to completion.
pub trait Runtime: Send + Sync {
    fn name(&self) -> &str;
    fn create_command(&self, id: &str, bundle: &Path, opts: &CreateOptions) -> Command;
    /// `run --detach`: create and start in one go; the caller reaps the init (subreaper).
    fn run_command(&self, id: &str, bundle: &Path, opts: &CreateOptions) -> Command;
    fn start(&self, id: &str) -> Result<()>;
    fn kill(&self, id: &str, signal: i32, all: bool) -> Result<()>;
    fn delete(&self, id: &str, force: bool) -> Result<()>;
    fn state(&self, id: &str) -> Result<RuntimeState>;
    fn pause(&self, id: &str) -> Result<()>;
    fn resume(&self, id: &str) -> Result<()>;
    fn exec_command(&self, id: &str, opts: &ExecOptions) -> Command;
    /// Changes the limits of a running container (`runc update`).
    fn update(&self, id: &str, resources: &oci_spec::runtime::LinuxResources) -> Result<()>;
    /// Host pids of the container's processes.
    fn ps(&self, id: &str) -> Result<Vec<i32>>;
}

/// Picks the back-end for a runtime spec. Every runtime Berth knows speaks runc's CLI.
pub fn for_spec(spec: &RuntimeSpec) -> Box<dyn Runtime> {
    Box::new(cli::OciCli::new(spec.clone()))
}

/// The engine's seam to the OCI runtimes: makes the back-end for a runtime spec. Injected once
/// at [`crate::Engine::open_with`]; tests give a fake that records what it was asked.
pub trait Runtimes: Send + Sync {
    fn for_spec(&self, spec: &RuntimeSpec) -> Box<dyn Runtime>;
}

/// The real runtimes: runc-compatible binaries ([`for_spec`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct OciRuntimes;

impl Runtimes for OciRuntimes {
    fn for_spec(&self, spec: &RuntimeSpec) -> Box<dyn Runtime> {
        for_spec(spec)
    }
}
