/* Driver URLs (SPEC §11.2, §7.1, ERRATA B6): scheme → driver name, the query string split and
 * percent-decoded, the generic parameters taken out, passwords masked. Never installed. */
#ifndef TRIFLE_URL_INT_H
#define TRIFLE_URL_INT_H

#include <stddef.h>

#include "trifle/error.h"

/* The most secrets (passwords) one URL can carry that messages must never show. */
#define TRIFLE__URL_MAX_SECRETS 4

/* A parsed driver URL. Every string is owned by the struct (trifle__url_free()). */
typedef struct trifle__url {
    char *scheme;        /* lower-cased scheme without ':' ("postgresql") */
    const char *driver;  /* static built-in driver name ("postgres"), NULL for another scheme */
    char *base;          /* the URL without "?query", byte for byte; what the driver opens */
    char **params;       /* decoded driver parameters: name, value, name, value, ..., NULL */
    size_t n_params;     /* number of name/value pairs in params */
    int joined;          /* `joined` parameter as a trifle_id_mode, -1 when absent */
    char *separator;     /* `separator` parameter, NULL when absent */
    int system_tracking; /* `system_tracking` parameter: 0 or 1, -1 when absent */
    char
        *secrets[TRIFLE__URL_MAX_SECRETS]; /* passwords (raw and decoded), to scrub from messages */
    size_t n_secrets;
} trifle__url;

/* Parse url. On success *out owns its strings; on failure *out is empty (free is still fine).
 * Errors: TRIFLE_ECONFIG `driver required` (NULL/empty), `invalid driver URL: <reason>`,
 * `invalid driver URL: TLS is not supported by this build` (rediss), `invalid identifier mode:
 * <v>`, `separator must be 1 to 16 bytes without NUL`, `invalid option system_tracking: <v>`;
 * TRIFLE_ENOMEM. An unknown scheme is not an error here: out->driver is NULL. */
int trifle__url_parse(trifle__url *out, const char *url, trifle_error *err);
void trifle__url_free(trifle__url *u);

/* The built-in driver name for a lower-case scheme, or NULL. */
const char *trifle__url_scheme_driver(const char *scheme);

/* Write url into buf with every password replaced by `***` (the userinfo password and the value
 * of any query parameter whose name contains "password"). Returns the length the masked URL
 * needs; it was cut when that is >= size. Never fails; size 0 writes nothing. */
size_t trifle__url_mask(char *buf, size_t size, const char *url);

/* Replace each of the URL's secrets found in msg (a NUL-terminated buffer of size bytes) by `***`.
 * Secrets shorter than 3 bytes are only replaced in the shapes `:<pw>@` and `password=<pw>`, so a
 * one-letter password does not garble the message. */
void trifle__url_scrub(const trifle__url *u, char *msg, size_t size);

/* Identifier modes by name: full | partial | separated (none, null), case-insensitive.
 * Returns the trifle_id_mode or -1. */
int trifle__id_mode_parse(const char *text);
/* "full", "partial", "separated", or NULL for an unknown mode. */
const char *trifle__id_mode_name(int mode);
/* 0 when sep is a valid separator (1..16 bytes; NUL cannot occur in a C string). */
int trifle__separator_check(const char *sep);

#endif
