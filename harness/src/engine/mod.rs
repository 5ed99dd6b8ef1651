//! The executor: one plan, one loop. It opens clients on the plan's arrival schedule, sends
//! messages on an open-model schedule (intended times fixed in advance of sending, so a slow
//! system cannot slow the schedule: no coordinated omission), makes clients leave, and feeds
//! every client's events into the [`Record`].

pub mod client;
pub mod clock;
pub mod mailbox;
pub mod record;
pub mod stamp;
pub mod wire;

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc;

use crate::scenario::{Phase, Plan, Spacing};
use client::{ClientSpec, Command};
use record::{Event, Interval, MessageInfo, Record};

/// Where the clients connect, and where dead letters can be read.
#[derive(Clone)]
pub struct Target {
    pub websocket_url: String,
    pub dlq: Option<(aws_sdk_sqs::Client, String)>,
}

pub struct RunOutput {
    pub run_id: u32,
    pub record: Record,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub elapsed: Duration,
    pub clients_attempted: u64,
    pub messages_scheduled: u64,
    /// Why the run stopped early, if it did.
    pub aborted: Option<String>,
}

/// Which share of the plan this process runs: worker `index` of `count` gets 1/count of
/// every rate and cap, its own seed, and client ids `local × count + index`, so results of
/// all workers merge without collisions. A single-process run is worker 0 of 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    pub const SINGLE: Shard = Shard { index: 0, count: 1 };

    fn global(&self, local: usize) -> u32 {
        local as u32 * self.count + self.index
    }

    fn local(&self, global: u32) -> usize {
        ((global - self.index) / self.count) as usize
    }
}

/// How a run is started: its share, and (for workers) the run id and the common start.
#[derive(Debug)]
pub struct Options {
    pub shard: Shard,
    pub run_id: Option<u32>,
    /// When the schedule starts; workers of one run share it so intended times align.
    pub start: Option<Instant>,
    /// Chaos `drop-clients`: each request makes that share of the live clients vanish.
    pub drops: Option<mpsc::UnboundedReceiver<f64>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            shard: Shard::SINGLE,
            run_id: None,
            start: None,
            drops: None,
        }
    }
}

/// Called once per interval (1 s) with that interval and the run so far; returning a
/// reason stops the schedule (an `abortOnFail` threshold failed): the run drains and ends.
pub type Observer<'a> = &'a mut dyn FnMut(&Interval, &Record) -> Option<String>;

const INTERVAL: Duration = Duration::from_secs(1);

pub async fn execute(
    plan: &Plan,
    target: &Target,
    options: Options,
    observer: Observer<'_>,
) -> RunOutput {
    let mut drops = options.drops;
    let run_id: u32 = options.run_id.unwrap_or_else(rand::random);
    let start = options.start.unwrap_or_else(Instant::now);
    if let Some(wait) = start.checked_duration_since(Instant::now()) {
        tokio::time::sleep(wait).await;
    }
    let started_at = chrono::Utc::now();
    let shard = options.shard;
    let phases_us = plan
        .phases
        .iter()
        .map(|p| (us(p.start), us(p.start + p.duration), p.name.clone()))
        .collect();
    let mut ex = Executor {
        plan,
        target,
        run_id,
        start,
        rng: StdRng::seed_from_u64(plan.seed.wrapping_add(u64::from(shard.index))),
        shard,
        record: Record::new(us(plan.deadline), phases_us),
        commands: Vec::new(),
        live: Vec::new(),
        connecting: 0,
        seqs: Vec::new(),
        messages_scheduled: 0,
        tasks: tokio::task::JoinSet::new(),
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let end = plan.duration();
    let mut next_arrival = ex.next_gap(Duration::ZERO, Kind::Arrival);
    let mut next_message = ex.next_gap(Duration::ZERO, Kind::Message);
    let mut next_departure = ex.next_gap(Duration::ZERO, Kind::Departure);
    let mut next_tick = INTERVAL;
    let mut aborted = None;
    // Armed again only when the next due time changes, not on every event.
    let mut timer = clock::sleep_until(start);

    // The schedule: arrivals, messages and departures until the last phase ends.
    loop {
        let now = start.elapsed();
        if now >= end || aborted.is_some() {
            break;
        }
        let due = [next_arrival, next_message, next_departure, next_tick, end]
            .into_iter()
            .min()
            .expect("non-empty");
        timer.reset(start + due);
        tokio::select! {
            Some(ev) = rx.recv() => ex.apply(ev),
            Some(share) = next_drop(&mut drops) => ex.vanish(share),
            _ = &mut timer => {
                if next_arrival <= due {
                    ex.arrive(next_arrival, &tx);
                    next_arrival = ex.next_gap(next_arrival, Kind::Arrival);
                }
                if next_message <= due {
                    ex.send_message(next_message);
                    next_message = ex.next_gap(next_message, Kind::Message);
                }
                if next_departure <= due {
                    ex.depart(next_departure);
                    next_departure = ex.next_gap(next_departure, Kind::Departure);
                }
                if next_tick <= due {
                    let i = ex.record.close_interval(us(due)).clone();
                    aborted = observer(&i, &ex.record);
                    next_tick += INTERVAL;
                }
            }
        }
    }
    // Drain: deliveries still in flight, no new traffic.
    let drain_end = start.elapsed() + plan.drain;
    while start.elapsed() < drain_end {
        let due = next_tick.min(drain_end);
        tokio::select! {
            Some(ev) = rx.recv() => ex.apply(ev),
            _ = tokio::time::sleep_until((start + due).into()) => {
                if next_tick <= due {
                    let i = ex.record.close_interval(us(due)).clone();
                    let _ = observer(&i, &ex.record);
                    next_tick += INTERVAL;
                }
            }
        }
    }
    // Everyone leaves; wait (bounded) for their tasks to end and report.
    ex.record.final_leave_us = Some(us(start.elapsed()));
    for c in ex.commands.iter().flatten() {
        let _ = c.send(Command::Leave);
    }
    ex.commands.clear();
    drop(tx);
    // Each client may wait `close_timeout` for the server's answer to its Close.
    let deadline = tokio::time::Instant::now() + plan.close_timeout + Duration::from_secs(5);
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Some(ev) => ex.apply(ev),
                None => break,
            },
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    ex.tasks.abort_all();
    let elapsed = start.elapsed();
    RunOutput {
        run_id,
        started_at,
        elapsed,
        clients_attempted: ex.record.clients.len() as u64,
        messages_scheduled: ex.messages_scheduled,
        record: ex.record,
        aborted,
    }
}

async fn next_drop(drops: &mut Option<mpsc::UnboundedReceiver<f64>>) -> Option<f64> {
    match drops {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

fn us(d: Duration) -> u64 {
    d.as_micros() as u64
}

#[derive(Clone, Copy)]
enum Kind {
    Arrival,
    Message,
    Departure,
}

struct Executor<'a> {
    plan: &'a Plan,
    target: &'a Target,
    run_id: u32,
    start: Instant,
    rng: StdRng,
    shard: Shard,
    record: Record,
    commands: Vec<Option<mailbox::Sender>>,
    /// Clients connected and not leaving: the ones that may send and depart.
    live: Vec<u32>,
    connecting: u32,
    seqs: Vec<u32>,
    messages_scheduled: u64,
    tasks: tokio::task::JoinSet<()>,
}

impl Executor<'_> {
    fn apply(&mut self, ev: Event) {
        match &ev {
            Event::Connected { client, .. } => {
                self.connecting = self.connecting.saturating_sub(1);
                let local = self.shard.local(*client);
                if self.commands.get(local).is_some_and(Option::is_some) {
                    self.live.push(*client);
                }
            }
            Event::ConnectFailed { client, .. } => {
                self.connecting = self.connecting.saturating_sub(1);
                let local = self.shard.local(*client);
                if let Some(c) = self.commands.get_mut(local) {
                    *c = None;
                }
            }
            Event::Closed { client, .. } => {
                self.live.retain(|c| c != client);
                let local = self.shard.local(*client);
                if let Some(c) = self.commands.get_mut(local) {
                    *c = None;
                }
            }
            _ => {}
        }
        self.record.apply(ev);
    }

    /// The rate of `kind` events at `t`: a ramp for arrivals, total or per-client rates for
    /// messages.
    fn rate(&self, phase: &Phase, t: Duration, kind: Kind) -> f64 {
        let share = 1.0 / f64::from(self.shard.count);
        share
            * match kind {
                Kind::Arrival => {
                    let f = (t.saturating_sub(phase.start)).as_secs_f64()
                        / phase.duration.as_secs_f64();
                    phase.arrival_rate
                        + (phase.arrival_rate_end - phase.arrival_rate) * f.clamp(0.0, 1.0)
                }
                Kind::Message => {
                    if phase.message_rate_per_client > 0.0 {
                        // Per connected client of this worker: undo the share.
                        phase.message_rate_per_client
                            * self.live.len() as f64
                            * f64::from(self.shard.count)
                    } else {
                        phase.message_rate
                    }
                }
                Kind::Departure => phase.departure_rate,
            }
    }

    /// When the next `kind` event is due after `from`. With no rate now, look again at the
    /// next phase boundary (or in 100 ms, as per-client rates follow the client count).
    fn next_gap(&mut self, from: Duration, kind: Kind) -> Duration {
        let Some(phase) = self.plan.phase_at(from) else {
            return Duration::MAX;
        };
        let rate = self.rate(phase, from, kind);
        if rate <= 0.0 {
            let boundary = phase.start + phase.duration;
            return boundary
                .min(from + Duration::from_millis(100))
                .max(from + Duration::from_micros(1));
        }
        let gap = match phase.spacing {
            Spacing::Constant => 1.0 / rate,
            Spacing::Poisson => -(1.0 - self.rng.random::<f64>()).ln() / rate,
        };
        from + Duration::from_secs_f64(gap)
    }

    /// Whether `kind` events happen at `t` at all (a zero-rate check-in is not an event).
    fn active(&self, t: Duration, kind: Kind) -> bool {
        self.plan
            .phase_at(t)
            .is_some_and(|p| self.rate(p, t, kind) > 0.0)
    }

    fn arrive(&mut self, intended: Duration, events: &mpsc::UnboundedSender<Event>) {
        if !self.active(intended, Kind::Arrival) {
            return;
        }
        let Some(phase) = self.plan.phase_at(intended) else {
            return;
        };
        let active = self.live.len() as u32 + self.connecting;
        // This worker's part of the cap: the ids below it that are its own.
        let cap = phase
            .max_clients
            .map(|m| (m + self.shard.count - 1 - self.shard.index) / self.shard.count);
        if cap.is_some_and(|m| active >= m) {
            return;
        }
        let index = self.shard.global(self.commands.len());
        let room = self.plan.rooms.map(|n| index % n);
        self.record.add_client(index, room);
        let (tx, rx) = mailbox::channel();
        self.commands.push(Some(tx));
        self.seqs.push(0);
        self.connecting += 1;
        let spec = self.client_spec(index, room);
        self.tasks.spawn(client::run(spec, rx, events.clone()));
    }

    fn client_spec(&mut self, index: u32, room: Option<u32>) -> ClientSpec {
        let p = &self.plan.protocol;
        let room_name = room.map(|r| format!("room-{r}"));
        let query: Vec<String> = p
            .query
            .iter()
            .filter_map(|(k, v)| {
                let value = if v.contains("{{room}}") {
                    v.replace("{{room}}", room_name.as_deref()?)
                } else {
                    v.clone()
                };
                Some(format!("{k}={value}"))
            })
            .collect();
        let mut url = self.target.websocket_url.clone();
        if !query.is_empty() {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&query.join("&"));
        }
        let (prefix, suffix) = p
            .send
            .split_once("{{payload}}")
            .expect("validated: the template has {{payload}}");
        ClientSpec {
            index,
            url,
            headers: p
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            whoami: p.whoami.as_ref().map(|w| (w.send.clone(), w.id.clone())),
            frame_prefix: prefix.to_string(),
            frame_suffix: suffix.to_string(),
            message_size: self.plan.message_size,
            run: self.run_id,
            slow: self.rng.random::<f64>() < self.plan.slow_readers,
            connect_timeout: self.plan.connect_timeout,
            close_timeout: self.plan.close_timeout,
            sources: self.plan.source_addresses,
            start: self.start,
        }
    }

    fn send_message(&mut self, intended: Duration) {
        if self.live.is_empty() || !self.active(intended, Kind::Message) {
            return;
        }
        let sender = self.live[self.rng.random_range(0..self.live.len())];
        let local = self.shard.local(sender);
        let seq = self.seqs[local];
        self.seqs[local] += 1;
        self.messages_scheduled += 1;
        let room = self.record.clients.get(&sender).and_then(|c| c.room);
        self.record.add_message(MessageInfo {
            sender,
            seq,
            intended_us: us(intended),
            room,
            sent: false,
        });
        if let Some(Some(tx)) = self.commands.get(local) {
            let _ = tx.send(Command::Send {
                seq,
                intended_us: us(intended),
            });
        }
    }

    /// Chaos `drop-clients`: `share` of the live clients go without a close frame, as a
    /// phone losing its network does.
    fn vanish(&mut self, share: f64) {
        let n = ((self.live.len() as f64) * share).round() as usize;
        for _ in 0..n.min(self.live.len()) {
            let i = self.rng.random_range(0..self.live.len());
            let client = self.live.swap_remove(i);
            if let Some(Some(tx)) = self.commands.get(self.shard.local(client)) {
                let _ = tx.send(Command::Vanish);
            }
        }
    }

    fn depart(&mut self, at: Duration) {
        if self.live.is_empty() || !self.active(at, Kind::Departure) {
            return;
        }
        let i = self.rng.random_range(0..self.live.len());
        let client = self.live.swap_remove(i);
        if let Some(Some(tx)) = self.commands.get(self.shard.local(client)) {
            let _ = tx.send(Command::Leave);
        }
    }
}
