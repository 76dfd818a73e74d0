//! The `ringmcp` server binary: the built-in fixture set, served through the public API.

mod fixtures;

use clap::Parser;
use ringmcp::{Config, Server};
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let config = Config::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    // Block the signals before any shard thread exists, so every thread inherits the mask and
    // only the signal thread below ever receives them.
    let echo_spin = match echo_spin() {
        Ok(spin) => spin,
        Err(e) => {
            eprintln!("ringmcp: {e}");
            return ExitCode::FAILURE;
        }
    };
    let signals = Signals::block();
    let registry = fixtures::builtin(echo_spin).build();
    let handle = match Server::with_config(config.clone(), registry).start() {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("ringmcp: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "ringmcp listening on {} with {} shard(s){}",
        handle.local_addr(),
        config.shard_count(),
        if config.echo { ", /echo enabled" } else { "" }
    );
    if config.tls_cert.is_some() {
        eprintln!("ringmcp: TLS on (https:// and wss://); SIGHUP reloads the certificate and key");
    }
    let stopper = handle.stopper();
    let reloader = handle.tls_reloader();
    std::thread::Builder::new()
        .name("ringmcp-signals".into())
        .spawn(move || {
            let mut stopping = false;
            loop {
                match signals.wait() {
                    libc::SIGHUP => match reloader.reload() {
                        Ok(true) => eprintln!("ringmcp: TLS certificate and key reloaded"),
                        Ok(false) => eprintln!("ringmcp: SIGHUP: no TLS configured, nothing to reload"),
                        Err(e) => eprintln!("ringmcp: TLS reload failed, still serving the previous certificate: {e}"),
                    },
                    _ if stopping => std::process::exit(130),
                    _ => {
                        eprintln!("ringmcp: stopping (a second signal exits at once)");
                        stopper.stop();
                        stopping = true;
                    }
                }
            }
        })
        .ok();
    match handle.join() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringmcp: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The environment variable that slows the `echo` fixture down, for the test of
/// scripts/regress.sh (scripts/regress_check.sh): a server that must be flagged as slower.
const ECHO_SPIN_VAR: &str = "RINGMCP_TEST_ECHO_SPIN_US";

/// Microseconds `echo` busy-waits per call: `RINGMCP_TEST_ECHO_SPIN_US`, none when unset.
fn echo_spin() -> Result<Duration, String> {
    let Some(value) = std::env::var_os(ECHO_SPIN_VAR) else {
        return Ok(Duration::ZERO);
    };
    let micros = value
        .to_str()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|us| *us <= 1_000_000)
        .ok_or_else(|| format!("{ECHO_SPIN_VAR} must be a whole number of microseconds up to 1000000, not {value:?}"))?;
    eprintln!("ringmcp: the echo tool busy-waits {micros} µs per call ({ECHO_SPIN_VAR}: a deliberately slowed server, for tests only)");
    Ok(Duration::from_micros(micros))
}

/// SIGTERM and SIGINT (stop) and SIGHUP (reload TLS), blocked for normal delivery and taken
/// with `sigwait`.
struct Signals(libc::sigset_t);

impl Signals {
    fn block() -> Self {
        // SAFETY: sigset_t is plain data that sigemptyset initialises; pthread_sigmask only
        // changes this thread's mask (inherited by threads spawned afterwards).
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::sigaddset(&mut set, libc::SIGHUP);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            Signals(set)
        }
    }

    /// The next signal of the set.
    fn wait(&self) -> libc::c_int {
        let mut signal = 0;
        // SAFETY: the set was initialised in `block`; sigwait writes one int.
        unsafe { libc::sigwait(&self.0, &mut signal) };
        signal
    }
}
