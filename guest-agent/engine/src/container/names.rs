//! Container names: validation and generated `adjective_scientist` names.

use rand::Rng;

const LEFT: &[&str] = &[
    "admiring",
    "brave",
    "clever",
    "dazzling",
    "eager",
    "fervent",
    "gifted",
    "happy",
    "jolly",
    "keen",
    "loving",
    "modest",
    "nifty",
    "optimistic",
    "peaceful",
    "quirky",
    "relaxed",
    "serene",
    "tender",
    "upbeat",
    "vibrant",
    "wizardly",
    "youthful",
    "zealous",
];
const RIGHT: &[&str] = &[
    "agnesi",
    "babbage",
    "curie",
    "darwin",
    "euler",
    "fermi",
    "galois",
    "hopper",
    "hypatia",
    "johnson",
    "kepler",
    "lovelace",
    "meitner",
    "noether",
    "pascal",
    "ritchie",
    "shannon",
    "tesla",
    "turing",
    "volhard",
    "wozniak",
    "yalow",
    "zhukovsky",
];

/// A random `left_right` name.
pub fn generate() -> String {
    let mut r = rand::rng();
    format!(
        "{}_{}",
        LEFT[r.random_range(0..LEFT.len())],
        RIGHT[r.random_range(0..RIGHT.len())]
    )
}

/// Docker's rule: `/?[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid(name: &str) -> bool {
    let mut c = name.chars();
    matches!(c.next(), Some(x) if x.is_ascii_alphanumeric())
        && name.len() >= 2
        && c.all(|x| x.is_ascii_alphanumeric() || "_.-".contains(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_validate() {
        assert!(valid("web"));
        assert!(valid("a.b-c_d"));
        assert!(!valid("-x"));
        assert!(!valid("x"));
        assert!(!valid("a b"));
        assert!(valid(&generate()));
    }
}
