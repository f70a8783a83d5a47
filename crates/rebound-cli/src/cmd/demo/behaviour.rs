//! How each demo record behaves, decided deterministically from its
//! coordinates so every ordering mode sees the same failures.

/// What the simulated downstream does with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Succeeds at once.
    Fine,
    /// Fails its first attempt (a timeout): in-place retry fixes it.
    Flaky,
    /// Fails its first three attempts: in-place retry (2 attempts) gives up,
    /// the retry tier's attempt succeeds.
    Stubborn,
    /// Can never succeed (a bad payload): dead-lettered at once.
    Poison,
}

impl Behaviour {
    /// Attempts that fail before one succeeds; `None`: never succeeds.
    pub fn failures(self) -> Option<u32> {
        match self {
            Behaviour::Fine => Some(0),
            Behaviour::Flaky => Some(1),
            Behaviour::Stubborn => Some(3),
            Behaviour::Poison => None,
        }
    }
}

fn mix(offset: i64, partition: i32) -> f64 {
    let mut x = (offset as u64) ^ ((partition as u64) << 48) ^ 0x9E37_79B9_7F4A_7C15;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    (x % 1_000_000) as f64 / 1_000_000.0
}

/// The behaviour of the record at `partition`/`offset` given the rates.
pub fn behaviour(offset: i64, partition: i32, flaky: f64, stubborn: f64, poison: f64) -> Behaviour {
    let u = mix(offset, partition);
    if u < poison {
        Behaviour::Poison
    } else if u < poison + stubborn {
        Behaviour::Stubborn
    } else if u < poison + stubborn + flaky {
        Behaviour::Flaky
    } else {
        Behaviour::Fine
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_close_to_the_rates() {
        let mut counts = [0usize; 4];
        for o in 0..200_000 {
            let i = match behaviour(o, 1, 0.1, 0.01, 0.002) {
                Behaviour::Fine => 0,
                Behaviour::Flaky => 1,
                Behaviour::Stubborn => 2,
                Behaviour::Poison => 3,
            };
            counts[i] += 1;
        }
        assert!((18_000..22_000).contains(&counts[1]), "{counts:?}");
        assert!((1_600..2_400).contains(&counts[2]), "{counts:?}");
        assert!((250..550).contains(&counts[3]), "{counts:?}");
        assert_eq!(
            behaviour(5, 1, 0.3, 0.0, 0.0),
            behaviour(5, 1, 0.3, 0.0, 0.0)
        );
    }
}
