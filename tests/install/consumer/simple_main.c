/* Uses the installed libtrifle-simple: counts, reads the count back, renders the JSON tree. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <trifle/simple.h>

int main(void)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    int64_t v = 0;
    char *json = NULL;
    int ok;

    if (trifle_simple_incr("install", "runs", 2, &err) != 0 ||
        trifle_simple_get("install", "runs", &v, &err) != 0 ||
        trifle_simple_render_json(&json, &err) != 0) {
        fprintf(stderr, "simple: %s\n", err.message);
        return 1;
    }
    ok = v == 2 && strstr(json, "\"runs\"") != NULL;
    printf("simple %s runs=%lld\n", ok ? "ok" : "wrong", (long long)v);
    trifle_mem_free(json);
    return ok ? 0 : 1;
}
