//! `mandelbrot`: a tile of the Mandelbrot set as a binary PGM.
//!
//! Input: ASCII `width height max_iter x0 y0 x1 y1`, whitespace-separated (integers for
//! the first three, decimal floats for the rest). For each pixel row `py`, then column
//! `px`: `cx = x0 + (x1 - x0) * px / width`, `cy = y0 + (y1 - y0) * py / height` (f64,
//! left to right), `zx = zy = 0`, and for `i` in `0..max_iter`: stop if
//! `zx*zx + zy*zy > 4.0`, else `t = zx*zx - zy*zy + cx; zy = 2.0*zx*zy + cy; zx = t`.
//! `n` is the number of iterations done. Output: `P5\n<width> <height>\n255\n`, then one
//! byte per pixel, `n * 255 / max_iter` (integer division).

/// The parsed task input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tile {
    /// Pixels per row.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Iteration cap (at least 1).
    pub max_iter: u32,
    /// Left edge.
    pub x0: f64,
    /// Top edge.
    pub y0: f64,
    /// Right edge.
    pub x1: f64,
    /// Bottom edge.
    pub y1: f64,
}

impl Tile {
    /// Parses `width height max_iter x0 y0 x1 y1`.
    pub fn parse(input: &[u8]) -> Result<Tile, String> {
        let text = std::str::from_utf8(input).map_err(|_| "input is not ASCII")?;
        let fields: Vec<&str> = text.split_ascii_whitespace().collect();
        if fields.len() != 7 {
            return Err(format!(
                "expected 7 fields `width height max_iter x0 y0 x1 y1`, got {}",
                fields.len()
            ));
        }
        let int = |i: usize, name: &str| -> Result<u32, String> {
            fields[i]
                .parse()
                .map_err(|e| format!("{name} {:?}: {e}", fields[i]))
        };
        let float = |i: usize, name: &str| -> Result<f64, String> {
            let v: f64 = fields[i]
                .parse()
                .map_err(|e| format!("{name} {:?}: {e}", fields[i]))?;
            if v.is_finite() {
                Ok(v)
            } else {
                Err(format!("{name} must be finite"))
            }
        };
        let tile = Tile {
            width: int(0, "width")?,
            height: int(1, "height")?,
            max_iter: int(2, "max_iter")?,
            x0: float(3, "x0")?,
            y0: float(4, "y0")?,
            x1: float(5, "x1")?,
            y1: float(6, "y1")?,
        };
        if tile.max_iter == 0 {
            return Err("max_iter must be at least 1".into());
        }
        Ok(tile)
    }

    /// Renders the tile as a binary PGM.
    pub fn render(&self) -> Vec<u8> {
        let header = format!("P5\n{} {}\n255\n", self.width, self.height);
        let mut out = Vec::with_capacity(header.len() + self.width as usize * self.height as usize);
        out.extend_from_slice(header.as_bytes());
        let (w, h) = (f64::from(self.width), f64::from(self.height));
        for py in 0..self.height {
            let cy = self.y0 + (self.y1 - self.y0) * f64::from(py) / h;
            for px in 0..self.width {
                let cx = self.x0 + (self.x1 - self.x0) * f64::from(px) / w;
                let n = escape_time(cx, cy, self.max_iter);
                out.push((u64::from(n) * 255 / u64::from(self.max_iter)) as u8);
            }
        }
        out
    }
}

/// Iterations done before `|z| > 2`, at most `max_iter`.
#[inline]
pub fn escape_time(cx: f64, cy: f64, max_iter: u32) -> u32 {
    let (mut zx, mut zy) = (0.0f64, 0.0f64);
    let mut n = 0;
    while n < max_iter {
        if zx * zx + zy * zy > 4.0 {
            break;
        }
        let t = zx * zx - zy * zy + cx;
        zy = 2.0 * zx * zy + cy;
        zx = t;
        n += 1;
    }
    n
}

/// Runs the task; see the crate docs for the format.
pub fn run(input: &[u8]) -> Result<Vec<u8>, String> {
    Ok(Tile::parse(input)?.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pixel_tile() {
        // The origin never escapes: n = max_iter -> 255.
        assert_eq!(run(b"1 1 10 0 0 1 1").unwrap(), b"P5\n1 1\n255\n\xff");
        // Far outside: |0| <= 2 so one step is taken, then |c|^2 = 18 > 4 stops it:
        // n = 1 -> 1 * 255 / 10 = 25.
        assert_eq!(run(b"1 1 10 3 3 4 4").unwrap(), b"P5\n1 1\n255\n\x19");
    }

    #[test]
    fn size_and_header() {
        let out = run(b"8 3 50 -2 -1 1 1").unwrap();
        let header = b"P5\n8 3\n255\n";
        assert_eq!(&out[..header.len()], header);
        assert_eq!(out.len(), header.len() + 24);
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(run(b"1 1 0 0 0 1 1").is_err());
        assert!(run(b"1 1 10 0 0 1").is_err());
        assert!(run(b"1 1 10 0 0 1 inf").is_err());
        assert!(run(b"a 1 10 0 0 1 1").is_err());
    }
}
