/* The server's own counters (SPEC §10.9): the request path adds to relaxed atomics
 * (srv_count), and srv_counters_refresh() (admin.c) moves the deltas into Simple Stats. Apart
 * from admin.c because the transport (http.c) counts too, and admin.c's handlers use the
 * transport: with the counters in admin.c the two called each other. */
#include "srv_int.h"

static const struct {
    const char *category;
    const char *name;
} counter_names[SRV_COUNTER__COUNT] = {
    [SRV_HTTP_REQUESTS] = {"http", "requests"},   [SRV_HTTP_2XX] = {"http", "responses.2xx"},
    [SRV_HTTP_3XX] = {"http", "responses.3xx"},   [SRV_HTTP_4XX] = {"http", "responses.4xx"},
    [SRV_HTTP_5XX] = {"http", "responses.5xx"},   [SRV_HTTP_BYTES_IN] = {"http", "bytes_in"},
    [SRV_HTTP_BYTES_OUT] = {"http", "bytes_out"}, [SRV_API_GET] = {"api", "metrics.get"},
    [SRV_API_TRACK] = {"api", "metrics.track"},   [SRV_API_ASSERT] = {"api", "metrics.assert"},
    [SRV_API_QUERY] = {"api", "metrics.query"},   [SRV_API_AUTH_FAILED] = {"api", "auth_failed"},
};

static atomic_uint_fast64_t pending[SRV_COUNTER__COUNT];

void srv_count(int counter, uint64_t delta)
{
    atomic_fetch_add_explicit(&pending[counter], delta, memory_order_relaxed);
}

void srv_counters_flush(void)
{
    size_t i;

    for (i = 0; i < SRV_COUNTER__COUNT; i++) {
        uint64_t d = atomic_exchange_explicit(&pending[i], 0, memory_order_relaxed);
        while (d > 0) {
            int64_t step = d > INT64_MAX ? INT64_MAX : (int64_t)d;
            (void)trifle_simple_incr(counter_names[i].category, counter_names[i].name, step, NULL);
            d -= (uint64_t)step;
        }
    }
}
