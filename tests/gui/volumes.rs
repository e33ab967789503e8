//! Volume detail: size (the engine's `/system/df`), the containers using a volume, its files
//! (browse, view, download, a dropped file read back with `docker run … cat`), export to a tar
//! whose entries are the volume's files, import of a tar into a new volume (and refused into a
//! volume that holds data), clone to an equal and independent volume, and bad input (a file
//! that is not a tar, a clone onto a name in use) that leaves no helper container and no
//! half-made volume. Everything is checked with the docker CLI.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::harness::Gui;

const HELPERS: [&str; 5] = [
    "ps",
    "-a",
    "--filter",
    "label=dev.berth.helper",
    "--format={{.Names}}",
];

fn row(name: &str) -> String {
    format!("[data-testid=volume-row][data-name=\"{name}\"]")
}

/// Scoped to the volume detail (the container detail has a browser with the same test ids).
fn in_detail(css: &str) -> String {
    format!("[data-testid=volume-detail] {css}")
}

fn entry(name: &str) -> String {
    in_detail(&format!("[data-testid=files-row][data-name=\"{name}\"]"))
}

/// What `find` prints for a volume mounted at /v: every path below it, relative, sorted.
fn volume_paths(gui: &Gui, volume: &str) -> BTreeSet<String> {
    let out = gui.cli(&[
        "run",
        "--rm",
        "-v",
        &format!("{volume}:/v"),
        "busybox",
        "find",
        "/v",
        "-mindepth",
        "1",
    ]);
    out.lines()
        .map(|l| l.trim_start_matches("/v/").to_string())
        .collect()
}

/// `cat` of a file in a volume, through a fresh container.
fn volume_cat(gui: &Gui, volume: &str, path: &str) -> String {
    gui.cli(&[
        "run",
        "--rm",
        "-v",
        &format!("{volume}:/v"),
        "busybox",
        "cat",
        &format!("/v/{path}"),
    ])
}

/// The entry names of a tar file, relative (`./` and trailing `/` dropped, `.` left out).
fn tar_paths(path: &Path) -> BTreeSet<String> {
    let mut ar = tar::Archive::new(std::fs::File::open(path).expect("tar file"));
    ar.entries()
        .expect("tar entries")
        .map(|e| {
            e.expect("entry")
                .path()
                .expect("path")
                .display()
                .to_string()
        })
        .map(|p| p.trim_start_matches("./").trim_end_matches('/').to_string())
        .filter(|p| !p.is_empty() && p != ".")
        .collect()
}

/// The engine's `/system/df` size of `volume`.
fn df_size(gui: &Gui, volume: &str) -> u64 {
    let (status, body) = tokio::task::block_in_place(|| gui.engine.api("GET", "/system/df", None));
    assert_eq!(status, 200, "{body}");
    let df: Value = serde_json::from_str(&body).expect("df json");
    df["Volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["Name"] == volume)
        .and_then(|v| v["UsageData"]["Size"].as_u64())
        .unwrap_or_else(|| panic!("no size for {volume} in {body}"))
}

fn volumes(gui: &Gui) -> BTreeSet<String> {
    gui.cli(&["volume", "ls", "--format", "{{.Name}}"])
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volume_detail_shows_size_users_files_takes_a_drop_and_exports() {
    let gui = Gui::start().await;
    gui.cli(&[
        "run",
        "--name",
        "gvol-writer",
        "-v",
        "gvol:/data",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /data/sub && echo 'hello volume' > /data/readme.txt && \
         printf abc > /data/sub/deep.txt && head -c 100000 /dev/zero > /data/blob.bin && \
         ln -s sub/deep.txt /data/link",
    ]);
    gui.nav("volumes").await;
    gui.click(&format!("{} [data-testid=volume-details]", row("gvol")))
        .await;
    gui.wait_attr("[data-testid=volume-detail-body]", "data-state", "loaded")
        .await;
    assert_eq!(gui.text("[data-testid=volume-detail-title]").await, "gvol");

    // Size as the engine counts it, and the container that used it, by name, with its state.
    let size = df_size(&gui, "gvol");
    assert!(size >= 100_016, "df size {size}");
    gui.wait_attr("[data-testid=volume-facts]", "data-size", &size.to_string())
        .await;
    gui.wait_attr(
        "[data-testid=volume-container][data-name=gvol-writer]",
        "data-state",
        "exited",
    )
    .await;

    // Its files: the top, a text file viewed, a file and a folder downloaded.
    let list = in_detail("[data-testid=files-list]");
    gui.wait_attr(&list, "data-path", "/").await;
    gui.wait_attr(&list, "data-state", "ready").await;
    for (name, kind) in [
        ("sub", "dir"),
        ("readme.txt", "file"),
        ("blob.bin", "file"),
        ("link", "link"),
    ] {
        assert_eq!(
            gui.attr(&entry(name), "data-kind").await.as_deref(),
            Some(kind),
            "{name}"
        );
    }
    gui.click(&format!("{} [data-testid=files-open]", entry("readme.txt")))
        .await;
    gui.wait_attr(
        &in_detail("[data-testid=files-viewer-text]"),
        "data-state",
        "ready",
    )
    .await;
    gui.wait_text(
        &in_detail("[data-testid=files-viewer-text]"),
        "hello volume",
    )
    .await;
    let status = in_detail("[data-testid=files-status]");
    let saved = gui
        .download_entry(&entry("readme.txt"), &status, "readme.txt")
        .await;
    assert_eq!(std::fs::read_to_string(&saved).unwrap(), "hello volume\n");
    let sub_tar = gui.download_entry(&entry("sub"), &status, "sub.tar").await;
    assert_eq!(
        tar_paths(&sub_tar),
        BTreeSet::from(["sub", "sub/deep.txt"].map(String::from))
    );

    // Into the sub folder and drop a file there: a new container reads it back.
    gui.click(&format!("{} [data-testid=files-open]", entry("sub")))
        .await;
    gui.wait_attr(&list, "data-path", "/sub").await;
    gui.wait_attr(&list, "data-state", "ready").await;
    let content = "dropped into a volume ü\n";
    gui.js(
        "const dt = new DataTransfer(); \
         dt.items.add(new File([arguments[0]], arguments[1], { type: 'text/plain' })); \
         const ev = new Event('drop', { bubbles: true, cancelable: true }); \
         Object.defineProperty(ev, 'dataTransfer', { value: dt }); \
         document.querySelector('[data-testid=volume-detail] [data-testid=files-drop]').dispatchEvent(ev); \
         return true;",
        vec![content.into(), "dropped note.txt".into()],
    )
    .await;
    gui.wait_attr(&entry("dropped note.txt"), "data-kind", "file")
        .await;
    assert_eq!(volume_cat(&gui, "gvol", "sub/dropped note.txt"), content);

    // Files dragged in from the desktop come as Tauri's drag-drop event with their paths,
    // where the pointer is: a file and a folder, streamed from the host by the app.
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("from desktop.txt"), "desktop bytes\n").unwrap();
    std::fs::create_dir_all(host.path().join("album/2026")).unwrap();
    std::fs::write(host.path().join("album/2026/pic.txt"), "pic").unwrap();
    let paths: Vec<Value> = ["from desktop.txt", "album"]
        .iter()
        .map(|n| host.path().join(n).display().to_string().into())
        .collect();
    gui.js(
        "const area = document.querySelector('[data-testid=volume-detail] [data-testid=files-drop]'); \
         area.scrollIntoView(); const r = area.getBoundingClientRect(); \
         const s = window.devicePixelRatio || 1; \
         return window.__TAURI__.event.emit('tauri://drag-drop', { paths: arguments[0], \
           position: { x: (r.left + r.width / 2) * s, y: (r.top + 5) * s } }).then(() => true);",
        vec![Value::Array(paths)],
    )
    .await;
    gui.wait_attr(&entry("album"), "data-kind", "dir").await;
    gui.wait_attr(&entry("from desktop.txt"), "data-kind", "file")
        .await;
    assert_eq!(
        volume_cat(&gui, "gvol", "sub/from desktop.txt"),
        "desktop bytes\n"
    );
    assert_eq!(volume_cat(&gui, "gvol", "sub/album/2026/pic.txt"), "pic");

    // Export: a tar in Downloads whose entries are the volume's files, with their bytes.
    gui.click("[data-testid=volume-export]").await;
    let export = gui.downloads().join("gvol.tar");
    gui.wait_attr(
        "[data-testid=volume-action-status]",
        "data-saved",
        &export.display().to_string(),
    )
    .await;
    let want = volume_paths(&gui, "gvol");
    assert_eq!(tar_paths(&export), want);
    assert!(want.contains("sub/dropped note.txt"), "{want:?}");
    let mut ar = tar::Archive::new(std::fs::File::open(&export).unwrap());
    let blob = ar
        .entries()
        .unwrap()
        .map(Result::unwrap)
        .find(|e| e.path().unwrap().ends_with("blob.bin"))
        .expect("blob.bin in the export");
    assert_eq!(blob.header().size().unwrap(), 100_000);

    // The helpers were removed and never showed up as containers.
    assert_eq!(gui.cli(&HELPERS), "");
    gui.nav("containers").await;
    gui.find("[data-testid=container-row][data-name=gvol-writer]")
        .await;
    // `docker run --rm` containers of the checks above leave the list by events.
    gui.until_js(
        "only the writer listed",
        "const r = [...document.querySelectorAll('[data-testid=container-row]')]; \
         return r.length === 1 && r[0].dataset.name === 'gvol-writer' || r.map(e => e.dataset.name);",
        vec![],
    )
    .await;
    gui.finish().await;
}

/// A tar as a backup of a volume: a folder, files (one owned by 1000:1000), `./` names.
fn backup_tar(path: &Path) {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    b.append_data(&mut dir, "./conf", &[][..]).unwrap();
    for (name, data, uid) in [
        ("./conf/app.ini", &b"[app]\nport = 8080\n"[..], 1000),
        ("./data.txt", &b"restored data\n"[..], 0),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o640);
        h.set_uid(uid);
        h.set_gid(uid);
        b.append_data(&mut h, name, data).unwrap();
    }
    b.finish().unwrap();
}

async fn import(gui: &Gui, file: &Path, volume: &str) {
    gui.nav("volumes").await;
    gui.type_into(
        "[data-testid=volume-import-path]",
        &file.display().to_string(),
    )
    .await;
    gui.type_into("[data-testid=volume-import-name]", volume)
        .await;
    gui.click("[data-testid=volume-import-submit]").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_and_clone_make_equal_volumes_and_bad_input_leaves_nothing() {
    let gui = Gui::start().await;
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("backup.tar");
    backup_tar(&backup);

    // Import into a new volume: a container sees the files, with their owner.
    import(&gui, &backup, "gimp").await;
    gui.wait_attr("[data-testid=volume-import-status]", "data-state", "done")
        .await;
    let want = BTreeSet::from(["conf", "conf/app.ini", "data.txt"].map(String::from));
    assert_eq!(volume_paths(&gui, "gimp"), want);
    assert_eq!(volume_cat(&gui, "gimp", "data.txt"), "restored data\n");
    let owner = gui.cli(&[
        "run",
        "--rm",
        "-v",
        "gimp:/v",
        "busybox",
        "stat",
        "-c",
        "%u:%g %a",
        "/v/conf/app.ini",
    ]);
    assert_eq!(owner.trim(), "1000:1000 640");

    // Into a volume that holds data: refused, nothing written.
    gui.cli(&[
        "run",
        "--rm",
        "-v",
        "gfull:/v",
        "busybox",
        "sh",
        "-c",
        "echo keep > /v/keep.txt",
    ]);
    import(&gui, &backup, "gfull").await;
    let (code, message) = gui.error_shown().await;
    assert_eq!(code, "conflict", "{message}");
    assert!(message.contains("gfull is not empty"), "{message}");
    assert_eq!(
        volume_paths(&gui, "gfull"),
        BTreeSet::from(["keep.txt".to_string()])
    );
    gui.click("[data-testid=error-dismiss]").await;

    // A file that is not a tar: invalid, and no volume made.
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "these are notes, not a tar archive\n".repeat(30)).unwrap();
    import(&gui, &text, "gbad").await;
    let (code, message) = gui.error_shown().await;
    assert_eq!(code, "invalid", "{message}");
    assert!(message.starts_with("invalid tar archive"), "{message}");
    gui.wait_attr("[data-testid=volume-import-status]", "data-state", "failed")
        .await;
    assert!(!volumes(&gui).contains("gbad"), "{:?}", volumes(&gui));
    gui.click("[data-testid=error-dismiss]").await;

    // Clone: an equal volume…
    gui.click(&format!("{} [data-testid=volume-details]", row("gimp")))
        .await;
    gui.wait_attr("[data-testid=volume-detail-body]", "data-state", "loaded")
        .await;
    gui.type_into("[data-testid=volume-clone-name]", "gclone")
        .await;
    gui.click("[data-testid=volume-clone-submit]").await;
    gui.wait_attr("[data-testid=volume-action-status]", "data-state", "done")
        .await;
    assert_eq!(volume_paths(&gui, "gclone"), want);
    assert_eq!(
        volume_cat(&gui, "gclone", "conf/app.ini"),
        "[app]\nport = 8080\n"
    );
    // …and an independent one.
    gui.cli(&[
        "run",
        "--rm",
        "-v",
        "gclone:/v",
        "busybox",
        "sh",
        "-c",
        "echo changed > /v/data.txt && rm -r /v/conf",
    ]);
    assert_eq!(volume_paths(&gui, "gimp"), want);
    assert_eq!(volume_cat(&gui, "gimp", "data.txt"), "restored data\n");

    // Clone onto a name in use: refused, that volume untouched.
    gui.type_into("[data-testid=volume-clone-name]", "gfull")
        .await;
    gui.click("[data-testid=volume-clone-submit]").await;
    let (code, message) = gui.error_shown().await;
    assert_eq!(code, "conflict", "{message}");
    assert!(message.contains("gfull already exists"), "{message}");
    gui.wait_attr("[data-testid=volume-action-status]", "data-state", "failed")
        .await;
    assert_eq!(
        volume_paths(&gui, "gfull"),
        BTreeSet::from(["keep.txt".to_string()])
    );

    // No helper container is left, and only the volumes asked for exist.
    assert_eq!(gui.cli(&HELPERS), "");
    assert_eq!(
        volumes(&gui),
        BTreeSet::from(["gclone", "gfull", "gimp"].map(String::from))
    );
    gui.finish().await;
}
