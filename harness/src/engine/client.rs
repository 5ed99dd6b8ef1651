//! One simulated client: a task that owns its WebSocket, sends what the scheduler tells it
//! to, and stamps, matches and batches every frame it receives for the aggregator.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use tokio::sync::mpsc;

use tokio_websockets::{ClientBuilder, CloseCode, MaybeTlsStream, Message};

use super::record::{Event, Receipt};
use super::stamp::Stamp;

#[derive(Debug)]
pub enum Command {
    Send {
        seq: u32,
        intended_us: u64,
    },
    Leave,
    /// Drop the connection without a close frame (the socket just closes).
    Vanish,
}

/// How long a client first waits for the answer to its whoami before asking again.
const WHOAMI_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// What a client needs to know; shared fields come from the plan.
#[derive(Debug, Clone)]
pub struct ClientSpec {
    pub index: u32,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub whoami: Option<(String, String)>,
    /// The send template split around `{{payload}}`.
    pub frame_prefix: String,
    pub frame_suffix: String,
    pub message_size: usize,
    pub run: u32,
    pub slow: bool,
    pub connect_timeout: Duration,
    /// How long a leaving client waits for the server's answer to its Close.
    pub close_timeout: Duration,
    /// Loopback source addresses to spread over (127.0.0.1..=sources); 0: automatic.
    pub sources: u32,
    pub start: Instant,
}

impl ClientSpec {
    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }
}

/// How a connection ended, for [`Event::Closed`].
struct End {
    code: Option<u16>,
    by_us: bool,
    at_us: u64,
    unconfirmed: Option<&'static str>,
}

impl End {
    /// An end at this moment.
    fn now(
        spec: &ClientSpec,
        code: Option<u16>,
        by_us: bool,
        unconfirmed: Option<&'static str>,
    ) -> End {
        End {
            code,
            by_us,
            at_us: spec.now_us(),
            unconfirmed,
        }
    }
}

type Ws = tokio_websockets::WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Frames are batched for at most this long before they go to the aggregator.
const FLUSH_AFTER: Duration = Duration::from_millis(20);
const FLUSH_AT: usize = 64;

pub async fn run(
    spec: ClientSpec,
    mut commands: super::mailbox::Receiver,
    events: mpsc::UnboundedSender<Event>,
) {
    let begun = Instant::now();
    // Boxed: the handshake's state (about 4 KB) would otherwise stay in every client's task
    // for its whole life, as a future is as large as its largest state.
    let connected = match Box::pin(connect(&spec)).await {
        Ok(ws) => ws,
        Err(cause) => {
            let _ = events.send(Event::ConnectFailed {
                client: spec.index,
                cause,
            });
            return;
        }
    };
    let mut ws = connected;
    let joined_us = spec.now_us();
    let connect_us = begun.elapsed().as_micros() as u64;
    let mut batch: Vec<Receipt> = Vec::new();
    let mut flush_at = tokio::time::Instant::now();

    let key = Stamp::key(spec.run);
    let mut connection_id = None;
    let mut late = LateWhoami::default();
    if let Some((frame, pointer)) = &spec.whoami {
        late.pointer = pointer.clone();
        // The answer is a post like any other and can be lost (a failed @connections post,
        // a throttled $default): asked again after 1 s, then 2 s, 4 s … until
        // connect_timeout (doubling, so a slow cold start is not buried in asks).
        let mut asked = ws.send(Message::text(frame.clone())).await.is_ok();
        let deadline = tokio::time::Instant::now() + spec.connect_timeout;
        let mut wait = WHOAMI_RETRY;
        let mut again = tokio::time::Instant::now() + wait;
        while asked && connection_id.is_none() {
            match tokio::time::timeout_at(deadline.min(again), ws.next()).await {
                Err(_) if again < deadline => {
                    asked = ws.send(Message::text(frame.clone())).await.is_ok();
                    wait *= 2;
                    again += wait;
                    late.left += 1;
                }
                Ok(Some(Ok(m))) => {
                    if let Some(text) = m.as_text() {
                        connection_id = serde_json::from_str::<Value>(text)
                            .ok()
                            .and_then(|v| v.pointer(pointer)?.as_str().map(str::to_string));
                        if connection_id.is_none() {
                            on_text(&spec, &key, text, &mut batch, &events, &mut late);
                        }
                    }
                }
                _ => break,
            }
        }
    }
    let _ = events.send(Event::Connected {
        client: spec.index,
        at_us: joined_us,
        connect_us,
        connection_id,
    });

    let end = loop {
        tokio::select! {
            cmd = commands.recv() => match cmd {
                Some(Command::Send { seq, intended_us }) => {
                    send(&spec, &mut ws, seq, intended_us, &events).await;
                }
                Some(Command::Vanish) => break End::now(&spec, None, true, Some("vanished")),
                Some(Command::Leave) | None => {
                    let at_us = spec.now_us();
                    let unconfirmed = leave(&spec, &key, &mut ws, &mut batch, &events).await;
                    break End { code: Some(1000), by_us: true, at_us, unconfirmed };
                }
            },
            frame = ws.next() => match frame {
                Some(Ok(m)) => {
                    if let Some((code, _)) = m.as_close() {
                        // The server closed: the next poll flushes our echo of its Close.
                        let _ = tokio::time::timeout(CLOSE_ECHO, ws.next()).await;
                        break End::now(&spec, Some(u16::from(code)), false, None);
                    }
                    if let Some(text) = m.as_text() {
                        if batch.is_empty() {
                            flush_at = tokio::time::Instant::now() + FLUSH_AFTER;
                        }
                        on_text(&spec, &key, text, &mut batch, &events, &mut late);
                        if batch.len() >= FLUSH_AT {
                            let _ = events.send(Event::Received(std::mem::take(&mut batch)));
                        }
                    }
                    if spec.slow {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                Some(Err(e)) => break End::now(&spec, None, false, Some(cause_of(&e))),
                None => break End::now(&spec, None, false, Some("abnormal")),
            },
            _ = tokio::time::sleep_until(flush_at), if !batch.is_empty() => {
                let _ = events.send(Event::Received(std::mem::take(&mut batch)));
            }
        }
    };
    if !batch.is_empty() {
        let _ = events.send(Event::Received(batch));
    }
    let _ = events.send(Event::Closed {
        client: spec.index,
        at_us: end.at_us,
        code: end.code,
        by_us: end.by_us,
        unconfirmed: end.unconfirmed,
    });
}

/// How long to let our echo of the server's Close go out before dropping the socket.
const CLOSE_ECHO: Duration = Duration::from_millis(100);

/// Writes one stamped message, never before its intended time, and reports it as sent only
/// once written.
async fn send(
    spec: &ClientSpec,
    ws: &mut Ws,
    seq: u32,
    intended_us: u64,
    events: &mpsc::UnboundedSender<Event>,
) {
    let mut sent_us = spec.now_us();
    if sent_us < intended_us {
        // The schedule's clock fires at or after the intended time; this only guards it.
        super::clock::sleep_until(spec.start + Duration::from_micros(intended_us)).await;
        sent_us = spec.now_us();
    }
    let stamp = Stamp {
        run: spec.run,
        sender: spec.index,
        seq,
        intended_us,
        sent_us,
    };
    let payload =
        serde_json::to_string(&stamp.payload(spec.message_size)).expect("a string serialises");
    let frame = format!("{}{payload}{}", spec.frame_prefix, spec.frame_suffix);
    let event = match ws.send(Message::text(frame)).await {
        Ok(()) => Event::Sent {
            sender: spec.index,
            seq,
            intended_us,
            sent_us,
        },
        Err(_) => Event::SendFailed {
            sender: spec.index,
            seq,
        },
    };
    let _ = events.send(event);
}

/// The closing handshake (RFC 6455 §7): send Close, keep reading and recording until the
/// server's Close arrives, then let the socket go. Dropping a socket with unread frames
/// makes the kernel answer with a reset, which discards whatever the server had not read
/// yet — this client's own last messages among it. Returns why the server may not have read
/// everything we wrote, or None after a completed handshake.
async fn leave(
    spec: &ClientSpec,
    key: &str,
    ws: &mut Ws,
    batch: &mut Vec<Receipt>,
    events: &mpsc::UnboundedSender<Event>,
) -> Option<&'static str> {
    if let Err(e) = ws
        .send(Message::close(Some(CloseCode::NORMAL_CLOSURE), ""))
        .await
    {
        return Some(cause_of(&e));
    }
    let deadline = tokio::time::Instant::now() + spec.close_timeout;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Some("close_timeout"),
            Ok(None) => return Some("abnormal"),
            Ok(Some(Err(e))) => return Some(cause_of(&e)),
            Ok(Some(Ok(m))) => {
                if m.is_close() {
                    return None;
                }
                if let Some(text) = m.as_text() {
                    on_text(spec, key, text, batch, events, &mut LateWhoami::default());
                    if batch.len() >= FLUSH_AT {
                        let _ = events.send(Event::Received(std::mem::take(batch)));
                    }
                }
            }
        }
    }
}

/// A short cause for a connection that ended in an error.
fn cause_of(e: &tokio_websockets::Error) -> &'static str {
    match e {
        tokio_websockets::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionReset => "reset",
            std::io::ErrorKind::BrokenPipe => "broken_pipe",
            _ => "io_error",
        },
        tokio_websockets::Error::Protocol(_) => "protocol_error",
        _ => "error",
    }
}

/// Answers still due to whoami frames asked again while the first answer was on its way:
/// skipped when they come, not counted as other frames.
#[derive(Default)]
struct LateWhoami {
    pointer: String,
    left: u32,
}

impl LateWhoami {
    fn take(&mut self, text: &str) -> bool {
        if self.left == 0 {
            return false;
        }
        let answer = serde_json::from_str::<Value>(text)
            .ok()
            .is_some_and(|v| v.pointer(&self.pointer).is_some_and(Value::is_string));
        if answer {
            self.left -= 1;
        }
        answer
    }
}

fn on_text(
    spec: &ClientSpec,
    key: &str,
    text: &str,
    batch: &mut Vec<Receipt>,
    events: &mpsc::UnboundedSender<Event>,
    late: &mut LateWhoami,
) {
    match Stamp::find_with(text, key, spec.run) {
        Some(s) => batch.push(Receipt {
            recipient: spec.index,
            sender: s.sender,
            seq: s.seq,
            intended_us: s.intended_us,
            sent_us: s.sent_us,
            received_us: spec.now_us(),
        }),
        None if late.take(text) => {}
        None => {
            let _ = events.send(Event::OtherFrame {
                text: describe(text),
            });
        }
    }
}

/// A short name for an unstamped frame: the `code` or `message` of an error frame.
fn describe(text: &str) -> String {
    let v: Option<Value> = serde_json::from_str(text).ok();
    let field = |k: &str| {
        v.as_ref()
            .and_then(|v| v.get(k)?.as_str().map(str::to_string))
    };
    field("code")
        .or_else(|| field("message"))
        .unwrap_or_else(|| text.chars().take(60).collect())
}

/// Connections per loopback source address: one address has about 28,000 ephemeral ports
/// per destination here, but connect() takes ports of one parity first (half the range) and
/// past those searches for each port, which stalled `bench idle` at ~14,000 per address. So
/// clients beyond each 12,000 use the next 127.0.0.x.
const PER_SOURCE: u32 = 12_000;

/// For a `ws://127.x.x.x:port` target: (the source address to bind, the destination), or
/// None to connect normally. With `sources` > 1 clients go round-robin over
/// 127.0.0.1..=sources; with 0, clients past each 12,000 use the next address.
fn loopback_source(url: &str, index: u32, sources: u32) -> Option<(Ipv4Addr, SocketAddr)> {
    let block = match sources {
        0 => index / PER_SOURCE,
        n => index % n,
    };
    if block == 0 && sources <= 1 {
        return None;
    }
    let authority = url.strip_prefix("ws://")?.split('/').next()?;
    let dest: SocketAddrV4 = authority.parse().ok()?;
    if !dest.ip().is_loopback() {
        return None;
    }
    let source = Ipv4Addr::new(127, 0, (block / 254) as u8, (1 + block % 254) as u8);
    Some((source, SocketAddr::V4(dest)))
}

/// Lets connect pick the port (IP_BIND_ADDRESS_NO_PORT), so a port is unique per
/// (source, destination) rather than per source address. Best effort: without it, bind
/// picks the port.
fn no_port_at_bind(socket: &tokio::net::TcpSocket) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: setsockopt reads an int from a valid pointer on a socket we own.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

async fn connect(spec: &ClientSpec) -> Result<Ws, String> {
    let uri: http::Uri = spec.url.parse().map_err(|e| format!("bad_url: {e}"))?;
    let mut builder = ClientBuilder::from_uri(uri);
    for (k, v) in &spec.headers {
        let name =
            http::HeaderName::try_from(k.as_str()).map_err(|e| format!("bad_header: {e}"))?;
        let value =
            http::HeaderValue::try_from(v.as_str()).map_err(|e| format!("bad_header: {e}"))?;
        builder = builder
            .add_header(name, value)
            .map_err(|e| format!("bad_header: {e}"))?;
    }
    let connecting = async {
        match loopback_source(&spec.url, spec.index, spec.sources) {
            // Past one source address's ephemeral ports: connect from another 127.0.0.x.
            Some((source, dest)) => {
                let socket = tokio::net::TcpSocket::new_v4()?;
                no_port_at_bind(&socket);
                socket.bind(SocketAddr::new(source.into(), 0))?;
                let tcp = socket.connect(dest).await?;
                builder.connect_on(MaybeTlsStream::Plain(tcp)).await
            }
            None => builder.connect().await,
        }
    };
    match tokio::time::timeout(spec.connect_timeout, connecting).await {
        Err(_) => Err("timeout".into()),
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(e)) => Err(match e {
            tokio_websockets::Error::Upgrade(
                tokio_websockets::upgrade::Error::DidNotSwitchProtocols(s),
            ) => {
                format!("http_{s}")
            }
            tokio_websockets::Error::Io(io)
                if io.kind() == std::io::ErrorKind::ConnectionRefused =>
            {
                "refused".into()
            }
            other => format!("error: {other}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_spread_past_the_first_share_on_loopback_only() {
        assert_eq!(loopback_source("ws://127.0.0.1:9000/prod", 10, 0), None);
        let (src, dst) = loopback_source("ws://127.0.0.1:9000/prod", 13_000, 0).unwrap();
        assert_eq!(src, Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(dst.port(), 9000);
        assert_eq!(
            loopback_source("ws://127.0.0.1:9000", 25_000, 0).unwrap().0,
            Ipv4Addr::new(127, 0, 0, 3)
        );
        assert_eq!(loopback_source("ws://example.com:80/", 30_000, 0), None);
        assert_eq!(loopback_source("wss://127.0.0.1:443/", 30_000, 0), None);
        // A fixed number of sources: round-robin, 127.0.0.1 bound explicitly too.
        assert_eq!(loopback_source("ws://127.0.0.1:9000", 7, 1), None);
        let src = |i| loopback_source("ws://127.0.0.1:9000", i, 3).unwrap().0;
        assert_eq!(src(0), Ipv4Addr::new(127, 0, 0, 1));
        assert_eq!(src(4), Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(src(5), Ipv4Addr::new(127, 0, 0, 3));
    }

    #[tokio::test]
    async fn a_client_past_the_first_share_connects_from_127_0_0_2() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (tcp, peer) = listener.accept().await.unwrap();
            let _ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            peer
        });
        let spec = ClientSpec {
            index: 13_000,
            url,
            headers: vec![],
            whoami: None,
            frame_prefix: String::new(),
            frame_suffix: String::new(),
            message_size: 64,
            run: 1,
            slow: false,
            connect_timeout: std::time::Duration::from_secs(10),
            close_timeout: std::time::Duration::from_secs(5),
            sources: 0,
            start: std::time::Instant::now(),
        };
        let ws = connect(&spec).await.expect("the handshake succeeds");
        let peer = server.await.unwrap();
        assert_eq!(peer.ip(), std::net::IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));
        drop(ws);
    }
}
