/* `trifle query` (SPEC §11.4, §9.7, ERRATA I11): the flags become a §9.7 request body for
 * trifle_query(), which runs the same checks with the same messages as the HTTP endpoint. */
#include "cli.h"

#include <math.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <trifle/analysis.h>

/* The names of the output formats of --format, by style. */
static const char *const formats[] = {
    [CLI_FORMAT_JSON] = "json", [CLI_FORMAT_TABLE] = "table", [CLI_FORMAT_CSV] = "csv"};

/* The options that become request fields under their keys; absent ones are left out. */
static const int fields[] = {
    CLI_OPT_FROM,       CLI_OPT_TO,         CLI_OPT_GRANULARITY, CLI_OPT_MODE,
    CLI_OPT_VALUE_PATH, CLI_OPT_AGGREGATOR, CLI_OPT_SLICES,      CLI_OPT_TRANSPOND_PATHS,
    CLI_OPT_EXPRESSION, CLI_OPT_RESPONSE};

int cli_query_format(int *style, int *json, const cli_args *a, trifle_error *err)
{
    const char *f = a->opt[CLI_OPT_FORMAT] != NULL ? a->opt[CLI_OPT_FORMAT] : "json";
    int i;

    for (i = 0; i < (int)(sizeof(formats) / sizeof(formats[0])); i++) {
        if (strcmp(formats[i], f) == 0) {
            *style = i;
            *json = i == CLI_FORMAT_JSON;
            return 0;
        }
    }
    return cli_error(err, CLI_USAGE, "invalid value for --format: %s (json, table or csv)", f);
}

/* The request body. Every value stays text: §9.7 accepts `slices` as a decimal-digit string and
 * `transpond_paths` as one comma-separated string. */
static void request_build(cli_buf *req, const cli_args *a)
{
    size_t i;

    cli_buf_puts(req, "{\"key\":");
    cli_buf_json_string(req, a->key);
    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        const char *v = a->opt[fields[i]];
        char key[CLI_OPTION_KEY_MAX];
        if (v == NULL)
            continue;
        cli_buf_putc(req, ',');
        cli_buf_json_string(req, cli_option_key(fields[i], key));
        cli_buf_putc(req, ':');
        cli_buf_json_string(req, v);
    }
    cli_buf_putc(req, '}');
}

/* A failed query: its code and message, and its extra fields as members for the error line. */
static int query_failure(const trifle_query_result *r, char **extra, trifle_error *err)
{
    char *fields_json = NULL;
    int rc, code = trifle_query_result_code(r);

    if (code == 0)
        code = TRIFLE_ERROR;
    if ((rc = trifle_query_result_render(&fields_json, r, TRIFLE_QUERY_RENDER_DATA,
                                         TRIFLE_JSON_COMPACT, err)) != 0)
        return rc;
    /* `{"allowed":[...]}` → `,"allowed":[...]`; `{}` → nothing. */
    if (fields_json[0] == '{' && strcmp(fields_json, "{}") != 0) {
        size_t n = strlen(fields_json);
        cli_buf b = CLI_BUF_INIT;
        cli_buf_putc(&b, ',');
        cli_buf_append(&b, fields_json + 1, n - 2);
        if (b.failed) {
            cli_buf_free(&b);
            trifle_mem_free(fields_json);
            return cli_error(err, TRIFLE_ENOMEM, "out of memory");
        }
        *extra = b.data;
    }
    trifle_mem_free(fields_json);
    return cli_error(err, code, "%s", trifle_query_result_message(r));
}

/* The `table` of a successful query's data object as --format table|csv, drawn by table.c like
 * the other commands' tables (character widths, so UTF-8 paths line up). */
static int table_render(cli_buf *out, const char *data, int csv, trifle_error *err)
{
    cJSON *doc = cJSON_Parse(data);
    const cJSON *table = cJSON_GetObjectItemCaseSensitive(doc, "table");
    const cJSON *cols = cJSON_GetObjectItemCaseSensitive(table, "columns");
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(table, "rows"), *row, *c;
    cli_table tab;
    int rc = 0;

    if (cli_table_init(&tab, (size_t)cJSON_GetArraySize(cols)) != 0) {
        cJSON_Delete(doc);
        return doc == NULL ? cli_error(err, TRIFLE_ENOMEM, "out of memory") : 0;
    }
    cJSON_ArrayForEach (c, cols)
        cli_table_add(&tab, cJSON_GetStringValue(c));
    cJSON_ArrayForEach (row, rows) {
        size_t k = 0;
        cJSON_ArrayForEach (c, row) {
            char num[32];
            if (k++ == tab.ncol)
                break;
            if (cJSON_IsString(c)) {
                cli_table_add(&tab, c->valuestring);
            } else if (cJSON_IsNumber(c) && isfinite(c->valuedouble)) {
                (void)trifle_format_double(num, c->valuedouble);
                cli_table_add(&tab, num);
            } else {
                cli_table_add(&tab, NULL);
            }
        }
        for (; k < tab.ncol; k++)
            cli_table_add(&tab, NULL);
    }
    if (cli_table_render(out, &tab, csv) != 0)
        rc = cli_error(err, TRIFLE_ENOMEM, "out of memory");
    cli_table_free(&tab);
    cJSON_Delete(doc);
    return rc;
}

int cli_query_run(trifle *t, const cli_args *a, int style, cli_buf *out, char **extra,
                  trifle_error *err)
{
    trifle_query_result *r = NULL;
    cli_buf req = CLI_BUF_INIT;
    char *text = NULL;
    int rc;

    request_build(&req, a);
    if (req.failed) {
        rc = cli_error(err, TRIFLE_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = trifle_query(&r, t, req.data, req.len, TRIFLE_QUERY_CLI_TIME, err)) != 0)
        goto done;
    if (trifle_query_result_outcome(r) != TRIFLE_QUERY_OK) {
        rc = query_failure(r, extra, err);
        goto done;
    }
    if ((rc = trifle_query_result_render(&text, r, TRIFLE_QUERY_RENDER_DATA, TRIFLE_JSON_COMPACT,
                                         err)) != 0)
        goto done;
    if (style == CLI_FORMAT_TABLE || style == CLI_FORMAT_CSV)
        rc = table_render(out, text, style == CLI_FORMAT_CSV, err);
    else
        cli_buf_puts(out, text);
    trifle_mem_free(text);
done:
    trifle_query_result_free(r);
    cli_buf_free(&req);
    return rc;
}
