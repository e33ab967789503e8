//! `docker` CLI tests: images.
