pub mod generate;
pub mod serve;
pub mod version;
