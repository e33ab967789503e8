//! The terminal (xterm.js over a TTY exec): it waits for the shell's prompt in xterm's buffer
//! before typing (never a sleep), then checks what the shell printed: the TTY's size is the
//! terminal's (also after the window shrinks), arithmetic comes back, colours are cells with a
//! palette colour, scrollback keeps early lines; the shell picker runs another command with
//! `TERM=xterm-256color`; closing the terminal leaves no shell in the container (`docker top`);
//! an exited container offers no terminal.

use crate::harness::{container_row, Gui};

pub(crate) const TERM: &str = "[data-testid=exec-terminal]";
/// Where xterm.js takes keys.
pub(crate) const KEYS: &str = "[data-testid=exec-terminal] .xterm-helper-textarea";
/// WebDriver's Enter key.
pub(crate) const ENTER: &str = "\u{E007}";

/// `rows x cols` as the box's data-size says (what the TTY was last sized to).
fn parse_size(size: &str) -> (u32, u32) {
    let (r, c) = size.split_once('x').expect("RxC");
    (r.parse().expect("rows"), c.parse().expect("cols"))
}

pub(crate) fn has_line(lines: &[String], want: &str) -> bool {
    lines.iter().any(|l| l.trim() == want)
}

/// A root shell's prompt (busybox `/ # `, bash `bash-5.2# `) on the last line that has text.
pub(crate) fn at_prompt(lines: &[String]) -> bool {
    lines
        .iter()
        .rev()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| l.trim_end().ends_with('#'))
}

/// The number of shells (`/bin/sh`, as the terminal starts them) running in `name`.
fn shells(gui: &Gui, name: &str) -> usize {
    let top = gui.engine.docker_ok(&["top", name]);
    top.lines()
        .filter(|l| l.trim_end().ends_with("/bin/sh"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminal_runs_a_shell_sized_to_it_and_leaves_nothing_behind() {
    let gui = Gui::start().await;
    gui.cli(&[
        "run",
        "-d",
        "--name",
        "gui-term",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 0' TERM; while true; do sleep 1; done",
    ]);
    let row = container_row("gui-term");
    gui.wait_attr(&row, "data-state", "running").await;
    gui.click(&format!("{row} [data-testid=container-exec]"))
        .await;

    // Attached (the exec runs, its stream is connected), then the prompt is in the buffer.
    gui.wait_attr(TERM, "data-state", "attached").await;
    gui.until_terminal("the shell prompt", at_prompt).await;
    let size = gui.attr(TERM, "data-size").await.expect("data-size");
    let (rows, cols) = parse_size(&size);
    // The TTY was sized to what xterm shows.
    let shown = gui
        .js(
            "const t = document.querySelector('[data-testid=exec-terminal]').term; return `${t.rows}x${t.cols}`;",
            vec![],
        )
        .await;
    assert_eq!(shown.as_str(), Some(size.as_str()));
    assert!(rows >= 5 && cols >= 40, "{size}");

    gui.send_keys(KEYS, &format!("stty size; echo $((6*7)){ENTER}"))
        .await;
    let want = format!("{rows} {cols}");
    gui.until_terminal("stty size and 42", |l| {
        has_line(l, &want) && has_line(l, "42")
    })
    .await;
    gui.cli_until("one shell in the container", || {
        shells(&gui, "gui-term") == 1
    });

    // Colours: a red word is held as cells with palette colour 1.
    gui.until_terminal("the prompt again", at_prompt).await;
    gui.send_keys(
        KEYS,
        &format!("printf '\\033[31mred-word\\033[0m\\n'{ENTER}"),
    )
    .await;
    gui.until_terminal("red-word", |l| has_line(l, "red-word"))
        .await;
    let red = gui
        .js(
            "const b = document.querySelector('[data-testid=exec-terminal]').term.buffer.active; \
             for (let i = 0; i < b.length; i++) { const l = b.getLine(i); \
               if (l.translateToString(true).trim() === 'red-word') { \
                 const c = l.getCell(l.translateToString(true).indexOf('red-word')); \
                 return [c.isFgPalette(), c.getFgColor()]; } } return null;",
            vec![],
        )
        .await;
    assert_eq!(red, serde_json::json!([true, 1]), "red-word's first cell");

    // Scrollback: far more lines than rows, the first ones still held.
    gui.until_terminal("the prompt again", at_prompt).await;
    gui.send_keys(KEYS, &format!("seq 1 400 | sed 's/^/line-/'{ENTER}"))
        .await;
    let lines = gui
        .until_terminal("line-400", |l| has_line(l, "line-400"))
        .await;
    assert!(has_line(&lines, "line-1"), "line-1 kept in the scrollback");

    // A narrower window: xterm refits, the TTY gets the new size, `stty size` says so.
    gui.until_terminal("the prompt again", at_prompt).await;
    let before = size.clone();
    let narrow = gui.c().set_window_size(820, 700);
    tokio::time::timeout(crate::harness::WAIT, narrow)
        .await
        .expect("set window size answered")
        .expect("set window size");
    gui.until_js(
        "the TTY resized to the narrower terminal",
        "const b = document.querySelector('[data-testid=exec-terminal]'); \
         return b.dataset.size !== arguments[0] && b.dataset.size === `${b.term.rows}x${b.term.cols}`;",
        vec![before.clone().into()],
    )
    .await;
    let size = gui.attr(TERM, "data-size").await.expect("data-size");
    let (rows2, cols2) = parse_size(&size);
    assert!(cols2 < cols, "{before} -> {size}");
    gui.send_keys(KEYS, &format!("stty size{ENTER}")).await;
    let want = format!("{rows2} {cols2}");
    gui.until_terminal("the new stty size", |l| has_line(l, &want))
        .await;

    // The shell picker: a custom command runs with the terminal's TERM, then the session ends.
    gui.select("[data-testid=exec-shell]", "custom").await;
    gui.type_into("[data-testid=exec-command]", "env").await;
    gui.click("[data-testid=exec-connect]").await;
    gui.wait_attr(TERM, "data-state", "ended").await;
    gui.until_terminal("TERM", |l| has_line(l, "TERM=xterm-256color"))
        .await;
    // The shell of the first session was hung up when the new one started.
    gui.cli_until("no shell left after switching", || {
        shells(&gui, "gui-term") == 0
    });

    // Back to sh: a prompt again. Closing the panel leaves no shell behind.
    gui.select("[data-testid=exec-shell]", "sh").await;
    gui.wait_attr(TERM, "data-state", "attached").await;
    gui.until_terminal("the shell prompt", at_prompt).await;
    gui.cli_until("the new shell", || shells(&gui, "gui-term") == 1);
    gui.click("[data-testid=detail-close]").await;
    gui.cli_until("no shell left after closing", || {
        shells(&gui, "gui-term") == 0
    });

    // A terminal open while the container stops ends; an exited container offers none.
    gui.click(&format!("{row} [data-testid=container-exec]"))
        .await;
    gui.wait_attr(TERM, "data-state", "attached").await;
    gui.until_terminal("the shell prompt", at_prompt).await;
    gui.cli(&["stop", "gui-term"]);
    gui.wait_attr(&row, "data-state", "exited").await;
    gui.wait_attr(TERM, "data-state", "ended").await;
    gui.until_js(
        "no terminal offered on the exited container",
        "const q = (s) => document.querySelector(s); \
         return q(arguments[0] + ' [data-testid=container-exec]').disabled \
           && q('[data-testid=detail-tab-exec]').disabled;",
        vec![row.clone().into()],
    )
    .await;
    gui.finish().await;
}
