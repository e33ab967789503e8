//! `.dockerignore` as the docker CLI applies it to a build context (moby's `patternmatcher`):
//! each line trimmed, `#` comments and blank lines skipped, `!` marks an exception, a pattern
//! is cleaned (`./x`, `/x` and `x/` all mean `x`); a pattern matches a path when it matches the
//! path itself or one of its parent folders, and the last matching line decides.
//!
//! The glob itself is `globset` with `literal_separator` (`*` and `?` stop at `/`, `**`
//! crosses folders) and `\` escapes, which is Go's `filepath.Match` plus `**`. Braces are
//! escaped first: Go has no `{a,b}` alternation. Known difference: inside `[…]`, Go reads a
//! leading `!` as a member, globset as a negation (Go negates with `^`, as globset also does).
//! The engine has its own matcher for the daemon's side (`berth-engine`, which the app must
//! not link); no published crate implements moby's rules as such.

use globset::{GlobBuilder, GlobMatcher};

#[derive(Debug, thiserror::Error)]
#[error("invalid .dockerignore pattern {pattern:?}: {source}")]
pub struct PatternError {
    pattern: String,
    #[source]
    source: globset::Error,
}

struct Rule {
    glob: GlobMatcher,
    exception: bool,
}

/// The compiled patterns of one `.dockerignore`.
#[derive(Default)]
pub struct IgnoreRules {
    rules: Vec<Rule>,
}

/// `filepath.Clean` of a relative path or pattern, without a leading `/` or `./`.
pub fn clean(pattern: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in pattern.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            _ => parts.push(p),
        }
    }
    parts.join("/")
}

impl IgnoreRules {
    /// Parses the text of a `.dockerignore`.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let mut rules = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exception, pat) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let pattern = clean(pat).replace('{', "\\{").replace('}', "\\}");
            if pattern.is_empty() {
                continue;
            }
            let glob = GlobBuilder::new(&pattern)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|source| PatternError {
                    pattern: line.to_string(),
                    source,
                })?;
            rules.push(Rule {
                glob: glob.compile_matcher(),
                exception,
            });
        }
        Ok(Self { rules })
    }

    /// Whether any rule is an exception: then an excluded folder must still be walked, as a
    /// file under it may be kept.
    pub fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|r| r.exception)
    }

    /// Whether `path` (relative to the context, `/`-separated) is left out of the context.
    pub fn excludes(&self, path: &str) -> bool {
        let mut out = false;
        for r in &self.rules {
            let hit = r.glob.is_match(path)
                || path
                    .match_indices('/')
                    .any(|(i, _)| r.glob.is_match(&path[..i]));
            if hit {
                out = !r.exception;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(t: &str) -> IgnoreRules {
        IgnoreRules::parse(t).unwrap()
    }

    #[test]
    fn star_stays_in_its_folder_and_double_star_crosses() {
        let r = rules("*.log\n**/*.tmp\ndocs/**/draft\n");
        assert!(r.excludes("a.log"));
        assert!(!r.excludes("sub/a.log"));
        assert!(r.excludes("x.tmp"));
        assert!(r.excludes("a/b/x.tmp"));
        assert!(r.excludes("docs/draft"));
        assert!(r.excludes("docs/a/b/draft"));
        assert!(!r.excludes("other/draft"));
    }

    #[test]
    fn a_folder_excludes_what_is_under_it_and_the_last_match_decides() {
        let r = rules("# comment\n\n/build/\n./secret.txt\n!build/keep.txt\n");
        assert!(r.excludes("build"));
        assert!(r.excludes("build/out/x.o"));
        assert!(!r.excludes("build/keep.txt"));
        assert!(r.excludes("secret.txt"));
        assert!(!r.excludes("# comment"));
        assert!(r.has_exceptions());
        let r = rules("*\n!Dockerfile\n");
        assert!(!r.excludes("Dockerfile"));
        assert!(r.excludes("src"));
    }

    #[test]
    fn classes_escapes_and_literal_braces() {
        let r = rules("file[0-9].txt\nq\\?\n{a,b}\n");
        assert!(r.excludes("file3.txt"));
        assert!(!r.excludes("filex.txt"));
        assert!(r.excludes("q?"));
        assert!(!r.excludes("qx"));
        assert!(r.excludes("{a,b}"));
        assert!(!r.excludes("a"));
    }

    #[test]
    fn a_broken_class_is_refused_with_the_line() {
        let e = IgnoreRules::parse("ok\nbad[\n").err().unwrap().to_string();
        assert!(e.contains("\"bad[\""), "{e}");
    }
}
