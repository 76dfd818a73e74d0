//! A redis-server of the test's own on 127.0.0.1 (Debian's `redis-server` on PATH; the
//! cluster stage installs it), killed when dropped. Shared by the crate's Redis client tests
//! and the integration tests.
#![allow(dead_code)] // each user takes a different subset

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running redis-server without persistence.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one on `port` with `extra` arguments and waits until it listens.
    pub fn start(port: u16, extra: &[&str]) -> RedisServer {
        let port_arg = port.to_string();
        let mut args = vec![
            "--port",
            &port_arg,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ];
        args.extend_from_slice(extra);
        let child = Command::new("redis-server")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        let server = RedisServer {
            port,
            child: Some(child),
        };
        let ready_by = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < ready_by, "redis-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// Starts one on a port that was free a moment ago.
    pub fn on_a_free_port(extra: &[&str]) -> RedisServer {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        RedisServer::start(port, extra)
    }

    /// SIGSTOP: it keeps its connections and the kernel keeps accepting new ones, but it
    /// answers nothing (a wedged server, or a route that black-holes), until [`resume`].
    ///
    /// [`resume`]: RedisServer::resume
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// SIGCONT after [`RedisServer::pause`].
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: libc::c_int) {
        let child = self.child.as_ref().expect("the server runs");
        let pid = libc::pid_t::try_from(child.id()).expect("a pid");
        // SAFETY: kill(2) with our own child's pid has no memory effects.
        assert_eq!(
            unsafe { libc::kill(pid, signal) },
            0,
            "kill({pid}, {signal})"
        );
    }

    /// SIGKILL: no goodbye, as when the machine goes away.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
