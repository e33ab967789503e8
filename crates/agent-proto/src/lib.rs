//! berth-agent-proto
