//! `docker` CLI tests: restart.
