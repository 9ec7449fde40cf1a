/* `mandelbrot` in C, to the same spec as examples/mandelbrot (Rust), byte for byte.
 *
 * Input: ASCII `width height max_iter x0 y0 x1 y1`, whitespace-separated (unsigned 32-bit
 * integers for the first three, finite decimal floats for the rest). For each pixel row
 * `py`, then column `px`: `cx = x0 + (x1 - x0) * px / width`, `cy = y0 + (y1 - y0) * py /
 * height` (double, left to right), `zx = zy = 0`, and for `i` in `0..max_iter`: stop if
 * `zx*zx + zy*zy > 4.0`, else `t = zx*zx - zy*zy + cx; zy = 2.0*zx*zy + cy; zx = t`.
 * `n` is the number of iterations done. Output: `P5\n<width> <height>\n255\n`, then one
 * byte per pixel, `n * 255 / max_iter` (integer division).
 *
 * Built with -ffp-contract=off: no multiply-add is fused, so every operation rounds as in
 * the Rust version (wasm has no scalar fused multiply-add anyway). */
#include <stdint.h>
#include <string.h>

#include "task.h"

/* Rust's `split_ascii_whitespace`: space, tab, newline, form feed, carriage return. */
static int is_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Rust's `u32::from_str`: an optional `+`, then one or more digits, no overflow. */
static uint32_t parse_u32(const char *s, const char *name) {
    const char *p = s + (*s == '+');
    if (*p == 0) fail("%s \"%s\": not a number", name, s);
    uint64_t v = 0;
    for (; *p; p++) {
        if (!is_digit(*p)) fail("%s \"%s\": invalid digit", name, s);
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > UINT32_MAX) fail("%s \"%s\": too large", name, s);
    }
    return (uint32_t)v;
}

/* Rust's `f64::from_str` for finite decimals: an optional sign, digits with an optional
 * point (at least one digit), an optional exponent. strtod then rounds correctly, as Rust
 * does (hexadecimal floats, which strtod would also take, are refused first). */
static double parse_f64(const char *s, const char *name) {
    const char *p = s;
    if (*p == '+' || *p == '-') p++;
    int digits = 0;
    while (is_digit(*p)) p++, digits++;
    if (*p == '.') {
        p++;
        while (is_digit(*p)) p++, digits++;
    }
    if (digits && (*p == 'e' || *p == 'E')) {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!is_digit(*p)) digits = 0;
        while (is_digit(*p)) p++;
    }
    if (!digits || *p) fail("%s \"%s\": not a finite decimal number", name, s);
    double v = strtod(s, NULL);
    if (v - v != 0) fail("%s must be finite", name); /* overflowed to infinity */
    return v;
}

int main(void) {
    size_t len;
    char *text = (char *)read_stdin(&len);
    char *fields[7];
    int count = 0;
    for (size_t i = 0; i < len;) {
        if (is_space((unsigned char)text[i])) {
            i++;
            continue;
        }
        size_t start = i;
        while (i < len && !is_space((unsigned char)text[i])) i++;
        /* A NUL inside a field makes it invalid, as in Rust (C strings would cut it). */
        if (memchr(text + start, 0, i - start)) fail("a field holds a NUL byte");
        if (count < 7) fields[count] = text + start;
        count++;
        text[i] = 0; /* ends the field; read_stdin leaves a spare byte after the input */
        if (i < len) i++;
    }
    if (count != 7)
        fail("expected 7 fields `width height max_iter x0 y0 x1 y1`, got %d", count);
    uint32_t width = parse_u32(fields[0], "width");
    uint32_t height = parse_u32(fields[1], "height");
    uint32_t max_iter = parse_u32(fields[2], "max_iter");
    double x0 = parse_f64(fields[3], "x0"), y0 = parse_f64(fields[4], "y0");
    double x1 = parse_f64(fields[5], "x1"), y1 = parse_f64(fields[6], "y1");
    if (max_iter == 0) fail("max_iter must be at least 1");

    char header[48];
    int header_len = snprintf(header, sizeof header, "P5\n%u %u\n255\n", width, height);
    uint64_t pixels = (uint64_t)width * height;
    if (pixels > SIZE_MAX - (size_t)header_len) fail("the image is too large");
    unsigned char *out = malloc((size_t)header_len + (size_t)pixels);
    if (out == NULL) fail("out of memory for a %ux%u image", width, height);
    memcpy(out, header, (size_t)header_len);
    unsigned char *pixel = out + header_len;
    double w = (double)width, h = (double)height;
    for (uint32_t py = 0; py < height; py++) {
        double cy = y0 + (y1 - y0) * (double)py / h;
        for (uint32_t px = 0; px < width; px++) {
            double cx = x0 + (x1 - x0) * (double)px / w;
            double zx = 0.0, zy = 0.0;
            uint32_t n = 0;
            while (n < max_iter) {
                if (zx * zx + zy * zy > 4.0) break;
                double t = zx * zx - zy * zy + cx;
                zy = 2.0 * zx * zy + cy;
                zx = t;
                n++;
            }
            *pixel++ = (unsigned char)((uint64_t)n * 255 / max_iter);
        }
    }
    write_stdout(out, (size_t)header_len + (size_t)pixels);
    return 0;
}
