//! Desktop harness (being written).
