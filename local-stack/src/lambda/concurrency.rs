//! Account and reserved concurrency (aws-semantics D1/D2): functions with a reservation run
//! at most that many at once; the rest share the unreserved pool (account limit minus all
//! reservations); a reservation may not leave the pool below its minimum.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::edge::AwsError;

/// Why a call was throttled: Lambda's `Reason` in a 429 TooManyRequestsException.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleReason {
    Reserved,
    Account,
}

impl ThrottleReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ThrottleReason::Reserved => "ReservedFunctionConcurrentInvocationLimitExceeded",
            ThrottleReason::Account => "ConcurrentInvocationLimitExceeded",
        }
    }

    /// The 429 a synchronous caller receives.
    pub fn to_error(self) -> AwsError {
        AwsError::new(429, "TooManyRequestsException", "Rate Exceeded.")
            .with_field("Reason", self.as_str())
            .with_field("Type", "User")
    }
}

#[derive(Debug)]
struct Inner {
    account_limit: u32,
    min_unreserved: u32,
    reserved: HashMap<String, u32>,
    in_use: HashMap<String, u32>,
    unreserved_in_use: u32,
}

#[derive(Debug)]
pub struct Concurrency {
    inner: Mutex<Inner>,
}

/// One running execution; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    owner: Arc<Concurrency>,
    function: String,
    unreserved: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut inner = self.owner.inner.lock().expect("concurrency lock");
        if let Some(n) = inner.in_use.get_mut(&self.function) {
            *n = n.saturating_sub(1);
        }
        if self.unreserved {
            inner.unreserved_in_use = inner.unreserved_in_use.saturating_sub(1);
        }
    }
}

impl Concurrency {
    pub fn new(account_limit: u32, min_unreserved: u32) -> Arc<Self> {
        Arc::new(Concurrency {
            inner: Mutex::new(Inner {
                account_limit,
                min_unreserved,
                reserved: HashMap::new(),
                in_use: HashMap::new(),
                unreserved_in_use: 0,
            }),
        })
    }

    pub fn try_acquire(self: &Arc<Self>, function: &str) -> Result<Slot, ThrottleReason> {
        let mut inner = self.inner.lock().expect("concurrency lock");
        let running = inner.in_use.get(function).copied().unwrap_or(0);
        let unreserved = match inner.reserved.get(function) {
            Some(&limit) => {
                if running >= limit {
                    return Err(ThrottleReason::Reserved);
                }
                false
            }
            None => {
                let pool = inner.account_limit - inner.reserved.values().sum::<u32>();
                if inner.unreserved_in_use >= pool {
                    return Err(ThrottleReason::Account);
                }
                inner.unreserved_in_use += 1;
                true
            }
        };
        *inner.in_use.entry(function.to_string()).or_default() += 1;
        Ok(Slot {
            owner: self.clone(),
            function: function.to_string(),
            unreserved,
        })
    }

    /// PutFunctionConcurrency / DeleteFunctionConcurrency, with AWS's validation.
    pub fn set_reserved(&self, function: &str, reserved: Option<u32>) -> Result<(), AwsError> {
        let mut inner = self.inner.lock().expect("concurrency lock");
        if let Some(n) = reserved {
            let others: u32 = inner
                .reserved
                .iter()
                .filter(|(k, _)| k.as_str() != function)
                .map(|(_, v)| v)
                .sum();
            let unreserved_after = inner.account_limit as i64 - others as i64 - n as i64;
            if unreserved_after < inner.min_unreserved as i64 {
                return Err(AwsError::new(
                    400,
                    "InvalidParameterValueException",
                    format!(
                        "Specified ReservedConcurrentExecutions for function decreases account's \
                         UnreservedConcurrentExecution below its minimum value of [{}].",
                        inner.min_unreserved
                    ),
                )
                .with_field("Type", "User"));
            }
            inner.reserved.insert(function.to_string(), n);
        } else {
            inner.reserved.remove(function);
        }
        Ok(())
    }

    pub fn reserved(&self, function: &str) -> Option<u32> {
        self.inner
            .lock()
            .expect("concurrency lock")
            .reserved
            .get(function)
            .copied()
    }

    pub fn running(&self, function: &str) -> u32 {
        self.inner
            .lock()
            .expect("concurrency lock")
            .in_use
            .get(function)
            .copied()
            .unwrap_or(0)
    }

    /// Executions running in the account, and those of them in the unreserved pool.
    pub fn totals(&self) -> (u32, u32) {
        let inner = self.inner.lock().expect("concurrency lock");
        (inner.in_use.values().sum(), inner.unreserved_in_use)
    }

    pub fn account_limit(&self) -> u32 {
        self.inner.lock().expect("concurrency lock").account_limit
    }

    pub fn unreserved_pool(&self) -> u32 {
        let inner = self.inner.lock().expect("concurrency lock");
        inner.account_limit - inner.reserved.values().sum::<u32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_functions_cap_and_the_rest_share_the_pool() {
        let c = Concurrency::new(110, 100);
        c.set_reserved("a", Some(2)).unwrap();
        let a1 = c.try_acquire("a").unwrap();
        let _a2 = c.try_acquire("a").unwrap();
        assert_eq!(c.try_acquire("a").unwrap_err(), ThrottleReason::Reserved);
        drop(a1);
        let _a3 = c.try_acquire("a").unwrap();
        // 110 - 2 reserved = 108 unreserved, shared by b and c.
        let held: Vec<Slot> = (0..108)
            .map(|i| c.try_acquire(if i % 2 == 0 { "b" } else { "c" }).unwrap())
            .collect();
        assert_eq!(c.try_acquire("b").unwrap_err(), ThrottleReason::Account);
        assert_eq!(c.running("b"), 54);
        drop(held);
        assert!(c.try_acquire("c").is_ok());
    }

    #[test]
    fn zero_reserved_is_fully_throttled_and_limits_are_validated() {
        let c = Concurrency::new(1000, 100);
        c.set_reserved("f", Some(0)).unwrap();
        assert_eq!(c.try_acquire("f").unwrap_err(), ThrottleReason::Reserved);
        c.set_reserved("f", None).unwrap();
        assert!(c.try_acquire("f").is_ok());
        c.set_reserved("g", Some(800)).unwrap();
        let err = c.set_reserved("h", Some(101)).unwrap_err();
        assert_eq!(err.code, "InvalidParameterValueException");
        assert!(err.message.contains("[100]"));
        c.set_reserved("h", Some(100)).unwrap();
        assert_eq!(c.unreserved_pool(), 100);
    }
}
