/* Store outages in the log: one warning when a source's flushes start failing (what failed, how
 * much is pending), one summary a minute while they keep failing, one line when a flush works
 * again (how long it lasted, how much the recovery stored). The buffer retries a failed flush on
 * its own with backoff, so a line per failed flush said nothing new after the first: a 3 s
 * PostgreSQL outage under load wrote 499 identical warnings.
 *
 * Two feeds: the buffer's error handler (any thread, per failed flush) keeps the latest message
 * under a mutex and does nothing else, since it runs inside the flush and must not call back into
 * the handle; the main thread's periodic tick (serve.c, at least once a second) reads the buffer
 * counters and decides. An outage starts when flush_errors grows, and ends when `flushes` (flush
 * attempts that wrote everything they took) grew while flush_errors did not. */
#include "srv_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* A summary line at most this often while an outage lasts. */
#define OUTAGE_SUMMARY_MS 60000

int srv_outage_init(srv_outage *o)
{
    memset(o, 0, sizeof(*o));
    if (pthread_mutex_init(&o->lock, NULL) != 0)
        return TRIFLE_ERROR;
    o->initialised = 1;
    return 0;
}

void srv_outage_destroy(srv_outage *o)
{
    if (o->initialised)
        pthread_mutex_destroy(&o->lock);
    o->initialised = 0;
}

void srv_outage_failed(srv_outage *o, const trifle_error *err)
{
    pthread_mutex_lock(&o->lock);
    (void)snprintf(o->message, sizeof(o->message), "%s%s%s",
                   err->driver[0] != '\0' ? err->driver : "", err->driver[0] != '\0' ? ": " : "",
                   err->message[0] != '\0' ? err->message : trifle_strerror(err->code));
    pthread_mutex_unlock(&o->lock);
}

static void last_message(srv_outage *o, char *out, size_t size)
{
    pthread_mutex_lock(&o->lock);
    (void)snprintf(out, size, "%s", o->message[0] != '\0' ? o->message : "(no message)");
    pthread_mutex_unlock(&o->lock);
}

void srv_outage_tick(srv_outage *o, const char *source, const trifle_buffer_counters *c,
                     int64_t now_ms)
{
    char msg[sizeof(o->message)];

    /* seen_errors starts at 0: failed flushes of the replay in trifle_open(), before the first
     * tick, start an outage too */
    if (!o->active) {
        if (c->flush_errors > o->seen_errors) {
            last_message(o, msg, sizeof(msg));
            o->active = 1;
            o->started_ms = now_ms;
            o->summary_ms = now_ms;
            o->errors_at_start = o->seen_errors;
            o->errors_at_summary = o->seen_errors;
            o->flushes_at_error = c->flushes;
            srv_log(TRIFLE_LOG_WARN,
                    "source %s: writing to the store failed: %s; %" PRIu64
                    " entries pending, kept and retried (next report in a minute or when it works)",
                    source, msg, c->pending_entries);
        }
    } else if (c->flush_errors > o->seen_errors) {
        o->flushes_at_error = c->flushes;
    } else if (c->flushes > o->flushes_at_error) {
        int64_t ms = now_ms - o->started_ms;
        o->active = 0;
        srv_log(TRIFLE_LOG_INFO,
                "source %s: the store works again after %" PRId64 ".%01d s: %" PRIu64
                " failed flushes; stored the %" PRIu64 " entries that were pending, %" PRIu64
                " pending now",
                source, ms / 1000, (int)(ms % 1000 / 100), c->flush_errors - o->errors_at_start,
                o->pending_seen, c->pending_entries);
    }
    if (o->active && now_ms - o->summary_ms >= OUTAGE_SUMMARY_MS) {
        int64_t ms = now_ms - o->started_ms;
        last_message(o, msg, sizeof(msg));
        srv_log(TRIFLE_LOG_WARN,
                "source %s: the store still fails after %" PRId64 " s: %" PRIu64
                " failed flushes in the last minute (%" PRIu64 " in all), %" PRIu64
                " entries pending; last error: %s",
                source, ms / 1000, c->flush_errors - o->errors_at_summary,
                c->flush_errors - o->errors_at_start, c->pending_entries, msg);
        o->summary_ms = now_ms;
        o->errors_at_summary = c->flush_errors;
    }
    o->seen_errors = c->flush_errors;
    if (o->active && c->pending_entries > o->pending_seen)
        o->pending_seen = c->pending_entries;
    if (!o->active)
        o->pending_seen = c->pending_entries;
}
