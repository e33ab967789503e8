//! The Linux package: `scripts/package.sh` bundles the binaries next to this test into a `.deb`
//! with the Tauri bundler; dpkg-deb shows its control fields and files; dpkg installs it into a
//! throwaway root and purges it again; the installed `berth` answers `--version` and the
//! installed `berth-app` comes up under Xvfb and runs the `berth` installed beside it.
//!
//! Why `dpkg --root` with `--force-depends`: it is dpkg's real install (unpack, file list,
//! database entry) and purge, into a root with a database of its own, so the machine's dpkg
//! database is never touched (`dpkg -x` only unpacks). That root has no libraries, so the
//! dependencies are checked against the machine's database instead: the installed binaries run
//! with the machine's libraries, which are what `Depends` names. The package has no maintainer
//! scripts (dpkg would run them chrooted into that root, where there is no shell).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use berth_test_support::{repo_root, run_bounded};

use crate::harness::{built_bin, Gui, GuiOptions};

/// Bundling a debug build (a large binary to compress) on a loaded 2-core machine.
const BUNDLE_TIME: Duration = Duration::from_secs(240);
const DPKG_TIME: Duration = Duration::from_secs(120);

fn ok(cmd: Command, timeout: Duration) -> Output {
    let what = format!("{cmd:?}");
    let out = tokio::task::block_in_place(|| run_bounded(cmd, timeout));
    assert!(
        out.status.success(),
        "{what}: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `scripts/package.sh --no-build --bundles deb` on the binaries next to this test;
/// returns the `.deb` it printed last.
fn bundle_deb() -> PathBuf {
    let app = built_bin("berth-app", "BERTH_APP_BIN");
    let profile_dir = app.parent().expect("profile dir");
    let target_dir = profile_dir.parent().expect("target dir");
    assert_eq!(
        profile_dir.file_name().and_then(|n| n.to_str()),
        Some("debug"),
        "package.sh --no-build bundles the debug build"
    );
    let mut cmd = Command::new("bash");
    cmd.arg(repo_root().join("scripts/package.sh"))
        .args(["--no-build", "--bundles", "deb"])
        .env("CARGO_TARGET_DIR", target_dir);
    let started = Instant::now();
    let out = ok(cmd, BUNDLE_TIME);
    eprintln!("package.sh (deb, debug) took {:?}", started.elapsed());
    let text = stdout(&out);
    let deb = PathBuf::from(text.lines().last().unwrap_or_default());
    assert!(
        deb.extension().is_some_and(|e| e == "deb") && deb.is_file(),
        "no .deb printed last:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    deb
}

/// `dpkg-deb --field`: the control fields asked for, by name.
fn control_field(deb: &Path, name: &str) -> String {
    let mut cmd = Command::new("dpkg-deb");
    cmd.arg("--field").arg(deb).arg(name);
    stdout(&ok(cmd, DPKG_TIME)).trim().to_string()
}

/// `dpkg-deb --contents`: the paths as installed (`/usr/bin/berth`; folders end in `/`).
fn contents(deb: &Path) -> Vec<String> {
    let mut cmd = Command::new("dpkg-deb");
    cmd.arg("--contents").arg(deb);
    stdout(&ok(cmd, DPKG_TIME))
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(|p| format!("/{}", p.trim_start_matches("./")))
        .collect()
}

/// The package names of a `Depends`/`Recommends` value (alternatives and versions dropped).
fn package_names(field: &str) -> Vec<String> {
    field
        .split(',')
        .filter_map(|dep| dep.split(['|', '(']).next())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .collect()
}

fn installed_on_this_machine(package: &str) -> bool {
    let mut cmd = Command::new("dpkg-query");
    cmd.args(["-W", "-f=${Status}", package]);
    let out = tokio::task::block_in_place(|| run_bounded(cmd, DPKG_TIME));
    stdout(&out).contains("install ok installed")
}

/// A root with an empty dpkg database of its own.
fn throwaway_root(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    let admin = root.join("var/lib/dpkg");
    for d in ["info", "updates", "triggers"] {
        std::fs::create_dir_all(admin.join(d)).expect("dpkg admin dir");
    }
    for f in ["status", "available"] {
        std::fs::write(admin.join(f), "").expect("dpkg database file");
    }
    root
}

fn dpkg(root: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new("dpkg");
    cmd.arg(format!("--root={}", root.display()))
        .arg(format!("--log={}", root.join("dpkg.log").display()))
        .args(args);
    ok(cmd, DPKG_TIME)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deb_installs_into_a_throwaway_root_and_its_app_starts() {
    let deb = bundle_deb();

    // Control fields.
    let name = control_field(&deb, "Package");
    assert_eq!(name, "berth");
    assert_eq!(
        control_field(&deb, "Version"),
        env!("CARGO_PKG_VERSION"),
        "the workspace version"
    );
    let mut arch = Command::new("dpkg");
    arch.arg("--print-architecture");
    assert_eq!(
        control_field(&deb, "Architecture"),
        stdout(&ok(arch, DPKG_TIME)).trim()
    );
    let depends = package_names(&control_field(&deb, "Depends"));
    for lib in ["libwebkit2gtk-4.1-0", "libgtk-3-0"] {
        assert!(depends.iter().any(|d| d == lib), "Depends {depends:?}");
    }
    let recommends = package_names(&control_field(&deb, "Recommends"));
    assert!(
        recommends.iter().any(|r| r == "qemu-utils")
            && recommends.iter().any(|r| r.starts_with("qemu-system-")),
        "Recommends {recommends:?}"
    );
    let missing: Vec<&String> = depends
        .iter()
        .filter(|d| !installed_on_this_machine(d))
        .collect();
    assert!(
        missing.is_empty(),
        "Depends not installed here: {missing:?}"
    );

    // Files: the app, the CLI beside it, the desktop entry and icons; the VM's image and
    // tools when the packager had them (package.sh takes them whole or not at all).
    let files = contents(&deb);
    for f in [
        "/usr/bin/berth-app",
        "/usr/bin/berth",
        "/usr/share/applications/Berth.desktop",
        "/usr/share/icons/hicolor/128x128/apps/berth-app.png",
    ] {
        assert!(files.iter().any(|x| x == f), "{f} missing from {files:#?}");
    }
    assert!(
        files.iter().all(|f| f == "/usr" || f.starts_with("/usr/")),
        "only /usr: {files:#?}"
    );
    let image = ["cmdline", "vmlinux", "initrd.img", "rootfs.img"]
        .map(|f| format!("/usr/lib/berth/vm-image/{f}"));
    let with_image = files
        .iter()
        .any(|f| f.starts_with("/usr/lib/berth/vm-image/"));
    if with_image {
        for f in &image {
            assert!(files.contains(f), "{f} missing from {files:#?}");
        }
    }
    let with_tools = files.iter().any(|f| f.starts_with("/usr/lib/berth/tools/"));

    // Install into the throwaway root; the machine's dpkg database stays as it was.
    let dir = tempfile::Builder::new()
        .prefix("berth-deb-")
        .tempdir()
        .expect("temp dir");
    let root = throwaway_root(dir.path());
    let started = Instant::now();
    let deb_arg = deb.display().to_string();
    dpkg(&root, &["--force-depends", "--install", &deb_arg]);
    eprintln!("dpkg --install took {:?}", started.elapsed());
    let listed = stdout(&dpkg(&root, &["--listfiles", &name]));
    let berth = root.join("usr/bin/berth");
    let app = root.join("usr/bin/berth-app");
    assert!(listed.lines().any(|l| l == "/usr/bin/berth"), "{listed}");
    assert!(berth.is_file() && app.is_file());
    assert!(
        !Path::new("/var/lib/dpkg/info/berth.list").exists(),
        "the machine's dpkg database lists the package"
    );

    let mut version = Command::new(&berth);
    version.arg("--version");
    let version = stdout(&ok(version, DPKG_TIME));
    assert_eq!(
        version.trim(),
        format!("berth {}", env!("CARGO_PKG_VERSION"))
    );

    // The installed app comes up (body[data-ready], engine ready) and runs the installed
    // `berth` beside it: with a daemon.json `berth start` refuses, its start fails on it.
    let gui = Gui::start_with(GuiOptions {
        application: Some(app.clone()),
        ..GuiOptions::default()
    })
    .await;
    let home = gui.home().join("berth");
    std::fs::write(home.join("daemon.json"), "[1]\n").expect("daemon.json");
    gui.nav("settings").await;
    gui.wait_text("[data-testid=vm-state]", "stopped").await;
    gui.click("[data-testid=vm-start]").await;
    let (code, msg) = gui.error_shown().await;
    assert!(
        msg.contains("berth start") && msg.contains("daemon.json"),
        "{code}: {msg}"
    );
    let app_log = std::fs::read_to_string(gui.home().join("data/dev.berth.app/logs/berth-app.log"))
        .expect("berth-app.log");
    let ran = format!("cli={}", berth.display());
    assert!(
        app_log.contains(&ran),
        "{ran} not in the app's log\n{app_log}"
    );
    // The installed `berth` wrote the defaults: the packaged image and tools when the package
    // has them, else the cache's.
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.join("config.json")).expect("config.json"))
            .expect("config.json is JSON");
    let packaged = |dir: &str| root.join("usr/lib/berth").join(dir).display().to_string();
    assert_eq!(
        config["image_dir"] == packaged("vm-image").as_str(),
        with_image,
        "image_dir {} (image packaged: {with_image})",
        config["image_dir"]
    );
    assert_eq!(
        config["tools_dir"] == packaged("tools").as_str(),
        with_tools,
        "tools_dir {} (tools packaged: {with_tools})",
        config["tools_dir"]
    );
    gui.finish().await;

    // Purge removes every file the install listed.
    dpkg(&root, &["--purge", &name]);
    let left: Vec<&str> = listed
        .lines()
        .filter(|l| root.join(l.trim_start_matches('/')).is_file())
        .collect();
    assert!(left.is_empty(), "left after purge: {left:?}");
    let mut query = Command::new("dpkg-query");
    query
        .arg(format!(
            "--admindir={}",
            root.join("var/lib/dpkg").display()
        ))
        .args(["-W", "-f=${Status}", &name]);
    let status = stdout(&tokio::task::block_in_place(|| {
        run_bounded(query, DPKG_TIME)
    }));
    assert!(
        status.is_empty() || status.ends_with("not-installed"),
        "{status}"
    );
}
