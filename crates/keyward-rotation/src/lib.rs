//! keyward-rotation
