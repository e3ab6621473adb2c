//! Deterministic pseudo-random numbers for the unit tests' mutation loops (xorshift64), so a
//! failure reproduces from its seed.

/// A xorshift64 generator; the seed must not be 0.
pub(crate) struct XorShift(pub(crate) u64);

impl XorShift {
    /// A number in `0..n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}
