/* Tables for `--format table|csv` of values, scan and keys (issue #13), written as the library
 * writes the query table (docs/cli.md): cells separated by two spaces, padded to the widest cell
 * of their column (counted in terminal columns, so UTF-8 text lines up: combining marks take
 * none, CJK and emoji two), `-` for a missing value, no
 * padding after the last column; or CSV per RFC 4180 with "\n" line ends, a field quoted when it
 * holds a comma, a quote, CR or LF (quotes doubled), and an empty field for a missing value. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

int cli_table_init(cli_table *t, size_t ncol)
{
    memset(t, 0, sizeof(*t));
    t->ncol = ncol;
    return ncol == 0 ? -1 : 0;
}

void cli_table_add(cli_table *t, const char *text)
{
    char *copy = NULL;

    if (t->failed)
        return;
    if (t->n == t->cap) {
        size_t cap = t->cap != 0 ? t->cap * 2 : 64;
        char **cells = realloc(t->cells, cap * sizeof(*cells));
        if (cells == NULL) {
            t->failed = 1;
            return;
        }
        t->cells = cells;
        t->cap = cap;
    }
    if (text != NULL && (copy = strdup(text)) == NULL) {
        t->failed = 1;
        return;
    }
    t->cells[t->n++] = copy;
}

void cli_table_free(cli_table *t)
{
    size_t i;

    for (i = 0; i < t->n; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof(*t));
}

/* Terminal columns of code point @p cp: 0 for combining marks and zero-width characters, 2 for
 * East Asian wide and fullwidth ones and emoji (the wide ranges of Unicode's EastAsianWidth.txt,
 * grouped), else 1. A short table rather than wcwidth(3): that needs a UTF-8 locale set with
 * setlocale(), and its answer would change with the user's environment. */
static size_t cp_width(unsigned long cp)
{
    static const unsigned long zero[][2] = {
        {0x0300, 0x036F}, {0x0483, 0x0489}, {0x0591, 0x05BD}, {0x0610, 0x061A}, {0x064B, 0x065F},
        {0x0E31, 0x0E31}, {0x0E34, 0x0E3A}, {0x0E47, 0x0E4E}, {0x1AB0, 0x1AFF}, {0x1DC0, 0x1DFF},
        {0x200B, 0x200F}, {0x20D0, 0x20FF}, {0xFE00, 0xFE0F}, {0xFE20, 0xFE2F}, {0xFEFF, 0xFEFF}};
    static const unsigned long wide[][2] = {
        {0x1100, 0x115F},  {0x231A, 0x231B},   {0x2329, 0x232A},   {0x23E9, 0x23EC},
        {0x2600, 0x27BF},  {0x2E80, 0x303E},   {0x3041, 0x33FF},   {0x3400, 0x4DBF},
        {0x4E00, 0x9FFF},  {0xA000, 0xA4CF},   {0xA960, 0xA97F},   {0xAC00, 0xD7A3},
        {0xF900, 0xFAFF},  {0xFE10, 0xFE19},   {0xFE30, 0xFE6F},   {0xFF00, 0xFF60},
        {0xFFE0, 0xFFE6},  {0x1F300, 0x1F64F}, {0x1F680, 0x1F6FF}, {0x1F900, 0x1F9FF},
        {0x20000, 0x3FFFD}};
    size_t i;

    for (i = 0; i < sizeof(zero) / sizeof(zero[0]); i++)
        if (cp >= zero[i][0] && cp <= zero[i][1])
            return 0;
    for (i = 0; i < sizeof(wide) / sizeof(wide[0]); i++)
        if (cp >= wide[i][0] && cp <= wide[i][1])
            return 2;
    return 1;
}

/* Terminal columns of UTF-8 text; a byte that does not start a valid sequence counts as one. */
static size_t text_width(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;

    while (*p != '\0') {
        unsigned long cp = *p;
        size_t len = 1, k;

        if (*p >= 0xC2 && *p <= 0xDF)
            len = 2;
        else if (*p >= 0xE0 && *p <= 0xEF)
            len = 3;
        else if (*p >= 0xF0 && *p <= 0xF4)
            len = 4;
        if (len > 1) {
            cp = *p & (0x7Fu >> len);
            for (k = 1; k < len; k++) {
                if ((p[k] & 0xC0) != 0x80)
                    break;
                cp = (cp << 6) | (p[k] & 0x3Fu);
            }
            if (k < len) { /* truncated sequence: one column for the lead byte */
                len = 1;
                cp = 0xFFFD;
            }
        }
        n += cp < 0x80 ? 1 : cp_width(cp);
        p += len;
    }
    return n;
}

static void csv_field(cli_buf *b, const char *s)
{
    if (strpbrk(s, ",\"\r\n") == NULL) {
        cli_buf_puts(b, s);
        return;
    }
    cli_buf_putc(b, '"');
    for (; *s != '\0'; s++) {
        if (*s == '"')
            cli_buf_putc(b, '"');
        cli_buf_putc(b, *s);
    }
    cli_buf_putc(b, '"');
}

int cli_table_render(cli_buf *out, const cli_table *t, int csv)
{
    size_t *width = NULL, i, k;

    if (t->failed || t->ncol == 0)
        return -1;
    if (!csv) {
        if ((width = calloc(t->ncol, sizeof(*width))) == NULL)
            return -1;
        for (i = 0; i < t->n; i++) {
            size_t w = text_width(t->cells[i] != NULL ? t->cells[i] : "-");
            if (w > width[i % t->ncol])
                width[i % t->ncol] = w;
        }
    }
    for (i = 0; i < t->n; i++) {
        const char *cell = t->cells[i];
        k = i % t->ncol;
        if (k > 0)
            cli_buf_puts(out, csv ? "," : "  ");
        if (csv) {
            csv_field(out, cell != NULL ? cell : "");
        } else {
            size_t w = text_width(cell != NULL ? cell : "-");
            cli_buf_puts(out, cell != NULL ? cell : "-");
            if (k + 1 < t->ncol)
                for (; w < width[k]; w++)
                    cli_buf_putc(out, ' ');
        }
        if (k + 1 == t->ncol)
            cli_buf_putc(out, '\n');
    }
    free(width);
    return 0;
}
