// ringmcp patch: a provided-buffer ring for multishot socket receives.
//
//! A ring of receive buffers the kernel picks from (`IORING_REGISTER_PBUF_RING`), shared by
//! every multishot receive of one io_uring, consumed incrementally (`IOU_PBUF_RING_INC`,
//! Linux 6.12): an arrival takes only the bytes it needs from the current buffer, so one
//! buffer holds the small messages of many connections. The completion names the buffer
//! (`IORING_CQE_F_BUFFER`, its id in the upper 16 bits of the CQE flags) and says whether the
//! kernel goes on filling it (`IORING_CQE_F_BUF_MORE`); the reactor copies the bytes out
//! while it consumes the completion, keeps each buffer's read offset, and gives a buffer back
//! once the kernel is done with it.
//!
//! Without incremental consumption every small message would take a whole buffer: at 15,000
//! connections and 50,000 messages/s a ring of 256 buffers ran dry in a third of the arrivals
//! (`ENOBUFS`, each a re-arm and a turn of delay, p99 up to 2 s). Kernels before 6.12 refuse
//! the flag; kernels before 6.17 cannot cap what one multishot receive takes
//! (`MULTISHOT_LIMIT_BYTES`). On either the sockets keep the readiness path.
//!
//! Layout (include/uapi/linux/io_uring.h): the ring is an array of `struct io_uring_buf
//! { __u64 addr; __u32 len; __u16 bid; __u16 resv; }`, and the tail the application advances
//! overlays the `resv` field of the first entry.

use std::{
    alloc::{alloc_zeroed, dealloc, Layout},
    io,
    os::unix::io::RawFd,
    sync::atomic::{AtomicU16, Ordering},
};

/// `IORING_REGISTER_PBUF_RING`.
const REGISTER_PBUF_RING: libc::c_uint = 22;
/// `IOU_PBUF_RING_INC`: buffers are consumed incrementally (Linux 6.12).
const PBUF_RING_INC: u16 = 2;
/// `IORING_CQE_F_BUF_MORE`: the kernel goes on filling the buffer this completion used.
const CQE_F_BUF_MORE: u32 = 1 << 4;
/// The buffer group id of the ring (one ring per io_uring).
pub(crate) const BUFFER_GROUP: u16 = 0;
/// `IORING_CQE_F_BUFFER`: the completion used a provided buffer.
pub(crate) const CQE_F_BUFFER: u32 = 1 << 0;
/// `IORING_CQE_F_MORE`: the request stays armed and will post more completions.
pub(crate) const CQE_F_MORE: u32 = 1 << 1;
/// `IORING_CQE_F_SOCK_NONEMPTY`: the socket still held bytes after this receive.
pub(crate) const CQE_F_SOCK_NONEMPTY: u32 = 1 << 2;
/// `IORING_CQE_BUFFER_SHIFT`.
const CQE_BUFFER_SHIFT: u32 = 16;

/// Bytes per buffer. A completion carries at most what is left of one.
const BUFFER_BYTES: usize = 32 * 1024;

#[repr(C)]
struct RingEntry {
    addr: u64,
    len: u32,
    bid: u16,
    resv: u16,
}

#[repr(C)]
struct Registration {
    ring_addr: u64,
    ring_entries: u32,
    bgid: u16,
    flags: u16,
    resv: [u64; 3],
}

pub(crate) struct ProvidedBuffers {
    ring: *mut RingEntry,
    buffers: *mut u8,
    tail: u16,
    /// Per buffer, the bytes the kernel filled so far (where the next completion's are).
    filled: Box<[u32]>,
    /// Multishot receives the kernel ended because the ring had no buffer left (`ENOBUFS`).
    shortages: u64,
}

impl std::fmt::Debug for ProvidedBuffers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProvidedBuffers")
            .field("tail", &self.tail)
            .finish()
    }
}

impl ProvidedBuffers {
    /// Counts a multishot receive ended for want of a buffer (its reader arms it again).
    pub(crate) fn count_shortage(&mut self) {
        self.shortages += 1;
    }

    /// Multishot receives ended for want of a buffer so far.
    pub(crate) fn shortages(&self) -> u64 {
        self.shortages
    }

    /// Buffers in the ring (a power of two, at most 32768).
    fn entries(&self) -> u16 {
        self.filled.len() as u16
    }

    fn ring_layout(entries: u16) -> Layout {
        Layout::from_size_align(entries as usize * std::mem::size_of::<RingEntry>(), 4096).unwrap()
    }

    fn buffers_layout(entries: u16) -> Layout {
        Layout::from_size_align(entries as usize * BUFFER_BYTES, 4096).unwrap()
    }

    /// Registers a ring of `entries` buffers (a power of two, at most 32768) with the
    /// io_uring `ring_fd`, full of buffers; `None` when the kernel
    /// cannot consume it incrementally (before Linux 6.12; multishot receives need 6.0) or
    /// cannot cap what one multishot receive takes (before 6.17).
    pub(crate) fn register(ring_fd: RawFd, entries: u16) -> Option<ProvidedBuffers> {
        // The cap (`MULTISHOT_LIMIT_BYTES`) has no probe: a kernel without it fails the
        // receive itself with EINVAL (it took `optlen` for a file index), so ask the release.
        if !kernel_release_at_least(6, 17) {
            log::warn!("no multishot receives before Linux 6.17; sockets use readiness polls");
            return None;
        }
        // SAFETY: both layouts have a non-zero size.
        let (ring, buffers) = unsafe {
            (
                alloc_zeroed(Self::ring_layout(entries)) as *mut RingEntry,
                alloc_zeroed(Self::buffers_layout(entries)),
            )
        };
        if ring.is_null() || buffers.is_null() {
            return None;
        }
        // The buffers are touched now (alloc_zeroed may map fresh zero pages lazily), so they
        // are a fixed cost of the ring from its start rather than memory that appears later
        // with the first connections.
        // SAFETY: `buffers` is a live allocation of exactly this many bytes.
        unsafe {
            for page in (0..Self::buffers_layout(entries).size()).step_by(4096) {
                std::ptr::write_volatile(buffers.add(page), 0);
            }
        }
        let mut provided = ProvidedBuffers {
            ring,
            buffers,
            tail: 0,
            filled: vec![0; entries as usize].into_boxed_slice(),
            shortages: 0,
        };
        for bid in 0..entries {
            provided.put(bid);
        }
        provided.publish();
        let registration = Registration {
            ring_addr: ring as u64,
            ring_entries: entries as u32,
            bgid: BUFFER_GROUP,
            flags: PBUF_RING_INC,
            resv: [0; 3],
        };
        // SAFETY: the registration struct lives across the call; the ring it names stays
        // allocated until `self` drops, after the io_uring that uses it (see `Drop`).
        let rc = unsafe {
            libc::syscall(
                libc::SYS_io_uring_register,
                ring_fd,
                REGISTER_PBUF_RING,
                &registration as *const Registration,
                1,
            )
        };
        if rc < 0 {
            log::warn!(
                "no provided-buffer ring: {}; sockets use readiness polls",
                io::Error::last_os_error()
            );
            return None;
        }
        Some(provided)
    }

    /// Hands `take` the `len` bytes a completion with `cqe_flags` received (nothing when it
    /// used no buffer), then gives the buffer back if the kernel is done with it.
    pub(crate) fn take(&mut self, cqe_flags: u32, len: usize, take: impl FnOnce(&[u8])) {
        if cqe_flags & CQE_F_BUFFER == 0 {
            return;
        }
        let bid = (cqe_flags >> CQE_BUFFER_SHIFT) as u16;
        let at = self.filled[bid as usize] as usize;
        assert!(bid < self.entries() && at + len <= BUFFER_BYTES, "bad provided buffer");
        // SAFETY: in range (checked); the kernel wrote these bytes before posting the
        // completion and writes only past them until the buffer is given back.
        take(unsafe {
            std::slice::from_raw_parts(self.buffers.add(bid as usize * BUFFER_BYTES + at), len)
        });
        if cqe_flags & CQE_F_BUF_MORE != 0 {
            self.filled[bid as usize] += len as u32;
        } else {
            self.filled[bid as usize] = 0;
            self.put(bid);
            self.publish();
        }
    }

    fn put(&mut self, bid: u16) {
        let slot = (self.tail & (self.entries() - 1)) as usize;
        // SAFETY: slot < entries; the kernel reads entries only between its head and the
        // published tail, and this one is past the tail until `publish`.
        unsafe {
            let entry = self.ring.add(slot);
            (*entry).addr = self.buffers.add(bid as usize * BUFFER_BYTES) as u64;
            (*entry).len = BUFFER_BYTES as u32;
            (*entry).bid = bid;
        }
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: the tail is the `resv` field of entry 0 (offset 14), a u16 the kernel reads
        // concurrently; the release store orders the entries' writes before it.
        unsafe {
            let tail = (self.ring as *mut u8).add(14) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }
}

/// Whether the running kernel's release (`uname -r`, "6.18.44-...") is at least
/// `major.minor`.
fn kernel_release_at_least(major: u32, minor: u32) -> bool {
    // SAFETY: `uname` fills the zeroed struct, whose `release` it ends with a NUL.
    let release = unsafe {
        let mut name: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut name) != 0 {
            return false;
        }
        std::ffi::CStr::from_ptr(name.release.as_ptr())
            .to_string_lossy()
            .into_owned()
    };
    let mut numbers = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let found = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
    found >= (major, minor)
}

impl Drop for ProvidedBuffers {
    fn drop(&mut self) {
        // The owning ring is declared before this in `SleepableRing`, so the io_uring is
        // closed (and the registration gone) before the memory is freed.
        // SAFETY: both were allocated in `register` with these layouts.
        unsafe {
            dealloc(self.ring as *mut u8, Self::ring_layout(self.entries()));
            dealloc(self.buffers, Self::buffers_layout(self.entries()));
        }
    }
}
