//! Helpers shared by the benches.
#![allow(dead_code)]

/// A well-mixed hash of `i` (splitmix64 finaliser).
pub fn mix(i: u64) -> u64 {
    let mut x = i ^ 0x9E37_79B9_7F4A_7C15;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x
}
