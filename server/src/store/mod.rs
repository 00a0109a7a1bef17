//! Storage: the database pool and its migrations, the content-addressed object store, and the queries
//! the rest of the server runs, behind functions that name what they return. SQL lives here and only
//! here (besides the domain modules that own their tables' transactions: reports, audit, accounts,
//! deliveries).

pub mod chat;
pub mod db;
pub mod dicom_peers;
pub mod measurements;
pub mod objects;
pub mod studies;
pub mod templates;
pub mod triage;
