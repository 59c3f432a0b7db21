//! The host clock as the model counts time: Unix milliseconds. A clock set before the
//! epoch reads as 0, so nothing counts as unexpired by accident of a far-future reading.

use std::time::{SystemTime, UNIX_EPOCH};

/// `time` in Unix milliseconds.
pub fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Now, in Unix milliseconds.
pub fn unix_ms_now() -> u64 {
    unix_ms(SystemTime::now())
}
