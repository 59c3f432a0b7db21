//! Logging to the host. Inside a component, lines go to the host's log tagged with the
//! plugin's name; in native tests they are captured (see [`crate::testing::take_logs`])
//! and printed to stderr.

/// Log severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Very verbose.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal information.
    Info,
    /// Something odd.
    Warn,
    /// Something failed.
    Error,
}

/// Writes a log line at `level`.
pub fn log(level: Level, message: &str) {
    crate::__private::log(level, message);
}

/// Logs at debug level.
pub fn debug(message: &str) {
    log(Level::Debug, message);
}

/// Logs at info level.
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Logs at warn level.
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Logs at error level.
pub fn error(message: &str) {
    log(Level::Error, message);
}
