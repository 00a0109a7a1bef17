pub mod generate;
pub mod guideline;
pub mod serve;
pub mod version;
