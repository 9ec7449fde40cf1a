//! `wordcount`: word frequencies of a text.
//!
//! Input: UTF-8 text. Words are maximal runs of ASCII letters and digits, lowercased (any
//! other byte, including every byte of a non-ASCII character, separates words). Output: one
//! line per distinct word, `word<TAB>count\n`, sorted by count descending, then by word
//! ascending.

use std::collections::HashMap;

/// Counts the words of `input`; see the crate docs for the format.
pub fn run(input: &[u8]) -> Result<Vec<u8>, String> {
    let mut counts: HashMap<Vec<u8>, u64> = HashMap::new();
    for word in input
        .split(|b| !b.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        *counts.entry(word.to_ascii_lowercase()).or_insert(0) += 1;
    }
    let mut rows: Vec<(Vec<u8>, u64)> = counts.into_iter().collect();
    rows.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut out = Vec::with_capacity(rows.len() * 12);
    for (word, count) in rows {
        out.extend_from_slice(&word);
        out.push(b'\t');
        out.extend_from_slice(count.to_string().as_bytes());
        out.push(b'\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::run;

    fn wc(s: &str) -> String {
        String::from_utf8(run(s.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn counts_sorts_and_lowercases() {
        assert_eq!(wc("b a B c a b"), "b\t3\na\t2\nc\t1\n");
    }

    #[test]
    fn separators_are_everything_but_ascii_alphanumerics() {
        assert_eq!(
            wc("don't stop-2day, héllo"),
            "2day\t1\ndon\t1\nh\t1\nllo\t1\nstop\t1\nt\t1\n"
        );
    }

    #[test]
    fn empty_input_gives_empty_output() {
        assert_eq!(wc(""), "");
        assert_eq!(wc(" \n\t.,"), "");
    }
}
