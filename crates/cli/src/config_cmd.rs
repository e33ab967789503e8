//! `berth config daemon`: the engine's daemon.json, shown, checked, set from a file or edited,
//! through `berth_host::daemon_json` (the same checks the app's editor and `berth start` make).

use std::path::Path;

use anyhow::{bail, Context};
use berth_host::daemon_json::{self, Saved, Warning};
use berth_host::StateDir;

fn print_warnings(path: &Path, warnings: &[Warning]) {
    for w in warnings {
        match w.at {
            Some(p) => eprintln!(
                "berth: warning: {}:{}:{}: {}",
                path.display(),
                p.line,
                p.column,
                w.message
            ),
            None => eprintln!("berth: warning: {}: {}", path.display(), w.message),
        }
    }
}

/// `berth config daemon`: the saved file, as written.
pub(crate) fn daemon_show(state: &StateDir) -> anyhow::Result<()> {
    match daemon_json::read_text(state)? {
        Some(text) => print!("{text}"),
        None => eprintln!(
            "berth: no {} (the engine's defaults apply)",
            state.daemon_json().display()
        ),
    }
    Ok(())
}

/// `berth config daemon --check`.
pub(crate) fn daemon_check(state: &StateDir) -> anyhow::Result<()> {
    let path = state.daemon_json();
    match daemon_json::load(&path)? {
        Some(c) => {
            print_warnings(&path, &c.warnings);
            println!("{} is valid.", path.display());
        }
        None => println!("No {} (the engine's defaults apply).", path.display()),
    }
    Ok(())
}

/// `berth config daemon --set-file F`.
pub(crate) fn daemon_set_file(state: &StateDir, file: &Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    save(state, file, &text)
}

fn save(state: &StateDir, source: &Path, text: &str) -> anyhow::Result<()> {
    match daemon_json::save(state, text) {
        Ok(Saved::Written(warnings)) => {
            print_warnings(source, &warnings);
            println!("Saved {}.", state.daemon_json().display());
        }
        Ok(Saved::Removed) => println!(
            "Removed {} (the engine's defaults apply).",
            state.daemon_json().display()
        ),
        Err(berth_host::HostError::DaemonJson { detail, .. }) => {
            bail!("{}: {detail}; nothing saved", source.display())
        }
        Err(e) => return Err(e.into()),
    }
    println!(
        "It applies at the next start, or now with `berth restart --engine` (restarts only the \
         engine: running containers keep running)."
    );
    Ok(())
}

/// `berth config daemon --edit`: a copy in $VISUAL / $EDITOR, saved when valid.
pub(crate) fn daemon_edit(state: &StateDir) -> anyhow::Result<()> {
    state.create()?;
    let draft = state.root().join("daemon.json.edit");
    let current = daemon_json::read_text(state)?.unwrap_or_else(|| "{\n}\n".into());
    std::fs::write(&draft, &current)
        .with_context(|| format!("cannot write {}", draft.display()))?;
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".into());
    // $EDITOR may carry arguments ("code --wait"): run it through the shell, as git does.
    #[cfg(unix)]
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(&draft)
        .status();
    #[cfg(not(unix))]
    let status = std::process::Command::new(&editor).arg(&draft).status();
    let status = status.with_context(|| format!("cannot run the editor {editor:?}"))?;
    if !status.success() {
        bail!(
            "the editor exited with {status}; nothing saved (draft kept at {})",
            draft.display()
        );
    }
    let text = std::fs::read_to_string(&draft)
        .with_context(|| format!("cannot read {}", draft.display()))?;
    if text == current {
        let _ = std::fs::remove_file(&draft);
        println!("No change.");
        return Ok(());
    }
    save(state, &draft, &text)
        .with_context(|| format!("the draft is kept at {}", draft.display()))?;
    let _ = std::fs::remove_file(&draft);
    Ok(())
}
