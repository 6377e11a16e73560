//! audit (scaffold: being written).
