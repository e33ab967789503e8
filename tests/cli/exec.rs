//! `docker` CLI tests: exec.
