//! Open files: a client is a socket, so the process's file limit caps the clients it can
//! hold. The soft limit is raised to the hard one; asking for more than that is an error
//! that names the limit (it cannot be raised without privileges).

use crate::error::HarnessError;
use crate::scenario::Plan;

/// Files a run needs beyond its sockets (the runtime, logs, the local stack's own files).
const OVERHEAD: u64 = 256;

/// The most clients the plan can have connected at once.
pub fn peak_clients(plan: &Plan) -> u64 {
    let mut total = 0.0f64;
    let mut cap: Option<u64> = None;
    for p in &plan.phases {
        total += p.arrival_rate.max(p.arrival_rate_end) * p.duration.as_secs_f64() + 1.0;
        if let Some(m) = p.max_clients {
            cap = Some(cap.map_or(u64::from(m), |c| c.max(u64::from(m))));
        }
    }
    let total = total.ceil() as u64;
    cap.map_or(total, |c| total.min(c))
}

/// Raises the soft limit to the hard one and checks the run fits. `sockets_per_client` is
/// 2 when the server side lives in this process too (the embedded local stack).
pub fn ensure_open_files(plan: &Plan, sockets_per_client: u64) -> Result<u64, HarnessError> {
    let needed = peak_clients(plan) * sockets_per_client + OVERHEAD;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Ok(needed);
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    if needed > lim.rlim_cur {
        return Err(HarnessError::Usage(format!(
            "{}: this run may hold up to {} clients and needs about {needed} open files, but this \
             process may open at most {} (RLIMIT_NOFILE, hard limit {}); lower max_clients or \
             arrival rates",
            plan.source.display(),
            peak_clients(plan),
            lim.rlim_cur,
            lim.rlim_max
        )));
    }
    Ok(needed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn peak_clients_follows_rates_and_caps() {
        let plan = crate::scenario::parse(
            "phases:\n  - {name: a, duration: 10s, arrival_rate: 100, max_clients: 300}\n  - {name: b, duration: 5s, message_rate: 1}\n",
            Path::new("s.yaml"),
        )
        .unwrap();
        assert_eq!(peak_clients(&plan), 300);
        let huge = crate::scenario::parse(
            "phases:\n  - {name: a, duration: 1000s, arrival_rate: 1000}\n",
            Path::new("huge.yaml"),
        )
        .unwrap();
        let err = ensure_open_files(&huge, 2).unwrap_err().to_string();
        assert!(
            err.contains("RLIMIT_NOFILE") && err.contains("huge.yaml"),
            "{err}"
        );
    }
}
