/* Fuzz target: the strict JSON lexer every JSON reader of the tree uses (util/tu_json.h). The text
 * is validated strictly and laxly: an error must carry a reason and an offset inside the input,
 * whatever is strict-valid must be lax-valid, and a valid string must decode to no more bytes than
 * its body, as UTF-8 (with no NUL byte when strictly valid), and written back with
 * tu_buf_json_string it must lex again and decode to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "util/tu_buf.h"
#include "util/tu_json.h"
#include "util/tu_utf8.h"

static int validate(const char *text, size_t n, unsigned flags)
{
    tu_json_lex lx = {.s = text, .len = n, .flags = flags};
    int rc = tu_json_validate(&lx);

    if (rc != 0 && (lx.reason == NULL || lx.at > n))
        abort();
    return rc;
}

/* Write s[0..n) as a JSON string and read it back. */
static void round_trip(const char *s, size_t n)
{
    tu_buf b = TU_BUF_INIT(NULL, NULL);
    tu_json_lex lx = {.flags = TU_JSON_LAX_ESCAPES};
    char *again;

    tu_buf_json_string(&b, s, n, 0);
    if (tu_buf_failed(&b)) {
        tu_buf_free(&b);
        return;
    }
    lx.s = b.data;
    lx.len = b.len;
    if (tu_json_validate(&lx) != 0)
        abort();
    if ((again = malloc(b.len)) != NULL) {
        if (tu_json_unescape(again, b.data + 1, b.len - 2) != n || memcmp(again, s, n) != 0)
            abort();
        free(again);
    }
    tu_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    int strict = validate(text, size, 0), lax = validate(text, size, TU_JSON_LAX_ESCAPES);
    tu_json_lex lx = {.s = text, .len = size, .flags = TU_JSON_LAX_ESCAPES};

    if (strict == 0 && lax != 0)
        abort();
    /* the text as one string, when it starts as one: decode what the lexer accepts */
    if (size > 0 && text[0] == '"' && tu_json_string(&lx) == 0) {
        size_t body = lx.i - 2, n;
        char *out = malloc(body + 1);
        if (out == NULL)
            return 0;
        n = tu_json_unescape(out, text + 1, body);
        if (n > body || !tu_utf8_valid(out, n))
            abort();
        if (strict == 0 && lx.i == size && memchr(out, '\0', n) != NULL)
            abort();
        round_trip(out, n);
        free(out);
    }
    return 0;
}
