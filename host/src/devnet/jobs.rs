//! The devnet's jobs, built from the example tasks, with the outputs a local run gives
//! (so "correct" is checked, not assumed), and what is made of their outputs: the merged
//! word counts and the stitched Mandelbrot image.

use super::DevnetError;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Tasks per job by default. 4 jobs of 64 tasks: a few hundred small tasks, a few
/// seconds of compute on two cores, and enough results that a cheater is sampled.
pub const TASKS_PER_JOB: usize = 64;

/// The text the wordcount jobs count (public domain; see `examples/corpus/README.md`).
pub const CORPUS: &str = include_str!("../../../examples/corpus/shakespeare.txt");

/// The Mandelbrot image: the region and the size of one tile.
const MANDEL_REGION: (f64, f64, f64, f64) = (-2.2, -1.2, 1.0, 1.2);
const MANDEL_TILE: (u32, u32) = (48, 32);
const MANDEL_ITER: u32 = 256;

/// The example a job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Word counts of the corpus, one chunk per task.
    Wordcount,
    /// Tiles of one Mandelbrot image.
    Mandelbrot,
    /// Prime counts up to various N.
    Primes,
    /// Iterated sha256 of various strings.
    Sha256Chain,
}

impl JobKind {
    /// The order jobs cycle through.
    pub const CYCLE: [JobKind; 4] = [
        JobKind::Wordcount,
        JobKind::Mandelbrot,
        JobKind::Primes,
        JobKind::Sha256Chain,
    ];

    /// The example's package name (see `smartnodes_examples::module`).
    pub fn example(self) -> &'static str {
        match self {
            JobKind::Wordcount => "wordcount",
            JobKind::Mandelbrot => "mandelbrot",
            JobKind::Primes => "primes",
            JobKind::Sha256Chain => "sha256-chain",
        }
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.example())
    }
}

/// One job to submit.
#[derive(Debug, Clone)]
pub struct DevnetJob {
    /// Its number in the run (0-based).
    pub number: usize,
    /// Which example.
    pub kind: JobKind,
    /// The module.
    pub module: &'static [u8],
    /// One input per task.
    pub inputs: Vec<Vec<u8>>,
    /// The output of each task, computed locally (the example's native build, the same
    /// library code the module is compiled from).
    pub expected: Vec<Vec<u8>>,
    /// For Mandelbrot: the grid (columns, rows).
    grid: (usize, usize),
}

impl DevnetJob {
    /// A short label: `#2 primes`.
    pub fn label(&self) -> String {
        format!("#{} {}", self.number, self.kind)
    }
}

/// The `number`th job: kinds cycle through [`JobKind::CYCLE`]; about `tasks` tasks (a
/// Mandelbrot job uses the largest grid that fits). CPU work: call it off the async threads.
pub fn build(number: usize, tasks: usize) -> Result<DevnetJob, DevnetError> {
    let kind = JobKind::CYCLE[number % JobKind::CYCLE.len()];
    let round = number / JobKind::CYCLE.len();
    let tasks = tasks.max(1);
    let mut grid = (0, 0);
    let inputs: Vec<Vec<u8>> = match kind {
        JobKind::Wordcount => split_corpus(CORPUS.as_bytes(), tasks),
        JobKind::Mandelbrot => {
            let cols = (tasks as f64).sqrt().floor().max(1.0) as usize;
            let rows = (tasks / cols).max(1);
            grid = (cols, rows);
            mandelbrot_tiles(cols, rows)
        }
        JobKind::Primes => (0..tasks)
            .map(|i| format!("{}", 20_000 + 1_000 * i + 97 * round).into_bytes())
            .collect(),
        JobKind::Sha256Chain => (0..tasks)
            .map(|i| format!("2000\nsmartnodes devnet job {number} task {i}").into_bytes())
            .collect(),
    };
    let module = smartnodes_examples::module(kind.example())
        .ok_or_else(|| DevnetError::Invalid(format!("no example named {kind}")))?;
    let expected = inputs
        .iter()
        .enumerate()
        .map(
            |(i, input)| match smartnodes_examples::native(kind.example(), input) {
                Some(Ok(out)) => Ok(out),
                Some(Err(e)) => Err(DevnetError::Invalid(format!(
                    "{kind} task {i} fails locally: {e}"
                ))),
                None => Err(DevnetError::Invalid(format!("no example named {kind}"))),
            },
        )
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DevnetJob {
        number,
        kind,
        module,
        inputs,
        expected,
        grid,
    })
}

/// Splits `text` into `n` chunks of about equal size, cutting only between words (at a
/// byte that is not ASCII alphanumeric), so the chunks' word counts add up to the whole's.
pub fn split_corpus(text: &[u8], n: usize) -> Vec<Vec<u8>> {
    let target = text.len().div_ceil(n.max(1)).max(1);
    let mut chunks = Vec::with_capacity(n);
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + target).min(text.len());
        while end < text.len() && text[end].is_ascii_alphanumeric() {
            end += 1;
        }
        chunks.push(text[start..end].to_vec());
        start = end;
    }
    chunks
}

fn mandelbrot_tiles(cols: usize, rows: usize) -> Vec<Vec<u8>> {
    let (x0, y0, x1, y1) = MANDEL_REGION;
    let (w, h) = MANDEL_TILE;
    let mut tiles = Vec::with_capacity(cols * rows);
    for r in 0..rows {
        for c in 0..cols {
            let tx0 = x0 + (x1 - x0) * c as f64 / cols as f64;
            let tx1 = x0 + (x1 - x0) * (c + 1) as f64 / cols as f64;
            let ty0 = y0 + (y1 - y0) * r as f64 / rows as f64;
            let ty1 = y0 + (y1 - y0) * (r + 1) as f64 / rows as f64;
            tiles.push(format!("{w} {h} {MANDEL_ITER} {tx0} {ty0} {tx1} {ty1}").into_bytes());
        }
    }
    tiles
}

/// Adds `word<TAB>count` lines to `counts`.
fn add_counts(counts: &mut HashMap<String, u64>, output: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(output).map_err(|_| "a word count is not UTF-8")?;
    for line in text.lines() {
        let (word, n) = line
            .split_once('\t')
            .ok_or_else(|| format!("a word count line without a tab: {line:?}"))?;
        let n: u64 = n
            .parse()
            .map_err(|_| format!("a word count that is not a number: {line:?}"))?;
        *counts.entry(word.to_string()).or_default() += n;
    }
    Ok(())
}

/// Merges wordcount outputs into one, in wordcount's order (count descending, then word).
pub fn merge_wordcounts(outputs: &[Vec<u8>]) -> Result<Vec<u8>, String> {
    let mut counts = HashMap::new();
    for o in outputs {
        add_counts(&mut counts, o)?;
    }
    let mut sorted: Vec<_> = counts.into_iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut out = Vec::new();
    for (word, n) in sorted {
        out.extend_from_slice(format!("{word}\t{n}\n").as_bytes());
    }
    Ok(out)
}

/// Stitches PGM tiles (row-major, `cols` per row, all of one size) into one PGM.
pub fn stitch_pgm(tiles: &[Vec<u8>], cols: usize) -> Result<Vec<u8>, String> {
    let parsed = tiles
        .iter()
        .map(|t| parse_pgm(t))
        .collect::<Result<Vec<_>, _>>()?;
    let Some(&(w, h, _)) = parsed.first() else {
        return Err("no tile".into());
    };
    if parsed.iter().any(|&(tw, th, _)| (tw, th) != (w, h)) {
        return Err("tiles of different sizes".into());
    }
    if cols == 0 || !parsed.len().is_multiple_of(cols) {
        return Err(format!("{} tiles do not fill rows of {cols}", parsed.len()));
    }
    let rows = parsed.len() / cols;
    let (width, height) = (w * cols, h * rows);
    let mut out = format!("P5\n{width} {height}\n255\n").into_bytes();
    for r in 0..rows {
        for y in 0..h {
            for c in 0..cols {
                let pixels = parsed[r * cols + c].2;
                out.extend_from_slice(&pixels[y * w..(y + 1) * w]);
            }
        }
    }
    Ok(out)
}

/// `(width, height, pixels)` of a binary PGM as mandelbrot writes it.
fn parse_pgm(data: &[u8]) -> Result<(usize, usize, &[u8]), String> {
    let mut fields = Vec::new();
    let mut pos = 0;
    while fields.len() < 4 {
        while pos < data.len() && data[pos].is_ascii_whitespace() {
            pos += 1;
        }
        let start = pos;
        while pos < data.len() && !data[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if start == pos {
            return Err("a truncated PGM header".into());
        }
        fields.push(std::str::from_utf8(&data[start..pos]).map_err(|_| "a bad PGM header")?);
    }
    pos += 1; // the single whitespace after maxval
    let num = |s: &str| {
        s.parse::<usize>()
            .map_err(|_| format!("a bad PGM field {s:?}"))
    };
    if fields[0] != "P5" || num(fields[3])? != 255 {
        return Err("not a binary 8-bit PGM".into());
    }
    let (w, h) = (num(fields[1])?, num(fields[2])?);
    let pixels = data.get(pos..).unwrap_or_default();
    if pixels.len() != w * h {
        return Err(format!("a {w}x{h} PGM with {} pixel bytes", pixels.len()));
    }
    Ok((w, h, pixels))
}

/// A file made of a job's outputs.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// Where it was written.
    pub path: PathBuf,
    /// Whether it equals what the local run gives.
    pub correct: bool,
    /// What was compared.
    pub detail: String,
}

/// Makes the job's combined result (merged counts, stitched image) from the network's
/// `outputs`, checks it against the same made from the local outputs, and writes it to
/// `dir`. `None` for jobs that have no combined result.
pub fn combine(
    job: &DevnetJob,
    outputs: &[Vec<u8>],
    dir: &Path,
) -> Result<Option<Artifact>, DevnetError> {
    let suffix = if job.number < JobKind::CYCLE.len() {
        String::new()
    } else {
        format!("-{}", job.number)
    };
    let (path, result, detail) = match job.kind {
        JobKind::Wordcount => {
            let merged = merge_wordcounts(outputs);
            // The reference: the whole corpus counted locally in one go.
            let whole = smartnodes_examples::native("wordcount", CORPUS.as_bytes())
                .ok_or_else(|| DevnetError::Invalid("no wordcount example".into()))?
                .map_err(DevnetError::Invalid)?;
            let correct = merged.as_ref().is_ok_and(|m| *m == whole);
            (
                dir.join(format!("wordcount{suffix}.txt")),
                merged.map(|m| (m, correct)),
                "merged counts equal a local count of the whole corpus",
            )
        }
        JobKind::Mandelbrot => {
            let stitched = stitch_pgm(outputs, job.grid.0);
            let local = stitch_pgm(&job.expected, job.grid.0).map_err(DevnetError::Invalid)?;
            let correct = stitched.as_ref().is_ok_and(|s| *s == local);
            (
                dir.join(format!("mandelbrot{suffix}.pgm")),
                stitched.map(|s| (s, correct)),
                "stitched image equals the stitched local renders of the tiles",
            )
        }
        JobKind::Primes | JobKind::Sha256Chain => return Ok(None),
    };
    let (bytes, correct, detail) = match result {
        Ok((bytes, correct)) => (bytes, correct, detail.to_string()),
        Err(e) => (Vec::new(), false, e),
    };
    std::fs::write(&path, &bytes).map_err(|source| DevnetError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(Some(Artifact {
        path,
        correct,
        detail,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corpus_chunks_count_like_the_whole() {
        let chunks = split_corpus(CORPUS.as_bytes(), TASKS_PER_JOB);
        assert!(chunks.len() <= TASKS_PER_JOB && chunks.len() >= TASKS_PER_JOB - 2);
        assert_eq!(chunks.concat(), CORPUS.as_bytes());
        let outputs: Vec<_> = chunks
            .iter()
            .map(|c| {
                smartnodes_examples::native("wordcount", c)
                    .unwrap()
                    .unwrap()
            })
            .collect();
        assert_eq!(
            merge_wordcounts(&outputs).unwrap(),
            smartnodes_examples::native("wordcount", CORPUS.as_bytes())
                .unwrap()
                .unwrap()
        );
    }

    #[test]
    fn stitching_places_tiles() {
        let tile = |v: u8| {
            let mut t = b"P5\n2 1\n255\n".to_vec();
            t.extend_from_slice(&[v, v]);
            t
        };
        let image = stitch_pgm(&[tile(1), tile(2), tile(3), tile(4)], 2).unwrap();
        assert_eq!(image, b"P5\n4 2\n255\n\x01\x01\x02\x02\x03\x03\x04\x04");
        assert!(stitch_pgm(&[tile(1), tile(2), tile(3)], 2).is_err());
        assert!(stitch_pgm(&[b"P6\n1 1\n255\n\0".to_vec()], 1).is_err());
    }

    #[test]
    fn jobs_cycle_and_expect_local_outputs() {
        let kinds: Vec<_> = (0..5).map(|n| build(n, 9).unwrap().kind).collect();
        assert_eq!(kinds[0], JobKind::Wordcount);
        assert_eq!(kinds[4], JobKind::Wordcount);
        let m = build(1, 10).unwrap();
        assert_eq!(m.grid, (3, 3));
        assert_eq!(m.inputs.len(), 9);
        let dir = tempfile::tempdir().unwrap();
        let art = combine(&m, &m.expected, dir.path()).unwrap().unwrap();
        assert!(art.correct);
        let mut wrong = m.expected.clone();
        let last = wrong[4].len() - 1;
        wrong[4][last] ^= 1;
        assert!(!combine(&m, &wrong, dir.path()).unwrap().unwrap().correct);
    }
}
