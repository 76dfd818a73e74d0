//! Process facts from the OS: the open-files limit, CPU affinity, another
//! process's resident memory, CPU time and time waiting for a core, TCP state of a socket.

use std::os::fd::AsRawFd;

/// Raises the soft open-files limit to the hard one; returns the new soft limit.
pub fn raise_nofile_limit() -> std::io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit struct, which `lim` is.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: setrlimit reads one rlimit struct, which `lim` is.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(lim.rlim_cur)
}

/// VmRSS of `pid` in bytes, from /proc/PID/status.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vmrss(&status)
}

/// The `VmRSS:` line of a /proc status file, in bytes.
pub fn parse_vmrss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut parts = line["VmRSS:".len()..].split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => Some(value * 1024),
        Some(_) => None,
    }
}

/// What `--server-metrics` reads of ringmcp's Prometheus text exposition.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct ServerGauges {
    /// `ringmcp_shard_busy_seconds_total` summed over the shards: executor busy time.
    pub busy_seconds: Option<f64>,
    /// `ringmcp_heap_bytes{state="in_use"}`: the process's heap in use as glibc counts it.
    pub heap_in_use: Option<u64>,
}

/// Reads [`ServerGauges`] from a Prometheus text exposition.
pub fn parse_server_gauges(text: &str) -> ServerGauges {
    let busy: Vec<f64> = samples(text, "ringmcp_shard_busy_seconds_total")
        .filter_map(|(_, value)| value.parse().ok())
        .collect();
    ServerGauges {
        busy_seconds: (!busy.is_empty()).then(|| busy.iter().sum()),
        heap_in_use: samples(text, "ringmcp_heap_bytes")
            .find(|(labels, _)| *labels == "state=\"in_use\"")
            .and_then(|(_, value)| value.parse().ok()),
    }
}

/// The samples of metric `name`: (its labels without the braces, its value).
fn samples<'a>(text: &'a str, name: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
    text.lines().filter_map(move |line| {
        let rest = line.strip_prefix(name)?;
        // The name must end here: at the labels or at the value.
        let (labels, value) = match rest.strip_prefix('{') {
            Some(labelled) => labelled.split_once('}')?,
            None => ("", rest.strip_prefix(' ')?),
        };
        Some((labels, value.split_whitespace().next()?))
    })
}

/// User plus system CPU seconds of `pid` so far, from /proc/PID/stat.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_cpu(&stat)
}

/// utime + stime (fields 14 and 15) of a /proc stat line, in seconds.
pub fn parse_stat_cpu(stat: &str) -> Option<f64> {
    // The command name (field 2) may hold spaces and parentheses: fields restart after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3, so field n is fields[n - 3].
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as f64 } else { 100.0 };
    Some((utime + stime) as f64 / hz)
}

/// This process's user plus system CPU seconds.
pub fn own_cpu_seconds() -> f64 {
    cpu_seconds(std::process::id()).unwrap_or(0.0)
}

/// Seconds the threads of `pid` have spent runnable but not running so far: time other tasks
/// held their core. Summed over /proc/PID/task/*/schedstat (the scheduler's run-queue wait,
/// field 2, in nanoseconds); a thread that exits takes its share with it. None without
/// schedstat (a kernel without CONFIG_SCHED_INFO) or if the process is gone.
pub fn core_wait_seconds(pid: u32) -> Option<f64> {
    let mut waited_ns = 0u64;
    let mut threads = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        waited_ns += parse_schedstat_wait(&stat)?;
        threads += 1;
    }
    (threads > 0).then(|| waited_ns as f64 / 1e9)
}

/// The run-queue wait (second field, nanoseconds) of a /proc schedstat line.
pub fn parse_schedstat_wait(schedstat: &str) -> Option<u64> {
    schedstat.split_whitespace().nth(1)?.parse().ok()
}

/// TCP state of a socket (`TCP_ESTABLISHED` = 1, `TCP_CLOSE_WAIT` = 8, `TCP_CLOSE` = 7...).
pub fn tcp_state(socket: &impl AsRawFd) -> Option<u8> {
    let mut info = [0u8; 256];
    let mut len = info.len() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `info` and updates `len`.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    // struct tcp_info starts with `__u8 tcpi_state`.
    (rc == 0 && len >= 1).then_some(info[0])
}

/// The peer has closed its side (FIN received and not yet closed by us).
pub const TCP_CLOSE_WAIT: u8 = 8;
/// The connection is gone (reset).
pub const TCP_CLOSE: u8 = 7;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmrss_parsing() {
        let status = "Name:\tringmcp\nVmPeak:\t  100 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(parse_vmrss(status), Some(12345 * 1024));
        assert_eq!(parse_vmrss("Name: x\n"), None);
        assert_eq!(parse_vmrss("VmRSS: lots kB\n"), None);
    }

    #[test]
    fn busy_seconds_sum_over_shards_and_heap_is_the_in_use_sample() {
        let text = "# HELP ringmcp_shard_busy_seconds_total Time.\n\
                    # TYPE ringmcp_shard_busy_seconds_total counter\n\
                    ringmcp_shard_busy_seconds_total{shard=\"0\"} 1.5\n\
                    ringmcp_shard_busy_seconds_total{shard=\"1\"} 0.25\n\
                    ringmcp_shard_busy_seconds_totalx{shard=\"0\"} 100\n\
                    ringmcp_sessions{shard=\"0\"} 7\n\
                    ringmcp_heap_bytes{state=\"free\"} 700\n\
                    ringmcp_heap_bytes{state=\"in_use\"} 5000\n";
        let gauges = parse_server_gauges(text);
        assert_eq!(gauges.busy_seconds, Some(1.75));
        assert_eq!(gauges.heap_in_use, Some(5000));
        let busy = |text| parse_server_gauges(text).busy_seconds;
        assert_eq!(busy("ringmcp_shard_busy_seconds_total 3\n"), Some(3.0));
        assert_eq!(busy("ringmcp_sessions{shard=\"0\"} 7\n"), None);
        assert_eq!(
            busy("ringmcp_shard_busy_seconds_total{shard=\"0\"} x\n"),
            None
        );
        // A server without the heap gauge (or only its free sample) has no heap figure.
        let heap = |text| parse_server_gauges(text).heap_in_use;
        assert_eq!(heap("ringmcp_heap_bytes{state=\"free\"} 700\n"), None);
        assert_eq!(heap("ringmcp_heap_bytes{state=\"in_use\"} 1.5\n"), None);
        assert_eq!(heap(""), None);
    }

    #[test]
    fn stat_parsing_survives_odd_names() {
        // Field 2 with spaces and a ')' inside; utime 250, stime 50.
        let stat = "42 (we ird) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0";
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        assert_eq!(parse_stat_cpu(stat), Some(300.0 / hz));
        assert_eq!(parse_stat_cpu("garbage"), None);
    }

    #[test]
    fn schedstat_parsing() {
        assert_eq!(
            parse_schedstat_wait("83696129003 117534553762 52556\n"),
            Some(117534553762)
        );
        assert_eq!(parse_schedstat_wait("12"), None);
        assert_eq!(parse_schedstat_wait("1 x 3"), None);
    }

    #[test]
    fn own_process_is_visible() {
        assert!(rss_bytes(std::process::id()).is_some_and(|b| b > 0));
        assert!(core_wait_seconds(std::process::id()).is_some_and(|s| s >= 0.0));
    }
}
