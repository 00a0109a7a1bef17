//! What the product does, without HTTP: reports and their workflow, questions to the model, the upload
//! ingest, stored images, exports, accounts and permissions, the audit trail, deliveries to the HIS,
//! backups and the security self-check. Functions here take the pool or the parts of the state they
//! need and return their own errors; the web layer maps those to responses.

pub mod ask;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod chat;
pub mod deliveries;
pub mod dicom;
pub mod dicom_query;
mod error;
pub mod exports;
pub mod images;
pub mod inference;
pub mod ingest;
pub mod instances;
pub mod key_images;
pub mod measurements;
pub mod metrics;
pub mod model;
pub mod pacs_query;
pub mod pdf;
pub mod pre_read;
pub mod reports;
pub mod security_report;
pub mod templates;
pub mod triage;

pub use error::DomainError;
