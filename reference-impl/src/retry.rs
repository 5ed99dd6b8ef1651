//! Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff and
//! Jitter"): the wait before retry `n` is uniform in `0..=min(cap, base * 2^n)`.

use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    pub max_attempts: u32,
}

impl Backoff {
    /// The upper bound of the wait after failed attempt `attempt` (1-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// A full-jitter wait after failed attempt `attempt`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt).as_millis() as u64;
        Duration::from_millis(rand::random_range(0..=ceiling))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_up_to_the_cap() {
        let b = Backoff {
            base: Duration::from_millis(50),
            cap: Duration::from_millis(300),
            max_attempts: 10,
        };
        let ms: Vec<u128> = (1..=6).map(|a| b.ceiling(a).as_millis()).collect();
        assert_eq!(ms, [50, 100, 200, 300, 300, 300]);
        assert_eq!(b.ceiling(100).as_millis(), 300);
        for a in 1..=6 {
            for _ in 0..100 {
                assert!(b.delay(a) <= b.ceiling(a));
            }
        }
    }
}
