//! Prewarmed instances: fresh, never-used plugin instances made ahead of time on a
//! background thread, so the first action of a task (and every action under `decision`
//! isolation) does not wait for instantiation.
//!
//! # Why this keeps the isolation guarantee
//!
//! A spare instance has run only its instantiation and `validate` with the plugin's own
//! settings (which lets plugins built with the SDK parse their settings before any action
//! arrives). It has seen no action, no task and no history, so handing it to any task is
//! the same as creating it on demand.
//!
//! # What it costs
//!
//! The work is the same as instantiating on demand; it moves off the request path. With
//! an idle core, the first decision of a task costs about what a reused instance costs.
//! On a saturated host the thread competes for the same CPU, so throughput does not
//! improve (see BENCHMARKS.md). Spares hold memory: `prewarm` instances per plugin,
//! counted against the plugin's `idle_memory_mib` (see [`crate::runtime::instance_pool`]).
//!
//! # Mechanism
//!
//! A decision that takes a spare asks the prewarmer to refill its policy set; requests are
//! coalesced per set and carry only a weak reference, so a set replaced by a reload is
//! never kept alive (or refilled) for the prewarmer's sake. The thread stops when its
//! [`Prewarmer`] is dropped.

use crate::plugin::LoadError;
use crate::plugin::PolicySet;
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Weak};

/// Handle to the background thread that refills policy sets' spare instances.
#[derive(Debug)]
pub struct Prewarmer {
    requests: Sender<Weak<PolicySet>>,
}

impl Prewarmer {
    /// Starts the background thread.
    pub fn start() -> Result<Self, LoadError> {
        let (requests, queue) = channel::<Weak<PolicySet>>();
        std::thread::Builder::new()
            .name("arbiter-prewarm".to_owned())
            .spawn(move || {
                // Ends when every sender (the `Prewarmer`) is gone.
                while let Ok(set) = queue.recv() {
                    let Some(set) = set.upgrade() else { continue };
                    // Release the claim first: spares taken while refilling queue
                    // another round rather than being missed.
                    set.release_refill();
                    for plugin in set.plugins() {
                        plugin.refill_spares();
                    }
                }
            })
            .map_err(|e| LoadError::Engine(format!("cannot start the prewarm thread: {e}")))?;
        Ok(Self { requests })
    }

    /// Asks for `set`'s spare instances to be refilled, unless a request for it is
    /// already queued. Never blocks.
    pub fn request(&self, set: &Arc<PolicySet>) {
        if set.claim_refill() && self.requests.send(Arc::downgrade(set)).is_err() {
            // The thread is gone (it only exits when this handle is dropped, so this
            // cannot happen while `self` exists); decisions instantiate on demand.
            set.release_refill();
        }
    }
}
