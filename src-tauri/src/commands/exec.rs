//! The terminal's sessions: a TTY process in a running container (exec), the container's own
//! TTY (attach, for containers started with `-it`) or the debug shell's sidecar
//! ([`super::debug_shell`]); their output streamed to the UI, keystrokes and size changes sent
//! back.
//!
//! Start order, which the terminal relies on: a session command resolves only once the process
//! runs, its hijacked stream is connected and the TTY has the size the terminal asked for; the
//! output is read from then on, in order, by the stream's task. The UI sends keys only after
//! that, one `containers_exec_input` at a time (commands run as concurrent tasks, so two calls
//! in flight could reach the stdin in either order; see `ui/js/terminal.js`).

use std::pin::Pin;

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, ResizeExecOptions, StartExecOptions, StartExecResults};
use bollard::query_parameters::{AttachContainerOptionsBuilder, ResizeContainerTTYOptionsBuilder};
use futures::{Stream, StreamExt};
use tauri::ipc::Channel;
use tauri::State;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::containers::OutputDecoder;
use crate::engine::Engine;
use crate::error::{AppError, Result};
use crate::state::AppState;
use crate::streams::{Cleanup, Session, StreamEvent, StreamId, Tty};

/// What a terminal session gets in its environment: xterm.js understands xterm's sequences and
/// 256 colours.
pub const TERMINAL_ENV: &[&str] = &["TERM=xterm-256color", "COLORTERM=truecolor"];

/// The exit codes dockerd gives an exec whose command could not run: 126 (the runtime could not
/// start it), 127 (not found).
const NOT_RUN: [i64; 2] = [126, 127];

/// How much of a session's last output is kept to explain a command that could not run.
const TAIL_CHARS: usize = 1024;
/// The command an exec runs: `cmd` when given and not blank, else `/bin/sh`.
pub fn exec_command(cmd: Option<Vec<String>>) -> Vec<String> {
    let cmd: Vec<String> = cmd
        .unwrap_or_default()
        .into_iter()
        .filter(|a| !a.is_empty())
        .collect();
    if cmd.is_empty() {
        vec!["/bin/sh".into()]
    } else {
        cmd
    }
}

/// A hijacked TTY stream: what the container writes, and its stdin.
pub type TtyOutput =
    Pin<Box<dyn Stream<Item = std::result::Result<LogOutput, bollard::errors::Error>> + Send>>;

/// A connected TTY session, before it is registered as a stream.
pub struct Attached {
    pub output: TtyOutput,
    pub input: Pin<Box<dyn AsyncWrite + Send>>,
    pub tty: Tty,
    pub hang_up: bool,
    pub cleanup: Option<Cleanup>,
}

/// Sizes `tty` to `cols` × `rows`. A process that already ended cannot be resized; its output
/// still comes, so a failure is only logged.
pub async fn first_resize(e: &Engine, tty: &Tty, cols: Option<u16>, rows: Option<u16>) {
    let (Some(cols), Some(rows)) = (cols, rows) else {
        return;
    };
    if let Err(err) = resize(e, tty, cols, rows).await {
        tracing::debug!(?tty, error = %err, "first resize");
    }
}

async fn resize(e: &Engine, tty: &Tty, cols: u16, rows: u16) -> Result<()> {
    let docker = e.docker()?;
    let r = match tty {
        Tty::Exec(id) => {
            let size = ResizeExecOptions {
                height: rows,
                width: cols,
            };
            docker.resize_exec(id, size).await
        }
        Tty::Container(id) => {
            let size = ResizeContainerTTYOptionsBuilder::default()
                .h(i32::from(rows))
                .w(i32::from(cols))
                .build();
            docker.resize_container_tty(id, size).await
        }
    };
    r.map_err(|x| e.err(x))
}

/// Registers `session` as a stream: its output goes to `channel` until it ends; `finish` then
/// judges how it ended (with the tail of its output).
pub fn spawn_session<F, Fut>(
    state: &AppState,
    channel: Channel<StreamEvent>,
    session: Attached,
    finish: F,
) -> StreamId
where
    F: FnOnce(String) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send + 'static,
{
    let Attached {
        mut output,
        input,
        tty,
        hang_up,
        cleanup,
    } = session;
    let e = state.engine();
    let ch = channel.clone();
    let registered = Session {
        input: std::sync::Arc::new(tokio::sync::Mutex::new(input)),
        tty,
        hang_up,
        cleanup,
    };
    state.streams.spawn(channel, Some(registered), async move {
        let mut decoder = OutputDecoder::default();
        let mut tail = String::new();
        while let Some(item) = output.next().await {
            if let Some(ev) = decoder.event(item.map_err(|x| e.err(x))?) {
                if let StreamEvent::Output { text, .. } = &ev {
                    keep_tail(&mut tail, text);
                }
                let _ = ch.send(ev);
            }
        }
        finish(tail).await
    })
}

/// Appends `text` to `tail`, keeping its last [`TAIL_CHARS`] characters.
fn keep_tail(tail: &mut String, text: &str) {
    tail.push_str(text);
    let extra = tail.chars().count().saturating_sub(TAIL_CHARS);
    if extra > 0 {
        let cut = tail
            .char_indices()
            .nth(extra)
            .map_or(tail.len(), |(i, _)| i);
        tail.drain(..cut);
    }
}

/// Why a command did not run, in Docker's words: the runtime's error line from the session's
/// output (`OCI runtime exec failed: … no such file or directory`), else dockerd's text for a
/// command not found.
pub fn not_run_message(tail: &str, cmd: &[String]) -> String {
    let said = tail.lines().rev().map(str::trim).find(|l| {
        l.contains("exec failed") || l.contains("not found") || l.contains("no such file")
    });
    match said {
        Some(line) if line.starts_with("OCI runtime") => line.to_string(),
        Some(line) => format!("OCI runtime exec failed: {line}"),
        None => format!(
            "OCI runtime exec failed: exec: \"{}\": executable file not found in $PATH",
            cmd.first().map_or("", String::as_str)
        ),
    }
}

/// Starts `cmd` (default `/bin/sh`) in container `id` with a TTY of `cols` × `rows`; its output
/// streams to the channel, keys go in with `containers_exec_input`. Returns the stream id once
/// the session is attached (see the module comment). A command that cannot run (a shell the
/// container does not have) ends the stream with `not_found` and the runtime's message.
#[tauri::command]
pub async fn containers_exec(
    state: State<'_, AppState>,
    id: String,
    cmd: Option<Vec<String>>,
    cols: Option<u16>,
    rows: Option<u16>,
    channel: Channel<StreamEvent>,
) -> Result<StreamId> {
    let e = state.engine();
    let docker = e.docker()?;
    let cmd = exec_command(cmd);
    let created = docker
        .create_exec(
            &id,
            CreateExecOptions {
                attach_stdin: Some(true),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                tty: Some(true),
                cmd: Some(cmd.clone()),
                env: Some(TERMINAL_ENV.iter().map(|v| v.to_string()).collect()),
                ..Default::default()
            },
        )
        .await
        .map_err(|x| e.err(x))?;
    let started = docker
        .start_exec(
            &created.id,
            Some(StartExecOptions {
                tty: true,
                ..Default::default()
            }),
        )
        .await
        .map_err(|x| e.err(x))?;
    let StartExecResults::Attached { output, input } = started else {
        return Err(AppError::Client("exec started detached".into()));
    };
    let tty = Tty::Exec(created.id.clone());
    first_resize(&e, &tty, cols, rows).await;
    tracing::debug!(container = %id, exec = %created.id, "exec attached");
    let session = Attached {
        output,
        input,
        tty,
        hang_up: true,
        cleanup: None,
    };
    let exec_id = created.id;
    Ok(spawn_session(
        &state,
        channel,
        session,
        move |tail| async move {
            match exit_code(&e, &exec_id).await? {
                Some(c) if NOT_RUN.contains(&c) => {
                    Err(AppError::NotFound(not_run_message(&tail, &cmd)))
                }
                _ => Ok(()),
            }
        },
    ))
}

/// The exit code of exec `id` once its output has ended. The engine may record the exit a
/// moment after the stream closes, so it is asked again while it says running, for at most a
/// second; `None` when it still runs then.
async fn exit_code(e: &Engine, id: &str) -> Result<Option<i64>> {
    const ASKS: u32 = 20;
    for _ in 0..ASKS {
        let inspect = e.docker()?.inspect_exec(id).await.map_err(|x| e.err(x))?;
        if inspect.running != Some(true) {
            return Ok(inspect.exit_code);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Ok(None)
}

/// Attaches the terminal to container `id`'s own TTY (a container started with `-it`), as
/// `docker attach` does. Closing the terminal detaches and leaves the container running.
#[tauri::command]
pub async fn containers_attach(
    state: State<'_, AppState>,
    id: String,
    cols: Option<u16>,
    rows: Option<u16>,
    channel: Channel<StreamEvent>,
) -> Result<StreamId> {
    let e = state.engine();
    let session = attach_tty(&e, &id, false, None).await?;
    first_resize(&e, &session.tty, cols, rows).await;
    tracing::debug!(container = %id, "attached");
    Ok(spawn_session(&state, channel, session, |_| async {
        Ok(())
    }))
}

/// Connects to container `id`'s TTY (stdin, stdout, stderr, streamed).
pub async fn attach_tty(
    e: &Engine,
    id: &str,
    hang_up: bool,
    cleanup: Option<Cleanup>,
) -> Result<Attached> {
    let opts = AttachContainerOptionsBuilder::default()
        .stream(true)
        .stdin(true)
        .stdout(true)
        .stderr(true)
        .build();
    let attached = e
        .docker()?
        .attach_container(id, Some(opts))
        .await
        .map_err(|x| e.err(x))?;
    Ok(Attached {
        output: attached.output,
        input: attached.input,
        tty: Tty::Container(id.to_string()),
        hang_up,
        cleanup,
    })
}

/// Sends keystrokes (text) to terminal stream `stream`. Calls must not overlap (see the module
/// comment): the UI sends the next one when this one has answered.
#[tauri::command]
pub async fn containers_exec_input(
    state: State<'_, AppState>,
    stream: StreamId,
    data: String,
) -> Result<()> {
    let (input, _) = state.streams.session(stream)?;
    let mut w = input.lock().await;
    let io = |err| AppError::Io {
        path: format!("exec stream {stream}"),
        err,
    };
    w.write_all(data.as_bytes()).await.map_err(io)?;
    w.flush().await.map_err(io)
}

/// Resizes the TTY of terminal stream `stream`.
#[tauri::command]
pub async fn containers_exec_resize(
    state: State<'_, AppState>,
    stream: StreamId,
    cols: u16,
    rows: u16,
) -> Result<()> {
    let (_, tty) = state.streams.session(stream)?;
    resize(&state.engine(), &tty, cols, rows).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_command_is_sh() {
        assert_eq!(exec_command(None), ["/bin/sh"]);
        assert_eq!(exec_command(Some(vec![])), ["/bin/sh"]);
        assert_eq!(exec_command(Some(vec![String::new()])), ["/bin/sh"]);
        assert_eq!(
            exec_command(Some(vec!["bash".into(), "-l".into()])),
            ["bash", "-l"]
        );
    }

    #[test]
    fn a_command_that_did_not_run_is_explained_in_the_runtimes_words() {
        let cmd = vec!["/bin/bash".to_string()];
        let tail = "OCI runtime exec failed: exec failed: unable to start container process: \
                    exec: \"/bin/bash\": stat /bin/bash: no such file or directory: unknown\r\n";
        assert_eq!(not_run_message(tail, &cmd), tail.trim());
        let runc = "exec: \"/bin/bash\": stat /bin/bash: no such file or directory\r\n";
        assert_eq!(
            not_run_message(runc, &cmd),
            format!("OCI runtime exec failed: {}", runc.trim())
        );
        assert_eq!(
            not_run_message("", &cmd),
            "OCI runtime exec failed: exec: \"/bin/bash\": executable file not found in $PATH"
        );
    }

    #[test]
    fn the_tail_keeps_the_last_characters() {
        let mut tail = String::new();
        keep_tail(&mut tail, &"é".repeat(TAIL_CHARS));
        keep_tail(&mut tail, "end");
        assert_eq!(tail.chars().count(), TAIL_CHARS);
        assert!(tail.ends_with("éend"));
    }
}
