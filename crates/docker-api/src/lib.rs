//! berth-docker-api
