//! A runtime reached through a runc-compatible command line (runc, crun).

use std::path::Path;
use std::process::{Command, Stdio};

use oci_spec::runtime::LinuxResources;

use super::{CreateOptions, ExecOptions, Runtime, RuntimeSpec, RuntimeState};
use crate::{EngineError, Result};

/// Runs `<path> --root <root> [args] <verb> …`.
pub struct OciCli {
    spec: RuntimeSpec,
}

impl OciCli {
    pub fn new(spec: RuntimeSpec) -> Self {
        Self { spec }
    }

    fn base(&self, log_file: Option<&Path>) -> Command {
        let mut c = Command::new(&self.spec.path);
        c.arg("--root").arg(&self.spec.root);
        if let Some(l) = log_file {
            c.arg("--log").arg(l).arg("--log-format").arg("json");
        }
        c.args(&self.spec.args);
        c
    }

    /// `create` or `run --detach`: the verbs that make a container from a bundle.
    fn launch_command(
        &self,
        verb: &[&str],
        id: &str,
        bundle: &Path,
        opts: &CreateOptions,
    ) -> Command {
        let mut c = self.base(opts.log_file.as_deref());
        c.args(verb).arg("--bundle").arg(bundle);
        c.arg("--pid-file").arg(&opts.pid_file);
        if let Some(s) = &opts.console_socket {
            c.arg("--console-socket").arg(s);
        }
        c.arg(id);
        c
    }

    fn run(&self, args: &[&str]) -> Result<Vec<u8>> {
        self.run_with_input(args, None)
    }

    /// Runs a verb to completion, with `input` on its stdin when given.
    fn run_with_input(&self, args: &[&str], input: Option<&[u8]>) -> Result<Vec<u8>> {
        let spawn_err = |e: std::io::Error| {
            EngineError::internal(format!("failed to run {}: {e}", self.spec.path.display()))
        };
        let mut cmd = self.base(None);
        cmd.args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(spawn_err)?;
        if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
            use std::io::Write;
            // A runtime that fails early closes its stdin; its stderr says why.
            let _ = stdin.write_all(data);
        }
        let out = child.wait_with_output().map_err(spawn_err)?;
        if out.status.success() {
            return Ok(out.stdout);
        }
        let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(runtime_error(&self.spec.name, args[0], &msg))
    }
}

/// Maps a runtime failure to an engine error; "does not exist" is NotFound, "not running" and
/// "not paused" are Conflicts.
fn runtime_error(name: &str, verb: &str, msg: &str) -> EngineError {
    let text = format!("{name} {verb} failed: {}", last_message(msg));
    if msg.contains("does not exist") || msg.contains("not found") {
        EngineError::not_found(text)
    } else if msg.contains("not running") || msg.contains("not paused") || msg.contains("paused") {
        EngineError::conflict(text)
    } else {
        EngineError::internal(text)
    }
}

/// The useful part of runc's stderr or JSON log: the last `msg`, or the last line.
pub fn last_message(text: &str) -> String {
    let mut last = "";
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        last = line;
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(last) {
        if let Some(m) = v.get("msg").and_then(|m| m.as_str()) {
            return m.to_string();
        }
    }
    last.trim_start_matches("time=").to_string()
}

impl Runtime for OciCli {
    fn name(&self) -> &str {
        &self.spec.name
    }

    fn create_command(&self, id: &str, bundle: &Path, opts: &CreateOptions) -> Command {
        self.launch_command(&["create"], id, bundle, opts)
    }

    fn run_command(&self, id: &str, bundle: &Path, opts: &CreateOptions) -> Command {
        self.launch_command(&["run", "--detach"], id, bundle, opts)
    }

    fn start(&self, id: &str) -> Result<()> {
        self.run(&["start", id]).map(drop)
    }

    fn kill(&self, id: &str, signal: i32, all: bool) -> Result<()> {
        let sig = signal.to_string();
        if all {
            self.run(&["kill", "--all", id, &sig]).map(drop)
        } else {
            self.run(&["kill", id, &sig]).map(drop)
        }
    }

    fn delete(&self, id: &str, force: bool) -> Result<()> {
        if force {
            self.run(&["delete", "--force", id]).map(drop)
        } else {
            self.run(&["delete", id]).map(drop)
        }
    }

    fn state(&self, id: &str) -> Result<RuntimeState> {
        let out = self.run(&["state", id])?;
        Ok(serde_json::from_slice(&out)?)
    }

    fn pause(&self, id: &str) -> Result<()> {
        self.run(&["pause", id]).map(drop)
    }

    fn resume(&self, id: &str) -> Result<()> {
        self.run(&["resume", id]).map(drop)
    }

    fn exec_command(&self, id: &str, opts: &ExecOptions) -> Command {
        let mut c = self.base(opts.log_file.as_deref());
        c.arg("exec").arg("--process").arg(&opts.process_file);
        if opts.tty {
            c.arg("--tty");
        }
        c.arg(id);
        c
    }

    fn update(&self, id: &str, resources: &LinuxResources) -> Result<()> {
        let json = serde_json::to_vec(resources)?;
        self.run_with_input(&["update", "--resources", "-", id], Some(&json))
            .map(drop)
    }

    fn ps(&self, id: &str) -> Result<Vec<i32>> {
        let out = self.run(&["ps", "--format", "json", id])?;
        let pids: Option<Vec<i32>> = serde_json::from_slice(&out)?;
        Ok(pids.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_message_prefers_json_msg() {
        let log = "{\"level\":\"info\",\"msg\":\"a\"}\n{\"level\":\"error\",\"msg\":\"exec: \\\"nope\\\": executable file not found in $PATH\"}\n";
        assert_eq!(
            last_message(log),
            "exec: \"nope\": executable file not found in $PATH"
        );
        assert_eq!(last_message("plain\nlast line\n"), "last line");
    }

    #[test]
    fn missing_container_is_not_found() {
        let e = runtime_error("runc", "kill", "container does not exist");
        assert_eq!(e.kind(), crate::ErrorKind::NotFound);
    }
}
