/* A counting allocator for the core (trifle_set_allocator) that can fail one allocation (or every
 * one after a budget), for the
 * out-of-memory loops of the unit tests: run an operation with allocation 1, 2, ... failing until
 * it succeeds, and check after each run that no block is left (oom_live == 0). Linked from the
 * unit_support library. Not thread-safe: it counts every call. */
#ifndef TRIFLE_TEST_OOM_ALLOC_H
#define TRIFLE_TEST_OOM_ALLOC_H

/* The allocation that fails (1-based, -1 = none), the allocations counted since oom_begin(), and
 * the blocks allocated and not yet freed since then. */
extern long oom_fail_at, oom_calls, oom_live;

/* How many more allocations may succeed (-1, the default: any number); once it is 0 every
 * allocation fails, for loops that fail allocation N and every later one. Set it while the
 * allocator is installed (oom_begin(-1)). */
extern long oom_budget;

/* Reset the counters, fail allocation fail_at (-1: none) and install the allocator. */
void oom_begin(long fail_at);

/* Put the default allocator back. */
void oom_end(void);

#endif
