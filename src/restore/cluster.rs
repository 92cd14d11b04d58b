//! Initial cluster parsing (placeholder).
