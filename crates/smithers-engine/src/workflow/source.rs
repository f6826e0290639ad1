//! A file's text with its line starts, to turn byte spans into the line and
//! column of a diagnostic.

use std::ops::Range;

use smithers_policy::{Diagnostic, Severity};

pub(super) struct Source<'t> {
    pub file: String,
    pub text: &'t str,
    line_starts: Vec<usize>,
}

impl<'t> Source<'t> {
    pub fn new(file: impl Into<String>, text: &'t str) -> Source<'t> {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(at, _)| at + 1))
            .collect();
        Source {
            file: file.into(),
            text,
            line_starts,
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn position(&self, offset: usize) -> (u32, u32) {
        let offset = offset.min(self.text.len());
        let line = self
            .line_starts
            .partition_point(|&start| start <= offset)
            .saturating_sub(1);
        let start = self.line_starts.get(line).copied().unwrap_or(0);
        let column = self
            .text
            .get(start..offset)
            .map_or(0, |prefix| prefix.chars().count());
        (
            u32::try_from(line + 1).unwrap_or(u32::MAX),
            u32::try_from(column + 1).unwrap_or(u32::MAX),
        )
    }

    pub fn line_of(&self, offset: usize) -> u32 {
        self.position(offset).0
    }

    pub fn error(&self, span: &Range<usize>, message: impl Into<String>) -> Diagnostic {
        let (line, column) = self.position(span.start);
        let source_line = self
            .text
            .lines()
            .nth((line as usize).saturating_sub(1))
            .unwrap_or_default()
            .to_string();
        Diagnostic {
            severity: Severity::Error,
            file: self.file.clone(),
            line,
            column,
            message: message.into(),
            source_line,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters() {
        let source = Source::new("f", "ab\né x\n\nlast");
        assert_eq!(source.position(0), (1, 1));
        assert_eq!(source.position(1), (1, 2));
        assert_eq!(source.position(3), (2, 1));
        // `é` is two bytes, one column.
        assert_eq!(source.position(6), (2, 3));
        assert_eq!(source.position(8), (3, 1));
        assert_eq!(source.position(9), (4, 1));
        assert_eq!(source.position(1000), (4, 5));
        let d = source.error(&(6..7), "here");
        assert_eq!((d.line, d.column, d.source_line.as_str()), (2, 3, "é x"));
    }
}
