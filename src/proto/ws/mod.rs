//! Sans-IO WebSocket (RFC 6455) codec: frame headers, masking, close frames,
//! message assembly and encoding. The HTTP upgrade lives elsewhere.

pub mod close;
pub mod decoder;
pub mod deflate;
pub mod encoder;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod mask;

pub use close::{CloseCode, CloseFrame};
pub use decoder::{Decoded, Decoder, Event, Role};
pub use deflate::{CompressPolicy, PerMessageDeflate};
pub use encoder::{encode_close, encode_frame};
pub use error::ProtocolError;
pub use frame::{FrameHeader, OpCode, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN};
pub use mask::{apply_mask, apply_mask_naive};
