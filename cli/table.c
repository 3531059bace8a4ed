/* Tables for `--format table|csv` of values, scan and keys (issue #13), written as the library
 * writes the query table (docs/cli.md): cells separated by two spaces, padded to the widest cell
 * of their column (counted in characters, so UTF-8 text lines up), `-` for a missing value, no
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

/* Characters in @p s: bytes that do not continue a UTF-8 sequence. */
static size_t text_width(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
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
