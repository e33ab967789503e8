//! `docker` CLI tests: containers.
