// ringmcp patch: a provided-buffer ring for multishot socket receives.
//
//! A ring of receive buffers the kernel picks from (`IORING_REGISTER_PBUF_RING`, Linux 5.19),
//! shared by every multishot receive of one io_uring. The kernel takes a buffer when data
//! arrives, names it in the completion (`IORING_CQE_F_BUFFER`, the buffer id in the upper 16
//! bits of the CQE flags), and the reactor copies the bytes out and gives the buffer back
//! while it consumes that completion, so buffers are out only between a completion's posting
//! and its consumption.
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
/// The buffer group id of the ring (one ring per io_uring).
pub(crate) const BUFFER_GROUP: u16 = 0;
/// `IORING_CQE_F_BUFFER`: the completion used a provided buffer.
pub(crate) const CQE_F_BUFFER: u32 = 1 << 0;
/// `IORING_CQE_F_MORE`: the request stays armed and will post more completions.
pub(crate) const CQE_F_MORE: u32 = 1 << 1;
/// `IORING_CQE_BUFFER_SHIFT`.
const CQE_BUFFER_SHIFT: u32 = 16;

/// Buffers in the ring (a power of two, at most 32768).
const ENTRIES: u16 = 256;
/// Bytes per buffer. A completion carries at most this much; a larger arrival takes several.
const BUFFER_BYTES: usize = 4096;

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
}

impl std::fmt::Debug for ProvidedBuffers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProvidedBuffers")
            .field("tail", &self.tail)
            .finish()
    }
}

impl ProvidedBuffers {
    fn ring_layout() -> Layout {
        Layout::from_size_align(ENTRIES as usize * std::mem::size_of::<RingEntry>(), 4096).unwrap()
    }

    fn buffers_layout() -> Layout {
        Layout::from_size_align(ENTRIES as usize * BUFFER_BYTES, 4096).unwrap()
    }

    /// Registers a ring with the io_uring `ring_fd`, full of buffers; `None` when the kernel
    /// cannot do multishot receives into it (before Linux 6.0, `IORING_RECV_MULTISHOT`).
    pub(crate) fn register(ring_fd: RawFd) -> Option<ProvidedBuffers> {
        if !kernel_at_least(6, 0) {
            return None;
        }
        // SAFETY: both layouts have a non-zero size.
        let (ring, buffers) = unsafe {
            (
                alloc_zeroed(Self::ring_layout()) as *mut RingEntry,
                alloc_zeroed(Self::buffers_layout()),
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
            for page in (0..Self::buffers_layout().size()).step_by(4096) {
                std::ptr::write_volatile(buffers.add(page), 0);
            }
        }
        let mut provided = ProvidedBuffers {
            ring,
            buffers,
            tail: 0,
        };
        for bid in 0..ENTRIES {
            provided.put(bid);
        }
        provided.publish();
        let registration = Registration {
            ring_addr: ring as u64,
            ring_entries: ENTRIES as u32,
            bgid: BUFFER_GROUP,
            flags: 0,
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

    /// The bytes the kernel put into the buffer a completion with `cqe_flags` names, and its
    /// id; `None` when the completion used no buffer.
    pub(crate) fn filled(&self, cqe_flags: u32, len: usize) -> Option<(&[u8], u16)> {
        if cqe_flags & CQE_F_BUFFER == 0 {
            return None;
        }
        let bid = (cqe_flags >> CQE_BUFFER_SHIFT) as u16;
        assert!(bid < ENTRIES && len <= BUFFER_BYTES, "bad provided buffer");
        // SAFETY: bid is in range; the kernel wrote `len` bytes there and does not touch the
        // buffer again until it is given back with `recycle`.
        let bytes =
            unsafe { std::slice::from_raw_parts(self.buffers.add(bid as usize * BUFFER_BYTES), len) };
        Some((bytes, bid))
    }

    /// Gives buffer `bid` back to the kernel.
    pub(crate) fn recycle(&mut self, bid: u16) {
        self.put(bid);
        self.publish();
    }

    fn put(&mut self, bid: u16) {
        let slot = (self.tail & (ENTRIES - 1)) as usize;
        // SAFETY: slot < ENTRIES; the kernel reads entries only between its head and the
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

impl Drop for ProvidedBuffers {
    fn drop(&mut self) {
        // The owning ring is declared before this in `SleepableRing`, so the io_uring is
        // closed (and the registration gone) before the memory is freed.
        // SAFETY: both were allocated in `register` with these layouts.
        unsafe {
            dealloc(self.ring as *mut u8, Self::ring_layout());
            dealloc(self.buffers, Self::buffers_layout());
        }
    }
}

/// Whether the running kernel's release is at least `major.minor`.
fn kernel_at_least(major: u32, minor: u32) -> bool {
    // SAFETY: uname fills the zeroed struct; its release is a NUL-terminated string.
    let release = unsafe {
        let mut uts: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut uts) != 0 {
            return false;
        }
        std::ffi::CStr::from_ptr(uts.release.as_ptr())
            .to_string_lossy()
            .into_owned()
    };
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    found >= (major, minor)
}
