//! The `ringmcp` server binary: the built-in fixture set, served through the public API.

mod fixtures;

use clap::Parser;
use ringmcp::{Config, Server};
use std::process::ExitCode;

fn main() -> ExitCode {
    let config = Config::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    // Block the stop signals before any shard thread exists, so every thread inherits the mask
    // and only the signal thread below ever receives them.
    let signals = StopSignals::block();
    let handle = match Server::with_config(config.clone(), fixtures::builtin().build()).start() {
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
    let stopper = handle.stopper();
    std::thread::Builder::new()
        .name("ringmcp-signals".into())
        .spawn(move || {
            signals.wait();
            eprintln!("ringmcp: stopping (a second signal exits at once)");
            stopper.stop();
            signals.wait();
            std::process::exit(130);
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

/// SIGTERM and SIGINT, blocked for normal delivery and taken with `sigwait`.
struct StopSignals(libc::sigset_t);

impl StopSignals {
    fn block() -> Self {
        // SAFETY: sigset_t is plain data that sigemptyset initialises; pthread_sigmask only
        // changes this thread's mask (inherited by threads spawned afterwards).
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            StopSignals(set)
        }
    }

    fn wait(&self) {
        let mut signal = 0;
        // SAFETY: the set was initialised in `block`; sigwait writes one int.
        unsafe { libc::sigwait(&self.0, &mut signal) };
    }
}
