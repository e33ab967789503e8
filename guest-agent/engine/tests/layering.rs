//! The engine's modules depend only downward (`docs/design.md`): what runs containers
//! (`container`, `build`) sits on the services and seams below it, which never reach back up.
//! A source scan, so a new upward `crate::…` path fails here before it makes a circle.

use std::path::{Path, PathBuf};

/// The engine's modules from the bottom up: a module names only modules of lower layers
/// (modules not listed, like `error` or `events`, are leaves anyone may use). Each is
/// `src/<m>.rs` or `src/<m>/`.
const LAYERS: &[&[&str]] = &[
    &["fsutil"],
    &["stream", "mount", "runtime"],
    &["shim", "registry", "volume", "network"],
    &["image"],
    &["container"],
    &["build"],
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn module_files(src: &Path, module: &str) -> Vec<PathBuf> {
    let mut files = vec![];
    let file = src.join(format!("{module}.rs"));
    if file.exists() {
        files.push(file);
    }
    let dir = src.join(module);
    if dir.is_dir() {
        rust_files(&dir, &mut files);
    }
    assert!(
        !files.is_empty(),
        "no module {module} under {}",
        src.display()
    );
    files
}

/// Whether `line` (code, not a comment) names `crate::<module>`.
fn names(line: &str, module: &str) -> bool {
    let pat = format!("crate::{module}");
    !line.trim_start().starts_with("//")
        && line.match_indices(&pat).any(|(i, _)| {
            let next = line[i + pat.len()..].chars().next();
            !next.is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
}

#[test]
fn engine_modules_depend_only_downward() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut upward = vec![];
    for (level, layer) in LAYERS.iter().enumerate() {
        let not_below: Vec<&str> = LAYERS[level..]
            .iter()
            .flat_map(|l| l.iter().copied())
            .collect();
        for module in *layer {
            for file in module_files(&src, module) {
                let text = std::fs::read_to_string(&file).unwrap();
                for (n, line) in text.lines().enumerate() {
                    for up in not_below
                        .iter()
                        .filter(|up| *up != module && names(line, up))
                    {
                        let at = file.strip_prefix(&src).unwrap().display();
                        upward.push(format!("{at}:{}: {module} → {up}", n + 1));
                    }
                }
            }
        }
    }
    assert!(
        upward.is_empty(),
        "paths to a module not below:\n{}",
        upward.join("\n")
    );
}

#[test]
fn names_skips_comments_and_longer_names() {
    assert!(names("use crate::container::Svc;", "container"));
    assert!(names("    crate::mount::unmount(p);", "mount"));
    assert!(!names("/// see [`crate::container`]", "container"));
    assert!(!names("use crate::containers;", "container"));
}
