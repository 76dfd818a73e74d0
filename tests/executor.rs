//! The shard executor: the patched glommio (vendor/glommio/PATCHES.md) still preempts, with
//! its preemption timer now armed across turns instead of re-armed on every one (also in a
//! turn begun by a spin poll, which skips the reactor's second pass), still sleeps
//! when idle, runs a woken task on time (it does not park with tasks queued), completes socket
//! reads while it never parks, keeps one waker per pending I/O source however often it is
//! polled, and the busy time it reports only grows and counts the work done in the poll that
//! ended a spin.

use glommio::net::TcpStream;
use ringmcp::shard::io::{Deadline, Socket};
use std::future::Future;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Spins without yielding until the executor asks for the CPU back; false if it never does
/// within a generous bound (a hang guard, not a timing assertion).
fn spin_until_preempted() -> bool {
    let give_up = Instant::now() + Duration::from_secs(10);
    while Instant::now() < give_up {
        if glommio::executor().need_preempt() {
            return true;
        }
        std::hint::spin_loop();
    }
    false
}

/// `value` once `after` has passed on the shard's clock: the losing side of a race that keeps
/// a test from waiting forever (a hang guard, not a timing assertion).
async fn given_up_after<T>(after: Duration, value: T) -> T {
    glommio::timer::sleep(after).await;
    value
}

/// Five times: waits with `wait`, then spins without yielding; whether the executor asked for
/// the CPU back each time. The shard's slice is 5 ms; its spin before parking the server's
/// unless `spin_before_park` is given.
fn preempted_after_each_wait<F: Future<Output = ()> + 'static>(
    spin_before_park: Option<Duration>,
    wait: fn() -> F,
) -> Vec<bool> {
    let mut pool = ringmcp::shard::pool("executor-test", 1)
        .unwrap()
        .preempt_timer(Duration::from_millis(5));
    if let Some(spin) = spin_before_park {
        pool = pool.spin_before_park(spin);
    }
    let handles = pool
        .on_all_shards(move || async move {
            let mut preempted = Vec::new();
            for _ in 0..5 {
                wait().await;
                preempted.push(spin_until_preempted());
                // Give the executor the turn it asked for, which consumes the fired timer.
                glommio::yield_if_needed().await;
            }
            preempted
        })
        .unwrap();
    handles.join_all().pop().unwrap().unwrap()
}

#[test]
fn a_task_that_never_yields_is_preempted_on_every_slice() {
    // Many short turns before each spin: each one used to re-arm the timer, now they keep it.
    let preempted = preempted_after_each_wait(None, || async {
        for _ in 0..100 {
            glommio::timer::sleep(Duration::from_micros(10)).await;
        }
    });
    assert_eq!(preempted, vec![true; 5]);
}

#[test]
fn preemption_resumes_after_the_executor_slept() {
    let handles = ringmcp::shard::pool("executor-test", 1)
        .unwrap()
        .on_all_shards(|| async {
            // Idle: the executor parks with only this timer to wake it, and removes its
            // preemption timer first; after waking it must arm one again.
            glommio::timer::sleep(Duration::from_millis(30)).await;
            spin_until_preempted()
        })
        .unwrap();
    for result in handles.join_all() {
        assert!(result.unwrap());
    }
}

/// A task woken by a spin poll runs in a turn without the reactor's second pass (patch 24)
/// only while the preemption timer is still armed. Here the timer fires during every wait (a
/// 10 ms sleep against a 5 ms slice, spun through), so that turn must arm it again: without
/// the check the task would never be asked to yield.
#[test]
fn a_task_woken_by_a_spin_poll_is_still_preempted() {
    let preempted = preempted_after_each_wait(Some(Duration::from_secs(5)), || {
        glommio::timer::sleep(Duration::from_millis(10))
    });
    assert_eq!(preempted, vec![true; 5]);
}

/// CPU time this thread has used so far.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which `ts` is.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[test]
fn an_idle_executor_sleeps_instead_of_spinning() {
    let handles = ringmcp::shard::pool("executor-test", 1)
        .unwrap()
        .on_all_shards(|| async {
            // Wake up once so the preemption timer is armed, then idle: the executor must
            // park (a bound on CPU used, not on time: a loaded machine only lowers it).
            glommio::timer::sleep(Duration::from_millis(1)).await;
            let before = thread_cpu_time();
            glommio::timer::sleep(Duration::from_millis(500)).await;
            thread_cpu_time() - before
        })
        .unwrap();
    for result in handles.join_all() {
        let used = result.unwrap();
        assert!(
            used < Duration::from_millis(250),
            "an idle shard used {used:?} of CPU in 500 ms"
        );
    }
}

#[test]
fn busy_time_only_grows() {
    let handles = ringmcp::shard::pool("executor-test", 1)
        .unwrap()
        .on_all_shards(|| async {
            // A turn that runs for 20 ms, then one that hardly runs: the second reading must
            // still include the first turn (glommio's own stats restart at every read).
            let spin_until = Instant::now() + Duration::from_millis(20);
            while Instant::now() < spin_until {
                std::hint::spin_loop();
            }
            glommio::timer::sleep(Duration::from_millis(1)).await;
            let after_spin = ringmcp::shard::busy_time();
            glommio::timer::sleep(Duration::from_millis(1)).await;
            (after_spin, ringmcp::shard::busy_time())
        })
        .unwrap();
    for result in handles.join_all() {
        let (after_spin, later) = result.unwrap();
        assert!(after_spin >= Duration::from_millis(20), "{after_spin:?}");
        assert!(later >= after_spin, "{later:?} < {after_spin:?}");
    }
}

/// A waker that busy-waits for `work` before it wakes `then`: work done inside the reactor's
/// poll (as the kernel's side of a deferred receive is) by the poll that wakes a task.
struct SlowWaker {
    work: Duration,
    then: std::task::Waker,
}

impl std::task::Wake for SlowWaker {
    fn wake(self: std::sync::Arc<Self>) {
        let until = Instant::now() + self.work;
        while Instant::now() < until {
            std::hint::spin_loop();
        }
        self.then.wake_by_ref();
    }
}

#[test]
fn busy_time_counts_the_spin_poll_that_found_work() {
    const WORK: Duration = Duration::from_millis(100);
    let handles = ringmcp::shard::pool("executor-test", 1)
        .unwrap()
        // Spin through the whole test: the timer below fires in a spin poll, not in a park.
        .spin_before_park(Duration::from_secs(5))
        .on_all_shards(|| async {
            let mut timer = glommio::timer::Timer::new(Duration::from_millis(10));
            let before = ringmcp::shard::busy_time();
            // The shard spins while this task waits; the poll that fires the timer does the
            // waker's work and must count as busy (upstream dropped every spin poll's time).
            std::future::poll_fn(|cx| {
                let then = cx.waker().clone();
                let waker =
                    std::task::Waker::from(std::sync::Arc::new(SlowWaker { work: WORK, then }));
                std::pin::Pin::new(&mut timer).poll(&mut std::task::Context::from_waker(&waker))
            })
            .await;
            // That poll's time is added when the turn it began ends: read in a later turn.
            glommio::timer::sleep(Duration::from_millis(1)).await;
            ringmcp::shard::busy_time() - before
        })
        .unwrap();
    for result in handles.join_all() {
        let busy = result.unwrap();
        assert!(busy >= WORK, "busy {busy:?} left out the poll's {WORK:?}");
    }
}

/// Echoes whatever arrives on one connection of a loopback listener; returns its address.
fn echo_server() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let Ok((mut conn, _)) = listener.accept() else {
            return;
        };
        let _ = conn.set_nodelay(true);
        let mut buf = [0u8; 4096];
        loop {
            let n = match conn.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                // This process's shards cause an `EINTR` now and then (tests/common, `Sock`).
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            if conn.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    addr
}

/// A task woken by its timer runs on time while socket reads wake the same shard at nearby
/// instants, as the load generator's sender does beside its connections' readers. Regression
/// (patches 5 and 6): a turn that found a completion in the latency ring before it ran any
/// task queue (a sleep timer left armed from the last park, firing just then) reported "no
/// work" and parked with the woken tasks still queued, so the sender slept until an unrelated
/// wake-up; here, the rescue timer.
#[test]
fn a_timer_woken_task_runs_on_time_beside_socket_reads() {
    const RUN: Duration = Duration::from_millis(1500);
    // Nothing else wakes the shard: a task stranded in its queue waits for this.
    const RESCUE: Duration = Duration::from_secs(4);
    let addr = echo_server();
    let handles = ringmcp::shard::pool("executor-test", 1)
        .unwrap()
        .on_all_shards(move || async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            tcp.set_nodelay(true).unwrap();
            let mut stream = Socket::new(tcp, None);
            let fd = stream.as_raw_fd();
            let reader = glommio::spawn_local(async move {
                let mut inbuf = Vec::new();
                while let Ok(1..) =
                    std::future::poll_fn(|cx| stream.poll_read_into(cx, &mut inbuf)).await
                {
                    inbuf.clear();
                }
            });
            glommio::spawn_local(glommio::timer::sleep(RESCUE)).detach();
            let start = Instant::now();
            let mut next = start;
            let mut timer = Deadline::at(next);
            let mut worst = Duration::ZERO;
            // Periods from 20 to 147 us sweep the timer across the echo's round trip, so the
            // two wake-ups race at every phase.
            let mut period_us = 20;
            while next < start + RUN {
                timer.reset(next);
                std::future::poll_fn(|cx| timer.poll_expired(cx)).await;
                let now = Instant::now();
                worst = worst.max(now - next);
                // SAFETY: `fd` is the open socket `reader` owns; one byte from a live array.
                let sent = unsafe { libc::send(fd, b"x".as_ptr().cast(), 1, libc::MSG_DONTWAIT) };
                assert_eq!(sent, 1, "send");
                period_us = 20 + (period_us * 7 + 13) % 128;
                next = now + Duration::from_micros(period_us);
            }
            // SAFETY: as above; the reader sees end of stream once the echo closes.
            unsafe { libc::shutdown(fd, libc::SHUT_WR) };
            reader.await;
            worst
        })
        .unwrap();
    for result in handles.join_all() {
        let worst = result.unwrap();
        assert!(
            worst < Duration::from_millis(250),
            "the timer-woken task ran {worst:?} after its deadline"
        );
    }
}

/// Reads complete while the shard never parks: a task that only yields keeps its task queue
/// runnable, so the executor polls its rings only when the queue is preempted (every 5 ms
/// here), and the reads' completions must come from those polls' own kernel entries.
/// Regression guard for patch 22: the main ring defers its completion task work
/// (`DEFER_TASKRUN`) to an `io_uring_enter` that asks for events; entries that only submitted
/// left every completion in the kernel until the shard slept, here never (this test then read
/// nothing after its first echo).
#[test]
fn socket_reads_complete_while_the_shard_never_parks() {
    const ECHOES: usize = 50;
    // A hang guard, not a timing assertion: each echo waits for a preemption, 5 ms.
    const GIVE_UP: Duration = Duration::from_secs(10);
    let addr = echo_server();
    let handles = ringmcp::shard::pool("executor-test", 1)
        .unwrap()
        .preempt_timer(Duration::from_millis(5))
        .on_all_shards(move || async move {
            // The server's path: reads are completions of a multishot receive, not readiness
            // polls followed by a `recv` (which reads without the ring).
            ringmcp::shard::io::choose_receive(false);
            let tcp = TcpStream::connect(addr).await.unwrap();
            tcp.set_nodelay(true).unwrap();
            let mut stream = Socket::new(tcp, None);
            let fd = stream.as_raw_fd();
            let done = std::rc::Rc::new(std::cell::Cell::new(false));
            let spinner = glommio::spawn_local({
                let done = done.clone();
                async move {
                    while !done.get() {
                        futures_lite::future::yield_now().await;
                    }
                }
            });
            let give_up = Instant::now() + GIVE_UP;
            let mut echoed = 0;
            let mut inbuf = Vec::new();
            while echoed < ECHOES && Instant::now() < give_up {
                // SAFETY: `fd` is the open socket `stream` owns; one byte from a live array.
                let sent = unsafe { libc::send(fd, b"x".as_ptr().cast(), 1, libc::MSG_DONTWAIT) };
                assert_eq!(sent, 1, "send");
                let read = futures_lite::future::or(
                    std::future::poll_fn(|cx| stream.poll_read_into(cx, &mut inbuf)),
                    given_up_after(GIVE_UP, Ok(0)),
                );
                if !matches!(read.await, Ok(1..)) {
                    break;
                }
                echoed = inbuf.len();
            }
            done.set(true);
            spinner.await;
            echoed
        })
        .unwrap();
    for result in handles.join_all() {
        assert_eq!(result.unwrap(), ECHOES, "echoes read before giving up");
    }
}

#[test]
fn a_blocking_call_polled_again_and_again_keeps_one_waker() {
    // A shard's accept loop runs beside `spawn_blocking` (the wait for a stop request), which
    // is polled again every time the task wakes for an accept. Each poll used to add a clone
    // of the task's waker to the blocking call's source, never dropped while it waited: memory
    // per accepted connection, and a panic ("Waker invariant broken") once the task's waker
    // count passed i16::MAX, after some 32,000 wake-ups of a long-running server.
    const POLLS: u32 = 40_000;
    let handles = ringmcp::shard::pool("executor-test", 1)
        .unwrap()
        .on_all_shards(|| async {
            let (stop, stop_requested) = std::sync::mpsc::channel::<()>();
            let stopped = glommio::executor().spawn_blocking(move || stop_requested.recv());
            let polled = futures_lite::future::or(
                async {
                    let _ = stopped.await;
                    0
                },
                async {
                    for _ in 0..POLLS {
                        futures_lite::future::yield_now().await;
                    }
                    POLLS
                },
            )
            .await;
            drop(stop);
            polled
        })
        .unwrap();
    for result in handles.join_all() {
        assert_eq!(result.unwrap(), POLLS);
    }
}

#[test]
fn a_stream_is_small_and_its_timeouts_made_on_first_use_still_fire() {
    // Every connection holds a stream. Its read and write timeouts share one box, made when
    // either is first set, and its end-of-stream flag sits beside the descriptor (patch 13);
    // it reaches its reactor through the executor, not a pointer of its own (patch 18); the
    // readiness source of a write that waits shares the timeouts' box (patch 21).
    let size = std::mem::size_of::<TcpStream>();
    assert!(size <= 24, "a TcpStream is {size} B");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // The peer says nothing and reads nothing until the test is over: only the timeouts can
    // end the read, and the writes once the socket's buffers are full.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let peer = std::thread::spawn(move || {
        let (_conn, _) = listener.accept().unwrap();
        let _ = done_rx.recv();
    });
    let handles = ringmcp::shard::pool("executor-test", 1)
        .unwrap()
        .on_all_shards(move || async move {
            use futures_lite::{AsyncReadExt, AsyncWriteExt};
            let mut stream = TcpStream::connect(addr).await.unwrap();
            assert_eq!(
                (stream.read_timeout(), stream.write_timeout()),
                (None, None)
            );
            stream
                .set_write_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            stream
                .set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            assert_eq!(stream.read_timeout(), Some(Duration::from_millis(50)));
            assert_eq!(stream.write_timeout(), Some(Duration::from_secs(5)));
            // A timeout that never fires fails the test with `Other` instead of leaving it
            // waiting on a silent peer.
            let give_up =
                || given_up_after(Duration::from_secs(10), Err(std::io::ErrorKind::Other));
            let read = futures_lite::future::or(
                async { stream.read(&mut [0u8; 8]).await.map_err(|e| e.kind()) },
                give_up(),
            )
            .await;
            stream
                .set_write_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            // Bounded: loopback buffers take a few MiB at most before a write waits.
            let write = futures_lite::future::or(
                async {
                    let mut write = Ok(0);
                    for _ in 0..4096 {
                        write = stream.write(&[0u8; 65536]).await.map_err(|e| e.kind());
                        if write.is_err() {
                            break;
                        }
                    }
                    write
                },
                give_up(),
            )
            .await;
            (read, write)
        })
        .unwrap();
    let (read, write) = handles.join_all().pop().unwrap().unwrap();
    done_tx.send(()).unwrap();
    peer.join().unwrap();
    assert_eq!(read, Err(std::io::ErrorKind::TimedOut));
    assert_eq!(
        write,
        Err(std::io::ErrorKind::TimedOut),
        "a write that waits times out"
    );
}
