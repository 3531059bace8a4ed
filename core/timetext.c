/* Time text: RFC 3339 output (SPEC conventions) and the time argument parser shared by the HTTP
 * API (SPEC §9.1) and the CLI (SPEC §11.3, ERRATA minor 22).
 *
 * Output falls back to UTC with `Z` when the offset is not whole minutes (SPEC) and, beyond the
 * SPEC, when the local year would have five digits (9999-12-31 east of UTC), so that every instant
 * in range prints as RFC 3339 this parser reads back.
 *
 * Leap seconds: `:60` is rejected. Instants are Unix seconds, which have no leap seconds, and
 * accepting 23:59:60 would make two different texts name the same instant; an explicit
 * `invalid time` is clearer than a silent shift. */
#include "trifle/time.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "error_int.h"
#include "nocturnal_int.h"

static char *put_digits(char *p, int64_t v, int width)
{
    for (int i = width - 1; i >= 0; i--, v /= 10)
        p[i] = (char)('0' + v % 10);
    return p + width;
}

size_t trifle_time_format(char *buf, size_t size, int64_t at, const trifle_zone *zone)
{
    if (buf == NULL || size == 0)
        return 0;
    int32_t off = trifle_zone_offset(zone, at);
    if (off % 60 != 0 || at > INT64_MAX - 86400 || at < INT64_MIN + 86400)
        off = 0; /* not whole minutes: print in UTC (and never overflow at + off) */
    trifle__civil c;
    trifle__civil_from_wall(&c, at + off);
    if (off != 0 && (c.year < 0 || c.year > 9999)) {
        /* the last hours of 9999 east of UTC: RFC 3339 has no year 10000, UTC still fits */
        off = 0;
        trifle__civil_from_wall(&c, at);
    }
    char text[48], *p = text;
    if (c.year >= 0 && c.year <= 9999) {
        /* by hand: snprintf costs ten times more and the server formats every bucket */
        p = put_digits(p, c.year, 4);
    } else {
        /* outside RFC 3339's years (never for instants in range): as many digits as needed */
        int n = snprintf(p, 24, "%" PRId64, c.year);
        p += n > 0 ? n : 0;
    }
    *p++ = '-';
    p = put_digits(p, c.month, 2);
    *p++ = '-';
    p = put_digits(p, c.day, 2);
    *p++ = 'T';
    p = put_digits(p, c.hour, 2);
    *p++ = ':';
    p = put_digits(p, c.minute, 2);
    *p++ = ':';
    p = put_digits(p, c.second, 2);
    if (off == 0) {
        *p++ = 'Z';
    } else {
        int32_t a = off < 0 ? -off : off;
        *p++ = off < 0 ? '-' : '+';
        p = put_digits(p, a / 3600, 2);
        *p++ = ':';
        p = put_digits(p, a / 60 % 60, 2);
    }
    size_t len = (size_t)(p - text) < size ? (size_t)(p - text) : size - 1;
    memcpy(buf, text, len);
    buf[len] = '\0';
    return len;
}

/* ---------------------------------------------------------------------------------------------
 * Parsing */

typedef struct cursor {
    const char *p;
    const char *end;
} cursor;

static int at_end(const cursor *c)
{
    return c->p == c->end;
}

static int is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* Exactly @p n ASCII digits. */
static int take_digits(cursor *c, int n, int *out)
{
    int v = 0;
    if (c->end - c->p < n)
        return 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit(c->p[i]))
            return 0;
        v = v * 10 + (c->p[i] - '0');
    }
    c->p += n;
    *out = v;
    return 1;
}

static int take_char(cursor *c, char ch)
{
    if (at_end(c) || *c->p != ch)
        return 0;
    c->p++;
    return 1;
}

static int is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

/* `[+-]digits` as a whole, into *out; 0 on syntax error or overflow. */
static int parse_integer(cursor *c, int64_t *out)
{
    int neg = 0;
    if (take_char(c, '-'))
        neg = 1;
    else
        (void)take_char(c, '+');
    if (at_end(c))
        return 0;
    uint64_t v = 0;
    for (; !at_end(c); c->p++) {
        if (!is_digit(*c->p) || v > (UINT64_C(1) << 62) / 5) /* v * 10 + 9 < 2^64 */
            return 0;
        v = v * 10 + (uint64_t)(*c->p - '0');
    }
    if (v > (uint64_t)INT64_MAX)
        return 0;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 1;
}

/* The numeric offset after its sign: HH:MM or HHMM, hours 00-23, minutes 00-59. */
static int parse_offset_digits(cursor *c, int32_t *out)
{
    int oh, om;
    if (!take_digits(c, 2, &oh))
        return 0;
    (void)take_char(c, ':');
    if (!take_digits(c, 2, &om) || oh > 23 || om > 59)
        return 0;
    *out = oh * 3600 + om * 60;
    return 1;
}

typedef enum parsed_kind { PARSED_INSTANT, PARSED_WALL } parsed_kind;

/* Parse a trimmed, non-empty date/time text: YYYY-MM-DD[(T|t| )HH:MM[:SS[.fraction]][offset]].
 * Returns 0 on syntax or field error; otherwise the kind and *value (an instant, or wall seconds
 * for texts without offset, which only the CLI accepts). */
static int parse_datetime(cursor *c, int64_t *value, parsed_kind *kind)
{
    int year, month, day, hour = 0, minute = 0, second = 0, has_seconds = 0;
    if (!take_digits(c, 4, &year) || !take_char(c, '-') || !take_digits(c, 2, &month) ||
        !take_char(c, '-') || !take_digits(c, 2, &day))
        return 0;
    if (month < 1 || month > 12 || day < 1 || day > tu_days_in_month(year, month))
        return 0;
    int64_t date = tu_days_from_civil(year, month, day) * 86400;
    if (at_end(c)) {
        *value = date; /* local midnight */
        *kind = PARSED_WALL;
        return 1;
    }
    if (!(take_char(c, 'T') || take_char(c, 't') || take_char(c, ' ')))
        return 0;
    if (!take_digits(c, 2, &hour) || !take_char(c, ':') || !take_digits(c, 2, &minute))
        return 0;
    if (take_char(c, ':')) {
        if (!take_digits(c, 2, &second))
            return 0;
        has_seconds = 1;
    }
    if (hour > 23 || minute > 59 || second > 59)
        return 0;
    int64_t wall = date + hour * 3600 + minute * 60 + second;
    if (at_end(c)) {
        *value = wall;
        *kind = PARSED_WALL;
        return 1;
    }
    if (!has_seconds) /* with an offset the seconds are mandatory */
        return 0;
    if (take_char(c, '.')) { /* fraction: floored, i.e. ignored, as instants are whole seconds */
        if (at_end(c) || !is_digit(*c->p))
            return 0;
        while (!at_end(c) && is_digit(*c->p))
            c->p++;
    }
    int32_t off = 0;
    if (take_char(c, 'Z') || take_char(c, 'z')) {
        off = 0;
    } else if (take_char(c, '+') || take_char(c, ' ')) {
        /* ' ': a query string's form-decoded '+' (SPEC §9.1) */
        if (!parse_offset_digits(c, &off))
            return 0;
    } else if (take_char(c, '-')) {
        if (!parse_offset_digits(c, &off))
            return 0;
        off = -off;
    } else {
        return 0;
    }
    if (!at_end(c))
        return 0;
    *value = wall - off;
    *kind = PARSED_INSTANT;
    return 1;
}

int trifle_time_parse(int64_t *out, const char *text, const trifle_zone *zone, int flags,
                      trifle_error *err)
{
    if (text == NULL)
        return trifle__error(err, TRIFLE_EINVAL, "invalid time: ");
    cursor c = {text, text + strlen(text)};
    while (c.p < c.end && is_space(*c.p))
        c.p++;
    while (c.end > c.p && is_space(c.end[-1]))
        c.end--;
    int cli = (flags & TRIFLE_TIME_CLI) != 0;
    int64_t at;
    parsed_kind kind = PARSED_INSTANT;
    size_t len = (size_t)(c.end - c.p);
    if (cli && len == 3 && memcmp(c.p, "now", 3) == 0) {
        at = (int64_t)time(NULL);
    } else if (cli && take_char(&c, '@')) {
        if (!parse_integer(&c, &at))
            return trifle__error(err, TRIFLE_EINVAL, "invalid time: %s", text);
    } else if (len == 0 || !parse_datetime(&c, &at, &kind) || (kind == PARSED_WALL && !cli)) {
        return trifle__error(err, TRIFLE_EINVAL, "invalid time: %s", text);
    }
    if (kind == PARSED_WALL)
        at = trifle__resolve(zone, at, 0, 0);
    if (!trifle__time_in_range(at))
        return trifle__error(err, TRIFLE_EINVAL, "time out of range");
    if (out != NULL)
        *out = at;
    return 0;
}
