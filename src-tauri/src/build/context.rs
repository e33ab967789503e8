//! The build context as the docker CLI sends it to `POST /build`: the folder as a tar, less
//! what its `.dockerignore` excludes ([`super::ignore`]); the Dockerfile and `.dockerignore`
//! always go (the daemon drops them when excluded), and a Dockerfile outside the folder is
//! added under a generated name that the request names.

use std::path::{Path, PathBuf};

use super::ignore::IgnoreRules;
use crate::error::{AppError, Result};
use crate::fsutil::io_error;

/// A packed context, ready to send.
#[derive(Debug)]
pub struct Packed {
    pub tar: Vec<u8>,
    /// The Dockerfile's path inside the tar (the `dockerfile` parameter).
    pub dockerfile: String,
    /// Files, folders and links sent.
    pub entries: usize,
}

/// Where the Dockerfile is: `Inside(relative path)` or `Outside(absolute path)`.
#[derive(Debug, PartialEq, Eq)]
enum DockerfilePlace {
    Inside(String),
    Outside(PathBuf),
}

/// Resolves the Dockerfile given by the user: empty means `Dockerfile` in the context; a
/// relative path is relative to the context.
fn dockerfile_place(context: &Path, given: &str) -> Result<DockerfilePlace> {
    let given = given.trim();
    let path = if given.is_empty() {
        context.join("Dockerfile")
    } else {
        context.join(given)
    };
    if !path.is_file() {
        return Err(AppError::Invalid(format!(
            "unable to prepare context: Cannot locate specified Dockerfile: {}",
            path.display()
        )));
    }
    let path = std::fs::canonicalize(&path).map_err(io_error(&path))?;
    Ok(match path.strip_prefix(context) {
        Ok(rel) => DockerfilePlace::Inside(slash_path(rel)),
        Err(_) => DockerfilePlace::Outside(path),
    })
}

/// A relative path with `/` separators (tar names, ignore patterns).
fn slash_path(rel: &Path) -> String {
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// The name a Dockerfile from outside the context gets in the tar (the CLI uses a random
/// `.dockerfile.<hex>`).
fn outside_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(".dockerfile.{:x}{:x}", nanos, std::process::id())
}

/// Packs folder `context` with the Dockerfile `dockerfile` (see [`dockerfile_place`]).
pub fn pack(context: &str, dockerfile: &str) -> Result<Packed> {
    let given = Path::new(context.trim());
    if context.trim().is_empty() || !given.is_dir() {
        return Err(AppError::Invalid(format!(
            "unable to prepare context: path {:?} not found",
            context.trim()
        )));
    }
    let root = std::fs::canonicalize(given).map_err(io_error(given))?;
    let place = dockerfile_place(&root, dockerfile)?;
    let ignore_file = root.join(".dockerignore");
    let rules = match std::fs::read_to_string(&ignore_file) {
        Ok(text) => IgnoreRules::parse(&text).map_err(|e| AppError::Invalid(e.to_string()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => IgnoreRules::default(),
        Err(e) => return Err(io_error(&ignore_file)(e)),
    };
    let always: Vec<String> = match &place {
        DockerfilePlace::Inside(rel) => vec![rel.clone(), ".dockerignore".into()],
        DockerfilePlace::Outside(_) => vec![".dockerignore".into()],
    };
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(false);
    let mut entries = 0;
    let walk_all = rules.has_exceptions();
    let walker = walkdir::WalkDir::new(&root)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            // An excluded folder is not walked unless an exception may keep something in it.
            walk_all || !e.file_type().is_dir() || !rules.excludes(&rel_of(&root, e.path()))
        });
    for entry in walker {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(&root).display().to_string();
            AppError::Io {
                path,
                err: e.into(),
            }
        })?;
        let rel = rel_of(&root, entry.path());
        let kind = entry.file_type();
        if !(kind.is_file() || kind.is_dir() || kind.is_symlink()) {
            continue; // sockets, fifos, devices: not sent (as the CLI)
        }
        if rules.excludes(&rel) && !always.contains(&rel) {
            continue;
        }
        tar.append_path_with_name(entry.path(), &rel)
            .map_err(io_error(entry.path()))?;
        entries += 1;
    }
    let dockerfile = match place {
        DockerfilePlace::Inside(rel) => rel,
        DockerfilePlace::Outside(path) => {
            let name = outside_name();
            tar.append_path_with_name(&path, &name)
                .map_err(io_error(&path))?;
            entries += 1;
            name
        }
    };
    let tar = tar.into_inner().map_err(io_error(&root))?;
    Ok(Packed {
        tar,
        dockerfile,
        entries,
    })
}

fn rel_of(root: &Path, path: &Path) -> String {
    slash_path(path.strip_prefix(root).unwrap_or(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(p: &Packed) -> Vec<String> {
        let mut a = tar::Archive::new(p.tar.as_slice());
        a.entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    }

    fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (name, body) in files {
            let p = d.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, body).unwrap();
        }
        d
    }

    #[test]
    fn ignored_files_stay_out_but_the_dockerfile_and_ignore_file_go() {
        let d = context(&[
            ("Dockerfile", "FROM busybox\n"),
            (
                ".dockerignore",
                "secret.txt\nlogs\nDockerfile\n.dockerignore\n!logs/keep.log\n",
            ),
            ("secret.txt", "x"),
            ("app.txt", "y"),
            ("logs/a.log", "z"),
            ("logs/keep.log", "k"),
        ]);
        let p = pack(d.path().to_str().unwrap(), "").unwrap();
        let n = names(&p);
        assert_eq!(p.dockerfile, "Dockerfile");
        for kept in [".dockerignore", "Dockerfile", "app.txt", "logs/keep.log"] {
            assert!(n.contains(&kept.to_string()), "{kept} missing from {n:?}");
        }
        for gone in ["secret.txt", "logs/a.log", "logs"] {
            assert!(!n.contains(&gone.to_string()), "{gone} sent: {n:?}");
        }
        assert_eq!(p.entries, n.len());
    }

    #[test]
    fn an_excluded_folder_without_exceptions_is_not_walked() {
        let d = context(&[
            ("Dockerfile", "FROM x\n"),
            (".dockerignore", "node_modules\n"),
            ("node_modules/a/b", ""),
        ]);
        let n = names(&pack(d.path().to_str().unwrap(), "").unwrap());
        assert!(n.iter().all(|x| !x.starts_with("node_modules")), "{n:?}");
    }

    #[test]
    fn a_dockerfile_outside_the_context_gets_a_generated_name() {
        let d = context(&[("ctx/a.txt", "a"), ("build/Dockerfile.dev", "FROM x\n")]);
        let ctx = d.path().join("ctx");
        let df = d.path().join("build/Dockerfile.dev");
        let p = pack(ctx.to_str().unwrap(), df.to_str().unwrap()).unwrap();
        assert!(p.dockerfile.starts_with(".dockerfile."), "{}", p.dockerfile);
        assert!(names(&p).contains(&p.dockerfile));
        // A relative one is inside the context.
        let d = context(&[("sub/Dockerfile.x", "FROM x\n")]);
        let p = pack(d.path().to_str().unwrap(), "sub/Dockerfile.x").unwrap();
        assert_eq!(p.dockerfile, "sub/Dockerfile.x");
    }

    #[test]
    fn a_missing_folder_or_dockerfile_is_said() {
        let e = pack("/nonexistent/ctx", "").unwrap_err();
        assert!(e.to_string().contains("not found"), "{e}");
        let d = context(&[("a.txt", "a")]);
        let e = pack(d.path().to_str().unwrap(), "").unwrap_err();
        assert!(
            e.to_string().contains("Cannot locate specified Dockerfile"),
            "{e}"
        );
        assert_eq!(e.code().as_str(), "invalid");
    }
}
