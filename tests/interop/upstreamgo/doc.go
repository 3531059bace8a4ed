// Package triflestats is a stand-in for github.com/trifle-io/trifle_stats_go (HEAD a8de216).
//
// The interop tests of trifle-c are meant to run against the upstream Go library. The Go module
// proxy reachable from this project's machines refuses that module (HTTP 403 "This module
// version is not available" for its version list, for @main, for a8de216 and for the
// pseudo-version that trifle-cli pins), so this package reproduces the parts of upstream that
// touch storage, from notes taken while reading and running upstream (docs/compatibility.md):
//
//   - the exported API used by the tests, with upstream's names and signatures (Config,
//     DefaultConfig, Track, Assert, Values, Untracked, the five drivers and their Setup);
//   - Nocturnal floor/add/timeline with Go's time.Date resolution (reference §2), including the
//     week floor on elapsed hours and the never-re-flooring timeline;
//   - the key joins, identifier modes and system tracking (§3);
//   - Pack/Unpack, including Unpack's random merge order (§4);
//   - each driver's exact statements and commands (§6): SQLite's unquoted json_set paths in
//     batches of 10, PostgreSQL's client-side read-modify-write, Redis HINCRBY/HINCRBYFLOAT/HSET,
//     MongoDB $inc (float64) / $set with dotted paths in an ordered bulk write, MySQL's
//     JSON_SET upserts with DECIMAL(65,10) increments (on MariaDB with JSON_EXTRACT(?, '$') in
//     place of the MySQL-only CAST(? AS JSON), see driver_mysql.go);
//   - the drivers use the same client libraries and versions as upstream's go.mod.
//
// Not modelled: the write buffer (tests run with BufferEnabled = false, so upstream writes
// straight to the driver too), Series and everything after Values.
//
// To run the interop tests against the real library instead, point the replace directive in
// tests/interop/go.mod at a checkout of it (see docs/compatibility.md).
package triflestats
