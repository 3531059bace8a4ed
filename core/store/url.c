/* Driver URLs: SPEC §11.2 grammar, §7.1 scheme map, ERRATA B6 (no TLS in this build).
 *
 * The core only looks at the scheme, the userinfo password (to mask it) and the query string:
 * everything before the `?` is the driver's business and reaches it byte for byte. Query
 * parameters are `name=value` pairs separated by `&`, both percent-decoded exactly once (`+` is
 * a plus sign, not a space: these are RFC 3986 URLs, not HTML forms). */
#include "url_int.h"

#include <string.h>

#include "alloc_int.h"
#include "error_int.h"
#include "trifle/driver.h"
#include "trifle/storage.h"
#include "util/tu_hex.h"

#define BAD_URL "invalid driver URL: "

static const struct {
    const char *scheme;
    const char *driver;
    int authority; /* the scheme must be followed by "//" */
} scheme_map[] = {
    {"sqlite", "sqlite", 0},       {"postgres", "postgres", 1},
    {"postgresql", "postgres", 1}, {"redis", "redis", 1},
    {"redis+unix", "redis", 1},    {"mongodb", "mongo", 1},
    {"mongodb+srv", "mongo", 1},   {"http", "http", 1},
    {"https", "http", 1},          {"redis+cluster", "redis_cluster", 1},
};

static int ascii_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Case-insensitive ASCII comparison, independent of the locale. */
static int ascii_ieq(const char *a, const char *b)
{
    while (*a != '\0' && ascii_lower((unsigned char)*a) == ascii_lower((unsigned char)*b)) {
        a++;
        b++;
    }
    return *a == '\0' && *b == '\0';
}

/* Does name (n bytes) contain @p word (lower case), ignoring ASCII case? */
static int names_word(const char *name, size_t n, const char *word)
{
    size_t i, j, wl = strlen(word);

    for (i = 0; i + wl <= n; i++) {
        for (j = 0; j < wl; j++)
            if (ascii_lower((unsigned char)name[i + j]) != word[j])
                break;
        if (j == wl)
            return 1;
    }
    return 0;
}

/* Does name (n bytes) contain "password" — or, for the http driver's bearer token (`token=`),
 * "token" — ignoring ASCII case? Such a parameter's value is a secret. */
static int names_password(const char *name, size_t n)
{
    return names_word(name, n, "password") || names_word(name, n, "token");
}

static int scheme_char(int c, int first)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return !first && ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.' || c == '_');
}

/* Length of the scheme of url (the bytes before ':'), or 0 when there is none. */
static size_t scheme_len(const char *url)
{
    size_t n = 0;

    while (scheme_char((unsigned char)url[n], n == 0))
        n++;
    return url[n] == ':' ? n : 0;
}

const char *trifle__url_scheme_driver(const char *scheme)
{
    size_t i;

    for (i = 0; i < sizeof(scheme_map) / sizeof(scheme_map[0]); i++)
        if (strcmp(scheme_map[i].scheme, scheme) == 0)
            return scheme_map[i].driver;
    return NULL;
}

static int scheme_needs_authority(const char *scheme)
{
    size_t i;

    for (i = 0; i < sizeof(scheme_map) / sizeof(scheme_map[0]); i++)
        if (strcmp(scheme_map[i].scheme, scheme) == 0)
            return scheme_map[i].authority;
    return 0;
}

int trifle__id_mode_parse(const char *text)
{
    if (text == NULL)
        return -1;
    if (ascii_ieq(text, "full"))
        return TRIFLE_ID_FULL;
    if (ascii_ieq(text, "partial"))
        return TRIFLE_ID_PARTIAL;
    if (ascii_ieq(text, "separated") || ascii_ieq(text, "none") || ascii_ieq(text, "null"))
        return TRIFLE_ID_SEPARATED;
    return -1;
}

const char *trifle__id_mode_name(int mode)
{
    switch (mode) {
    case TRIFLE_ID_FULL:
        return "full";
    case TRIFLE_ID_PARTIAL:
        return "partial";
    case TRIFLE_ID_SEPARATED:
        return "separated";
    default:
        return NULL;
    }
}

int trifle__separator_check(const char *sep)
{
    size_t n;

    if (sep == NULL)
        return -1;
    n = strlen(sep);
    return n >= 1 && n <= 16 ? 0 : -1;
}

/* SPEC §1 booleans: true/false/1/0/yes/no/on/off, case-insensitive. */
static int parse_bool(const char *text)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    size_t i;

    for (i = 0; i < 4; i++) {
        if (ascii_ieq(text, yes[i]))
            return 1;
        if (ascii_ieq(text, no[i]))
            return 0;
    }
    return -1;
}

enum { DECODE_OK = 0, DECODE_BAD_ESCAPE = 1, DECODE_NUL = 2 };

/* Percent-decode s[0..n) into a new string. Returns DECODE_*, or TRIFLE_ENOMEM. */
static int pct_decode(char **out, const char *s, size_t n)
{
    char *d;
    int rc;

    *out = NULL;
    if ((d = trifle__malloc(n + 1)) == NULL)
        return TRIFLE_ENOMEM;
    rc = tu_pct_decode(d, NULL, s, n, 0);
    if (rc != TU_PCT_OK) {
        trifle__free(d);
        return rc == TU_PCT_NUL ? DECODE_NUL : DECODE_BAD_ESCAPE;
    }
    *out = d;
    return DECODE_OK;
}

void trifle__url_free(trifle__url *u)
{
    size_t i;

    if (u == NULL)
        return;
    trifle__free(u->scheme);
    trifle__free(u->base);
    if (u->params != NULL)
        for (i = 0; i < 2 * u->n_params; i++)
            trifle__free(u->params[i]);
    trifle__free(u->params);
    trifle__free(u->separator);
    for (i = 0; i < u->n_secrets; i++)
        trifle__free(u->secrets[i]);
    memset(u, 0, sizeof(*u));
    u->joined = -1;
    u->system_tracking = -1;
}

/* Remember a password (raw bytes s[0..n), and its decoded form when that differs). */
static int add_secret(trifle__url *u, const char *s, size_t n)
{
    char *decoded = NULL;

    if (n == 0 || u->n_secrets >= TRIFLE__URL_MAX_SECRETS)
        return 0;
    if ((u->secrets[u->n_secrets] = trifle__strndup(s, n)) == NULL)
        return TRIFLE_ENOMEM;
    u->n_secrets++;
    switch (pct_decode(&decoded, s, n)) {
    case TRIFLE_ENOMEM:
        return TRIFLE_ENOMEM;
    case DECODE_OK:
        break;
    default:
        return 0; /* the raw form is all that can appear anywhere */
    }
    if (strcmp(decoded, u->secrets[u->n_secrets - 1]) == 0 ||
        u->n_secrets >= TRIFLE__URL_MAX_SECRETS) {
        trifle__free(decoded);
        return 0;
    }
    u->secrets[u->n_secrets++] = decoded;
    return 0;
}

/* Find the userinfo password of the authority that starts at p (after "//"), if any. */
static void find_password(const char *p, const char **pw, size_t *n)
{
    const char *end = p + strcspn(p, "/?#"), *at = NULL, *q, *colon;

    *pw = NULL;
    *n = 0;
    for (q = p; q < end; q++)
        if (*q == '@')
            at = q; /* the last '@': an unescaped '@' in a password stays in the userinfo */
    if (at == NULL)
        return;
    colon = memchr(p, ':', (size_t)(at - p));
    if (colon == NULL)
        return;
    *pw = colon + 1;
    *n = (size_t)(at - colon - 1);
}

static int push_param(trifle__url *u, char *name, char *value, size_t *cap)
{
    char **grown;

    /* params holds pairs plus a NULL terminator */
    if (2 * u->n_params + 3 > *cap) {
        size_t ncap = *cap == 0 ? 9 : *cap * 2 + 1;
        if ((grown = trifle__reallocarray(u->params, ncap, sizeof(*grown))) == NULL)
            return TRIFLE_ENOMEM;
        u->params = grown;
        *cap = ncap;
    }
    u->params[2 * u->n_params] = name;
    u->params[2 * u->n_params + 1] = value;
    u->n_params++;
    u->params[2 * u->n_params] = NULL;
    return 0;
}

/* Take one `name=value` segment s[0..n). */
static int parse_param(trifle__url *u, const char *s, size_t n, size_t *cap, trifle_error *err)
{
    const char *eq = memchr(s, '=', n);
    char *name = NULL, *value = NULL;
    int rc, b;

    if (n == 0)
        return trifle__error(err, TRIFLE_ECONFIG, BAD_URL "empty parameter");
    if (eq == s)
        return trifle__error(err, TRIFLE_ECONFIG, BAD_URL "empty parameter name");
    rc = pct_decode(&name, s, eq != NULL ? (size_t)(eq - s) : n);
    if (rc == TRIFLE_ENOMEM)
        return trifle__error(err, rc, "out of memory");
    if (rc == DECODE_BAD_ESCAPE)
        return trifle__error(err, TRIFLE_ECONFIG, BAD_URL "bad percent escape in a parameter name");
    if (rc == DECODE_NUL)
        return trifle__error(err, TRIFLE_ECONFIG, BAD_URL "NUL byte in a parameter name");
    if (eq == NULL) {
        rc = trifle__error(err, TRIFLE_ECONFIG, BAD_URL "parameter %s has no value", name);
        goto done;
    }
    if (names_password(s, (size_t)(eq - s)) || names_password(name, strlen(name))) {
        if ((rc = add_secret(u, eq + 1, n - (size_t)(eq + 1 - s))) != 0) {
            rc = trifle__error(err, rc, "out of memory");
            goto done;
        }
    }
    rc = pct_decode(&value, eq + 1, n - (size_t)(eq + 1 - s));
    if (rc == TRIFLE_ENOMEM) {
        rc = trifle__error(err, rc, "out of memory");
        goto done;
    }
    if (rc != DECODE_OK) {
        rc = trifle__error(err, TRIFLE_ECONFIG, BAD_URL "%s in parameter %s",
                           rc == DECODE_NUL ? "NUL byte" : "bad percent escape", name);
        goto done;
    }
    if (strcmp(name, "joined") == 0) {
        if (u->joined >= 0) {
            rc = trifle__error(err, TRIFLE_ECONFIG, BAD_URL "duplicate parameter joined");
            goto done;
        }
        if ((u->joined = trifle__id_mode_parse(value)) < 0) {
            rc = trifle__error(err, TRIFLE_ECONFIG, "invalid identifier mode: %s", value);
            goto done;
        }
    } else if (strcmp(name, "separator") == 0) {
        if (u->separator != NULL) {
            rc = trifle__error(err, TRIFLE_ECONFIG, BAD_URL "duplicate parameter separator");
            goto done;
        }
        if (trifle__separator_check(value) != 0) {
            rc = trifle__error(err, TRIFLE_ECONFIG, "separator must be 1 to 16 bytes without NUL");
            goto done;
        }
        u->separator = value;
        value = NULL;
    } else if (strcmp(name, "system_tracking") == 0) {
        if (u->system_tracking >= 0) {
            rc = trifle__error(err, TRIFLE_ECONFIG, BAD_URL "duplicate parameter system_tracking");
            goto done;
        }
        if ((b = parse_bool(value)) < 0) {
            rc = trifle__error(err, TRIFLE_ECONFIG, "invalid option system_tracking: %s", value);
            goto done;
        }
        u->system_tracking = b;
    } else {
        if ((rc = push_param(u, name, value, cap)) != 0) {
            rc = trifle__error(err, rc, "out of memory");
            goto done;
        }
        return 0; /* the pair now belongs to u */
    }
    rc = 0;
done:
    trifle__free(name);
    trifle__free(value);
    return rc;
}

int trifle__url_parse(trifle__url *out, const char *url, trifle_error *err)
{
    trifle__url u;
    const char *query, *p, *pw;
    size_t slen, i, cap = 0, pwlen, seg;
    int rc;

    memset(&u, 0, sizeof(u));
    u.joined = -1;
    u.system_tracking = -1;
    if (out == NULL)
        return trifle__error(err, TRIFLE_EINVAL, "invalid argument: url is NULL");
    *out = u;
    if (url == NULL || url[0] == '\0')
        return trifle__error(err, TRIFLE_ECONFIG, "driver required");
    if ((slen = scheme_len(url)) == 0)
        return trifle__error(err, TRIFLE_ECONFIG, BAD_URL "missing scheme (expected <scheme>:...)");
    if (slen > 63)
        return trifle__error(err, TRIFLE_ECONFIG, BAD_URL "scheme is longer than 63 bytes");
    if ((u.scheme = trifle__strndup(url, slen)) == NULL) {
        rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
        goto done;
    }
    for (i = 0; i < slen; i++)
        u.scheme[i] = (char)ascii_lower((unsigned char)u.scheme[i]);
    if (strcmp(u.scheme, "rediss") == 0) {
        rc = trifle__error(err, TRIFLE_ECONFIG, BAD_URL "TLS is not supported by this build");
        goto done;
    }
    u.driver = trifle__url_scheme_driver(u.scheme);
    if (scheme_needs_authority(u.scheme) && strncmp(url + slen, "://", 3) != 0) {
        rc = trifle__error(err, TRIFLE_ECONFIG, BAD_URL "expected %s:// at the start", u.scheme);
        goto done;
    }
    query = strchr(url, '?');
    if ((u.base = trifle__strndup(url, query != NULL ? (size_t)(query - url) : strlen(url))) ==
        NULL) {
        rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
        goto done;
    }
    if (strncmp(u.base + slen, "://", 3) == 0) {
        find_password(u.base + slen + 3, &pw, &pwlen);
        if (pw != NULL && (rc = add_secret(&u, pw, pwlen)) != 0) {
            rc = trifle__error(err, rc, "out of memory");
            goto done;
        }
    }
    if (query != NULL && query[1] != '\0') {
        for (p = query + 1;; p += seg + 1) {
            seg = strcspn(p, "&");
            if ((rc = parse_param(&u, p, seg, &cap, err)) != 0)
                goto done;
            if (p[seg] == '\0')
                break;
        }
    }
    *out = u;
    return 0;
done:
    trifle__url_free(&u);
    return rc;
}

/* Bounded writer used by the masking code: counts what it would write. */
typedef struct out_buf {
    char *buf;
    size_t size, len;
} out_buf;

static void out_put(out_buf *o, const char *s, size_t n)
{
    size_t room;

    if (o->size > 0 && o->len < o->size - 1) {
        room = o->size - 1 - o->len;
        memcpy(o->buf + o->len, s, n < room ? n : room);
    }
    o->len += n;
}

size_t trifle__url_mask(char *buf, size_t size, const char *url)
{
    out_buf o = {buf, size, 0};
    const char *query, *p, *pw, *eq;
    size_t slen, pwlen, seg, baselen;

    if (url == NULL)
        url = "";
    query = strchr(url, '?');
    baselen = query != NULL ? (size_t)(query - url) : strlen(url);
    slen = scheme_len(url);
    pw = NULL;
    pwlen = 0;
    if (slen > 0 && strncmp(url + slen, "://", 3) == 0 && slen + 3 <= baselen)
        find_password(url + slen + 3, &pw, &pwlen);
    if (pw != NULL && pw < url + baselen) {
        out_put(&o, url, (size_t)(pw - url));
        out_put(&o, "***", 3);
        out_put(&o, pw + pwlen, baselen - (size_t)(pw + pwlen - url));
    } else {
        out_put(&o, url, baselen);
    }
    if (query != NULL) {
        out_put(&o, "?", 1);
        for (p = query + 1;; p += seg + 1) {
            seg = strcspn(p, "&");
            eq = memchr(p, '=', seg);
            if (eq != NULL && names_password(p, (size_t)(eq - p))) {
                out_put(&o, p, (size_t)(eq + 1 - p));
                out_put(&o, "***", 3);
            } else {
                out_put(&o, p, seg);
            }
            if (p[seg] == '\0')
                break;
            out_put(&o, "&", 1);
        }
    }
    if (size > 0)
        buf[o.len < size ? o.len : size - 1] = '\0';
    return o.len;
}

/* Does a secret of length n start at msg[i]? Short secrets must sit in `:pw@` or `password=pw`. */
static int secret_at(const char *msg, size_t i, const char *s, size_t n)
{
    if (strncmp(msg + i, s, n) != 0)
        return 0;
    if (n >= 3)
        return 1;
    if (i >= 1 && msg[i - 1] == ':' && msg[i + n] == '@')
        return 1;
    return i >= 9 && names_password(msg + i - 9, 8) && msg[i - 1] == '=';
}

void trifle__url_scrub(const trifle__url *u, char *msg, size_t size)
{
    char tmp[1024];
    out_buf o = {tmp, sizeof(tmp), 0};
    size_t i = 0, k, n;
    int changed = 0;

    if (u == NULL || u->n_secrets == 0 || msg == NULL || size == 0)
        return;
    while (msg[i] != '\0') {
        for (k = 0; k < u->n_secrets; k++) {
            n = strlen(u->secrets[k]);
            if (n > 0 && secret_at(msg, i, u->secrets[k], n))
                break;
        }
        if (k < u->n_secrets) {
            out_put(&o, "***", 3);
            i += n;
            changed = 1;
        } else {
            out_put(&o, msg + i, 1);
            i++;
        }
    }
    if (!changed)
        return;
    tmp[o.len < sizeof(tmp) ? o.len : sizeof(tmp) - 1] = '\0';
    tu_strlcpy_utf8(msg, tmp, size);
}

size_t trifle_url_mask(char *buf, size_t size, const char *url)
{
    return trifle__url_mask(buf, size, url);
}
