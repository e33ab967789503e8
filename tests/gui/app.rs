//! Calling the app's commands from the page, as its UI does (for what a test reads or runs
//! without a screen element: the tray's menu, an error the engine gives).

use serde_json::Value;

use crate::harness::{Gui, WAIT};

/// Runs `invoke(cmd, args)` in the page; `Ok(value)` or `Err({code, message})`.
pub(crate) async fn try_invoke(gui: &Gui, cmd: &str, args: Value) -> Result<Value, Value> {
    let script = "const done = arguments[arguments.length - 1]; \
        window.__TAURI__.core.invoke(arguments[0], arguments[1]) \
        .then((v) => done({ ok: v === undefined ? null : v }), (e) => done({ err: e }));";
    let call = gui.c().execute_async(script, vec![cmd.into(), args]);
    let out = match tokio::time::timeout(WAIT, call).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => panic!("{cmd}: {e}\n{}", gui.logs()),
        Err(_) => panic!("{cmd}: no answer within {WAIT:?}\n{}", gui.logs()),
    };
    match out.get("err") {
        Some(err) => Err(err.clone()),
        None => Ok(out["ok"].clone()),
    }
}

/// As [`try_invoke`], panicking on an error.
pub(crate) async fn invoke(gui: &Gui, cmd: &str, args: Value) -> Value {
    match try_invoke(gui, cmd, args).await {
        Ok(v) => v,
        Err(e) => panic!("{cmd} failed: {e}\n{}", gui.logs()),
    }
}
