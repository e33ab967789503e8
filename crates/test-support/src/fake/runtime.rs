//! The fake OCI runtime: records each call; `kill` signals the fake container.

use std::path::Path;
use std::process::Command;

use berth_engine::runtime::{
    CreateOptions, ExecOptions, Runtime, RuntimeSpec, RuntimeState, Runtimes,
};
use berth_engine::{EngineError, Result};

use super::shim::Table;
use super::{Call, Log};

/// One call the engine made to a runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeCall {
    Create { id: String },
    Run { id: String },
    Start { id: String },
    Kill { id: String, signal: i32, all: bool },
    Delete { id: String, force: bool },
    State { id: String },
    Pause { id: String },
    Resume { id: String },
    Exec { id: String },
    Update { id: String },
    Ps { id: String },
}

/// Runtimes that record every call (of every runtime spec) in the host's log.
pub(super) struct FakeRuntimes {
    log: Log,
    table: Table,
}

impl FakeRuntimes {
    pub(super) fn new(log: Log, table: Table) -> Self {
        Self { log, table }
    }
}

impl Runtimes for FakeRuntimes {
    fn for_spec(&self, spec: &RuntimeSpec) -> Box<dyn Runtime> {
        Box::new(FakeRuntime {
            name: spec.name.clone(),
            log: self.log.clone(),
            table: self.table.clone(),
        })
    }
}

/// A runtime that records its calls; the commands it returns (create, run, exec) fail.
struct FakeRuntime {
    name: String,
    log: Log,
    table: Table,
}

impl FakeRuntime {
    fn record(&self, call: RuntimeCall) {
        self.log.push(Call::Runtime(call));
    }

    fn failing_command(&self, call: RuntimeCall) -> Command {
        self.record(call);
        Command::new("false")
    }
}

impl Runtime for FakeRuntime {
    fn name(&self) -> &str {
        &self.name
    }

    fn create_command(&self, id: &str, _bundle: &Path, _opts: &CreateOptions) -> Command {
        self.failing_command(RuntimeCall::Create { id: id.into() })
    }

    fn run_command(&self, id: &str, _bundle: &Path, _opts: &CreateOptions) -> Command {
        self.failing_command(RuntimeCall::Run { id: id.into() })
    }

    fn start(&self, id: &str) -> Result<()> {
        self.record(RuntimeCall::Start { id: id.into() });
        Ok(())
    }

    fn kill(&self, id: &str, signal: i32, all: bool) -> Result<()> {
        self.record(RuntimeCall::Kill {
            id: id.into(),
            signal,
            all,
        });
        self.table.signal(id, signal);
        Ok(())
    }

    fn delete(&self, id: &str, force: bool) -> Result<()> {
        self.record(RuntimeCall::Delete {
            id: id.into(),
            force,
        });
        Ok(())
    }

    fn state(&self, id: &str) -> Result<RuntimeState> {
        self.record(RuntimeCall::State { id: id.into() });
        Err(EngineError::not_found(format!(
            "container {id} does not exist"
        )))
    }

    fn pause(&self, id: &str) -> Result<()> {
        self.record(RuntimeCall::Pause { id: id.into() });
        Ok(())
    }

    fn resume(&self, id: &str) -> Result<()> {
        self.record(RuntimeCall::Resume { id: id.into() });
        Ok(())
    }

    fn exec_command(&self, id: &str, _opts: &ExecOptions) -> Command {
        self.failing_command(RuntimeCall::Exec { id: id.into() })
    }

    fn update(&self, id: &str, _resources: &oci_spec::runtime::LinuxResources) -> Result<()> {
        self.record(RuntimeCall::Update { id: id.into() });
        Ok(())
    }

    fn ps(&self, id: &str) -> Result<Vec<i32>> {
        self.record(RuntimeCall::Ps { id: id.into() });
        Ok(vec![])
    }
}
