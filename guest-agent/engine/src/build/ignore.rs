//! `.dockerignore` on the engine side. The client leaves excluded files out of the context;
//! like dockerd's classic builder, the engine then removes `.dockerignore` itself and the
//! Dockerfile from the context when the file's patterns exclude them (the Dockerfile is read
//! before), so `ADD . /dst` copies neither.

use std::path::Path;

use crate::image::glob_match;
use crate::Result;

/// The patterns of a `.dockerignore` text: no blank lines or comments, cleaned of a leading
/// `/` and `./`; a `!` prefix (an exception) is kept.
pub(crate) fn patterns(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (neg, p) = l.strip_prefix('!').map_or(("", l), |p| ("!", p.trim()));
            let p = p.trim_start_matches("./").trim_start_matches('/');
            format!("{neg}{}", p.trim_end_matches('/'))
        })
        .collect()
}

/// Whether `path` (relative, `/`-separated) is excluded: the last pattern that matches it or
/// one of its parent folders decides, an exception (`!`) keeping it.
pub(crate) fn excluded(patterns: &[String], path: &str) -> bool {
    let mut out = false;
    for p in patterns {
        let (keep, pat) = p
            .strip_prefix('!')
            .map_or((false, p.as_str()), |r| (true, r));
        let hit = glob_match(pat, path)
            || path
                .match_indices('/')
                .any(|(i, _)| glob_match(pat, &path[..i]));
        if hit {
            out = !keep;
        }
    }
    out
}

/// Removes `.dockerignore` and `dockerfile` from the context `dir` if `.dockerignore`
/// excludes them.
pub(crate) fn drop_ignored_specials(dir: &Path, dockerfile: &str) -> Result<()> {
    let text = match std::fs::read_to_string(dir.join(".dockerignore")) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let pats = patterns(&text);
    let dockerfile = dockerfile.trim_start_matches("./").trim_start_matches('/');
    for name in [".dockerignore", dockerfile] {
        if excluded(&pats, name) {
            match std::fs::remove_file(dir.join(name)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_match_decides_and_exceptions_keep() {
        let p = patterns("ignored\nDockerfile\n.dockerignore\n!ignored/subdir/kept\n\n#*\n");
        assert!(excluded(&p, "Dockerfile"));
        assert!(excluded(&p, ".dockerignore"));
        assert!(excluded(&p, "ignored/subdir/file"));
        assert!(!excluded(&p, "ignored/subdir/kept"));
        assert!(!excluded(&p, "#file.txt"));
        assert!(!excluded(&p, "not-ignored"));
        let p = patterns("*\n!Dockerfile\n");
        assert!(!excluded(&p, "Dockerfile"));
        assert!(excluded(&p, ".dockerignore"));
    }

    #[test]
    fn removes_only_the_excluded_special_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(".dockerignore"), "Dockerfile.dev\n").unwrap();
        std::fs::write(d.path().join("Dockerfile.dev"), "FROM x\n").unwrap();
        drop_ignored_specials(d.path(), "Dockerfile.dev").unwrap();
        assert!(!d.path().join("Dockerfile.dev").exists());
        assert!(d.path().join(".dockerignore").exists());
    }
}
