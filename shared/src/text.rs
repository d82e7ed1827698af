//! Request values echoed in messages and logs are cut short: a 100,000-character job name or an inline
//! `source` must not become a 100,000-character error message or log line.

use std::borrow::Cow;

/// The length of `value` as compact JSON, without building the text (0 if it does not serialise).
pub fn compact_json_len<T: serde::Serialize + ?Sized>(value: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => 0,
    }
}

/// Longest value echoed in a message or a log field, in characters.
pub const ECHO_CHARS: usize = 200;

/// `text` itself when at most `max_chars` characters, else its first `max_chars` characters, `…` and
/// how long it was.
pub fn excerpt(text: &str, max_chars: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max_chars) {
        None => Cow::Borrowed(text),
        Some((cut, _)) => Cow::Owned(format!(
            "{}… ({} characters)",
            &text[..cut],
            text.chars().count()
        )),
    }
}

/// [`excerpt`] at [`ECHO_CHARS`].
pub fn echo(text: &str) -> Cow<'_, str> {
    excerpt(text, ECHO_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_at_a_character_boundary() {
        assert_eq!(excerpt("short", 10), "short");
        assert_eq!(excerpt("ééééé", 2), "éé… (5 characters)");
        assert!(echo(&"x".repeat(100_000)).len() < ECHO_CHARS + 40);
    }
}
