//! The group page (being written).
