//! Token buckets for stage and route throttling (aws-semantics A6): `rate` tokens a second
//! into a bucket of `burst`; a request takes one token or is refused with 429.

use std::time::Instant;

use crate::model::Throttle;

#[derive(Debug, Clone)]
pub struct TokenBucket {
    pub limit: Throttle,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A bucket starts full, as a fresh stage can take its whole burst at once.
    pub fn new(limit: Throttle) -> Self {
        TokenBucket {
            limit,
            tokens: f64::from(limit.burst),
            last: Instant::now(),
        }
    }

    pub fn try_take(&mut self) -> bool {
        self.try_take_at(Instant::now())
    }

    pub fn try_take_at(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.limit.rate).min(f64::from(self.limit.burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Changes the limits live (UpdateStage), keeping at most the new burst.
    pub fn set_limit(&mut self, limit: Throttle) {
        self.limit = limit;
        self.tokens = self.tokens.min(f64::from(limit.burst));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_rate() {
        let start = Instant::now();
        let mut b = TokenBucket::new(Throttle {
            rate: 10.0,
            burst: 5,
        });
        b.last = start;
        let taken = (0..20).filter(|_| b.try_take_at(start)).count();
        assert_eq!(taken, 5, "the burst");
        // 10 per second: after 0.5 s, 5 more.
        let later = start + Duration::from_millis(500);
        let taken = (0..20).filter(|_| b.try_take_at(later)).count();
        assert_eq!(taken, 5);
        let mut zero = TokenBucket::new(Throttle {
            rate: 0.0,
            burst: 0,
        });
        assert!(!zero.try_take(), "rate 0 and burst 0 refuse everything");
    }
}
