//! What every example does after building its registry: serve it on the address given with
//! `--bind` (as to the `ringmcp` binary; else 127.0.0.1:8080) and say where on the first
//! line of its output.

use ringmcp::{Registry, Server, ServerError};
use std::net::SocketAddr;

/// Serves `registry` until the process is stopped (SIGTERM or Ctrl-C).
pub fn serve(registry: Registry) -> Result<(), ServerError> {
    let server = Server::new(registry).bind(bind_address()).start()?;
    println!(
        "MCP on http://{0}/mcp and ws://{0}/mcp",
        server.local_addr()
    );
    server.join()
}

fn bind_address() -> SocketAddr {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => ([127, 0, 0, 1], 8080).into(),
        [flag, addr] if flag == "--bind" => addr.parse().unwrap_or_else(|e| {
            eprintln!("--bind {addr:?}: not an address like 127.0.0.1:8080: {e}");
            std::process::exit(2)
        }),
        _ => {
            eprintln!(
                "usage: {} [--bind 127.0.0.1:8080]",
                env!("CARGO_CRATE_NAME")
            );
            std::process::exit(2)
        }
    }
}
