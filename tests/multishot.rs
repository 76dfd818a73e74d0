//! The multishot receive path (vendor/glommio/PATCHES.md, patch 8; src/shard/io.rs): every byte
//! arrives once and in order across the provided buffers, a connection that stops reading
//! holds a bounded amount in user memory (the socket pushes back on its peer), a stream that
//! stops receiving hands over exactly the bytes it took and did not read, and receives the
//! kernel ends for want of a provided buffer are counted and lose nothing; a ring size the
//! kernel cannot take is refused by the executor builders.
//!
//! Each receive test is skipped, with a line on stderr, on a kernel without capped multishot
//! receives (before Linux 6.17); there, `tests/` and Autobahn run the readiness path they fall
//! back to. The builders' check needs no kernel and always runs.

use glommio::net::TcpStream;
use ringmcp::shard::io::{self, Socket};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd};
use std::time::Duration;

/// `len` bytes of a pattern that shows a lost, repeated or reordered byte.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// Runs `test` on one shard set to the multishot path; `None` where the kernel lacks it.
fn on_a_multishot_shard<T: Send + 'static, F>(
    test: impl Fn() -> F + Send + Clone + 'static,
) -> Option<T>
where
    F: std::future::Future<Output = Option<T>> + 'static,
{
    on_a_multishot_shard_with(ringmcp::shard::pool("multishot-test", 1).unwrap(), test)
}

/// [`on_a_multishot_shard`] on a shard of `pool`.
fn on_a_multishot_shard_with<T: Send + 'static, F>(
    pool: glommio::LocalExecutorPoolBuilder,
    test: impl Fn() -> F + Send + Clone + 'static,
) -> Option<T>
where
    F: std::future::Future<Output = Option<T>> + 'static,
{
    let handles = pool
        .on_all_shards(move || {
            let test = test.clone();
            async move {
                if !io::choose_receive(false) {
                    eprintln!("skipped: this kernel has no multishot receive");
                    return None;
                }
                test().await
            }
        })
        .unwrap();
    handles.join_all().pop().unwrap().unwrap()
}

/// Held for the whole of each test. Every test's shard is pinned to the same first CPU, so
/// two at once would share it and each run at the other's pace.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A listener whose one connection gets `send(stream)` run on it in a thread.
fn peer(send: impl FnOnce(std::net::TcpStream) + Send + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((conn, _)) = listener.accept() {
            send(conn);
        }
    });
    addr
}

async fn read_to_end(socket: &mut Socket) -> Vec<u8> {
    let mut got = Vec::new();
    while let Ok(1..) = std::future::poll_fn(|cx| socket.poll_read_into(cx, &mut got)).await {}
    got
}

#[test]
fn every_byte_arrives_once_and_in_order_across_the_provided_buffers() {
    let _serial = one_at_a_time();
    // 4 MiB in uneven writes: many arrivals span several 4 KiB buffers, some fit in one.
    const TOTAL: usize = 4 << 20;
    let sent = pattern(TOTAL);
    let expected = sent.clone();
    let addr = peer(move |mut conn| {
        let mut at = 0;
        let mut step = 1;
        while at < sent.len() {
            let end = (at + step).min(sent.len());
            conn.write_all(&sent[at..end]).unwrap();
            at = end;
            step = (step * 13 + 7) % 40_000 + 1;
        }
    });
    let got = on_a_multishot_shard(move || async move {
        let tcp = TcpStream::connect(addr).await.unwrap();
        Some(read_to_end(&mut Socket::new(tcp, None)).await)
    });
    if let Some(got) = got {
        assert_eq!(got.len(), expected.len(), "bytes received");
        assert!(got == expected, "the bytes differ from what was sent");
    }
}

#[test]
fn a_connection_that_stops_reading_makes_its_peer_wait() {
    let _serial = one_at_a_time();
    // The peer writes without blocking while the shard reads nothing. The receive ends
    // itself once it took its cap (64 KiB; `MULTISHOT_LIMIT_BYTES` in glommio), the socket
    // buffers fill and the peer's writes stop, at about 330 KB here whatever the load on the
    // machine. A receive that kept taking bytes lets all 32 MiB through into user memory;
    // one stopped by a cancellation once 64 KiB waited let 0.55 MB through on a quiet
    // machine and up to 3.9 MB on a busy one (the kernel fills free buffers until the
    // cancellation reaches it).
    const TOTAL: usize = 32 << 20;
    const SETTLE: Duration = Duration::from_millis(500);
    let sent = pattern(TOTAL);
    let expected = sent.clone();
    let (accepted_tx, accepted_rx) = std::sync::mpsc::channel();
    let addr = peer(move |mut conn| {
        set_buffer(conn.as_raw_fd(), libc::SO_SNDBUF, 64 * 1024);
        conn.set_nonblocking(true).unwrap();
        let mut at = 0;
        let deadline = std::time::Instant::now() + SETTLE;
        while std::time::Instant::now() < deadline && at < sent.len() {
            match conn.write(&sent[at..]) {
                Ok(n) => at += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => panic!("write: {e}"),
            }
        }
        accepted_tx.send(at).unwrap();
        conn.set_nonblocking(false).unwrap();
        conn.write_all(&sent[at..]).unwrap();
    });
    let got = on_a_multishot_shard(move || async move {
        let tcp = TcpStream::connect(addr).await.unwrap();
        // Small socket buffers (here and at the peer) make the bound visible: without them
        // loopback autotuning lets several MiB sit in the kernel.
        set_buffer(tcp.as_raw_fd(), libc::SO_RCVBUF, 64 * 1024);
        let mut socket = Socket::new(tcp, None);
        let mut first = Vec::new();
        // One read arms the receive; then nothing is read while the peer writes.
        std::future::poll_fn(|cx| socket.poll_read_into(cx, &mut first))
            .await
            .unwrap();
        glommio::timer::sleep(SETTLE + Duration::from_millis(200)).await;
        let mut rest = read_to_end(&mut socket).await;
        first.append(&mut rest);
        Some(first)
    });
    let Some(got) = got else { return };
    let accepted = accepted_rx.recv().unwrap();
    assert!(
        accepted < 1 << 20,
        "the peer wrote {accepted} bytes to a connection that read nothing"
    );
    assert_eq!(got.len(), expected.len(), "bytes received");
    assert!(got == expected, "the bytes differ from what was sent");
}

#[test]
fn the_cap_on_one_arming_does_not_cut_what_is_already_in_the_socket() {
    let _serial = one_at_a_time();
    // Each arming takes at most 64 KiB (`MULTISHOT_LIMIT_BYTES`). When it ends there with
    // more bytes in the socket, the reader gets them together with the rest: a small message
    // cut at the cap would be partial input, which the server refuses while its inbound
    // budget is spent (scripts/faults.py's good echo client was, once every ~64 KiB).
    const CAP: usize = 64 * 1024;
    const TOTAL: usize = 3 * CAP + 100;
    let sent = pattern(TOTAL);
    let expected = sent.clone();
    let (written_tx, written_rx) = std::sync::mpsc::channel::<()>();
    let written_rx = std::sync::Arc::new(std::sync::Mutex::new(written_rx));
    let addr = peer(move |mut conn| {
        conn.write_all(&sent).unwrap();
        written_tx.send(()).unwrap();
    });
    let got = on_a_multishot_shard(move || {
        let written_rx = std::sync::Arc::clone(&written_rx);
        async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            // Everything is in the socket before the first read arms the receive.
            written_rx.lock().unwrap().recv().unwrap();
            let mut socket = Socket::new(tcp, None);
            let mut got = Vec::new();
            let mut ends = Vec::new();
            while let Ok(1..) = std::future::poll_fn(|cx| socket.poll_read_into(cx, &mut got)).await
            {
                ends.push(got.len());
            }
            Some((got, ends))
        }
    });
    let Some((got, ends)) = got else { return };
    assert!(got == expected, "the bytes differ from what was sent");
    for cut in [CAP, 2 * CAP, 3 * CAP] {
        assert!(
            !ends.contains(&cut),
            "a read ended at the cap, {cut}: {ends:?}"
        );
    }
}

#[test]
fn a_stream_that_stops_receiving_hands_over_what_it_took() {
    let _serial = one_at_a_time();
    // What a connection moving to another shard needs: the bytes the receive took from the
    // socket but nobody read come back from `into_parts`, the rest is still in the socket,
    // and together they are the whole stream.
    const HEAD: usize = 100;
    const TOTAL: usize = 300_000;
    let sent = pattern(TOTAL);
    let expected = sent.clone();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let addr = peer(move |mut conn| {
        conn.write_all(&sent[..HEAD]).unwrap();
        go_rx.recv().unwrap();
        conn.write_all(&sent[HEAD..]).unwrap();
    });
    let got = on_a_multishot_shard(move || {
        let go_tx = go_tx.clone();
        async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let mut socket = Socket::new(tcp, None);
            let mut got = Vec::new();
            while got.len() < HEAD {
                std::future::poll_fn(|cx| socket.poll_read_into(cx, &mut got))
                    .await
                    .unwrap();
            }
            go_tx.send(()).unwrap();
            // Let the receive take some of the rest before it is stopped.
            glommio::timer::sleep(Duration::from_millis(50)).await;
            let (tcp, _, mut unread) = socket.into_parts().await.unwrap();
            got.append(&mut unread);
            // SAFETY: dup gives a descriptor of the same socket that the std stream owns.
            let fd = unsafe { libc::dup(tcp.as_raw_fd()) };
            drop(tcp);
            let mut rest = unsafe { std::net::TcpStream::from_raw_fd(fd) };
            rest.set_nonblocking(false).unwrap();
            rest.read_to_end(&mut got).unwrap();
            Some(got)
        }
    });
    if let Some(got) = got {
        assert_eq!(got.len(), expected.len(), "bytes received");
        assert!(got == expected, "the bytes differ from what was sent");
    }
}

#[test]
fn a_ring_run_dry_is_counted_and_loses_nothing() {
    let _serial = one_at_a_time();
    // The shard's ring holds 4 buffers of 32 KiB here (the server's: 64). 48 connections get
    // 64 KiB each (3 MiB) while the shard's thread is blocked; the kernel then runs up to 20
    // of their receives each time the shard asks for events (patch 22; Linux 6.13+), each
    // taking up to 64 KiB, and no buffer goes back until the reactor takes the completions:
    // the receives that find the ring empty end with ENOBUFS. Each is armed again when its
    // reader next polls: every byte must still arrive, in order.
    const CONNECTIONS: usize = 48;
    const EACH: usize = 64 * 1024;
    let stream = |i: usize| -> Vec<u8> {
        (0..EACH)
            .map(|j| ((j + i * 31) * 7 + j / 251) as u8)
            .collect()
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let conns: Vec<_> = (0..CONNECTIONS)
            .map_while(|_| listener.accept().ok().map(|(conn, _)| conn))
            .collect();
        if go_rx.recv().is_err() {
            return;
        }
        // Connections are accepted in the order the shard opened them (one at a time).
        for (i, mut conn) in conns.into_iter().enumerate() {
            conn.write_all(&stream(i)).unwrap();
        }
    });
    let pool = ringmcp::shard::pool("multishot-test", 1).unwrap();
    let got = on_a_multishot_shard_with(pool.recv_buffers(4), move || {
        let go_tx = go_tx.clone();
        async move {
            let before = glommio::net::recv_buffer_shortages();
            let mut readers = Vec::new();
            for _ in 0..CONNECTIONS {
                let tcp = TcpStream::connect(addr).await.unwrap();
                let mut socket = Socket::new(tcp, None);
                readers.push(glommio::spawn_local(async move {
                    read_to_end(&mut socket).await
                }));
            }
            // Every reader arms its receive, and the reactor submits them as it parks.
            glommio::timer::sleep(Duration::from_millis(50)).await;
            go_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(500));
            let mut got = Vec::new();
            for reader in readers {
                got.push(reader.await);
            }
            Some((got, glommio::net::recv_buffer_shortages() - before))
        }
    });
    let Some((got, shortages)) = got else { return };
    for (i, bytes) in got.iter().enumerate() {
        assert_eq!(bytes.len(), EACH, "bytes received on connection {i}");
        assert!(*bytes == stream(i), "connection {i}: the bytes differ");
    }
    assert!(
        shortages > 0,
        "no receive found the ring empty: the test proves nothing"
    );
}

#[test]
fn a_ring_size_the_kernel_cannot_take_is_refused_by_the_builders() {
    // The kernel's buffer ring holds a power of two of entries, at most 32768.
    for buffers in [0u16, 3, 48, 1 << 15 | 1] {
        let refused = std::panic::catch_unwind(|| {
            let _ = glommio::LocalExecutorBuilder::default().recv_buffers(buffers);
        });
        assert!(refused.is_err(), "{buffers} buffers were taken");
        let refused = std::panic::catch_unwind(|| {
            let _ = ringmcp::shard::pool("multishot-test", 1)
                .unwrap()
                .recv_buffers(buffers);
        });
        assert!(refused.is_err(), "{buffers} buffers were taken by a pool");
    }
    for buffers in [1u16, 4, 64, 1 << 15] {
        let _ = glommio::LocalExecutorBuilder::default().recv_buffers(buffers);
        let _ = ringmcp::shard::pool("multishot-test", 1)
            .unwrap()
            .recv_buffers(buffers);
    }
}

fn set_buffer(fd: i32, option: libc::c_int, bytes: libc::c_int) {
    // SAFETY: a socket option with a live c_int.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt");
}
