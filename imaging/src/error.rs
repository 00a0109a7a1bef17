use std::fmt;

/// Why a file was refused or could not be read. Each variant has a stable code for integrators and a
/// message in Chinese and English for the radiologist; none carries patient data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImagingError {
    /// A size the file declares (or has) is over a limit.
    TooLarge { what: &'static str, value: u64, limit: u64 },
    /// Not a DICOM Part 10 file, JPEG, PNG or zip archive.
    UnknownFormat,
    /// The file ends before what it declares.
    Truncated(String),
    /// Sequences nested deeper than the limit.
    NestingTooDeep { limit: u32 },
    /// Structurally broken: the parser or decoder refused it.
    Corrupt(String),
    /// Valid but not supported (a transfer syntax or pixel layout we do not decode).
    Unsupported(String),
    /// A DICOM object without image pixels (a structured report, a presentation state...).
    NoPixels,
}

impl ImagingError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ImagingError::TooLarge { .. } => "too_large",
            ImagingError::UnknownFormat => "unknown_format",
            ImagingError::Truncated(_) => "truncated",
            ImagingError::NestingTooDeep { .. } => "nesting_too_deep",
            ImagingError::Corrupt(_) => "corrupt",
            ImagingError::Unsupported(_) => "unsupported",
            ImagingError::NoPixels => "no_pixels",
        }
    }

    pub fn message_zh(&self) -> String {
        match self {
            ImagingError::TooLarge { what, value, limit } => format!("文件过大：{what} 为 {value}，超过上限 {limit}"),
            ImagingError::UnknownFormat => "无法识别的文件格式（支持 DICOM、JPEG、PNG 及其 zip 压缩包）".into(),
            ImagingError::Truncated(d) => format!("文件不完整（被截断）：{d}"),
            ImagingError::NestingTooDeep { limit } => format!("DICOM 序列嵌套超过 {limit} 层"),
            ImagingError::Corrupt(d) => format!("文件已损坏：{d}"),
            ImagingError::Unsupported(d) => format!("暂不支持：{d}"),
            ImagingError::NoPixels => "该 DICOM 文件不含图像像素".into(),
        }
    }

    pub fn message_en(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for ImagingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImagingError::TooLarge { what, value, limit } => {
                write!(f, "too large: {what} is {value}, over the limit of {limit}")
            }
            ImagingError::UnknownFormat => {
                f.write_str("unknown file format (DICOM, JPEG, PNG and zip archives of them are accepted)")
            }
            ImagingError::Truncated(d) => write!(f, "truncated file: {d}"),
            ImagingError::NestingTooDeep { limit } => write!(f, "DICOM sequences nested deeper than {limit} levels"),
            ImagingError::Corrupt(d) => write!(f, "corrupt file: {d}"),
            ImagingError::Unsupported(d) => write!(f, "not supported: {d}"),
            ImagingError::NoPixels => f.write_str("the DICOM file has no image pixels"),
        }
    }
}

impl std::error::Error for ImagingError {}

/// Checks `value ≤ limit`.
pub(crate) fn within(what: &'static str, value: u64, limit: u64) -> Result<(), ImagingError> {
    if value > limit { Err(ImagingError::TooLarge { what, value, limit }) } else { Ok(()) }
}
