/* Small JSON document stores (see store.h). */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define JSON_TYPE "application/json; charset=utf-8"

/* strerror() is not thread-safe; the XSI strerror_r() is (_POSIX_C_SOURCE=200809L). */
static const char *errno_text(char *buf, size_t size, int e)
{
    if (strerror_r(e, buf, size) != 0)
        (void)snprintf(buf, size, "error %d", e);
    return buf;
}

/* A source id as a file name: kept as it is when it is a plain [A-Za-z0-9._-] name that does not
 * start with a dot (config ids always are), else hex-encoded. */
static char *file_name(const char *id)
{
    size_t n = strlen(id), i;
    int plain = n > 0 && n <= 200 && id[0] != '.';
    char *out;

    for (i = 0; plain && i < n; i++) {
        char c = id[i];
        plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '_' || c == '-';
    }
    if (plain)
        return strdup(id);
    if (n > 200)
        n = 200;
    if ((out = malloc(2 * n + 3)) == NULL)
        return NULL;
    out[0] = 'x';
    out[1] = '-';
    for (i = 0; i < n; i++)
        (void)snprintf(out + 2 + 2 * i, 3, "%02x", (unsigned char)id[i]);
    return out;
}

static int read_all(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;

    *out = NULL;
    if (f == NULL)
        return errno == ENOENT ? 1 : -1;
    for (;;) {
        size_t got;
        if (n + 4096 > cap) {
            char *nb = realloc(buf, cap = cap * 2 + 8192);
            if (nb == NULL) {
                free(buf);
                (void)fclose(f);
                errno = ENOMEM;
                return -1;
            }
            buf = nb;
        }
        got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        free(buf);
        (void)fclose(f);
        return -1;
    }
    (void)fclose(f);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

int srv_store_open(srv_store *st, const char *data_dir, const char *kind, const char *source_id,
                   trifle_error *err)
{
    char *dir = NULL, *name = NULL, *text = NULL;
    size_t len = 0, i, n;
    int rc = 0, got;
    char why[128];

    memset(st, 0, sizeof(*st));
    if (pthread_mutex_init(&st->lock, NULL) != 0)
        return srv_error(err, TRIFLE_ERROR, "cannot create a mutex");
    name = file_name(source_id);
    n = strlen(data_dir) + strlen(kind) + 2;
    if (name == NULL || (dir = malloc(n)) == NULL ||
        (st->path = malloc(n + strlen(name) + 6)) == NULL) {
        rc = srv_error(err, TRIFLE_ENOMEM, "out of memory");
        goto done;
    }
    (void)snprintf(dir, n, "%s/%s", data_dir, kind);
    (void)snprintf(st->path, n + strlen(name) + 6, "%s/%s.json", dir, name);
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        rc = srv_error(err, TRIFLE_ERROR, "cannot create %s: %s", dir,
                       errno_text(why, sizeof(why), errno));
        goto done;
    }
    got = read_all(st->path, &text, &len);
    if (got < 0) {
        rc = srv_error(err, TRIFLE_ERROR, "cannot read %s: %s", st->path,
                       errno_text(why, sizeof(why), errno));
        goto done;
    }
    st->items = got == 1 ? cJSON_CreateArray() : cJSON_ParseWithLength(text, len);
    if (st->items == NULL && got == 1) {
        rc = srv_error(err, TRIFLE_ENOMEM, "out of memory");
        goto done;
    }
    if (st->items == NULL || !cJSON_IsArray(st->items)) {
        rc =
            srv_error(err, TRIFLE_ERROR, "%s: not a JSON array (fix or remove the file)", st->path);
        goto done;
    }
    n = (size_t)cJSON_GetArraySize(st->items);
    for (i = 0; i < n; i++) {
        cJSON *item = cJSON_GetArrayItem(st->items, (int)i);
        if (!cJSON_IsObject(item) || !cJSON_IsString(cJSON_GetObjectItem(item, "id"))) {
            rc = srv_error(err, TRIFLE_ERROR, "%s: item %zu is not an object with a string id",
                           st->path, i);
            goto done;
        }
    }
done:
    free(text);
    free(dir);
    free(name);
    if (rc != 0)
        srv_store_close(st);
    return rc;
}

void srv_store_close(srv_store *st)
{
    if (st->path == NULL && st->items == NULL)
        return;
    cJSON_Delete(st->items);
    free(st->path);
    st->items = NULL;
    st->path = NULL;
    pthread_mutex_destroy(&st->lock);
}

int srv_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int srv_store_save(srv_store *st, trifle_error *err)
{
    char *text = cJSON_PrintUnformatted(st->items), *tmp = NULL, *slash;
    size_t n = strlen(st->path) + 8;
    int fd = -1, rc = 0;
    char why[128];

    if (text == NULL || (tmp = malloc(n)) == NULL) {
        rc = srv_error(err, TRIFLE_ENOMEM, "out of memory");
        goto done;
    }
    (void)snprintf(tmp, n, "%s.tmp", st->path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0 || srv_write_all(fd, text, strlen(text)) != 0 || srv_write_all(fd, "\n", 1) != 0 ||
        fsync(fd) != 0) {
        rc = srv_error(err, TRIFLE_ERROR, "cannot write %s: %s", tmp,
                       errno_text(why, sizeof(why), errno));
        goto done;
    }
    (void)close(fd);
    fd = -1;
    if (rename(tmp, st->path) != 0) {
        rc = srv_error(err, TRIFLE_ERROR, "cannot rename %s: %s", tmp,
                       errno_text(why, sizeof(why), errno));
        goto done;
    }
    /* the rename is durable once the directory is */
    slash = strrchr(tmp, '/');
    if (slash != NULL) {
        *slash = '\0';
        if ((fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0)
            (void)fsync(fd);
    }
done:
    if (fd >= 0)
        (void)close(fd);
    if (rc != 0 && tmp != NULL)
        (void)unlink(tmp);
    free(tmp);
    cJSON_free(text);
    return rc;
}

int srv_store_save_or_500(srv_request *r, srv_store *st, const char *kind)
{
    trifle_error e = TRIFLE_ERROR_INIT;

    if (srv_store_save(st, &e) == 0)
        return 0;
    srv_log(TRIFLE_LOG_ERROR, "%s: %s", kind, e.message);
    if (r != NULL)
        srv_respond_detail(r, 500, "Internal server error");
    return -1;
}

cJSON *srv_store_find(srv_store *st, const char *id, size_t n, int *index)
{
    int i, count = cJSON_GetArraySize(st->items);

    for (i = 0; i < count; i++) {
        cJSON *item = cJSON_GetArrayItem(st->items, i);
        const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(item, "id"));
        if (v != NULL && strlen(v) == n && memcmp(v, id, n) == 0) {
            if (index != NULL)
                *index = i;
            return item;
        }
    }
    return NULL;
}

void srv_store_new_id(char out[17])
{
    unsigned char raw[8];
    size_t i;

    /* 64 random bits: ids are unguessable and never collide in practice; if getrandom(2) fails
     * (it does not for 8 bytes once the pool is initialised), fall back to the clocks */
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
        int64_t t = srv_monotonic_ms() * 1000003 ^ srv_now();
        memcpy(raw, &t, sizeof(raw));
    }
    for (i = 0; i < 8; i++)
        (void)snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

void srv_store_respond(srv_request *r, int status, const cJSON *data)
{
    char *text = cJSON_PrintUnformatted(data);
    srv_buf b;

    if (text == NULL) {
        srv_respond_detail(r, 500, "Internal server error");
        return;
    }
    srv_response_buf(r, &b);
    srv_buf_puts(&b, "{\"data\":");
    srv_buf_puts(&b, text);
    srv_buf_putc(&b, '}');
    cJSON_free(text);
    srv_respond(r, status, JSON_TYPE, &b);
}

/* 422 `{"errors":{"detail":"<field>: <message>","field":"<field>"}}`, or in the App's changeset
 * shape `{"errors":{"<field>":["<message>"]}}`. */
static void respond_invalid(srv_request *r, const char *field, const char *message, int changeset)
{
    char detail[300];
    srv_buf b;

    srv_response_buf(r, &b);
    srv_buf_puts(&b, "{\"errors\":{");
    if (changeset) {
        srv_buf_json_cstr(&b, field);
        srv_buf_puts(&b, ":[");
        srv_buf_json_cstr(&b, message);
        srv_buf_putc(&b, ']');
    } else {
        (void)snprintf(detail, sizeof(detail), "%s: %s", field, message);
        srv_buf_puts(&b, "\"detail\":");
        srv_buf_json_cstr(&b, detail);
        srv_buf_puts(&b, ",\"field\":");
        srv_buf_json_cstr(&b, field);
    }
    srv_buf_puts(&b, "}}");
    srv_respond(r, 422, JSON_TYPE, &b);
}

void srv_store_invalid(srv_request *r, const char *field, const char *message)
{
    respond_invalid(r, field, message, 0);
}

void srv_store_changeset(srv_request *r, const char *field, const char *message)
{
    respond_invalid(r, field, message, 1);
}

int srv_store_text(srv_request *r, const cJSON *o, const char *name, const char *field, size_t max,
                   int required, const char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    const char *why = NULL;

    *out = NULL;
    if (v == NULL || cJSON_IsNull(v)) {
        if (!required)
            return 0;
        why = "is required";
    } else if (!cJSON_IsString(v)) {
        why = "must be a string";
    } else if (required && v->valuestring[0] == '\0') {
        why = "must not be empty";
    } else if (strlen(v->valuestring) > max) {
        why = "is too long";
    }
    if (why != NULL) {
        srv_store_invalid(r, field, why);
        return -1;
    }
    *out = v->valuestring;
    return 1;
}

void srv_store_now(char buf[40], int64_t now)
{
    (void)trifle_time_format(buf, 40, now, NULL);
}

int srv_stores_open(srv_stores *set, srv_server *s, const char *kind, trifle_error *err)
{
    size_t i;
    int rc;

    set->n = 0;
    if ((set->of = calloc(s->n_sources ? s->n_sources : 1, sizeof(*set->of))) == NULL)
        return srv_error(err, TRIFLE_ENOMEM, "out of memory");
    for (i = 0; i < s->n_sources; i++) {
        if ((rc = srv_store_open(&set->of[i], s->cfg->data_dir, kind, s->cfg->sources[i].id,
                                 err)) != 0)
            return rc;
        set->n = i + 1;
    }
    return 0;
}

void srv_stores_close(srv_stores *set)
{
    size_t i;

    for (i = 0; i < set->n; i++)
        srv_store_close(&set->of[i]);
    free(set->of);
    set->of = NULL;
    set->n = 0;
}

int srv_stores_new(srv_stores **out, srv_server *s, const char *kind, trifle_error *err)
{
    if ((*out = calloc(1, sizeof(**out))) == NULL)
        return srv_error(err, TRIFLE_ENOMEM, "out of memory");
    return srv_stores_open(*out, s, kind, err);
}

void srv_stores_free(srv_stores **set)
{
    if (*set == NULL)
        return;
    srv_stores_close(*set);
    free(*set);
    *set = NULL;
}
