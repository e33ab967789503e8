//! PID 1's logging: every line goes to the console (PID 1's stderr is `/dev/console`, the serial
//! port with `console=ttyS0`) and, once `/run` is mounted, to `/run/berth/init.log`. The engine's
//! output is copied line by line to the console and `/run/berth/engine.log`.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::path::Path;
use std::sync::{Mutex, OnceLock};

/// Directory of the guest's log files (on the `/run` tmpfs).
pub(crate) const LOG_DIR: &str = "/run/berth";

static INIT_LOG: OnceLock<Mutex<File>> = OnceLock::new();

/// Installs the subscriber. `level` is a `tracing` filter (`info`, `debug`, …).
pub(crate) fn init(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_target(false)
        .with_writer(|| Tee)
        .init();
}

/// Starts copying the log into `LOG_DIR/init.log` (call once `/run` is mounted).
pub(crate) fn open_file() -> io::Result<()> {
    std::fs::create_dir_all(LOG_DIR)?;
    let file = append(&Path::new(LOG_DIR).join("init.log"))?;
    let _ = INIT_LOG.set(Mutex::new(file));
    Ok(())
}

fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Writes each log record to the console and to the init log file; errors are dropped (there
/// is nowhere else to report them).
struct Tee;

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let _ = io::stderr().write_all(buf);
        if let Some(Ok(mut f)) = INIT_LOG.get().map(Mutex::lock) {
            let _ = f.write_all(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Copies lines from `from` (a pipe of the engine's stdout or stderr) to the console and the
/// file `name` in `LOG_DIR`, on a thread that ends at EOF.
pub(crate) fn copy_lines(from: impl io::Read + Send + 'static, name: &'static str) {
    let file = append(&Path::new(LOG_DIR).join(name)).ok().map(Mutex::new);
    let spawned = std::thread::Builder::new()
        .name(format!("log-{name}"))
        .spawn(move || {
            let mut reader = io::BufReader::new(from);
            let mut line = Vec::new();
            while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                let _ = io::stderr().write_all(&line);
                if let Some(Ok(mut f)) = file.as_ref().map(Mutex::lock) {
                    let _ = f.write_all(&line);
                }
                line.clear();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot copy the {name} log: {e}");
    }
}
