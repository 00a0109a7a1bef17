//! The report as an A4 PDF: Chinese text in an embedded, subset CJK font (WenQuanYi Micro Hei or Noto Sans
//! CJK SC from Debian), 14 pt body, the AI label at the top of every page and as a watermark, findings in
//! the five-part frame with measurements in 毫米 and their basis, key images with the measurements burned
//! in, guideline results with "▲ 依据", the signature block, and the footer "生成时间 | 模型版本 | 硬件环境".

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use printpdf::{
    Color, FontId, Mm, Op, ParsedFont, PdfDocument, PdfFontHandle, PdfPage, PdfSaveOptions, Point, Pt, RawImage,
    RawImageData, RawImageFormat, Rgb, TextItem, TextMatrix, XObjectId, XObjectTransform,
};
use report::model::Report;

/// Where Debian puts the fonts we accept, in order of preference.
pub const FONT_CANDIDATES: [&str; 3] = [
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
];

/// The font file to embed: `explicit` if given, else the first Debian CJK font found. Missing → an error
/// that says what to install, never a PDF with empty boxes.
pub fn find_font(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        if path.is_file() {
            return Ok(path.to_path_buf());
        }
        bail!("报告字体不存在 / report font not found: {}", path.display());
    }
    FONT_CANDIDATES.iter().map(PathBuf::from).find(|p| p.is_file()).with_context(|| {
        format!(
            "未找到中文字体，请安装 fonts-wqy-microhei / no CJK font for PDF reports: install the Debian package \
             fonts-wqy-microhei (or fonts-noto-cjk), or set MEDGEMMA_X_REPORT_FONT; looked for {}",
            FONT_CANDIDATES.join(", ")
        )
    })
}

const PAGE_W: f32 = 210.0;
const PAGE_H: f32 = 297.0;
const MARGIN: f32 = 20.0;
const TOP: f32 = PAGE_H - 18.0;
const BOTTOM: f32 = 22.0;
const BODY_PT: f32 = 14.0;
const MM_PER_PT: f32 = 25.4 / 72.0;

const BLACK: (f32, f32, f32) = (0.0, 0.0, 0.0);
const GREY: (f32, f32, f32) = (0.45, 0.45, 0.45);
const RED: (f32, f32, f32) = (0.75, 0.1, 0.1);

/// One line of text at (x, y) millimetres from the page's lower left corner.
fn text_ops(font: &FontId, x: f32, y: f32, text: &str, size: f32, (r, g, b): (f32, f32, f32)) -> [Op; 6] {
    [
        Op::StartTextSection,
        Op::SetFont { font: PdfFontHandle::External(font.clone()), size: Pt(size) },
        Op::SetFillColor { col: Color::Rgb(Rgb::new(r, g, b, None)) },
        Op::SetTextCursor { pos: Point { x: Mm(x).into(), y: Mm(y).into() } },
        Op::ShowText { items: vec![TextItem::Text(text.to_string())] },
        Op::EndTextSection,
    ]
}

/// Lays text out top to bottom, starting new pages as needed.
/// A key image with its measurement burned in, and the caption printed under it.
pub struct KeyImage {
    pub caption: String,
    pub width: u32,
    pub height: u32,
    /// RGB, 8 bits, row-major.
    pub rgb: Vec<u8>,
}

/// Printed width of a key image, mm (two fit side by side would be too small to read).
const KEY_IMAGE_MM: f32 = 80.0;

struct Layout {
    font: FontId,
    pages: Vec<Vec<Op>>,
    y: f32,
}

impl Layout {
    fn new(font: FontId) -> Self {
        let mut layout = Self { font, pages: Vec::new(), y: 0.0 };
        layout.new_page();
        layout
    }

    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = TOP;
    }

    fn text_at(&mut self, x: f32, y: f32, text: &str, size: f32, color: (f32, f32, f32)) {
        let ops = text_ops(&self.font, x, y, text, size, color);
        self.pages.last_mut().expect("a page").extend(ops);
    }

    /// A paragraph, wrapped to the text width (CJK characters one em wide, ASCII about half).
    fn paragraph(&mut self, text: &str, size: f32, color: (f32, f32, f32), indent: f32) {
        let line_height = size * MM_PER_PT * 1.45;
        let max_width = PAGE_W - 2.0 * MARGIN - indent;
        let char_width = |c: char| if c.is_ascii() { 0.55 } else { 1.0 } * size * MM_PER_PT;
        // Numbers and Latin words ("2024-10-15", "PixelSpacing") are not broken inside.
        let in_word = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '-';
        for source_line in text.lines() {
            let mut line = String::new();
            let mut width = 0.0;
            for c in source_line.chars() {
                let w = char_width(c);
                // Closing punctuation never starts a line (Chinese line-breaking rules): it hangs instead.
                let hangs = "，。；：、）》」』！？,.;:)".contains(c);
                if width + w > max_width && !line.is_empty() && !hangs {
                    let word_start = if in_word(c) {
                        line.char_indices()
                            .rev()
                            .take_while(|(_, ch)| in_word(*ch))
                            .last()
                            .map_or(line.len(), |(i, _)| i)
                    } else {
                        line.len()
                    };
                    // A word as wide as the whole line is broken after all.
                    let carried = if word_start > 0 { line.split_off(word_start) } else { String::new() };
                    self.emit_line(&std::mem::take(&mut line), size, color, indent, line_height);
                    width = carried.chars().map(char_width).sum();
                    line = carried;
                }
                line.push(c);
                width += w;
            }
            self.emit_line(&line, size, color, indent, line_height);
        }
    }

    fn emit_line(&mut self, line: &str, size: f32, color: (f32, f32, f32), indent: f32, line_height: f32) {
        if self.y - line_height < BOTTOM {
            self.new_page();
        }
        self.y -= line_height;
        self.text_at(MARGIN + indent, self.y, line, size, color);
    }

    /// An image `width_mm` wide at the left margin, on a new page when it does not fit.
    fn image(&mut self, id: XObjectId, (w, h): (u32, u32), width_mm: f32) {
        let height_mm = width_mm * h as f32 / w as f32;
        if self.y - height_mm < BOTTOM {
            self.new_page();
        }
        self.y -= height_mm;
        // At this dpi the image's own size is `width_mm`.
        let dpi = w as f32 * 25.4 / width_mm;
        self.pages.last_mut().expect("a page").push(Op::UseXobject {
            id,
            transform: XObjectTransform {
                translate_x: Some(Mm(MARGIN).into()),
                translate_y: Some(Mm(self.y).into()),
                dpi: Some(dpi),
                ..Default::default()
            },
        });
        self.y -= 1.5;
    }

    fn heading(&mut self, text: &str) {
        self.y -= 3.0;
        self.paragraph(text, 16.0, BLACK, 0.0);
        self.y -= 1.0;
    }
}

pub fn render(report: &Report, font_path: &Path, key_images: &[KeyImage]) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(font_path).with_context(|| format!("cannot read font {}", font_path.display()))?;
    let font = ParsedFont::from_bytes(&bytes, 0, &mut Vec::new())
        .with_context(|| format!("字体文件损坏 / damaged font file {}", font_path.display()))?;
    let mut doc = PdfDocument::new(&format!("影像诊断报告 {}", report.exam_id));
    let font_id = doc.add_font(&font);
    let mut l = Layout::new(font_id.clone());

    l.paragraph("胸部影像诊断报告", 20.0, BLACK, 0.0);
    l.y -= 2.0;
    let mut identity = vec![format!("检查号：{}", report.exam_id)];
    if let Some(p) = &report.patient {
        identity.push(format!("患者ID：{}", p.id));
        if let Some(name) = &p.name {
            identity.push(format!("姓名：{name}"));
        }
        if let Some(sex) = &p.sex {
            identity.push(format!(
                "性别：{}",
                match sex.as_str() {
                    "M" => "男",
                    "F" => "女",
                    other => other,
                }
            ));
        }
        if let Some(birth) = &p.birth_date {
            identity.push(format!("出生日期：{}", report::display_date(birth)));
        }
    }
    if let Some(s) = &report.study {
        for (label, value) in [
            ("检查日期", s.study_date.as_deref().map(report::display_date)),
            ("检查项目", s.description.clone()),
            ("检查类型", s.modality.clone()),
            ("登记号", s.accession_number.clone()),
        ] {
            if let Some(v) = value {
                identity.push(format!("{label}：{v}"));
            }
        }
    }
    for row in identity.chunks(3) {
        l.paragraph(&row.join("    "), 12.0, BLACK, 0.0);
    }

    l.heading("影像所见");
    l.paragraph(&report.report_summary, BODY_PT, BLACK, 0.0);
    for (i, f) in report.findings.iter().enumerate() {
        let mut parts = vec![format!("{}. {}：{}", i + 1, f.location, f.feature)];
        if let Some(m) = &f.measurements {
            let mut size = format!("长径{}毫米", m.long_axis);
            if let Some(s) = m.short_axis {
                size.push_str(&format!("，短径{s}毫米"));
            }
            if let (Some(sl), Some(ss)) = (m.solid_long_axis, m.solid_short_axis) {
                size.push_str(&format!("，实性成分{sl}×{ss}毫米"));
            }
            parts.push(size);
        }
        for (label, value) in [
            ("形态", &f.morphology),
            ("密度", &f.density),
            ("边界", &f.boundary),
            ("邻近结构", &f.adjacent_structures),
            ("随访对比", &f.change),
        ] {
            if let Some(v) = value {
                parts.push(format!("{label}：{v}"));
            }
        }
        l.y -= 1.0;
        l.paragraph(&parts.join("；"), BODY_PT, BLACK, 0.0);
        if let Some(basis) = f.measurements.as_ref().and_then(|m| m.basis.as_ref()) {
            l.paragraph(&format!("测量依据：{basis}"), 11.0, GREY, 6.0);
        }
    }

    if !key_images.is_empty() {
        l.heading("关键图像");
        for k in key_images {
            let image = RawImage {
                pixels: RawImageData::U8(k.rgb.clone()),
                width: k.width as usize,
                height: k.height as usize,
                data_format: RawImageFormat::RGB8,
                tag: Vec::new(),
            };
            let id = doc.add_image(&image);
            l.image(id, (k.width, k.height), KEY_IMAGE_MM);
            l.paragraph(&k.caption, 11.0, GREY, 0.0);
        }
    }

    if !report.guideline_results.is_empty() {
        l.heading("指南分类");
        for g in &report.guideline_results {
            l.paragraph(&format!("{} {}：{}", g.guideline, g.category, g.management), BODY_PT, BLACK, 0.0);
            l.paragraph(&format!("▲ 依据：{}", g.basis), 12.0, GREY, 6.0);
        }
    }

    l.heading("建议");
    l.paragraph(if report.recommendation.is_empty() { "无" } else { &report.recommendation }, BODY_PT, BLACK, 0.0);

    l.heading("签名");
    let signer = |role: &str| report.signatures.iter().find(|s| s.role == role);
    for (role, label) in [("radiologist", "报告医师"), ("department_head", "审核医师")] {
        let line = match signer(role) {
            Some(s) => format!("{label}：{}    签名时间：{}", s.name, beijing_time(&s.signed_at)),
            None => format!("{label}：________________    日期：____________"),
        };
        l.paragraph(&line, BODY_PT, BLACK, 0.0);
    }

    // Every page: the AI label on top, a watermark across, the provenance footer and page numbers.
    let footer = match &report.ai {
        Some(ai) => format!(
            "生成时间：{} | 模型版本：{} {} | 硬件环境：{}",
            beijing_time(&ai.generated_at),
            ai.model_name,
            ai.model_version,
            ai.hardware
        ),
        None => "本报告未使用AI生成内容".to_string(),
    };
    let total = l.pages.len();
    let mut pages = Vec::with_capacity(total);
    for (i, body) in std::mem::take(&mut l.pages).into_iter().enumerate() {
        let mut ops = Vec::new();
        if report.ai.is_some() {
            ops.extend([
                Op::StartTextSection,
                Op::SetFont { font: PdfFontHandle::External(font_id.clone()), size: Pt(40.0) },
                Op::SetFillColor { col: Color::Rgb(Rgb::new(0.88, 0.88, 0.88, None)) },
                Op::SetTextMatrix { matrix: TextMatrix::TranslateRotate(Mm(45.0).into(), Mm(90.0).into(), 35.0) },
                Op::ShowText { items: vec![TextItem::Text("AI辅助分析 仅供参考".into())] },
                Op::EndTextSection,
            ]);
            ops.extend(text_ops(&font_id, MARGIN, PAGE_H - 10.0, report::AI_ADVISORY_LABEL, 11.0, RED));
        }
        ops.extend(body);
        ops.extend(text_ops(&font_id, MARGIN, 12.0, &format!("{footer}    第{}/{}页", i + 1, total), 9.0, GREY));
        pages.push(PdfPage::new(Mm(PAGE_W), Mm(PAGE_H), ops));
    }
    let options = PdfSaveOptions { optimize: true, subset_fonts: true, secure: true, image_optimization: None };
    Ok(doc.with_pages(pages).save(&options, &mut Vec::new()))
}

/// A timestamp as a reader of the printed report reads it: "2026-11-30 14:28（北京时间）" (China has one
/// time zone, UTC+8, and no summer time). A text that is not RFC 3339 is printed as it is.
fn beijing_time(rfc3339: &str) -> String {
    let Ok(t) = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339) else {
        return rfc3339.to_string();
    };
    let t = t.to_offset(time::UtcOffset::from_hms(8, 0, 0).expect("a valid offset"));
    format!("{:04}-{:02}-{:02} {:02}:{:02}（北京时间）", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute())
}

#[cfg(test)]
mod tests {
    #[test]
    fn server_timestamps_print_as_beijing_time_to_the_minute() {
        // What the server writes when a report is signed (UTC, nanoseconds), across midnight.
        assert_eq!(super::beijing_time("2026-11-30T16:28:24.261695385Z"), "2026-12-01 00:28（北京时间）");
        assert_eq!(super::beijing_time("2024-05-11T14:30:00+08:00"), "2024-05-11 14:30（北京时间）");
        assert_eq!(super::beijing_time("昨天"), "昨天");
    }
}
