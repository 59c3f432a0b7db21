//! Bounded, non-blocking reads of the files a policy set is made of. The lowest layer:
//! it knows nothing of Arbiter.

mod bounded_read;

pub use bounded_read::{FileReadError, read_regular_file, read_regular_text};
