//! Which characters a name may hold: names (who triggered a run, a record's id, a filter) are
//! shown on every page and written to logs, so characters that are invisible or reorder the
//! text around them have no place in them.

/// A control character (NUL, a line break, an escape), or one of the invisible formatting
/// characters that hide or reorder text: bidirectional overrides and isolates (which make
/// `gnp.exe` read as `exe.png`), zero-width spaces and joiners, the soft hyphen and the byte
/// order mark.
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// The first hidden character of `text`, if any.
pub fn first_hidden(text: &str) -> Option<char> {
    text.chars().find(|&c| is_hidden(c))
}

/// How a hidden character is named in an error: `U+202E`.
pub fn code_point(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

/// Longest message, error or warning a job keeps, in characters.
pub const JOB_TEXT_CHARS: usize = 1000;

/// Text for a job's message, error or warnings: NUL (which Postgres cannot store) shown as the
/// replacement character, and cut at `max` characters with `…`.
pub fn job_text(text: String, max: usize) -> String {
    let mut text = if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text
    };
    if let Some((cut, _)) = text.char_indices().nth(max) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_text_of_any_script_passes_and_hidden_characters_do_not() {
        for ok in [
            "anna@example.com",
            "Zoë Müller",
            "山田太郎",
            "مرحبا",
            "token:nightly-erp",
        ] {
            assert_eq!(first_hidden(ok), None, "{ok}");
        }
        for bad in [
            "a\u{0}b",
            "line\nbreak",
            "\u{1b}[31m",
            "eve\u{202e}gnp.exe",
            "x\u{200b}y",
            "\u{feff}bom",
        ] {
            assert!(first_hidden(bad).is_some(), "{bad:?}");
        }
        assert_eq!(code_point('\u{202e}'), "U+202E");
    }

    #[test]
    fn job_text_has_no_nul_and_is_cut_with_an_ellipsis() {
        assert_eq!(job_text("a\0b".into(), 10), "a\u{FFFD}b");
        assert_eq!(job_text("ééééé".into(), 3), "ééé…");
        assert_eq!(job_text("short".into(), 5), "short");
    }
}
