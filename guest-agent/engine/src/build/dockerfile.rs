//! Dockerfile parsing, as the classic builder does it: parser directives (`# escape=`), line
//! continuations, comments (also inside continuations), `--flag=value`s, JSON (exec) form;
//! and, as BuildKit's frontend does, heredocs: in a shell-form `RUN` one script for the shell
//! ([`heredoc_script`]), in `COPY`/`ADD` files made from their text ([`Heredoc`]).
//! Variable expansion happens later, per instruction, in [`super::words`].

use crate::{EngineError, Result};

/// One instruction, continuations joined.
#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    /// Upper case: `FROM`, `RUN`, …
    pub cmd: String,
    /// `--name=value` flags in front of the arguments.
    pub flags: Vec<(String, String)>,
    /// The arguments after the flags, as written.
    pub rest: String,
    /// The arguments as a JSON string array, when written so (exec form).
    pub json: Option<Vec<String>>,
    /// The whole instruction as written (continuations joined), for `Step n/m : …`.
    pub original: String,
    /// 1-based line where it starts.
    pub line: usize,
    /// `COPY`/`ADD` heredocs, in order; `rest` names each by its word.
    pub heredocs: Vec<Heredoc>,
}

/// A `COPY <<EOF /dest` source: a file named `name` holding `content`.
#[derive(Debug, Clone, PartialEq)]
pub struct Heredoc {
    pub name: String,
    /// The body's lines (tabs stripped for `<<-`), each ended by a newline.
    pub content: String,
    /// Unquoted delimiter: variables in the content are expanded.
    pub expand: bool,
}

impl Instruction {
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq)]
pub struct Dockerfile {
    pub escape: char,
    pub instructions: Vec<Instruction>,
}

const KNOWN: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Instructions whose arguments may be a JSON array.
const JSON_FORM: &[&str] = &["ADD", "CMD", "COPY", "ENTRYPOINT", "RUN", "SHELL", "VOLUME"];

/// Instructions that take `--flag`s.
const FLAGGED: &[&str] = &["ADD", "COPY", "FROM", "HEALTHCHECK", "RUN"];

fn parse_error(line: usize, msg: impl std::fmt::Display) -> EngineError {
    EngineError::invalid(format!("dockerfile parse error on line {line}: {msg}"))
}

/// Reads the parser directives at the top (`# escape=`, `# syntax=`).
fn directives(lines: &[&str]) -> Result<char> {
    let mut escape = '\\';
    for l in lines {
        let Some(body) = l.trim().strip_prefix('#') else {
            break;
        };
        let Some((k, v)) = body.split_once('=') else {
            break;
        };
        let k = k.trim().to_ascii_lowercase();
        if k.contains(char::is_whitespace) {
            break;
        }
        match k.as_str() {
            "escape" => {
                escape = match v.trim() {
                    "\\" => '\\',
                    "`" => '`',
                    other => {
                        return Err(EngineError::invalid(format!(
                            "invalid escape token '{other}' does not match ` or \\"
                        )))
                    }
                }
            }
            "syntax" | "check" => {}
            _ => break,
        }
    }
    Ok(escape)
}

/// Splits leading `--name=value` words off.
fn split_flags(args: &str) -> (Vec<(String, String)>, String) {
    let mut flags = Vec::new();
    let mut rest = args.trim_start();
    while let Some(f) = rest.strip_prefix("--") {
        let end = f.find(char::is_whitespace).unwrap_or(f.len());
        let word = &f[..end];
        let (k, v) = word.split_once('=').unwrap_or((word, ""));
        flags.push((k.to_ascii_lowercase(), v.to_string()));
        rest = f[end..].trim_start();
    }
    (flags, rest.to_string())
}

/// A heredoc opened on an instruction's line: `<<WORD`, `<<-WORD` (leading tabs stripped),
/// `<<"WORD"` / `<<'WORD'` (no expansion: left to the shell, which honours the quotes).
#[derive(Debug, Clone, PartialEq)]
struct HeredocMarker {
    word: String,
    strip_tabs: bool,
    quoted: bool,
    /// Where the marker starts in the line, and where it ends.
    span: (usize, usize),
}

/// The heredoc markers in `line`, in order. A marker is `<<` (not `<<<`) followed directly by an
/// optionally quoted name, as BuildKit's frontend reads them.
fn heredoc_markers(line: &str) -> Vec<HeredocMarker> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 2 < b.len() {
        if &b[i..i + 2] != b"<<" || b.get(i + 2) == Some(&b'<') || (i > 0 && b[i - 1] == b'<') {
            i += 1;
            continue;
        }
        let start = i;
        let mut j = i + 2;
        let strip_tabs = b.get(j) == Some(&b'-');
        if strip_tabs {
            j += 1;
        }
        let quote = b.get(j).copied().filter(|c| *c == b'"' || *c == b'\'');
        if quote.is_some() {
            j += 1;
        }
        let name_start = j;
        while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
            j += 1;
        }
        let name_ok = j > name_start && !b[name_start].is_ascii_digit();
        let quote_ok = match quote {
            Some(q) if b.get(j) == Some(&q) => {
                j += 1;
                true
            }
            Some(_) => false,
            None => true,
        };
        if name_ok && quote_ok {
            out.push(HeredocMarker {
                word: line[name_start..j - usize::from(quote.is_some())].to_string(),
                strip_tabs,
                quoted: quote.is_some(),
                span: (start, j),
            });
        }
        i = j.max(i + 1);
    }
    out
}

/// Reads the bodies of the heredocs `markers` opened, from `lines[*i..]`, up to each one's
/// terminator line; returns the lines as written (terminators included).
fn heredoc_bodies(
    lines: &[&str],
    i: &mut usize,
    markers: &[HeredocMarker],
    line_no: usize,
) -> Result<Vec<Vec<String>>> {
    let mut bodies = Vec::new();
    for m in markers {
        let mut body = Vec::new();
        loop {
            let Some(l) = lines.get(*i) else {
                return Err(parse_error(
                    line_no,
                    format!("unterminated heredoc {}", m.word),
                ));
            };
            *i += 1;
            let end = if m.strip_tabs {
                l.trim_start_matches('\t')
            } else {
                l
            };
            body.push(l.to_string());
            if end == m.word {
                break;
            }
        }
        bodies.push(body);
    }
    Ok(bodies)
}

/// A shell-form `RUN` with heredocs, as one script for the stage's shell. `RUN <<EOF` (the
/// heredoc is the command) runs the heredoc's text; `RUN cmd <<EOF` keeps the heredoc for the
/// shell, which feeds it to `cmd` (tabs, quoting and expansion as the shell does them).
fn heredoc_script(rest: &str, markers: &[HeredocMarker], bodies: &[Vec<String>]) -> String {
    let first = &markers[0];
    let whole_command = rest[..first.span.0].trim().is_empty()
        && rest[first.span.1..].trim().is_empty()
        && markers.len() == 1;
    if whole_command {
        return body_lines(first, &bodies[0]).join("\n");
    }
    let mut script = rest.to_string();
    for body in bodies {
        for l in body {
            script.push('\n');
            script.push_str(l);
        }
    }
    script
}

/// The lines of a heredoc body without its terminator, tabs stripped for `<<-`.
fn body_lines<'a>(m: &HeredocMarker, body: &'a [String]) -> Vec<&'a str> {
    body[..body.len() - 1]
        .iter()
        .map(|l| {
            if m.strip_tabs {
                l.trim_start_matches('\t')
            } else {
                l.as_str()
            }
        })
        .collect()
}

/// `COPY`/`ADD` with heredocs: each marker in `rest` becomes its word (a source name) and
/// each body a [`Heredoc`] file.
fn heredoc_files(
    rest: &str,
    markers: &[HeredocMarker],
    bodies: &[Vec<String>],
) -> (String, Vec<Heredoc>) {
    let mut named = String::new();
    let mut at = 0;
    for m in markers {
        named.push_str(&rest[at..m.span.0]);
        named.push_str(&m.word);
        at = m.span.1;
    }
    named.push_str(&rest[at..]);
    let files = markers
        .iter()
        .zip(bodies)
        .map(|(m, body)| Heredoc {
            name: m.word.clone(),
            content: body_lines(m, body)
                .iter()
                .map(|l| format!("{l}\n"))
                .collect(),
            expand: !m.quoted,
        })
        .collect();
    (named, files)
}

/// Parses a Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile> {
    let lines: Vec<&str> = text.lines().collect();
    let escape = directives(&lines)?;
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let start = i;
        let first = lines[i].trim_start();
        i += 1;
        if first.trim().is_empty() || first.starts_with('#') {
            continue;
        }
        let mut logical = String::new();
        let mut cur = first.to_string();
        loop {
            let trimmed = cur.trim_end();
            if let Some(body) = trimmed.strip_suffix(escape) {
                logical.push_str(body);
                // Next line that is neither a comment nor empty continues it.
                let mut next = None;
                while i < lines.len() {
                    let l = lines[i];
                    i += 1;
                    let t = l.trim_start();
                    if t.starts_with('#') || t.trim().is_empty() {
                        continue;
                    }
                    next = Some(l.to_string());
                    break;
                }
                match next {
                    Some(n) => cur = n,
                    None => break,
                }
            } else {
                logical.push_str(trimmed);
                break;
            }
        }
        let logical = logical.trim().to_string();
        let (word, args) = logical
            .split_once(char::is_whitespace)
            .unwrap_or((logical.as_str(), ""));
        let cmd = word.to_ascii_uppercase();
        if !KNOWN.contains(&cmd.as_str()) {
            return Err(parse_error(
                start + 1,
                format!("unknown instruction: {word}"),
            ));
        }
        let (flags, rest) = if FLAGGED.contains(&cmd.as_str()) {
            split_flags(args)
        } else {
            (vec![], args.trim().to_string())
        };
        let json = if JSON_FORM.contains(&cmd.as_str()) && rest.starts_with('[') {
            serde_json::from_str::<Vec<String>>(&rest).ok()
        } else {
            None
        };
        let markers = if matches!(cmd.as_str(), "RUN" | "COPY" | "ADD") && json.is_none() {
            heredoc_markers(&rest)
        } else {
            vec![]
        };
        let (rest, original, heredocs) = if markers.is_empty() {
            (rest, logical.clone(), vec![])
        } else {
            let bodies = heredoc_bodies(&lines, &mut i, &markers, start + 1)?;
            let original = std::iter::once(logical.clone())
                .chain(bodies.iter().flatten().cloned())
                .collect::<Vec<_>>()
                .join("\n");
            if cmd == "RUN" {
                (heredoc_script(&rest, &markers, &bodies), original, vec![])
            } else {
                let (named, files) = heredoc_files(&rest, &markers, &bodies);
                (named, original, files)
            }
        };
        if rest.is_empty() && !matches!(cmd.as_str(), "CMD" | "ENTRYPOINT" | "RUN") {
            return Err(parse_error(
                start + 1,
                format!("{cmd} requires at least one argument"),
            ));
        }
        out.push(Instruction {
            cmd,
            flags,
            rest,
            json,
            original,
            line: start + 1,
            heredocs,
        });
    }
    Ok(Dockerfile {
        escape,
        instructions: out,
    })
}

/// The trigger an `ONBUILD` instruction stores: what follows the keyword, as written.
/// dockerd refuses chained `ONBUILD`s and `FROM`/`MAINTAINER` triggers.
pub fn onbuild_trigger(i: &Instruction) -> Result<String> {
    let trigger = i.original.trim_start()["ONBUILD".len()..]
        .trim()
        .to_string();
    let keyword = trigger
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    match keyword.as_str() {
        "" => Err(EngineError::invalid(
            "ONBUILD requires at least one argument",
        )),
        "ONBUILD" => Err(EngineError::invalid(
            "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
        )),
        "FROM" | "MAINTAINER" => Err(EngineError::invalid(format!(
            "{keyword} isn't allowed as an ONBUILD trigger"
        ))),
        _ => Ok(trigger),
    }
}

/// A stored `ONBUILD` trigger as the instruction it runs.
pub fn parse_trigger(trigger: &str, escape: char) -> Result<Instruction> {
    let text = format!("# escape={escape}\n{trigger}");
    parse(&text)?
        .instructions
        .into_iter()
        .next()
        .ok_or_else(|| EngineError::invalid(format!("invalid ONBUILD trigger: {trigger}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onbuild_triggers_are_checked_and_parse_back() {
        let df = parse("ONBUILD  copy --chown=1:1 a /b\nONBUILD ONBUILD RUN x\nONBUILD from x\n")
            .unwrap();
        let t = onbuild_trigger(&df.instructions[0]).unwrap();
        assert_eq!(t, "copy --chown=1:1 a /b");
        let back = parse_trigger(&t, '\\').unwrap();
        assert_eq!(back.cmd, "COPY");
        assert_eq!(back.flag("chown"), Some("1:1"));
        assert_eq!(back.rest, "a /b");
        let chained = onbuild_trigger(&df.instructions[1]).unwrap_err();
        assert!(chained.message().contains("Chaining ONBUILD"));
        let from = onbuild_trigger(&df.instructions[2]).unwrap_err();
        assert_eq!(from.message(), "FROM isn't allowed as an ONBUILD trigger");
    }

    #[test]
    fn continuations_comments_flags_and_json() {
        let df = parse(
            "# syntax=docker/dockerfile:1\n\
             ARG V=1\n\
             FROM busybox AS base\n\
             # a comment\n\
             RUN echo a \\\n  # inside\n\n  && echo b\n\
             COPY --chown=1:2 --from=base a b /c/\n\
             CMD [\"sh\", \"-c\", \"x\"]\n\
             ENTRYPOINT [not json\n",
        )
        .unwrap();
        let i = &df.instructions;
        assert_eq!(i.len(), 6);
        assert_eq!(i[0].cmd, "ARG");
        assert_eq!(i[1].original, "FROM busybox AS base");
        assert_eq!(i[2].rest, "echo a   && echo b");
        assert_eq!(i[2].line, 5);
        assert_eq!(i[3].flag("chown"), Some("1:2"));
        assert_eq!(i[3].flag("from"), Some("base"));
        assert_eq!(i[3].rest, "a b /c/");
        assert_eq!(i[4].json.as_deref().unwrap(), ["sh", "-c", "x"]);
        assert!(i[5].json.is_none());
    }

    #[test]
    fn escape_directive_changes_the_continuation() {
        let df = parse("# escape=`\nFROM x\nRUN dir c:\\ `\n  /b\n").unwrap();
        assert_eq!(df.escape, '`');
        assert_eq!(df.instructions[1].rest, "dir c:\\   /b");
    }

    #[test]
    fn heredocs_in_run_become_one_shell_script() {
        let df = parse(
            "FROM busybox\n\
             RUN <<EOF\n\
             echo one > /a\n\
             echo two >> /a\n\
             EOF\n\
             RUN cat > /b <<-END && cat <<'Q' > /c\n\
             \thello $HOME\n\
             \tEND\n\
             $not_expanded\n\
             Q\n\
             CMD [\"cat\"]\n",
        )
        .unwrap();
        let i = &df.instructions;
        assert_eq!(i.len(), 4);
        assert_eq!(i[1].rest, "echo one > /a\necho two >> /a");
        assert_eq!(
            i[1].original,
            "RUN <<EOF\necho one > /a\necho two >> /a\nEOF"
        );
        assert_eq!(
            i[2].rest,
            "cat > /b <<-END && cat <<'Q' > /c\n\thello $HOME\n\tEND\n$not_expanded\nQ"
        );
        assert_eq!(i[2].line, 6);
        // `a<<b` opens a heredoc named b (as the shell reads it); `<<<` and `<<1` do not.
        let markers: Vec<String> = heredoc_markers("echo a<<b <<<here \"x <<1\"")
            .into_iter()
            .map(|m| m.word)
            .collect();
        assert_eq!(markers, ["b"]);
    }

    #[test]
    fn heredocs_in_copy_become_named_files() {
        let df = parse(
            "FROM busybox\n\
             COPY --chmod=755 <<EOF <<-'RAW' /dir/\n\
             a $X\n\
             EOF\n\
             \tb $X\n\
             \tRAW\n\
             ADD <<one /one\n\
             uno\n\
             one\n",
        )
        .unwrap();
        let i = &df.instructions;
        assert_eq!(i.len(), 3);
        assert_eq!(i[1].rest, "EOF RAW /dir/");
        assert_eq!(i[1].flag("chmod"), Some("755"));
        let h = &i[1].heredocs;
        assert_eq!(
            (h[0].name.as_str(), h[0].content.as_str()),
            ("EOF", "a $X\n")
        );
        assert!(h[0].expand);
        assert_eq!(
            (h[1].name.as_str(), h[1].content.as_str()),
            ("RAW", "b $X\n")
        );
        assert!(!h[1].expand);
        assert_eq!(i[2].rest, "one /one");
        assert_eq!(i[2].heredocs[0].content, "uno\n");
        assert!(i[0].heredocs.is_empty());
    }

    #[test]
    fn an_unterminated_heredoc_is_an_error_naming_it() {
        let e = parse("FROM busybox\nRUN <<EOF\necho x\n").unwrap_err();
        assert_eq!(
            e.message(),
            "dockerfile parse error on line 2: unterminated heredoc EOF"
        );
    }

    #[test]
    fn unknown_instructions_and_missing_arguments_are_errors() {
        let e = parse("FROM busybox\nFOO bar\n").unwrap_err();
        assert_eq!(
            e.message(),
            "dockerfile parse error on line 2: unknown instruction: FOO"
        );
        assert!(parse("FROM\n").is_err());
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        /// An instruction with plain arguments (no flags, no continuation).
        fn instruction() -> impl Strategy<Value = (String, String)> {
            (
                prop::sample::select(vec![
                    "RUN",
                    "CMD",
                    "COPY",
                    "ADD",
                    "ENV",
                    "LABEL",
                    "WORKDIR",
                    "USER",
                    "EXPOSE",
                    "VOLUME",
                    "ARG",
                    "ENTRYPOINT",
                    "STOPSIGNAL",
                    "SHELL",
                ]),
                "[a-zA-Z0-9./$\"'{}:=\\[\\]][a-zA-Z0-9 =./$\"'{}:,\\[\\]-]{0,30}",
            )
                .prop_map(|(c, a)| (c.to_string(), a.trim().to_string()))
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

            /// Any text is a Dockerfile or a parse error, never a panic; so are the
            /// ONBUILD triggers it holds.
            #[test]
            fn any_text_parses_or_errors(text in "([A-Za-z#\\\\` =\\[\\]\"-]{0,20}\n?){0,8}|\\PC{0,200}") {
                if let Ok(df) = parse(&text) {
                    for i in df.instructions.iter().filter(|i| i.cmd == "ONBUILD") {
                        if let Ok(t) = onbuild_trigger(i) {
                            let _ = parse_trigger(&t, df.escape);
                        }
                    }
                }
            }

            /// Written instructions parse back one for one, also split over continuation
            /// lines and stored as ONBUILD triggers.
            #[test]
            fn written_instructions_parse_back(
                ins in prop::collection::vec(instruction(), 1..6),
                escape in prop::sample::select(vec!['\\', '`']),
            ) {
                let mut text = format!("# escape={escape}\n");
                for (cmd, args) in &ins {
                    text.push_str(&format!("{cmd} {escape}\n  # comment\n\n  {args}\nONBUILD {cmd} {args}\n"));
                }
                let df = parse(&text).unwrap();
                prop_assert_eq!(df.escape, escape);
                prop_assert_eq!(df.instructions.len(), 2 * ins.len());
                for (pair, (cmd, args)) in df.instructions.chunks(2).zip(&ins) {
                    prop_assert_eq!(&pair[0].cmd, cmd);
                    prop_assert_eq!(&pair[0].rest, args);
                    let trigger = parse_trigger(&onbuild_trigger(&pair[1]).unwrap(), escape).unwrap();
                    prop_assert_eq!(&trigger.cmd, cmd);
                    prop_assert_eq!(&trigger.rest, args);
                }
            }
        }
    }
}
