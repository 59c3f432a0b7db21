//! Hot swap: the slot holding the active [`PolicySet`](crate::plugin::PolicySet) and the
//! reloads that replace it atomically ([`PolicySlot`]), what they report
//! ([`ReloadStatus`]), and, with the `watch` feature, the file watcher that triggers them.

mod reload;
mod slot;
#[cfg(feature = "watch")]
pub mod watcher;

pub use reload::{ReloadCount, ReloadReport, ReloadResult, ReloadStatus, ReloadTrigger};
pub use slot::{PolicySlot, ReloadObserver, Swapped};
#[cfg(feature = "watch")]
pub use watcher::{PolicyWatcher, WatchError};
