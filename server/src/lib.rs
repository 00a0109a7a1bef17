//! The MedGemma-X server. `main.rs` only parses the command line; everything it runs lives here.

pub mod api;
pub mod backup;
pub mod chat;
pub mod config;
pub mod data_dir;
pub mod db;
pub mod error;
pub mod files;
pub mod http;
pub mod images;
pub mod inference;
pub mod ingest;
pub mod logging;
pub mod maintenance;
pub mod metrics;
pub mod model;
pub mod objects;
pub mod ops;
pub mod pdf;
pub mod runfile;
pub mod sd_notify;
pub mod serve;
pub mod shutdown;
pub mod supervise;
