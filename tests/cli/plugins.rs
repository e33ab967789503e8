//! The docker CLI with the plugins current Docker installs ship (compose v2, buildx), from
//! `scripts/install-docker-plugins.sh`. Each test opts in with its own `DOCKER_CONFIG` whose
//! `cliPluginsExtraDirs` lists the plugin folders it wants, so the plain `docker` of the other
//! tests keeps the classic builder.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use berth_test_support::{run_bounded, Engine};

/// A plugin `scripts/install-docker-plugins.sh` installs (see
/// [`berth_test_support::docker_plugins`]).
#[derive(Clone, Copy)]
pub(crate) enum Plugin {
    Buildx,
    Compose,
}

impl Plugin {
    fn name(self) -> &'static str {
        match self {
            Plugin::Buildx => "buildx",
            Plugin::Compose => "compose",
        }
    }
}

/// A docker CLI pointed at `e` that sees `plugins`. BuildKit is the default (as on any current
/// install) unless the caller sets `DOCKER_BUILDKIT=0`.
pub(crate) fn docker_with(e: &Engine, plugins: &[Plugin], args: &[&str]) -> Command {
    let names: Vec<&str> = plugins.iter().map(|p| p.name()).collect();
    e.docker_with_plugins(&names, args)
}

/// Runs `c` in `dir`, bounded to 180 s.
pub(crate) fn run_in(mut c: Command, dir: &Path) -> Output {
    c.current_dir(dir);
    run_bounded(c, Duration::from_secs(180))
}

/// stdout + stderr of a command that must succeed; panics with both and the engine's log.
pub(crate) fn expect_ok(e: &Engine, what: &[&str], out: Output) -> String {
    let text = berth_test_support::output_text(&out);
    assert!(
        out.status.success(),
        "docker {what:?} failed ({}):\n{text}\n{}",
        out.status,
        e.log_tail()
    );
    text
}

/// Writes `files` (path relative to `dir`, content), making folders.
pub(crate) fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (p, content) in files {
        let path = dir.join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
}
