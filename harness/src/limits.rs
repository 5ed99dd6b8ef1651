//! Open files: a client is a socket, so the process's file limit caps the clients it can
//! hold. The soft limit is raised to the hard one; a run that still cannot fit is split over
//! worker processes, or refused with an error that names the limit.

use crate::error::HarnessError;
use crate::scenario::Plan;

/// Files a run needs beyond its sockets (the runtime, logs, the local stack's own files).
pub const OVERHEAD: u64 = 256;

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

/// Raises the soft open-file limit to the hard one; returns (soft, hard) as they now are.
pub fn raise_open_files() -> (u64, u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return (1024, 1024);
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
    (lim.rlim_cur, lim.rlim_max)
}

/// How many worker processes hold the plan's clients within the open-file limit.
pub fn workers_needed(plan: &Plan) -> u32 {
    let per_process = raise_open_files().0.saturating_sub(OVERHEAD).max(1);
    peak_clients(plan).div_ceil(per_process).max(1) as u32
}

/// Raises the limit and checks this process's part fits: `sockets_per_client` sockets (the
/// embedded local stack holds the server side too) for 1/`share` of the plan's clients.
pub fn ensure_open_files(
    plan: &Plan,
    sockets_per_client: u64,
    share: u64,
) -> Result<u64, HarnessError> {
    let needed = peak_clients(plan) * sockets_per_client / share.max(1) + OVERHEAD;
    let (soft, hard) = raise_open_files();
    if needed > soft {
        return Err(HarnessError::Usage(format!(
            "{}: this run may hold up to {} clients and this process needs about {needed} open \
             files for its part, but it may open at most {soft} (RLIMIT_NOFILE, hard limit \
             {hard}); use more --workers, or lower max_clients or arrival rates",
            plan.source.display(),
            peak_clients(plan),
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
        assert_eq!(workers_needed(&plan), 1);
        let huge = crate::scenario::parse(
            "phases:\n  - {name: a, duration: 1000s, arrival_rate: 1000}\n",
            Path::new("huge.yaml"),
        )
        .unwrap();
        let err = ensure_open_files(&huge, 2, 1).unwrap_err().to_string();
        assert!(
            err.contains("RLIMIT_NOFILE") && err.contains("huge.yaml"),
            "{err}"
        );
        assert!(
            workers_needed(&huge) > 1,
            "a million clients need several processes"
        );
    }
}
