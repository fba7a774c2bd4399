//! (bench written below)
fn main() {}
