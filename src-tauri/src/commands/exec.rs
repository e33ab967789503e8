//! The terminal's exec sessions: a TTY process in a running container, its output streamed to
//! the UI, keystrokes and size changes sent back.
//!
//! Start order, which the terminal relies on: `containers_exec` resolves only once the exec
//! process runs, its hijacked stream is connected and the TTY has the size the terminal asked
//! for; the output is read from then on, in order, by the stream's task. The UI sends keys only
//! after that, one `containers_exec_input` at a time (commands run as concurrent tasks, so two
//! calls in flight could reach the stdin in either order; see `ui/js/terminal.js`).

use bollard::exec::{CreateExecOptions, ResizeExecOptions, StartExecOptions, StartExecResults};
use futures::StreamExt;
use tauri::ipc::Channel;
use tauri::State;
use tokio::io::AsyncWriteExt;

use super::containers::OutputDecoder;
use crate::error::{AppError, Result};
use crate::state::AppState;
use crate::streams::{StreamEvent, StreamId};

/// What a terminal exec gets in its environment: xterm.js understands xterm's sequences and
/// 256 colours.
const TERMINAL_ENV: &[&str] = &["TERM=xterm-256color", "COLORTERM=truecolor"];

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

/// Starts `cmd` (default `/bin/sh`) in container `id` with a TTY of `cols` × `rows`; its output
/// streams to the channel, keys go in with `containers_exec_input`. Returns the stream id once
/// the session is attached (see the module comment).
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
    let created = docker
        .create_exec(
            &id,
            CreateExecOptions {
                attach_stdin: Some(true),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                tty: Some(true),
                cmd: Some(exec_command(cmd)),
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
    let StartExecResults::Attached { mut output, input } = started else {
        return Err(AppError::Client("exec started detached".into()));
    };
    if let (Some(cols), Some(rows)) = (cols, rows) {
        let size = ResizeExecOptions {
            height: rows,
            width: cols,
        };
        // A command that already ended cannot be resized; its output still comes.
        if let Err(err) = docker.resize_exec(&created.id, size).await {
            tracing::debug!(exec = %created.id, error = %err, "first resize");
        }
    }
    tracing::debug!(container = %id, exec = %created.id, "exec attached");
    let input = std::sync::Arc::new(tokio::sync::Mutex::new(input));
    let ch = channel.clone();
    Ok(state
        .streams
        .spawn(channel, Some((input, created.id)), async move {
            let mut decoder = OutputDecoder::default();
            while let Some(item) = output.next().await {
                if let Some(ev) = decoder.event(item.map_err(|x| e.err(x))?) {
                    let _ = ch.send(ev);
                }
            }
            Ok(())
        }))
}

/// Sends keystrokes (text) to exec stream `stream`. Calls must not overlap (see the module
/// comment): the UI sends the next one when this one has answered.
#[tauri::command]
pub async fn containers_exec_input(
    state: State<'_, AppState>,
    stream: StreamId,
    data: String,
) -> Result<()> {
    let (input, _) = state.streams.exec(stream)?;
    let mut w = input.lock().await;
    let io = |err| AppError::Io {
        path: format!("exec stream {stream}"),
        err,
    };
    w.write_all(data.as_bytes()).await.map_err(io)?;
    w.flush().await.map_err(io)
}

/// Resizes the TTY of exec stream `stream`.
#[tauri::command]
pub async fn containers_exec_resize(
    state: State<'_, AppState>,
    stream: StreamId,
    cols: u16,
    rows: u16,
) -> Result<()> {
    let (_, exec_id) = state.streams.exec(stream)?;
    let e = state.engine();
    let r = e
        .docker()?
        .resize_exec(
            &exec_id,
            ResizeExecOptions {
                height: rows,
                width: cols,
            },
        )
        .await;
    r.map_err(|x| e.err(x))
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
}
