//! A structural pass over a DICOM Part 10 file before the real parser sees it.
//!
//! dicom-object reads nested sequences recursively and trusts declared lengths; this pass, iterative and
//! allocation-free, makes sure that every declared length fits in what encloses it (truncation), and that
//! sequences do not nest deeper than the limit (stack exhaustion), and inflates a deflated data set only up
//! to a limit (deflate bombs). Only files that pass reach the parser.
//!
//! It also notes where the top-level pixel data lies, so uncompressed, RLE and JPEG pixels are decoded
//! straight from the file's bytes without the parser copying them first.

use std::io::Read;
use std::ops::Range;

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;

use crate::error::{ImagingError, within};
use crate::limits::Limits;

pub const IMPLICIT_VR_LE: &str = "1.2.840.10008.1.2";
pub const EXPLICIT_VR_BE: &str = "1.2.840.10008.1.2.2";
pub const DEFLATED_EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1.99";

/// What the pass learned.
#[derive(Debug)]
pub struct Layout {
    /// Offset of the "DICM" magic: 128 with a preamble, 0 without.
    pub magic_offset: usize,
    /// Where the data set (after the file meta group) begins in the file.
    pub dataset_start: usize,
    pub transfer_syntax: String,
    /// The meta says explicit VR little endian but the data set is implicit (some writers get this wrong;
    /// pydicom and DCMTK read such files, so do we).
    pub implicit_despite_meta: bool,
    /// A deflated data set, inflated (once, under the limit): the parser and the pixel decoder read this
    /// instead of the file's body.
    pub inflated: Option<Vec<u8>>,
    /// The top-level Pixel Data (7FE0,0010): in the file's bytes, or in `inflated` when there is one.
    pub pixel_data: Option<PixelData>,
    /// Where the data set ends (in the file, or in `inflated`): trailing zero padding is not parsed.
    pub dataset_end: usize,
}

/// What a walk over a data set found.
struct Walked {
    pixel_data: Option<PixelData>,
    end: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub enum PixelData {
    /// Uncompressed samples; `vr_ow` matters for big endian files (samples swapped as 16-bit words).
    /// `element_start` is where the element's header begins (the parser stops there).
    Native { element_start: usize, bytes: Range<usize>, big_endian: bool, vr_ow: bool },
    /// Encapsulated: the Basic Offset Table item and each fragment's value (PS3.5 A.4).
    Encapsulated { element_start: usize, offset_table: Range<usize>, fragments: Vec<Range<usize>> },
}

impl PixelData {
    /// Where the Pixel Data element's header begins: the parser stops there when we decode the pixels.
    pub fn element_start(&self) -> usize {
        match self {
            PixelData::Native { element_start, .. } | PixelData::Encapsulated { element_start, .. } => *element_start,
        }
    }
}

pub fn scan(bytes: &[u8], limits: &Limits) -> Result<Layout, ImagingError> {
    let magic_offset = if bytes.get(128..132) == Some(b"DICM") {
        128
    } else if bytes.get(0..4) == Some(b"DICM") {
        0
    } else {
        return Err(ImagingError::UnknownFormat);
    };
    let mut meta = Cursor { bytes, pos: magic_offset + 4, little_endian: true, explicit: true };
    let mut transfer_syntax = None;
    // The file meta group: explicit VR little endian, group 0002 only.
    while meta.pos + 4 <= bytes.len() && meta.peek_group() == Some(0x0002) {
        let header = meta.element_header()?;
        let len = header.len.ok_or_else(|| ImagingError::Corrupt("undefined length in the file meta group".into()))?;
        let value = meta.take(len, "file meta element")?;
        if header.tag == Tag(0x0002, 0x0010) {
            let uid = String::from_utf8_lossy(value).trim_end_matches(['\0', ' ']).to_string();
            transfer_syntax = Some(uid);
        }
    }
    let transfer_syntax = transfer_syntax
        .ok_or_else(|| ImagingError::Corrupt("no Transfer Syntax UID (0002,0010) in the file meta".into()))?;
    let body = &bytes[meta.pos..];
    // Explicit VR puts two upper-case letters after the first tag; anything else is implicit VR.
    let implicit_despite_meta = transfer_syntax != IMPLICIT_VR_LE
        && transfer_syntax != EXPLICIT_VR_BE
        && transfer_syntax != DEFLATED_EXPLICIT_VR_LE
        && body.get(4..6).is_some_and(|vr| !vr.iter().all(u8::is_ascii_uppercase));
    let mut inflated = None;
    let walked = match transfer_syntax.as_str() {
        _ if implicit_despite_meta => walk(body, meta.pos, true, false, limits)?,
        IMPLICIT_VR_LE => walk(body, meta.pos, true, false, limits)?,
        EXPLICIT_VR_BE => walk(body, meta.pos, false, true, limits)?,
        DEFLATED_EXPLICIT_VR_LE => walk(inflated.insert(inflate(body, limits)?), 0, true, true, limits)?,
        _ => walk(body, meta.pos, true, true, limits)?,
    };
    Ok(Layout {
        magic_offset,
        dataset_start: meta.pos,
        transfer_syntax,
        implicit_despite_meta,
        inflated,
        pixel_data: walked.pixel_data,
        dataset_end: walked.end,
    })
}

/// Raw deflate (RFC 1951), as PS3.5 A.5 specifies, stopped at the decoded-size limit.
pub fn inflate(body: &[u8], limits: &Limits) -> Result<Vec<u8>, ImagingError> {
    let mut out = Vec::new();
    let cap = limits.max_decoded_bytes.min(limits.max_file_bytes.saturating_mul(limits.max_zip_ratio));
    flate2::read::DeflateDecoder::new(body)
        .take(cap + 1)
        .read_to_end(&mut out)
        .map_err(|e| ImagingError::Corrupt(format!("deflated data set: {e}")))?;
    within("inflated data set bytes", out.len() as u64, cap)?;
    Ok(out)
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    little_endian: bool,
    explicit: bool,
}

struct Header {
    tag: Tag,
    vr: Option<VR>,
    /// None: undefined length (0xFFFFFFFF).
    len: Option<usize>,
}

const ITEM: Tag = Tag(0xFFFE, 0xE000);
const ITEM_END: Tag = Tag(0xFFFE, 0xE00D);
const SEQUENCE_END: Tag = Tag(0xFFFE, 0xE0DD);
const PIXEL_DATA: Tag = Tag(0x7FE0, 0x0010);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ImagingError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.bytes.len()).ok_or_else(|| {
            ImagingError::Truncated(format!(
                "{what} at byte {} declares {n} bytes, {} remain",
                self.pos,
                self.bytes.len() - self.pos
            ))
        })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u16(&mut self) -> Result<u16, ImagingError> {
        let b: [u8; 2] = self.take(2, "element header")?.try_into().unwrap();
        Ok(if self.little_endian { u16::from_le_bytes(b) } else { u16::from_be_bytes(b) })
    }

    fn u32(&mut self) -> Result<u32, ImagingError> {
        let b: [u8; 4] = self.take(4, "element header")?.try_into().unwrap();
        Ok(if self.little_endian { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) })
    }

    fn peek_group(&self) -> Option<u16> {
        let b = self.bytes.get(self.pos..self.pos + 2)?;
        Some(if self.little_endian { u16::from_le_bytes([b[0], b[1]]) } else { u16::from_be_bytes([b[0], b[1]]) })
    }

    fn element_header(&mut self) -> Result<Header, ImagingError> {
        let tag = Tag(self.u16()?, self.u16()?);
        let len = |raw: u32| if raw == u32::MAX { None } else { Some(raw as usize) };
        // Item and delimitation tags have no VR in any encoding (PS3.5 7.5).
        if tag.group() == 0xFFFE || !self.explicit {
            return Ok(Header { tag, vr: None, len: len(self.u32()?) });
        }
        let vr_bytes: [u8; 2] = self.take(2, "element header")?.try_into().unwrap();
        let vr = VR::from_binary(vr_bytes);
        // PS3.5 Table 7.1-1: these VRs have two reserved bytes and a 32-bit length; unknown VRs are read
        // the same way, as the standard asks of future VRs.
        let long = vr.is_none_or(|vr| {
            matches!(
                vr,
                VR::OB
                    | VR::OD
                    | VR::OF
                    | VR::OL
                    | VR::OV
                    | VR::OW
                    | VR::SQ
                    | VR::UC
                    | VR::UN
                    | VR::UR
                    | VR::UT
                    | VR::SV
                    | VR::UV
            )
        });
        let len = if long {
            self.take(2, "element header")?;
            len(self.u32()?)
        } else {
            Some(usize::from(self.u16()?))
        };
        Ok(Header { tag, vr, len })
    }
}

/// What the walk is inside of.
enum Container {
    /// A sequence; `end` for a defined length.
    Sequence { end: Option<usize> },
    /// An item of a sequence.
    Item { end: Option<usize> },
    /// Encapsulated pixel data: items are compressed fragments, not data sets; counts the items read.
    Fragments { items: usize },
}

/// Walks the data set in `body` (which starts at `base` in the file).
fn walk(
    body: &[u8],
    base: usize,
    little_endian: bool,
    explicit: bool,
    limits: &Limits,
) -> Result<Walked, ImagingError> {
    let mut c = Cursor { bytes: body, pos: 0, little_endian, explicit };
    let mut stack: Vec<Container> = Vec::new();
    let dict = StandardDataDictionary;
    let mut pixel_data = None;
    let absolute = |r: Range<usize>| r.start + base..r.end + base;
    // Where trailing zero padding begins (found once: checking "only zeros left?" at every element is
    // quadratic on a file of zeros with one byte at the end — the fuzzer found that).
    let padding_start = body.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    let mut elements = 0u64;
    loop {
        // Close every defined-length container that ends here.
        while let Some(Container::Sequence { end: Some(end) } | Container::Item { end: Some(end) }) = stack.last() {
            if c.pos < *end {
                break;
            }
            stack.pop();
        }
        if c.pos == body.len() {
            return if stack.is_empty() {
                Ok(Walked { pixel_data, end: base + c.pos })
            } else {
                Err(ImagingError::Truncated(format!(
                    "the file ends inside {} open sequence(s) or item(s)",
                    stack.len()
                )))
            };
        }
        // Trailing padding (some writers pad with zeros to an even block) is not an element.
        if stack.is_empty() && c.pos >= padding_start {
            return Ok(Walked { pixel_data, end: base + c.pos });
        }
        elements += 1;
        within("data elements", elements, limits.max_elements)?;
        let element_start = c.pos;
        let header = c.element_header()?;
        let limit_of = |stack: &[Container]| match stack.last() {
            Some(Container::Sequence { end: Some(e) } | Container::Item { end: Some(e) }) => *e,
            _ => body.len(),
        };
        let fits =
            |len: usize, pos: usize, stack: &[Container]| pos.checked_add(len).is_some_and(|e| e <= limit_of(stack));
        match header.tag {
            ITEM => match (stack.last(), header.len) {
                (Some(Container::Fragments { items }), Some(len)) => {
                    let first = *items == 0;
                    let start = c.pos;
                    c.take(len, "pixel data fragment")?;
                    if let Some(Container::Fragments { items }) = stack.last_mut() {
                        *items += 1;
                    }
                    if stack.len() == 1
                        && let Some(PixelData::Encapsulated { offset_table, fragments, .. }) = &mut pixel_data
                    {
                        // The first item is the Basic Offset Table (perhaps empty), the others fragments.
                        if first {
                            *offset_table = absolute(start..c.pos);
                        } else {
                            fragments.push(absolute(start..c.pos));
                        }
                    }
                }
                (Some(Container::Sequence { .. }), len) => {
                    if let Some(len) = len
                        && !fits(len, c.pos, &stack)
                    {
                        return Err(ImagingError::Truncated(format!("item at byte {} declares {len} bytes", c.pos)));
                    }
                    stack.push(Container::Item { end: len.map(|l| c.pos + l) });
                }
                _ => return Err(ImagingError::Corrupt(format!("unexpected item at byte {}", c.pos))),
            },
            ITEM_END => match stack.pop() {
                Some(Container::Item { end: None }) => {}
                _ => return Err(ImagingError::Corrupt(format!("unexpected item delimiter at byte {}", c.pos))),
            },
            SEQUENCE_END => match stack.pop() {
                Some(Container::Sequence { end: None } | Container::Fragments { .. }) => {}
                _ => return Err(ImagingError::Corrupt(format!("unexpected sequence delimiter at byte {}", c.pos))),
            },
            tag => {
                let is_sequence = header.vr == Some(VR::SQ)
                    || (header.vr.is_none() && dict.by_tag(tag).is_some_and(|e| e.vr().relaxed() == VR::SQ));
                match header.len {
                    None if tag == PIXEL_DATA => {
                        if stack.is_empty() {
                            pixel_data = Some(PixelData::Encapsulated {
                                element_start: element_start + base,
                                offset_table: 0..0,
                                fragments: Vec::new(),
                            });
                        }
                        stack.push(Container::Fragments { items: 0 });
                    }
                    // PS3.5 6.2.2: an undefined-length UN element holds a sequence in implicit VR. dicom-object
                    // 0.10 reads it as explicit VR and trusts the lengths it then misreads (a 3.7 GB
                    // allocation on pydicom's UN_sequence.dcm), so such files are refused here.
                    None if header.vr == Some(VR::UN) => {
                        return Err(ImagingError::Unsupported(format!(
                            "private element ({:04X},{:04X}) of unknown type and undefined length (UN, PS3.5 6.2.2)",
                            tag.group(),
                            tag.element()
                        )));
                    }
                    // Any other undefined-length element that is not pixel data is a sequence.
                    None => stack.push(Container::Sequence { end: None }),
                    Some(len) if !fits(len, c.pos, &stack) => {
                        return Err(ImagingError::Truncated(format!(
                            "element ({:04X},{:04X}) at byte {} declares {len} bytes",
                            tag.group(),
                            tag.element(),
                            c.pos
                        )));
                    }
                    Some(len) if is_sequence => stack.push(Container::Sequence { end: Some(c.pos + len) }),
                    Some(len) => {
                        let start = c.pos;
                        c.take(len, "element value")?;
                        if tag == PIXEL_DATA && stack.is_empty() {
                            pixel_data = Some(PixelData::Native {
                                element_start: element_start + base,
                                bytes: absolute(start..c.pos),
                                big_endian: !little_endian,
                                vr_ow: header.vr.is_none_or(|vr| vr == VR::OW),
                            });
                        }
                    }
                }
                let depth = stack.iter().filter(|s| matches!(s, Container::Sequence { .. })).count() as u32;
                if depth > limits.max_sequence_depth {
                    return Err(ImagingError::NestingTooDeep { limit: limits.max_sequence_depth });
                }
            }
        }
    }
}
