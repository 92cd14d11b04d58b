//! Member and cluster IDs (placeholder).
