//! inbox end-to-end tests (scaffold: being written).
