//! A WebSocket echo server on tokio + tokio-tungstenite, as the usual Rust choice writes it:
//! tokio-tungstenite's own echo-server example (accept, split, forward every text and binary
//! message back), on the default multi-threaded runtime, whose worker count follows the CPUs
//! it may run on (one under bench.sh's `taskset`). It echoes on every path.
//!
//! Usage: tokio-echo-peer PORT (binds 127.0.0.1:PORT)

use futures_util::{future, StreamExt, TryStreamExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| std::io::Error::other("usage: tokio-echo-peer PORT"))?;
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(echo(stream));
    }
}

/// Echoes one connection's messages until it closes; its errors end only that connection.
async fn echo(stream: TcpStream) {
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (write, read) = ws.split();
    let _ = read
        .try_filter(|message| future::ready(message.is_text() || message.is_binary()))
        .forward(write)
        .await;
}
