-- Report templates and phrases: a report's summary, findings (five-part frame, as report::model::Finding
-- JSON) and recommendation, inserted into a report with one action or a short code. A site template is the
-- department's (edited by a department head); a personal one is its owner's. A phrase is a template with
-- only some of the fields: inserting appends to what the report holds.
CREATE TABLE report_templates (
    id             INTEGER PRIMARY KEY,
    -- site | personal
    scope          TEXT NOT NULL,
    -- The owner of a personal template (a username, as reports' authors are kept); '' for a site template.
    owner          TEXT NOT NULL,
    -- What the radiologist types to insert it: 1 to 8 lower-case letters or digits.
    code           TEXT NOT NULL,
    name           TEXT NOT NULL,
    report_summary TEXT NOT NULL,
    -- JSON array of report::model::Finding.
    findings       TEXT NOT NULL,
    recommendation TEXT NOT NULL,
    updated_by     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    -- A personal template's code may repeat a site one's: the personal one is found first.
    UNIQUE (scope, owner, code)
);

-- The department's starting set; a department head edits or removes them like any other.
INSERT INTO report_templates
    (scope, owner, code, name, report_summary, findings, recommendation, updated_by, updated_at)
VALUES
    ('site', '', 'zc', '正常胸片',
     '两肺纹理清晰，走行自然，肺野内未见明确实变及结节影。两侧肺门不大，纵隔居中，心影大小、形态未见异常。两侧膈面光整，肋膈角锐利。所见骨性胸廓未见明显异常。',
     '[]', '胸部未见明显异常。', 'system', '2026-12-07T00:00:00Z'),
    ('site', '', 'fy', '肺炎',
     '肺内见斑片状模糊影，边缘不清，考虑炎性病变。',
     '[{"location":"","feature":"斑片状模糊影","morphology":"斑片状","density":"磨玻璃及实变密度","boundary":"边缘模糊","adjacent_structures":"邻近胸膜未见明显增厚"}]',
     '结合临床，抗感染治疗后复查。', 'system', '2026-12-07T00:00:00Z'),
    ('site', '', 'jj', '肺结节随访',
     '肺内见结节影，请见所见项的测量。',
     '[{"location":"","feature":"结节","morphology":"类圆形","density":"实性","boundary":"边界清楚","adjacent_structures":"未见胸膜牵拉"}]',
     '按 Fleischner 2017 / Lung-RADS v2022 建议随访。', 'system', '2026-12-07T00:00:00Z'),
    ('site', '', 'xj', '心影增大',
     '心影增大，心胸比约0.55。',
     '[]', '建议心脏超声检查。', 'system', '2026-12-07T00:00:00Z');
