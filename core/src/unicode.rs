//! The code points msglog never shows raw, as fixed ranges.
//!
//! No Unicode tables: the firmware stays small and the rules do not change
//! with Unicode versions (PROTOCOL.md, decisions 1 and 7).

/// Whether a code point rewrites how text is displayed or split into
/// lines: records escape it and names refuse it.
///
/// C1 controls (U+009B CSI and U+009D OSC start terminal escape sequences,
/// U+0085 NEL ends a line), U+2028 LINE SEPARATOR and U+2029 PARAGRAPH
/// SEPARATOR (Unicode-aware line readers split there), and the bidi controls
/// (Unicode's Bidi_Control set: they reorder the text that follows).
pub(crate) const fn rewrites_display(code: u32) -> bool {
    matches!(
        code,
        0x0080..=0x009F // C1 controls
            | 0x061C // ARABIC LETTER MARK
            | 0x200E..=0x200F // LRM, RLM
            | 0x2028..=0x202E // LINE SEPARATOR, PARAGRAPH SEPARATOR, LRE, RLE, PDF, LRO, RLO
            | 0x2066..=0x2069 // LRI, RLI, FSI, PDI
    )
}

/// The first byte of the UTF-8 of every code point [`rewrites_display`]
/// matches (C2 80..C2 9F, D8 9C, E2 80 8E..E2 81 A9): text without these
/// bytes has none of them.
pub(crate) const REWRITES_DISPLAY_LEADS: [u8; 3] = [0xC2, 0xD8, 0xE2];

/// A code point a name refuses besides controls and brackets, so that a name
/// cannot look like another one or rewrite the line it is shown on: those
/// of [`rewrites_display`], invisible ones, private-use ones and
/// noncharacters.
pub(crate) const fn refused_in_names(c: char) -> bool {
    rewrites_display(c as u32) || default_ignorable(c) || private_use(c) || noncharacter(c)
}

/// Unicode's Default_Ignorable_Code_Point (unchanged since Unicode 14,
/// reserved ranges included), plus the interlinear annotation controls
/// U+FFF9..U+FFFB that hide text between them: code points shown as nothing.
const fn default_ignorable(c: char) -> bool {
    matches!(
        c as u32,
        0x00AD // SOFT HYPHEN
            | 0x034F // COMBINING GRAPHEME JOINER
            | 0x061C // ARABIC LETTER MARK
            | 0x115F..=0x1160 // HANGUL CHOSEONG and JUNGSEONG FILLER
            | 0x17B4..=0x17B5 // KHMER VOWEL INHERENT AQ, AA
            | 0x180B..=0x180F // MONGOLIAN FREE VARIATION SELECTORS, VOWEL SEPARATOR
            | 0x200B..=0x200F // ZWSP, ZWNJ, ZWJ, LRM, RLM
            | 0x202A..=0x202E // LRE, RLE, PDF, LRO, RLO
            | 0x2060..=0x206F // WORD JOINER, invisible operators, LRI..PDI, deprecated format characters
            | 0x3164 // HANGUL FILLER
            | 0xFE00..=0xFE0F // VARIATION SELECTORS 1-16
            | 0xFEFF // ZERO WIDTH NO-BREAK SPACE (BOM)
            | 0xFFA0 // HALFWIDTH HANGUL FILLER
            | 0xFFF0..=0xFFFB // reserved, interlinear annotation controls
            | 0x1BCA0..=0x1BCA3 // SHORTHAND FORMAT controls
            | 0x1D173..=0x1D17A // MUSICAL SYMBOL BEGIN/END controls
            | 0xE0000..=0xE0FFF // tag characters, VARIATION SELECTORS 17-256, reserved
    )
}

/// The private-use areas: U+E000..U+F8FF and planes 15 and 16.
const fn private_use(c: char) -> bool {
    matches!(c as u32, 0xE000..=0xF8FF | 0xF_0000..=0x10_FFFF)
}

/// The 66 noncharacters: U+FDD0..U+FDEF and the last two code points of every plane.
const fn noncharacter(c: char) -> bool {
    let code = c as u32;
    matches!(code, 0xFDD0..=0xFDEF) || code & 0xFFFE == 0xFFFE
}
