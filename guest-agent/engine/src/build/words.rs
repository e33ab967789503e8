//! Word splitting and variable substitution of Dockerfile arguments, the subset of shell
//! rules dockerd applies: quotes (single: literal, double: expanded), the escape character,
//! `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`.

use std::collections::BTreeMap;

use crate::{EngineError, Result};

/// Variables visible to an instruction (build args overlaid by `ENV`).
pub type Vars = BTreeMap<String, String>;

/// Splits on unquoted whitespace, keeping quotes and escapes for [`expand`].
pub fn split_raw(s: &str, escape: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            (_, c) if c == escape && quote != Some('\'') => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                cur.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn bad_substitution(s: &str) -> EngineError {
    EngineError::invalid(format!("failed to process \"{s}\": bad substitution"))
}

/// Expands variables and removes quotes and escapes of one word.
pub fn expand(word: &str, vars: &Vars, escape: char) -> Result<String> {
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match (quote, c) {
            (Some('\''), '\'') | (Some('"'), '"') => quote = None,
            (Some('\''), c) => out.push(c),
            (None, '\'' | '"') => quote = Some(c),
            (_, c) if c == escape => {
                if let Some(&n) = chars.get(i) {
                    // Inside double quotes only `"`, `$` and the escape itself are escaped.
                    if quote == Some('"') && !matches!(n, '"' | '$') && n != escape {
                        out.push(c);
                    }
                    out.push(n);
                    i += 1;
                } else {
                    out.push(c);
                }
            }
            (_, '$') => i = substitute(&chars, i, vars, escape, word, &mut out)?,
            (_, c) => out.push(c),
        }
    }
    Ok(out)
}

/// Expands variables in a heredoc's text, keeping quotes and escapes as written (BuildKit's
/// raw-quotes mode for `COPY <<EOF`): an escaped `$` stays as written, unexpanded.
pub fn expand_raw(text: &str, vars: &Vars, escape: char) -> Result<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if c == escape {
            out.push(c);
            if let Some(&n) = chars.get(i) {
                out.push(n);
                i += 1;
            }
        } else if c == '$' {
            i = substitute(&chars, i, vars, escape, text, &mut out)?;
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// Handles a `$…` starting after the `$` at `i`; returns the index after it.
fn substitute(
    chars: &[char],
    mut i: usize,
    vars: &Vars,
    escape: char,
    word: &str,
    out: &mut String,
) -> Result<usize> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    match chars.get(i) {
        Some('{') => {
            i += 1;
            let start = i;
            while i < chars.len() && is_name(chars[i]) {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            if name.is_empty() {
                return Err(bad_substitution(word));
            }
            let value = vars.get(&name);
            match chars.get(i) {
                Some('}') => {
                    out.push_str(value.map_or("", String::as_str));
                    Ok(i + 1)
                }
                Some(':' | '-' | '+') => {
                    let colon = chars[i] == ':';
                    if colon {
                        i += 1;
                    }
                    let op = *chars.get(i).ok_or_else(|| bad_substitution(word))?;
                    if op != '-' && op != '+' {
                        return Err(bad_substitution(word));
                    }
                    i += 1;
                    // The word runs to the matching `}`.
                    let wstart = i;
                    let mut depth = 0;
                    while i < chars.len() && !(chars[i] == '}' && depth == 0) {
                        match chars[i] {
                            '{' => depth += 1,
                            '}' => depth -= 1,
                            _ => {}
                        }
                        i += 1;
                    }
                    if i >= chars.len() {
                        return Err(bad_substitution(word));
                    }
                    let inner: String = chars[wstart..i].iter().collect();
                    let set = match value {
                        Some(v) => !(colon && v.is_empty()),
                        None => false,
                    };
                    let text = match (op, set) {
                        ('-', true) => value.cloned().unwrap_or_default(),
                        ('-', false) | ('+', true) => expand(&inner, vars, escape)?,
                        _ => String::new(),
                    };
                    out.push_str(&text);
                    Ok(i + 1)
                }
                _ => Err(bad_substitution(word)),
            }
        }
        Some(&c) if is_name(c) => {
            let start = i;
            while i < chars.len() && is_name(chars[i]) {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            out.push_str(vars.get(&name).map_or("", String::as_str));
            Ok(i)
        }
        _ => {
            out.push('$');
            Ok(i)
        }
    }
}

/// Splits and expands: the arguments of `COPY`, `EXPOSE`, `VOLUME`, … in shell form.
pub fn expand_words(s: &str, vars: &Vars, escape: char) -> Result<Vec<String>> {
    split_raw(s, escape)
        .iter()
        .map(|w| expand(w, vars, escape))
        .collect()
}

/// `ENV`/`LABEL`/`ARG` pairs: `k=v k2="v 2"`, or the legacy `k v with spaces` (when
/// `legacy` and the first word has no `=`). Values without `=` are `None` (`ARG NAME`).
pub fn key_values(
    s: &str,
    vars: &Vars,
    escape: char,
    legacy: bool,
) -> Result<Vec<(String, Option<String>)>> {
    let words = split_raw(s, escape);
    if legacy && words.first().is_some_and(|w| !w.contains('=')) && words.len() > 1 {
        let key = expand(&words[0], vars, escape)?;
        let rest = s.trim_start()[words[0].len()..].trim();
        return Ok(vec![(key, Some(expand(rest, vars, escape)?))]);
    }
    words
        .iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => Ok((expand(k, vars, escape)?, Some(expand(v, vars, escape)?))),
            None => Ok((expand(w, vars, escape)?, None)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_expansion_keeps_quotes_and_escapes() {
        let vars: Vars = [("X".to_string(), "x".to_string())].into();
        assert_eq!(
            expand_raw("'$X' \"${X}\" \\$X ${Y:-d}\n", &vars, '\\').unwrap(),
            "'x' \"x\" \\$X d\n"
        );
    }

    fn vars() -> Vars {
        Vars::from([
            ("A".into(), "1".into()),
            ("E".into(), String::new()),
            ("P".into(), "/usr/bin".into()),
        ])
    }

    #[test]
    fn substitutions_follow_dockerd() {
        let v = vars();
        let x = |s: &str| expand(s, &v, '\\').unwrap();
        assert_eq!(x("$A"), "1");
        assert_eq!(x("${A}x"), "1x");
        assert_eq!(x("${NOPE:-dflt}"), "dflt");
        assert_eq!(x("${E:-dflt}"), "dflt");
        assert_eq!(x("${E-dflt}"), "");
        assert_eq!(x("${A:+set}"), "set");
        assert_eq!(x("${NOPE:+set}"), "");
        assert_eq!(x("${NOPE:-$P/x}"), "/usr/bin/x");
        assert_eq!(x("'$A'"), "$A");
        assert_eq!(x("\"$A b\""), "1 b");
        assert_eq!(x("\\$A"), "$A");
        assert_eq!(x("a$"), "a$");
        assert!(expand("${A", &v, '\\').is_err());
        assert!(expand("${A:?x}", &v, '\\').is_err());
    }

    #[test]
    fn words_and_pairs() {
        let v = vars();
        assert_eq!(
            expand_words("a \"b c\" $A", &v, '\\').unwrap(),
            ["a", "b c", "1"]
        );
        assert_eq!(
            key_values("K=\"v w\" L=$A", &v, '\\', true).unwrap(),
            [
                ("K".to_string(), Some("v w".to_string())),
                ("L".to_string(), Some("1".to_string()))
            ]
        );
        assert_eq!(
            key_values("K v  w", &v, '\\', true).unwrap(),
            [("K".to_string(), Some("v  w".to_string()))]
        );
        assert_eq!(
            key_values("NAME", &v, '\\', false).unwrap(),
            [("NAME".to_string(), None)]
        );
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn escape() -> impl Strategy<Value = char> {
            prop::sample::select(vec!['\\', '`'])
        }

        /// `v` inside double quotes, with `"`, `$` and the escape character escaped.
        fn double_quoted(v: &str, escape: char) -> String {
            let mut s = String::from('"');
            for c in v.chars() {
                if matches!(c, '"' | '$') || c == escape {
                    s.push(escape);
                }
                s.push(c);
            }
            s.push('"');
            s
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

            /// Any argument text is expanded or refused, never a panic.
            #[test]
            fn any_text_expands_or_errors(s in "[a-zA-Z0-9 ${}:+\\-_'\"\\\\`=]{0,40}|\\PC{0,40}", e in escape()) {
                let _ = expand_words(&s, &vars(), e);
                let _ = key_values(&s, &vars(), e, true);
                let _ = key_values(&s, &vars(), e, false);
            }

            /// Quoting is undone exactly: single quotes keep everything, double quotes keep
            /// everything once `"`, `$` and the escape are escaped.
            #[test]
            fn quoted_text_expands_to_itself(v in "\\PC{0,30}", e in escape()) {
                prop_assert_eq!(expand(&double_quoted(&v, e), &vars(), e).unwrap(), v.clone());
                if !v.contains('\'') {
                    prop_assert_eq!(expand(&format!("'{v}'"), &vars(), e).unwrap(), v);
                }
            }

            /// Single-quoted words joined by spaces split back into the same words.
            #[test]
            fn quoted_words_split_back(words in prop::collection::vec("[^'\\p{C}]{0,12}", 0..6), e in escape()) {
                let line: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
                prop_assert_eq!(expand_words(&line.join(" "), &vars(), e).unwrap(), words);
            }
        }
    }
}
