//! The overview page (being written).
