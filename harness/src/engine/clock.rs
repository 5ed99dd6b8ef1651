//! The schedule's clock. tokio's timer wheel has a 1 ms tick and rounds deadlines up to it,
//! so a send scheduled on it leaves up to a millisecond after its intended time, and that
//! lateness lands in every latency measured from the intended time. Here one thread per
//! process keeps the schedule's deadlines: it sleeps on a condition variable with the timer
//! slack at its minimum until just before the earliest deadline, spins the rest of the way,
//! and wakes the task that waits. Waiting tasks re-arm only when their deadline changes.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::task::AtomicWaker;

/// How long before a deadline the thread stops sleeping and spins: a futex wait with 1 ns
/// slack still wakes some tens of µs late on a loaded machine. Measured in BENCHMARKS.md
/// (`bench floor`).
const SPIN: Duration = Duration::from_micros(60);

#[derive(Default)]
struct Slot {
    waker: AtomicWaker,
    fired: AtomicBool,
    cancelled: AtomicBool,
}

struct Entry {
    at: Instant,
    order: u64,
    slot: Arc<Slot>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Reverse<Entry>>,
    order: u64,
}

struct Shared {
    queue: Mutex<Queue>,
    changed: Condvar,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<&'static Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let shared: &'static Shared = Box::leak(Box::new(Shared {
            queue: Mutex::default(),
            changed: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("dynamowave-clock".into())
            .spawn(move || keep_time(shared))
            .expect("the clock thread starts");
        shared
    })
}

/// The clock thread: fires each deadline once `Instant::now()` has reached it, never before.
fn keep_time(shared: &Shared) {
    // The kernel may defer a timed wake-up by the thread's slack (50 µs by default).
    // SAFETY: prctl with PR_SET_TIMERSLACK takes an integer argument and touches no memory.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
    let mut queue = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let Some(Reverse(first)) = queue.heap.peek() else {
            queue = shared
                .changed
                .wait(queue)
                .unwrap_or_else(|e| e.into_inner());
            continue;
        };
        if first.slot.cancelled.load(Ordering::Acquire) {
            queue.heap.pop();
            continue;
        }
        let at = first.at;
        let now = Instant::now();
        if at <= now {
            let Reverse(e) = queue.heap.pop().expect("peeked");
            e.slot.fired.store(true, Ordering::Release);
            e.slot.waker.wake();
            continue;
        }
        if at - now > SPIN {
            queue = shared
                .changed
                .wait_timeout(queue, at - now - SPIN)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            continue;
        }
        // The last stretch: spin without the lock, so tasks can still arm new deadlines.
        drop(queue);
        while Instant::now() < at {
            std::hint::spin_loop();
        }
        queue = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
    }
}

/// A future ready once `Instant::now() >= deadline`, woken by the clock thread.
pub struct Sleep {
    deadline: Instant,
    slot: Option<Arc<Slot>>,
}

pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        slot: None,
    }
}

impl Sleep {
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Moves the deadline; the old one is dropped from the clock.
    pub fn reset(&mut self, deadline: Instant) {
        if deadline != self.deadline {
            self.cancel();
            self.deadline = deadline;
        }
    }

    fn cancel(&mut self) {
        if let Some(slot) = self.slot.take() {
            slot.cancelled.store(true, Ordering::Release);
        }
    }
}

/// Hands `deadline` to the clock thread; the slot is how it answers.
fn arm(deadline: Instant) -> Arc<Slot> {
    let slot = Arc::new(Slot::default());
    let shared = shared();
    let mut queue = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
    queue.order += 1;
    let order = queue.order;
    queue.heap.push(Reverse(Entry {
        at: deadline,
        order,
        slot: slot.clone(),
    }));
    drop(queue);
    shared.changed.notify_one();
    slot
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if Instant::now() >= this.deadline {
            return Poll::Ready(());
        }
        let deadline = this.deadline;
        let slot = this.slot.get_or_insert_with(|| arm(deadline));
        slot.waker.register(cx.waker());
        if slot.fired.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wakes_at_or_after_the_deadline_never_before() {
        for micros in [0u64, 50, 300, 2_500] {
            let at = Instant::now() + Duration::from_micros(micros);
            sleep_until(at).await;
            assert!(Instant::now() >= at, "woke before a {micros} µs deadline");
        }
    }

    #[tokio::test]
    async fn a_reset_deadline_is_the_one_that_counts() {
        let far = Instant::now() + Duration::from_secs(3600);
        let mut sleep = Box::pin(sleep_until(far));
        // Armed for an hour from now...
        assert!(futures::poll!(sleep.as_mut()).is_pending());
        let near = Instant::now() + Duration::from_millis(2);
        sleep.as_mut().get_mut().reset(near);
        assert_eq!(sleep.deadline(), near);
        // ...and ready soon after the new one, bounded so a broken reset fails.
        tokio::time::timeout(Duration::from_secs(10), sleep.as_mut())
            .await
            .expect("the reset deadline fires");
        assert!(Instant::now() >= near);
    }
}
