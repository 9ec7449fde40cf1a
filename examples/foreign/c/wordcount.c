/* `wordcount` in C, to the same spec as examples/wordcount (Rust), byte for byte.
 *
 * Input: text. Words are maximal runs of ASCII letters and digits, lowercased (any other
 * byte separates words). Output: one line per distinct word, `word<TAB>count\n`, sorted by
 * count descending, then by word ascending (bytewise). */
#include <stdint.h>
#include <string.h>

#include "task.h"

typedef struct {
    const unsigned char *word; /* into the (lowercased) input; NULL: an empty slot */
    size_t len;
    uint64_t count;
} Entry;

static int is_alnum(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static uint64_t hash(const unsigned char *w, size_t len) {
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
    for (size_t i = 0; i < len; i++) h = (h ^ w[i]) * 0x100000001b3u;
    return h;
}

static Entry *table;
static size_t capacity, used;

static void insert(const unsigned char *w, size_t len, uint64_t count);

static void grow(void) {
    Entry *old = table;
    size_t old_capacity = capacity;
    capacity = capacity ? capacity * 2 : 1024;
    table = calloc(capacity, sizeof(Entry));
    if (table == NULL) fail("out of memory");
    used = 0;
    for (size_t i = 0; i < old_capacity; i++)
        if (old[i].word) insert(old[i].word, old[i].len, old[i].count);
    free(old);
}

/* Adds `count` to the word's entry (open addressing, linear probing, load <= 1/2). */
static void insert(const unsigned char *w, size_t len, uint64_t count) {
    if (2 * (used + 1) > capacity) grow();
    size_t i = (size_t)hash(w, len) & (capacity - 1);
    while (table[i].word) {
        if (table[i].len == len && memcmp(table[i].word, w, len) == 0) {
            table[i].count += count;
            return;
        }
        i = (i + 1) & (capacity - 1);
    }
    table[i] = (Entry){w, len, count};
    used++;
}

static int by_count_then_word(const void *a, const void *b) {
    const Entry *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->word, y->word, n);
    if (c != 0) return c;
    return x->len < y->len ? -1 : (x->len > y->len);
}

int main(void) {
    size_t len;
    unsigned char *text = read_stdin(&len);
    for (size_t i = 0; i < len;) {
        if (!is_alnum(text[i])) {
            i++;
            continue;
        }
        size_t start = i;
        for (; i < len && is_alnum(text[i]); i++)
            if (text[i] >= 'A' && text[i] <= 'Z') text[i] += 'a' - 'A';
        insert(text + start, i - start, 1);
    }
    Entry *rows = malloc((used ? used : 1) * sizeof(Entry));
    if (rows == NULL) fail("out of memory");
    size_t n = 0, out_len = 0;
    for (size_t i = 0; i < capacity; i++)
        if (table[i].word) {
            rows[n++] = table[i];
            out_len += table[i].len + 22; /* tab, up to 20 digits, newline */
        }
    qsort(rows, n, sizeof(Entry), by_count_then_word);
    char *out = malloc(out_len + 1);
    if (out == NULL) fail("out of memory");
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(out + o, rows[i].word, rows[i].len);
        o += rows[i].len;
        o += (size_t)sprintf(out + o, "\t%llu\n", (unsigned long long)rows[i].count);
    }
    write_stdout(out, o);
    return 0;
}
