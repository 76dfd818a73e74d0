//! `ringmcp-load`: the bundled load generator (scenarios arrive with the load-generator issue).

fn main() {
    eprintln!("ringmcp-load: no scenarios are built yet; see the README's Benchmarks section");
    std::process::exit(2);
}
