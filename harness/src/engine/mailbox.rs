//! A client's commands: one sender (the executor), one receiver (the client's task). A
//! client holds its mailbox for its whole life and gets few commands, so it is a queue
//! behind a lock and an `AtomicWaker` (about 130 bytes) rather than tokio's mpsc channel
//! (about 1.2 KB each, measured, with its first block of slots). The client polls it once
//! per received frame, so an empty mailbox is checked with atomics only, without the lock.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;

use futures::task::AtomicWaker;

use super::client::Command;

struct Shared {
    queue: Mutex<VecDeque<Command>>,
    /// Commands in the queue, readable without the lock.
    queued: AtomicUsize,
    closed: AtomicBool,
    waker: AtomicWaker,
}

/// The executor's end; dropping it tells the client no command will come.
pub struct Sender(Arc<Shared>);

/// The client's end.
pub struct Receiver(Arc<Shared>);

pub fn channel() -> (Sender, Receiver) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(VecDeque::new()),
        queued: AtomicUsize::new(0),
        closed: AtomicBool::new(false),
        waker: AtomicWaker::new(),
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
        self.0.queued.fetch_add(1, Ordering::SeqCst);
        self.0.waker.wake();
        Ok(())
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::SeqCst);
        self.0.waker.wake();
    }
}

impl Receiver {
    fn take(&self) -> Option<Option<Command>> {
        if self.0.queued.load(Ordering::SeqCst) > 0 {
            let c = self
                .0
                .queue
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop_front();
            self.0.queued.fetch_sub(1, Ordering::SeqCst);
            return Some(c);
        }
        self.0.closed.load(Ordering::SeqCst).then_some(None)
    }

    /// The next command; None once the sender is gone and the queue is empty. Cancel safe:
    /// commands stay queued until returned.
    pub async fn recv(&mut self) -> Option<Command> {
        std::future::poll_fn(|cx| {
            if let Some(c) = self.take() {
                return Poll::Ready(c);
            }
            self.0.waker.register(cx.waker());
            // A command sent between the check and the registration would wake no one.
            match self.take() {
                Some(c) => Poll::Ready(c),
                None => Poll::Pending,
            }
        })
        .await
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
