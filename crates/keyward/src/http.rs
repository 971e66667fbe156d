//! The HTTP management service and the tower gateway layer (feature `http`).
