//! Hostile clients against the local stack's WebSocket API, each with its documented outcome
//! (ARCHITECTURE.md, "Hostile clients"), while a well-behaved pair keeps chatting through
//! the reference functions: every probe it sends during the attacks still arrives, and its
//! latency before and during them is printed (BENCHMARKS.md records the figures).

mod support;

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use support::{Ws, connect, next_json, send_json, whoami};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::{self, Message};

/// The close code a connection ends with, within 30 s (None: closed without one).
async fn close_code(ws: &mut Ws) -> Option<u16> {
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    })
    .await
    .expect("the server closes in time")
}

/// A raw TCP peer of the WebSocket port: the server must drop it (EOF) without answering.
async fn dropped_without_answer(mut tcp: tokio::net::TcpStream, trickle: Option<&'static [u8]>) {
    let (mut read, mut write) = tcp.split();
    let writing = async {
        for &b in trickle.unwrap_or_default() {
            if write.write_all(&[b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        std::future::pending::<()>().await
    };
    let mut answer = Vec::new();
    let reading = read.read_to_end(&mut answer);
    let outcome = tokio::time::timeout(Duration::from_secs(40), async {
        tokio::select! {
            r = reading => r.map(|_| ()),
            _ = writing => Ok(()),
        }
    })
    .await;
    assert!(outcome.is_ok(), "the server kept a stalled handshake open");
    assert!(
        answer.is_empty(),
        "a stalled handshake got an answer: {answer:?}"
    );
}

/// whoami on a connection that also receives broadcasts: skips frames until the answer.
async fn ask_id(ws: &mut Ws) -> String {
    send_json(ws, json!({"action": "whoami"})).await;
    loop {
        let frame = next_json(ws, 30).await;
        if frame["type"] == "whoami" {
            return frame["connectionId"]
                .as_str()
                .unwrap_or_default()
                .to_string();
        }
    }
}

fn percentiles(mut ms: Vec<f64>) -> String {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len()) - 1];
    format!(
        "n={} p50={:.1} ms p99={:.1} ms max={:.1} ms",
        ms.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_clients_get_their_outcomes_and_others_keep_chatting() {
    let stack = support::stack().await;
    let url = stack.endpoints.websocket_url.clone();
    let host = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .to_string();

    // The well-behaved pair: A sends a probe every 100 ms, B times each broadcast.
    let mut a = connect(&url).await;
    let mut b = connect(&url).await;
    whoami(&mut a).await;
    whoami(&mut b).await;
    let start = Instant::now();
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let prober = tokio::spawn(async move {
        let mut sent = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        while !*stop_rx.borrow() {
            tokio::select! {
                _ = tick.tick() => {
                    let n = sent.len();
                    sent.push(start.elapsed());
                    send_json(&mut a, json!({"action": "sendMessage", "message": format!("probe-{n}")})).await;
                }
                _ = stop_rx.changed() => {}
            }
        }
        (a, sent)
    });
    type Got = std::sync::Arc<std::sync::Mutex<Vec<(usize, Duration, String)>>>;
    let got: Got = Default::default();
    let got_by_b = got.clone();
    let receiver = tokio::spawn(async move {
        while let Some(Ok(msg)) = b.next().await {
            let Message::Text(t) = msg else { continue };
            let v: serde_json::Value = serde_json::from_str(&t).unwrap_or_default();
            let text = v["message"].as_str().unwrap_or_default().to_string();
            let n = text
                .strip_prefix("probe-")
                .and_then(|n| n.parse().ok())
                .unwrap_or(usize::MAX);
            got_by_b.lock().unwrap().push((n, start.elapsed(), text));
        }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let attacks_from = start.elapsed();

    // Stalled handshakes, in the background: nothing sent, and a request line a byte at a
    // time. Both are dropped at the handshake deadline, unanswered.
    let silent = tokio::net::TcpStream::connect(&host).await.unwrap();
    let trickling = tokio::net::TcpStream::connect(&host).await.unwrap();
    let stalled = tokio::spawn(async move {
        tokio::join!(
            dropped_without_answer(silent, None),
            dropped_without_answer(
                trickling,
                Some(b"GET /prod HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
            )
        )
    });

    // Invalid UTF-8 in a text frame: 1007.
    let mut bad = connect(&url).await;
    bad.send(Message::Frame(Frame::message(
        vec![0xff, 0xfe, 0xfd],
        OpCode::Data(Data::Text),
        true,
    )))
    .await
    .unwrap();
    assert_eq!(close_code(&mut bad).await, Some(1007), "invalid UTF-8");

    // A fragmented message past 128 KB, in frames under 32 KB: 1009.
    let mut frag = connect(&url).await;
    let chunk = vec![b'x'; 30 * 1024];
    for i in 0..5 {
        let opcode = if i == 0 { Data::Text } else { Data::Continue };
        // The server may close before the last fragment: a failed send is expected then.
        let _ = frag
            .send(Message::Frame(Frame::message(
                chunk.clone(),
                OpCode::Data(opcode),
                i == 4,
            )))
            .await;
    }
    assert_eq!(
        close_code(&mut frag).await,
        Some(1009),
        "fragments past 128 KB"
    );

    // A ping flood from a client that does not read: answered, and the client still chats.
    let mut flood = connect(&url).await;
    for i in 0..20_000u32 {
        flood
            .send(Message::Ping(i.to_be_bytes().to_vec().into()))
            .await
            .unwrap();
    }
    assert!(
        !ask_id(&mut flood).await.is_empty(),
        "the flooding client still chats"
    );

    // A URL past 4,096 characters: 414; headers past 10,240 bytes: 431.
    let long = format!("{url}?room={}", "r".repeat(5_000));
    match tokio_tungstenite::connect_async(long).await {
        Err(tungstenite::Error::Http(r)) => assert_eq!(r.status().as_u16(), 414),
        other => panic!(
            "a 5,000-character URL: {:?}",
            other.map(|(_, r)| r.status())
        ),
    }
    let mut request = url.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("x-padding", "p".repeat(11_000).parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tungstenite::Error::Http(r)) => assert_eq!(r.status().as_u16(), 431),
        other => panic!(
            "11,000 bytes of headers: {:?}",
            other.map(|(_, r)| r.status())
        ),
    }

    // A frame after the client's Close is not routed: the marker never reaches B.
    let mut closer = connect(&url).await;
    ask_id(&mut closer).await;
    let marker = r#"{"action":"sendMessage","message":"after-close"}"#;
    let mut raw = vec![0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8];
    raw.extend([0x81, 0x80 | marker.len() as u8, 0, 0, 0, 0]);
    raw.extend(marker.as_bytes());
    match closer.get_mut() {
        tokio_tungstenite::MaybeTlsStream::Plain(tcp) => tcp.write_all(&raw).await.unwrap(),
        _ => unreachable!("a ws:// URL is plain TCP"),
    }
    let _ = close_code(&mut closer).await;

    stalled.await.unwrap();
    let attacks_to = start.elapsed();
    // Two more seconds of probes after the attacks, then stop and let the last arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop_tx.send(true).unwrap();
    let (mut a, sent) = prober.await.unwrap();
    // Every probe arrives (a broadcast takes well under a second here; 60 s is the bound).
    let arrived = |got: &Got| {
        let got = got.lock().unwrap();
        (0..sent.len()).all(|n| got.iter().any(|(m, _, _)| *m == n))
    };
    let waiting = Instant::now();
    while !arrived(&got) && waiting.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = a.close(None).await;
    receiver.abort();
    let got = got.lock().unwrap().clone();

    assert!(
        got.iter().all(|(_, _, text)| text != "after-close"),
        "a frame sent after Close was routed"
    );
    let mut before = Vec::new();
    let mut during = Vec::new();
    for (n, at) in sent.iter().enumerate() {
        let arrived = got.iter().find(|(m, _, _)| *m == n).map(|(_, t, _)| *t);
        let arrived = arrived.unwrap_or_else(|| panic!("probe {n}, sent at {at:?}, was lost"));
        let ms = (arrived - *at).as_secs_f64() * 1e3;
        if *at < attacks_from {
            before.push(ms);
        } else if *at <= attacks_to {
            during.push(ms);
        }
    }
    assert!(!during.is_empty(), "probes ran during the attacks");
    println!("probe latency before the attacks: {}", percentiles(before));
    println!(
        "probe latency during the attacks ({:.1} s): {}",
        (attacks_to - attacks_from).as_secs_f64(),
        percentiles(during)
    );
    stack.shutdown().await;
}
