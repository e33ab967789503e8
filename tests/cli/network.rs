//! `docker` CLI tests: network.
