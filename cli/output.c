/* Output of `trifle`: one JSON document plus a newline on stdout, or one JSON error line on stderr
 * (SPEC §11.4, §11.5). */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void newline_indent(cli_buf *out, int depth)
{
    int i;

    cli_buf_putc(out, '\n');
    for (i = 0; i < depth; i++)
        cli_buf_puts(out, "  ");
}

static const char *skip_space(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

void cli_json_pretty(cli_buf *out, const char *json)
{
    const char *p = json;
    int depth = 0;

    while (*p != '\0') {
        const char *q;

        switch (*p) {
        case '"':
            for (q = p + 1; *q != '\0' && *q != '"'; q++)
                if (*q == '\\' && q[1] != '\0')
                    q++;
            if (*q == '"')
                q++;
            cli_buf_append(out, p, (size_t)(q - p));
            p = q;
            continue;
        case '{':
        case '[':
            q = skip_space(p + 1);
            if (*q == (*p == '{' ? '}' : ']')) {
                cli_buf_putc(out, *p);
                cli_buf_putc(out, *q);
                p = q + 1;
                continue;
            }
            cli_buf_putc(out, *p);
            newline_indent(out, ++depth);
            break;
        case '}':
        case ']':
            newline_indent(out, depth > 0 ? --depth : 0);
            cli_buf_putc(out, *p);
            break;
        case ',':
            cli_buf_putc(out, ',');
            newline_indent(out, depth);
            break;
        case ':':
            cli_buf_puts(out, ": ");
            break;
        case ' ':
        case '\t':
        case '\n':
        case '\r':
            break;
        default:
            cli_buf_putc(out, *p);
            break;
        }
        p++;
    }
}

int cli_exit_code(int code)
{
    switch (code) {
    case TRIFLE_OK:
        return 0;
    case CLI_USAGE:
        return 2;
    case TRIFLE_EINVAL:
        return 3;
    case TRIFLE_ECONFIG:
        return 4;
    case TRIFLE_ENOTFOUND:
    case TRIFLE_EABI:
        return 5;
    default:
        /* Storage and driver failures, ENOMEM, and (ERRATA minor 22) ENOTSUP and ECLOSED. */
        return 1;
    }
}

void cli_error_json(cli_buf *b, const trifle_error *err, const char *extra)
{
    int code = err->code != 0 ? err->code : TRIFLE_ERROR;

    cli_buf_puts(b, "{\"error\":{\"code\":");
    cli_buf_json_string(b, code == CLI_USAGE ? "USAGE" : trifle_status_name(code));
    cli_buf_puts(b, ",\"message\":");
    cli_buf_json_string(b, err->message[0] != '\0' ? err->message : trifle_strerror(code));
    if (extra != NULL)
        cli_buf_puts(b, extra);
    cli_buf_puts(b, "}}");
}

int cli_report(const trifle_error *err, const char *extra)
{
    cli_buf b = CLI_BUF_INIT;
    int code = err->code != 0 ? err->code : TRIFLE_ERROR;

    cli_error_json(&b, err, extra);
    cli_buf_putc(&b, '\n');
    if (b.failed)
        (void)fputs("{\"error\":{\"code\":\"ENOMEM\",\"message\":\"out of memory\"}}\n", stderr);
    else
        (void)fputs(b.data, stderr);
    (void)fflush(stderr);
    cli_buf_free(&b);
    return cli_exit_code(code);
}

int cli_print(const char *text, int json, int pretty, trifle_error *err)
{
    cli_buf b = CLI_BUF_INIT;
    int rc = 0;

    if (json && pretty)
        cli_json_pretty(&b, text);
    else
        cli_buf_puts(&b, text);
    if (b.len == 0 || b.data[b.len - 1] != '\n')
        cli_buf_putc(&b, '\n');
    if (b.failed) {
        rc = cli_error(err, TRIFLE_ENOMEM, "out of memory");
        goto done;
    }
    errno = 0;
    if (fwrite(b.data, 1, b.len, stdout) != b.len || fflush(stdout) != 0) {
        char reason[128] = "";
        if (errno != 0 && strerror_r(errno, reason, sizeof(reason)) != 0)
            reason[0] = '\0';
        rc = cli_error(err, TRIFLE_ERROR, "cannot write to standard output%s%s",
                       reason[0] != '\0' ? ": " : "", reason);
    }
done:
    cli_buf_free(&b);
    return rc;
}
