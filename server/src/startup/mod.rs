//! Start-up: the configuration from flags and environment, `serve` (which builds the application state
//! and runs the web server), the supervisor that restarts it, and the status checks the nurse runs.

pub mod config;
pub mod listener;
pub mod ops;
pub mod serve;
pub mod shutdown;
pub mod supervise;
