//! A client's commands: one sender (the executor), one receiver (the client's task). A
//! client holds its mailbox for its whole life and gets few commands, so it is a queue
//! behind a lock and a `Notify` (about 130 bytes) rather than tokio's mpsc channel (about
//! 1.2 KB each, measured, with its first block of slots).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::client::Command;

struct Shared {
    queue: Mutex<VecDeque<Command>>,
    closed: AtomicBool,
    notify: Notify,
}

/// The executor's end; dropping it tells the client no command will come.
pub struct Sender(Arc<Shared>);

/// The client's end.
pub struct Receiver(Arc<Shared>);

pub fn channel() -> (Sender, Receiver) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(VecDeque::new()),
        closed: AtomicBool::new(false),
        notify: Notify::new(),
    });
    (Sender(shared.clone()), Receiver(shared))
}

impl Sender {
    /// Queues a command; gives it back if the client is gone.
    pub fn send(&self, command: Command) -> Result<(), Command> {
        if Arc::strong_count(&self.0) < 2 {
            return Err(command);
        }
        self.0
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(command);
        // Stores a permit if the client is not waiting yet: no wake-up is lost.
        self.0.notify.notify_one();
        Ok(())
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::SeqCst);
        self.0.notify.notify_one();
    }
}

impl Receiver {
    /// The next command; None once the sender is gone and the queue is empty. Cancel safe:
    /// commands stay queued until returned.
    pub async fn recv(&mut self) -> Option<Command> {
        loop {
            if let Some(c) = self
                .0
                .queue
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop_front()
            {
                return Some(c);
            }
            if self.0.closed.load(Ordering::SeqCst) {
                return None;
            }
            self.0.notify.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn commands_arrive_in_order_then_none_when_the_sender_goes() {
        let (tx, mut rx) = channel();
        tx.send(Command::Send {
            seq: 1,
            intended_us: 10,
        })
        .unwrap();
        let waiter = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(c) = rx.recv().await {
                got.push(c);
            }
            got
        });
        tokio::task::yield_now().await;
        tx.send(Command::Leave).unwrap();
        drop(tx);
        let got = waiter.await.unwrap();
        assert!(matches!(got[0], Command::Send { seq: 1, .. }), "{got:?}");
        assert!(matches!(got[1], Command::Leave), "{got:?}");
        assert_eq!(got.len(), 2);
    }

    #[tokio::test]
    async fn sending_to_a_client_that_is_gone_gives_the_command_back() {
        let (tx, rx) = channel();
        drop(rx);
        assert!(matches!(tx.send(Command::Leave), Err(Command::Leave)));
    }
}
