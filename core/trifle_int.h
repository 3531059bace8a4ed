/* Internal helpers of the stats handle for the tests. Never installed. */
#ifndef TRIFLE_TRIFLE_INT_H
#define TRIFLE_TRIFLE_INT_H

/* Drop a handle the way a crashed process would: nothing pending is flushed or written, the flush
 * thread stops, the journal is closed (its lock released) and everything is freed. For tests of
 * the journal's replay that need an in-process store (the fake driver); a real crash is a child
 * process that is killed. */
struct trifle;
void trifle__abandon(struct trifle *t);

#endif
