//! The per-container monitor (`berth-agent shim …`): holds the container's stdio and exit
//! status so containers outlive the engine. (Owned by the containers work.)

/// Entry point of `berth-agent shim`; returns the process exit code.
pub fn main(_args: &[String]) -> i32 {
    eprintln!("berth-agent shim: not implemented");
    2
}
