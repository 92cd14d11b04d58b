//! Member records (placeholder).
