//! Black-box end-to-end tests live in `cli/`, `compat/` and `vm/`.
