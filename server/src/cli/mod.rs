pub mod backup;
pub mod dicom;
pub mod generate;
pub mod guideline;
pub mod ops;
pub mod report;
pub mod serve;
pub mod version;
