//! Peer URL parsing (placeholder).
