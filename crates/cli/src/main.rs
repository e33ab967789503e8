//! `berth`: headless control of Berth's VM. `start` runs the supervisor as a background daemon
//! (`berth daemon`), waits for the Docker API and sets up a `berth` docker context; `stop` asks
//! the daemon for an orderly shutdown.
//!
//! Exit codes: 0 success, 1 failure, 2 usage (clap).

mod commands;
mod config_cmd;
mod ping;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "berth", version, about = "Run Berth's container VM")]
struct Cli {
    /// State directory (default: $BERTH_HOME or ~/.berth)
    #[arg(long, global = true)]
    home: Option<std::path::PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Boot the VM and forward the Docker socket
    Start {
        /// Seconds to wait for the Docker API
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// Run the supervisor in this process instead of a background daemon (Ctrl-C stops)
        #[arg(long)]
        foreground: bool,
        /// Also link /var/run/docker.sock (config `system_socket_path`) to Berth's socket when
        /// it is free; `berth stop` removes the link (config `system_socket` makes it default)
        #[arg(long)]
        system_socket: bool,
        /// Print each start phase (QEMU spawn, kernel, PID 1, disk, engine, agent) with its time
        #[arg(short, long)]
        verbose: bool,
    },
    /// Shut the VM down in order (QEMU is killed after a timeout)
    Stop,
    /// Stop, then start
    Restart {
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// As for `start`
        #[arg(long)]
        system_socket: bool,
        /// Restart only the engine inside the running VM, not the VM: running containers keep
        /// running and are re-attached; the new engine reads the current daemon.json
        #[arg(long, conflicts_with = "system_socket")]
        engine: bool,
    },
    /// Berth's settings files
    Config {
        #[command(subcommand)]
        cmd: ConfigCmd,
    },
    /// Show whether the VM and the Docker API are up
    Status,
    /// The VM's data disk
    Disk {
        #[command(subcommand)]
        cmd: DiskCmd,
    },
    /// Print the VM console log
    Logs {
        /// Keep printing new lines
        #[arg(short, long)]
        follow: bool,
    },
    /// Write a diagnostics bundle (versions, config, status, disk, `docker info`, recent logs)
    /// to a JSON file, the same as the app's Troubleshoot view saves
    Doctor {
        /// The file to write (default: berth-doctor-<unix time>.json in the current directory)
        #[arg(short, long)]
        output: Option<std::path::PathBuf>,
        /// The Docker API to ask (default: Berth's own socket)
        #[arg(long)]
        docker_host: Option<String>,
    },
    /// Back to factory defaults: list what is deleted (the data disk with every image,
    /// container and volume, config.json, daemon.json, logs); `--yes` deletes it. Refused while
    /// the VM runs. The same as the app's Troubleshoot view does
    Reset {
        /// Delete without asking
        #[arg(long)]
        yes: bool,
    },
    /// Run the supervisor in the foreground (what `start` spawns)
    #[command(hide = true)]
    Daemon,
}

#[derive(Subcommand, Debug)]
enum ConfigCmd {
    /// The engine's daemon.json (<home>/daemon.json): shown by default; a new one is checked
    /// (position of a JSON error, keys of the wrong type refused, unknown and VM keys warned)
    /// before it is written, atomically. It applies at the next start, or now with
    /// `berth restart --engine`
    Daemon {
        /// Check this file and save it as the engine's daemon.json (an empty file removes it)
        #[arg(long, value_name = "FILE", conflicts_with_all = ["edit", "check"])]
        set_file: Option<std::path::PathBuf>,
        /// Edit it in $VISUAL / $EDITOR (default vi); saved only when the result is valid
        #[arg(long, conflicts_with = "check")]
        edit: bool,
        /// Only check the saved file (exit 1 when it is refused)
        #[arg(long)]
        check: bool,
    },
}

#[derive(Subcommand, Debug)]
enum DiskCmd {
    /// Give unused space back to the host: trim the guest's free blocks (VM running) or
    /// rewrite the qcow2 without unused clusters (VM stopped)
    Compact,
    /// Where the data disk's space goes: the image on the host, the guest's filesystem, and
    /// the engine's images, containers, volumes and build cache with what is reclaimable
    Usage,
}

fn main() {
    let cli = Cli::parse();
    let state = cli
        .home
        .map(berth_host::StateDir::new)
        .unwrap_or_else(berth_host::StateDir::default_location);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth: failed to start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let r = rt.block_on(async {
        match cli.cmd {
            Cmd::Start {
                timeout,
                foreground: false,
                system_socket,
                verbose,
            } => commands::start(&state, timeout, system_socket, verbose).await,
            Cmd::Start {
                foreground: true,
                system_socket,
                ..
            } => commands::start_foreground(state.clone(), system_socket).await,
            Cmd::Stop => commands::stop(&state).await,
            Cmd::Restart {
                timeout,
                engine: true,
                ..
            } => commands::restart_engine(&state, timeout).await,
            Cmd::Restart {
                timeout,
                system_socket,
                engine: false,
            } => {
                commands::stop(&state).await?;
                commands::start(&state, timeout, system_socket, false).await
            }
            Cmd::Status => commands::status(&state).await,
            Cmd::Config {
                cmd:
                    ConfigCmd::Daemon {
                        set_file,
                        edit,
                        check,
                    },
            } => match (set_file, edit, check) {
                (Some(f), _, _) => config_cmd::daemon_set_file(&state, &f),
                (None, true, _) => config_cmd::daemon_edit(&state),
                (None, false, true) => config_cmd::daemon_check(&state),
                (None, false, false) => config_cmd::daemon_show(&state),
            },
            Cmd::Disk {
                cmd: DiskCmd::Compact,
            } => commands::disk_compact(&state).await,
            Cmd::Disk {
                cmd: DiskCmd::Usage,
            } => commands::disk_usage(&state).await,
            Cmd::Logs { follow } => commands::logs(&state, follow).await,
            Cmd::Doctor {
                output,
                docker_host,
            } => commands::doctor(&state, output, docker_host.as_deref()).await,
            Cmd::Reset { yes } => commands::reset(&state, yes),
            Cmd::Daemon => commands::daemon(state.clone()).await,
        }
    });
    if let Err(e) = r {
        eprintln!("berth: {e:#}");
        std::process::exit(1);
    }
}
