//! verify: placeholder
