//! Seeded, stable pseudo-randomness: the same seed and labels give the same numbers on every
//! machine and Rust version (std's hasher promises neither), so sandbox data is reproducible.

/// A SplitMix64 stream started from a seed and a list of labels.
#[derive(Debug, Clone)]
pub(crate) struct Dice {
    state: u64,
}

impl Dice {
    pub(crate) fn new(seed: u64, labels: &[&str]) -> Self {
        // FNV-1a over the labels, each ended by a separator so ("ab", "c") differs from ("a", "bc").
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in labels.iter().flat_map(|label| label.bytes().chain([0xff])) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        Self { state: mix(hash ^ seed) }
    }

    /// An independent stream for one item (a day, a request number) under these labels.
    pub(crate) fn derive(&self, item: u64) -> Self {
        Self { state: mix(self.state ^ mix(item)) }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.state)
    }

    /// Uniform in `0..bound` (bias is irrelevant at these sizes).
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }

    /// True with probability `rate`: 0 never, 1 always.
    pub(crate) fn chance(&mut self, rate: f64) -> bool {
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        unit < rate
    }
}

fn mix(value: u64) -> u64 {
    let mut z = value;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_stable_and_label_sensitive() {
        let first: Vec<u64> = (0..3).map(|_| Dice::new(7, &["a", "b"]).derive(1).next_u64()).collect();
        assert!(first.windows(2).all(|pair| pair[0] == pair[1]));
        assert_ne!(Dice::new(7, &["ab", ""]).next_u64(), Dice::new(7, &["a", "b"]).next_u64());
        assert_ne!(Dice::new(7, &["a"]).next_u64(), Dice::new(8, &["a"]).next_u64());
        let mut dice = Dice::new(1, &[]);
        assert!((0..100).all(|_| !dice.chance(0.0) && dice.chance(1.0)));
    }
}
