//! The reading test of `docker run`: the path from the HTTP handler to runc, listed once in
//! `docs/design.md` (section [`SECTION`]), reads in fewer than ten files of fewer than 400
//! lines each, with no function longer than 80 lines unless a comment above it says why
//! (a line starting with [`REASON`]). The section's side branches (bullets) are held to the
//! same sizes; only the numbered path is counted.
//!
//! A line scan, not a parser: the workspace is `cargo fmt`-formatted (`scripts/test.sh` checks
//! it), so a function's body ends at the first line after its header that is `}` at the
//! header's indentation, and its signature ends at the first line ending in `{` or `;`. A
//! header whose end cannot be found that way fails the test instead of passing unmeasured.

use std::path::{Path, PathBuf};

/// The heading of the section of `docs/design.md` that lists the path.
const SECTION: &str = "## The path of `docker run`";
/// The path has fewer files than this.
const MAX_FILES: usize = 10;
/// Every file listed has fewer lines than this.
const MAX_LINES: usize = 400;
/// A function may have this many lines (header to closing brace) without a reason.
const MAX_FN_LINES: usize = 80;
/// Starts the comment above a function that explains why it is longer.
const REASON: &str = "// Long because";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The files of the section: numbered items are the path, bullets its side branches; each
/// item names its file (`….rs`) first, in backticks.
fn listed_files(design: &str) -> (Vec<String>, Vec<String>) {
    let section = design
        .split_once(SECTION)
        .map(|(_, rest)| rest.split("\n## ").next().unwrap_or(rest))
        .unwrap_or_else(|| panic!("docs/design.md has no section {SECTION:?}"));
    let (mut path, mut branches) = (vec![], vec![]);
    for line in section.lines() {
        let numbered = line
            .split_once(". `")
            .filter(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        let (list, rest) = match (numbered, line.strip_prefix("- `")) {
            (Some((_, rest)), _) => (&mut path, rest),
            (None, Some(rest)) => (&mut branches, rest),
            (None, None) => continue,
        };
        if let Some((file, _)) = rest.split_once('`').filter(|(f, _)| f.ends_with(".rs")) {
            list.push(file.to_string());
        }
    }
    (path, branches)
}

/// A function found by [`functions`]: its name, the line of its header (1-based) and its
/// length in lines, header to closing brace.
#[derive(Debug, PartialEq)]
struct Function {
    name: String,
    line: usize,
    lines: usize,
    has_reason: bool,
}

/// The name of the function a line declares, if it does.
fn declared_fn(line: &str) -> Option<&str> {
    let mut rest = line.trim_start();
    if rest.starts_with("//") {
        return None;
    }
    for qualifier in [
        "pub(crate) ",
        "pub(super) ",
        "pub ",
        "const ",
        "async ",
        "unsafe ",
    ] {
        rest = rest.strip_prefix(qualifier).unwrap_or(rest);
    }
    rest = rest.strip_prefix("extern \"C\" ").unwrap_or(rest);
    let name = rest.strip_prefix("fn ")?;
    let end = name
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(name.len());
    (end > 0).then(|| &name[..end])
}

/// Whether the comments and attributes right above line `at` hold a [`REASON`].
fn has_reason(lines: &[&str], at: usize) -> bool {
    lines[..at]
        .iter()
        .rev()
        .map(|l| l.trim_start())
        .take_while(|l| l.starts_with("//") || l.starts_with("#["))
        .any(|l| l.starts_with(REASON))
}

/// Every function with a body in `text`, or the line of a header whose end was not found.
fn functions(text: &str) -> Result<Vec<Function>, usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = vec![];
    for (at, line) in lines.iter().enumerate() {
        let Some(name) = declared_fn(line) else {
            continue;
        };
        let indent = &line[..line.len() - line.trim_start().len()];
        let signature_end = lines[at..]
            .iter()
            .position(|l| {
                let l = l.trim_end();
                l.ends_with('{') || l.ends_with(';') || l.ends_with("{}")
            })
            .ok_or(at + 1)?;
        let last = lines[at + signature_end].trim_end();
        if last.ends_with(';') || last.ends_with("{}") {
            continue;
        }
        let closing = format!("{indent}}}");
        let body_end = lines[at + signature_end..]
            .iter()
            .position(|l| l.trim_end() == closing)
            .ok_or(at + 1)?;
        out.push(Function {
            name: name.to_string(),
            line: at + 1,
            lines: signature_end + body_end + 1,
            has_reason: has_reason(&lines, at),
        });
    }
    Ok(out)
}

/// What is wrong with one listed file: missing, too long, or functions too long.
fn problems(file: &str) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(workspace().join(file)) else {
        return vec![format!("{file}: listed in docs/design.md but not found")];
    };
    let mut out = vec![];
    let n = text.lines().count();
    if n >= MAX_LINES {
        out.push(format!("{file}: {n} lines (fewer than {MAX_LINES} wanted)"));
    }
    match functions(&text) {
        Err(line) => out.push(format!("{file}:{line}: cannot find this function's end")),
        Ok(fns) => out.extend(
            fns.iter()
                .filter(|f| f.lines > MAX_FN_LINES && !f.has_reason)
                .map(|f| {
                    format!(
                        "{file}:{}: fn {} has {} lines (at most {MAX_FN_LINES} without a `{REASON}` comment)",
                        f.line, f.name, f.lines
                    )
                }),
        ),
    }
    out
}

#[test]
fn docker_run_reads_in_under_ten_short_files() {
    let design = std::fs::read_to_string(workspace().join("docs/design.md")).unwrap();
    let (path, branches) = listed_files(&design);
    assert!(!path.is_empty(), "the section lists no path");
    let mut wrong: Vec<String> = path
        .iter()
        .chain(&branches)
        .flat_map(|f| problems(f))
        .collect();
    if path.len() >= MAX_FILES {
        wrong.push(format!(
            "the path has {} files (fewer than {MAX_FILES} wanted)",
            path.len()
        ));
    }
    assert!(
        wrong.is_empty(),
        "the reading test fails:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn functions_are_measured_header_to_closing_brace() {
    let text = "\
impl X {
    /// Doc.
    pub(crate) async fn a(
        x: u8,
    ) -> u8 {
        x
    }

    fn decl(&self);
    fn empty() {}
}

// Long because: a table.
fn b() {
    let s = \"fn not_a_header\";
}
";
    let fns = functions(text).unwrap();
    let summary: Vec<(&str, usize, usize, bool)> = fns
        .iter()
        .map(|f| (f.name.as_str(), f.line, f.lines, f.has_reason))
        .collect();
    assert_eq!(summary, [("a", 3, 5, false), ("b", 14, 3, true)]);
    assert_eq!(functions("fn broken() {\n  x\n"), Err(1));
}

#[test]
fn the_section_lists_path_and_branches() {
    let doc = "# D\n## The path of `docker run`\n\n1. `a.rs`: one.\n2. `b.rs` two\n- `c.rs`: a branch\n- `docker wait`: no file\nText `d.rs`.\n## Next\n3. `e.rs`\n";
    assert_eq!(
        listed_files(doc),
        (
            vec!["a.rs".to_string(), "b.rs".to_string()],
            vec!["c.rs".to_string()]
        )
    );
}
