//! Task-store calls from async handlers.
//!
//! The task store is synchronous with a deadline (see [`crate::task::TaskStore`]); the
//! Redis store blocks on the network for up to that deadline. Decisions already run on
//! blocking threads; the handlers that read or change task state directly (approvals,
//! ending a task, the console, the gateway's tool-list preview) call the store through
//! [`blocking`], so that a slow or dead Redis holds up those requests, never the async
//! workers every other request needs.

/// Runs `store_call` so that blocking in it does not stall the runtime's other tasks:
/// on a multi-threaded runtime the worker hands its tasks over first
/// (`block_in_place`); elsewhere (a single-threaded test runtime, no runtime) it just
/// runs.
pub fn blocking<T>(store_call: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(store_call)
        }
        _ => store_call(),
    }
}
