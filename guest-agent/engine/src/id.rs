//! Object ids: 64 lower-case hex characters, looked up by full id, unique prefix or name.

use rand::RngCore;

/// A fresh random 64-hex id.
pub fn new_id() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// The 12-character short form shown by the CLI.
pub fn short(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(12)]
}

/// True when `s` could be an id or id prefix (hex only).
pub fn is_hex_prefix(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Result of looking `key` up among ids.
pub enum PrefixMatch<'a> {
    None,
    One(&'a str),
    Ambiguous,
}

/// Finds the id equal to `key` or the single id starting with it.
pub fn match_prefix<'a>(key: &str, ids: impl IntoIterator<Item = &'a str>) -> PrefixMatch<'a> {
    if !is_hex_prefix(key) {
        return PrefixMatch::None;
    }
    let mut found = None;
    for id in ids {
        if id == key {
            return PrefixMatch::One(id);
        }
        if id.starts_with(key) {
            if found.is_some() {
                return PrefixMatch::Ambiguous;
            }
            found = Some(id);
        }
    }
    found.map_or(PrefixMatch::None, PrefixMatch::One)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_id_is_64_hex() {
        let id = new_id();
        assert_eq!(id.len(), 64);
        assert!(is_hex_prefix(&id));
        assert_eq!(short(&id).len(), 12);
    }

    #[test]
    fn prefix_match_unique_and_ambiguous() {
        let ids = ["abc1", "abd2", "ff"];
        assert!(matches!(match_prefix("abc", ids), PrefixMatch::One("abc1")));
        assert!(matches!(match_prefix("ab", ids), PrefixMatch::Ambiguous));
        assert!(matches!(match_prefix("zz", ids), PrefixMatch::None));
        assert!(matches!(match_prefix("ff", ids), PrefixMatch::One("ff")));
    }
}
