//! inbox (scaffold: being written).
