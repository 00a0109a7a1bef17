//! What every layer may use and that uses nothing of the server: the clock, atomic file writes, the
//! data dir's layout, pseudonyms, the run file, systemd notifications, logging, the maintenance
//! log and the GPU probe.

pub mod clock;
pub mod data_dir;
pub mod dimse;
pub mod dimse_client;
pub mod files;
pub mod gpu;
pub mod logging;
pub mod maintenance;
pub mod pseudonym;
pub mod runfile;
pub mod sd_notify;
