/* Fuzz target: the server's request-body JSON validator and member iteration (server/json.c). Every
 * accepted document is walked completely: members, the last-wins lookup and string decoding, and
 * a span must stay inside the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "srv_int.h"

static void walk(const srv_json *v, const char *lo, const char *hi, int depth)
{
    srv_json_iter it;
    srv_json name, value, found;

    if (v->p < lo || v->p + v->n > hi)
        abort(); /* a span outside the input */
    if (depth > 600)
        abort(); /* deeper than the validator allows */
    if (v->type == SRV_JSON_STRING) {
        char *s = NULL;
        size_t len = 0;
        if (srv_json_string_dup(&s, &len, v) == 0)
            free(s);
        return;
    }
    if (v->type != SRV_JSON_OBJECT)
        return;
    srv_json_members(&it, v);
    while (srv_json_next(&it, &name, &value)) {
        char *key = NULL;
        size_t len = 0;
        walk(&name, lo, hi, depth + 1);
        walk(&value, lo, hi, depth + 1);
        if (srv_json_string_dup(&key, &len, &name) == 0) {
            if (strlen(key) == len && !srv_json_get(v, key, &found))
                abort(); /* a member that iteration shows must be found by name */
            free(key);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    srv_json root;
    char *copy = malloc(size + 1);

    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    if (srv_json_parse(&root, copy, size) == 0)
        walk(&root, copy, copy + size, 0);
    free(copy);
    return 0;
}
