/* Bearer tokens (SPEC §9.2, §12.1): SHA-256 digests at rest, a constant-time search over every
 * configured digest, and the zero-config token file.
 *
 * SHA-256 comes from GLib's GChecksum: GLib is already a dependency of libtrifle (time zones), so
 * the server adds no crypto library for one hash of at most 512 bytes per request. */
#include "srv_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>

#define TOKENS_FILE "tokens"
#define TOKENS_TMP "tokens.tmp"

/* memset that the compiler cannot drop (explicit_bzero is not POSIX). */
static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;

    while (n-- > 0)
        *v++ = 0;
}

int srv_sha256(unsigned char out[32], const void *data, size_t n)
{
    GChecksum *c = g_checksum_new(G_CHECKSUM_SHA256);
    gsize len = 32;

    if (c == NULL)
        return TRIFLE_ENOMEM;
    g_checksum_update(c, data, (gssize)n);
    g_checksum_get_digest(c, out, &len);
    g_checksum_free(c);
    return len == 32 ? 0 : TRIFLE_ERROR;
}

void srv_hex_encode(char out[65], const unsigned char d[32])
{
    static const char hex[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < 32; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[64] = '\0';
}

int srv_hex_decode(unsigned char out[32], const char *hex)
{
    if (strlen(hex) != 64)
        return -1;
    return tu_hex_decode(out, hex, 32);
}

int srv_token_generate(char out[SRV_TOKEN_TEXT_SIZE])
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char raw[33];
    size_t got = 0, i, o = 4;

    while (got < 32) {
        ssize_t r = getrandom(raw + got, 32 - got, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        got += (size_t)r;
    }
    raw[32] = 0;
    memcpy(out, "trf_", 4);
    /* 32 bytes = 10 groups of 3 + 2 bytes: 40 + 3 characters, no padding */
    for (i = 0; i < 32; i += 3) {
        unsigned v =
            (unsigned)raw[i] << 16 | (unsigned)raw[i + 1] << 8 | (i + 2 < 32 ? raw[i + 2] : 0);
        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = b64[v >> 6 & 63];
        if (i + 2 < 32)
            out[o++] = b64[v & 63];
    }
    out[o] = '\0';
    wipe(raw, sizeof(raw));
    return 0;
}

int srv_token_syntax_ok(const char *token, size_t n)
{
    size_t i;

    if (n < 16 || n > 512)
        return 0;
    for (i = 0; i < n; i++)
        if ((unsigned char)token[i] < 0x21 || (unsigned char)token[i] > 0x7E)
            return 0;
    return 1;
}

const srv_token *srv_token_find(const srv_config *c, const char *token, size_t n, int64_t now)
{
    unsigned char digest[32];
    size_t i, j, match = SIZE_MAX;

    if (srv_sha256(digest, token, n) != 0)
        return NULL;
    /* every digest is compared in full, whatever matched before: no early exit */
    for (i = 0; i < c->n_tokens; i++) {
        unsigned diff = 0;
        size_t mask;
        for (j = 0; j < 32; j++)
            diff |= (unsigned)(digest[j] ^ c->tokens[i].sha256[j]);
        /* mask = all ones when diff == 0, without a branch on the secret */
        mask = (size_t)0 - (size_t)(((diff | (0u - diff)) >> (sizeof(unsigned) * 8 - 1)) ^ 1u);
        match = (match & ~mask) | (i & mask);
    }
    wipe(digest, sizeof(digest));
    if (match == SIZE_MAX)
        return NULL;
    if (c->tokens[match].has_expiry && now >= c->tokens[match].expires_at)
        return NULL;
    return &c->tokens[match];
}

void srv_token_grant(const srv_token *t, size_t index, int *read, int *write)
{
    size_t i;

    *read = 0;
    *write = 0;
    for (i = 0; i < t->n_grants; i++) {
        const srv_grant *g = &t->grants[i];
        if (g->source == -1 || (size_t)g->source == index) {
            *read |= g->read;
            *write |= g->write;
        }
    }
}

/* ------------------------------------------------------------------------------------------- */
/* The zero-config token file                                                                   */

static int errno_error(trifle_error *err, const char *what)
{
    char reason[128];

    if (strerror_r(errno, reason, sizeof(reason)) != 0)
        (void)snprintf(reason, sizeof(reason), "error %d", errno);
    return srv_error(err, TRIFLE_ERROR, "%s: %s", what, reason);
}

/* Digests stored in the file, one per line ("# ..." comments allowed). */
static int read_digests(srv_config *c, int fd, trifle_error *err)
{
    char buf[8192], line[128];
    size_t len = 0, n = 0, i, ln = 0;
    ssize_t r;

    for (;;) {
        r = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno_error(err, "data_dir/" TOKENS_FILE);
        if (r == 0)
            break;
        len += (size_t)r;
        if (len == sizeof(buf) - 1)
            break;
    }
    buf[len] = '\0';
    for (i = 0; i <= len; i++) {
        if (i < len && buf[i] != '\n') {
            if (ln < sizeof(line) - 1)
                line[ln++] = buf[i];
            continue;
        }
        line[ln] = '\0';
        while (ln > 0 && (line[ln - 1] == '\r' || line[ln - 1] == ' '))
            line[--ln] = '\0';
        if (ln > 0 && line[0] != '#') {
            srv_token *t = realloc(c->tokens, (c->n_tokens + 1) * sizeof(*t));
            if (t == NULL)
                return srv_error(err, TRIFLE_ENOMEM, "out of memory");
            c->tokens = t;
            t = &c->tokens[c->n_tokens];
            memset(t, 0, sizeof(*t));
            if (srv_hex_decode(t->sha256, line) != 0)
                return srv_error(err, TRIFLE_ECONFIG,
                                 "%s/" TOKENS_FILE ": line %zu is not a SHA-256 hex digest",
                                 c->data_dir, n + 1);
            c->n_tokens++;
            n++;
        }
        ln = 0;
    }
    if (n == 0)
        return srv_error(err, TRIFLE_ECONFIG, "%s/" TOKENS_FILE ": no token digest", c->data_dir);
    return 0;
}

/* Write the digest to tokens.tmp (0600), fsync, rename over tokens, fsync the directory. */
static int write_digest(int data_fd, const char *hex, trifle_error *err)
{
    char text[160];
    int fd, n;

    n = snprintf(text, sizeof(text), "# SHA-256 of the zero-config token of trifle serve\n%s\n",
                 hex);
    fd = openat(data_fd, TOKENS_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return errno_error(err, "data_dir/" TOKENS_TMP);
    if (write(fd, text, (size_t)n) != n || fsync(fd) != 0) {
        int rc = errno_error(err, "data_dir/" TOKENS_TMP);
        close(fd);
        (void)unlinkat(data_fd, TOKENS_TMP, 0);
        return rc;
    }
    close(fd);
    if (renameat(data_fd, TOKENS_TMP, data_fd, TOKENS_FILE) != 0) {
        int rc = errno_error(err, "data_dir/" TOKENS_FILE);
        (void)unlinkat(data_fd, TOKENS_TMP, 0);
        return rc;
    }
    (void)fsync(data_fd);
    return 0;
}

int srv_tokens_file_load(srv_config *c, int data_fd, trifle_error *err)
{
    char token[SRV_TOKEN_TEXT_SIZE], hex[65], line[256];
    srv_token *t;
    size_t i;
    int fd, rc;

    fd = openat(data_fd, TOKENS_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
        rc = read_digests(c, fd, err);
        close(fd);
    } else if (errno != ENOENT) {
        return errno_error(err, "data_dir/" TOKENS_FILE);
    } else {
        unsigned char digest[32];
        if (srv_token_generate(token) != 0)
            return errno_error(err, "getrandom");
        if ((rc = srv_sha256(digest, token, strlen(token))) != 0)
            return srv_error(err, rc, "cannot hash the token");
        srv_hex_encode(hex, digest);
        if ((rc = write_digest(data_fd, hex, err)) != 0)
            return rc;
        if ((t = realloc(c->tokens, (c->n_tokens + 1) * sizeof(*t))) == NULL)
            return srv_error(err, TRIFLE_ENOMEM, "out of memory");
        c->tokens = t;
        memset(&t[c->n_tokens], 0, sizeof(*t));
        memcpy(t[c->n_tokens].sha256, digest, 32);
        c->n_tokens++;
        /* printed once: only its digest is kept */
        (void)snprintf(line, sizeof(line),
                       "trifle serve: generated access token (shown once, stored hashed in "
                       "%s/" TOKENS_FILE "):\n  %s\n",
                       c->data_dir, token);
        if (write(STDERR_FILENO, line, strlen(line)) < 0) {
            /* nothing better to do: the token can be regenerated by deleting the file */
        }
        wipe(token, sizeof(token));
        wipe(line, sizeof(line));
        rc = 0;
    }
    if (rc != 0)
        return rc;
    for (i = 0; i < c->n_tokens; i++) {
        t = &c->tokens[i];
        if (t->name != NULL)
            continue;
        t->admin = 1;
        if ((t->name = strdup("zero-config")) == NULL ||
            (t->grants = calloc(1, sizeof(*t->grants))) == NULL)
            return srv_error(err, TRIFLE_ENOMEM, "out of memory");
        t->grants[0].source = -1;
        t->grants[0].read = 1;
        t->grants[0].write = 1;
        t->n_grants = 1;
    }
    return 0;
}
