//! `docker` CLI tests: volumes.
