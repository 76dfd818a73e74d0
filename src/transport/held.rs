//! Bytes a connection keeps between two uses, in 8 B.

/// Bytes kept between two uses: nothing while there are none, else boxed (8 B inline, not a
/// `Vec`'s 24, in structures every connection holds). They are used in place
/// ([`HeldBytes::with`]) or taken out and kept again ([`HeldBytes::take`], [`HeldBytes::keep`]);
/// an empty buffer is not kept, nor its capacity, so a connection that waits with nothing
/// pending holds no buffer.
#[allow(clippy::box_collection)] // the box is the point: 8 B inline instead of 24
#[derive(Default)]
pub struct HeldBytes(Option<Box<Vec<u8>>>);

impl HeldBytes {
    pub fn new(bytes: Vec<u8>) -> HeldBytes {
        let mut held = HeldBytes(None);
        held.keep(bytes);
        held
    }

    /// The bytes kept, for use; nothing is kept meanwhile.
    pub fn take(&mut self) -> Vec<u8> {
        self.0.take().map_or_else(Vec::new, |bytes| *bytes)
    }

    /// Keeps `bytes` if there are any.
    pub fn keep(&mut self, bytes: Vec<u8>) {
        self.0 = (!bytes.is_empty()).then(|| Box::new(bytes));
    }

    /// Runs `f` on the bytes kept (a new `Vec` if none), keeping what it leaves.
    pub fn with<R>(&mut self, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        match &mut self.0 {
            Some(bytes) => {
                let result = f(bytes);
                if bytes.is_empty() {
                    self.0 = None;
                }
                result
            }
            None => {
                let mut bytes = Vec::new();
                let result = f(&mut bytes);
                self.keep(bytes);
                result
            }
        }
    }

    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |bytes| bytes.len())
    }
}

#[cfg(test)]
mod tests {
    use super::HeldBytes;

    #[test]
    fn only_bytes_are_kept() {
        let mut held = HeldBytes::new(Vec::with_capacity(4096));
        assert!(
            held.0.is_none(),
            "an empty buffer is not kept, nor its capacity"
        );
        held.keep(b"partial".to_vec());
        assert_eq!(held.len(), 7);
        assert_eq!(held.take(), b"partial");
        assert_eq!(held.len(), 0);
        assert!(held.take().is_empty());
    }

    #[test]
    fn bytes_used_in_place_stay_until_emptied() {
        let mut held = HeldBytes::default();
        held.with(|bytes| bytes.extend_from_slice(b"frame"));
        let kept = held.0.as_deref().map(|bytes| bytes.as_ptr());
        held.with(|bytes| bytes.drain(..2).count());
        assert_eq!(
            held.0.as_deref().map(|bytes| bytes.as_ptr()),
            kept,
            "the same buffer"
        );
        assert_eq!(held.take(), b"ame");
        held.with(|bytes| bytes.push(1));
        held.with(Vec::clear);
        assert!(held.0.is_none(), "emptied, it goes");
    }

    #[cfg(target_pointer_width = "64")]
    #[test]
    fn held_bytes_take_8_bytes() {
        assert_eq!(size_of::<HeldBytes>(), 8);
    }
}
