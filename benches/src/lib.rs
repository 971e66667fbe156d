//! keyward benches support
