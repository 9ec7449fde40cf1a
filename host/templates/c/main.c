/* A Smartnodes task: reads its input on stdin, writes `<lines> <words> <bytes>\n` on stdout.
 *
 * Build: python3 -m ziglang cc --target=wasm32-wasi -O2 -o {{name}}.wasm main.c
 * Run:   smartnodes run {{name}}.wasm --input FILE
 *
 * Any WASI preview1 program is a task: stdin is the input, stdout the output, stderr a
 * bounded log, a non-zero exit code a failed task. */
#include <stdio.h>

int main(void) {
    unsigned long long lines = 0, words = 0, bytes = 0;
    int c, in_word = 0;
    while ((c = getchar()) != EOF) {
        bytes++;
        if (c == '\n') lines++;
        int space = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
        if (!space && !in_word) words++;
        in_word = !space;
    }
    if (bytes == 0) {
        fprintf(stderr, "no input\n");
        return 1; /* exit code 1: the task failed */
    }
    printf("%llu %llu %llu\n", lines, words, bytes);
    return 0;
}
