// trifle-bench-go: the trifle_stats_go side of the side-by-side benchmarks (bench/run.sh,
// docs/BENCHMARKS.md). Same subcommands, workload and JSON lines as bench/bench.c:
//
//	trifle-bench-go track  URL N [--buffered]   N Track calls, unbuffered or with the library's
//	                                            default buffer, then ShutdownBuffer
//	trifle-bench-go inproc N [--rounds R]       Track into a buffer that never flushes while timed
//	trifle-bench-go flush  URL N                N calls into distinct minutes, held, one timed flush
//	trifle-bench-go values URL [--reps R] [--buckets K]
//	                                            Values over the 8,760 1h buckets that
//	                                            `trifle-bench fill-year URL` wrote (or over the
//	                                            first K, the time scaled to 8,760)
//	trifle-bench-go memory N                    RSS of N buffered calls into distinct minutes
//
// URLs are trifle-c driver URLs (sqlite:PATH, postgres://, redis://, mongodb://) with the same
// table/prefix/collection parameters, so both sides address the same tables.
package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	trifle "github.com/trifle-io/trifle_stats_go"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

const (
	day0        = 1767225600 // 2026-01-01T00:00:00Z
	yearHours   = 8760
	workloadKey = "bench::event"
)

var granularities = []string{"1m", "1h", "1d"}

func die(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "trifle-bench-go: "+format+"\n", args...)
	os.Exit(1)
}

// workload returns a fresh copy of the tracked values: one key, five leaves, two nested.
func workload() map[string]any {
	return map[string]any{
		"count":    1,
		"duration": 2.5,
		"lines":    241,
		"meta":     map[string]any{"db": 0.25, "cache": map[string]any{"hits": 3}},
	}
}

func workloadAt(i int64) time.Time {
	return time.Unix(day0+(i*7919)%86400, 0).UTC()
}

func statusKB(field string) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, field+":") {
			f := strings.Fields(line[len(field)+1:])
			if len(f) > 0 {
				v, _ := strconv.ParseInt(f[0], 10, 64)
				return v
			}
		}
	}
	return -1
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// progress draws a line on stderr for loops longer than a second, only on a terminal.
type progress struct {
	on          bool
	label       string
	start, next time.Time
}

func newProgress(label string) *progress {
	fi, err := os.Stderr.Stat()
	on := err == nil && fi.Mode()&os.ModeCharDevice != 0
	now := time.Now()
	return &progress{on: on, label: label, start: now, next: now.Add(time.Second)}
}

func (p *progress) step(done, total int64) {
	if !p.on {
		return
	}
	now := time.Now()
	if now.Before(p.next) {
		return
	}
	p.next = now.Add(250 * time.Millisecond)
	fmt.Fprintf(os.Stderr, "\r  %s: %d/%d (%.0f%%) %.1fs ", p.label, done, total,
		100*float64(done)/float64(total), now.Sub(p.start).Seconds())
}

func (p *progress) done() {
	if p.on && p.next.After(p.start.Add(time.Second)) {
		fmt.Fprint(os.Stderr, "\r\033[K")
	}
}

// openDriver builds the upstream driver for a trifle-c driver URL, with its schema set up.
func openDriver(raw string) (trifle.Driver, func()) {
	switch {
	case strings.HasPrefix(raw, "sqlite:"):
		path, params := splitParams(strings.TrimPrefix(raw, "sqlite:"))
		if path == ":memory:" {
			path = "file::memory:"
		}
		return openSQL("sqlite", "sqlite", path, func(db *sql.DB) sqlDriver {
			return trifle.NewSQLiteDriver(db, params.Get("table"), trifle.JoinedFull)
		})
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		u, table := cutParam(raw, "postgres", "table")
		return openSQL("postgres", "pgx", u.String(), func(db *sql.DB) sqlDriver {
			return trifle.NewPostgresDriver(db, table, trifle.JoinedFull)
		})
	case strings.HasPrefix(raw, "redis://"):
		u, prefix := cutParam(raw, "redis", "prefix")
		opt, err := redis.ParseURL(u.String())
		if err != nil {
			die("redis url: %v", err)
		}
		opt.PoolSize = 1
		client := redis.NewClient(opt)
		if err := client.Ping(context.Background()).Err(); err != nil {
			die("redis: %v", err)
		}
		return trifle.NewRedisDriver(client, prefix), func() { _ = client.Close() }
	case strings.HasPrefix(raw, "mongodb://"):
		u, collection := cutParam(raw, "mongo", "collection")
		if collection == "" {
			collection = "trifle_stats"
		}
		database := strings.TrimPrefix(u.Path, "/")
		if database == "" {
			database = "trifle"
		}
		ctx := context.Background()
		client, err := mongo.Connect(ctx, options.Client().ApplyURI(u.String()).SetMaxPoolSize(1))
		if err != nil {
			die("mongo: %v", err)
		}
		d := trifle.NewMongoDriver(client.Database(database).Collection(collection), trifle.JoinedFull)
		if err := d.Setup(ctx); err != nil {
			die("mongo setup: %v", err)
		}
		return d, func() { _ = client.Disconnect(ctx) }
	}
	die("unsupported driver URL: %s", raw)
	return nil, nil
}

// sqlDriver is an upstream SQL driver: a Driver with a Setup that creates its table.
type sqlDriver interface {
	trifle.Driver
	Setup() error
}

// openSQL opens a database/sql connection of driverName to dsn, limited to one connection
// (trifle-c's default; it also keeps sqlite's :memory: one database), and sets up the driver
// newDriver builds on it; what names the backend in errors.
func openSQL(what, driverName, dsn string, newDriver func(*sql.DB) sqlDriver) (trifle.Driver, func()) {
	db, err := sql.Open(driverName, dsn)
	if err != nil {
		die("%s: %v", what, err)
	}
	db.SetMaxOpenConns(1)
	d := newDriver(db)
	if err := d.Setup(); err != nil {
		die("%s setup: %v", what, err)
	}
	return d, func() { _ = db.Close() }
}

// cutParam parses a driver URL and takes trifle-c's parameter param (table, prefix, collection)
// out of its query, which then goes to the client library as it is; what names the backend in
// errors.
func cutParam(raw, what, param string) (*url.URL, string) {
	u, err := url.Parse(raw)
	if err != nil {
		die("%s url: %v", what, err)
	}
	q := u.Query()
	value := q.Get(param)
	q.Del(param)
	u.RawQuery = q.Encode()
	return u, value
}

func splitParams(s string) (string, url.Values) {
	path, query, _ := strings.Cut(s, "?")
	params, err := url.ParseQuery(query)
	if err != nil {
		die("url parameters: %v", err)
	}
	return path, params
}

func newConfig(d trifle.Driver, grans []string) *trifle.Config {
	cfg := trifle.DefaultConfig()
	cfg.Driver = d
	cfg.TimeZone = "UTC"
	cfg.Granularities = grans
	return cfg
}

// holdAll makes the buffer keep everything: synchronous, no timer, a size above n.
func holdAll(cfg *trifle.Config, n int) {
	cfg.BufferEnabled = true
	cfg.BufferAsync = false
	cfg.BufferDuration = 0
	cfg.BufferSize = n + 1
}

func benchTrack(rawURL string, n int64, buffered bool) {
	d, closeDB := openDriver(rawURL)
	defer closeDB()
	cfg := newConfig(d, granularities)
	cfg.BufferEnabled = buffered // buffered: DefaultConfig's 1 s, 256, aggregate, async
	values := workload()
	prog := newProgress(map[bool]string{true: "buffered track", false: "track"}[buffered])
	c0 := cpuSeconds()
	t0 := time.Now()
	for i := int64(0); i < n; i++ {
		if err := trifle.Track(cfg, workloadKey, workloadAt(i), values); err != nil {
			die("track: %v", err)
		}
		if i&1023 == 0 {
			prog.step(i, n)
		}
	}
	t1 := time.Now()
	if err := cfg.ShutdownBuffer(); err != nil {
		die("shutdown: %v", err)
	}
	t2 := time.Now()
	c1 := cpuSeconds()
	prog.done()
	fmt.Printf(`{"bench":"track","impl":"go","buffered":%t,"calls":%d,"threads":1,"seconds":%.6f,`+
		`"calls_per_s":%.1f,"with_close_per_s":%.1f,"cpu_seconds":%.6f,"peak_rss_kb":%d}`+"\n",
		buffered, n, t1.Sub(t0).Seconds(), float64(n)/t1.Sub(t0).Seconds(),
		float64(n)/t2.Sub(t0).Seconds(), c1-c0, statusKB("VmHWM"))
}

func benchInproc(n int64, rounds int) {
	d, closeDB := openDriver("sqlite::memory:")
	defer closeDB()
	cfg := newConfig(d, granularities)
	holdAll(cfg, int(n))
	values := workload()
	wall := make([]float64, rounds)
	cpu := make([]float64, rounds)
	total := make([]float64, rounds)
	for r := 0; r < rounds; r++ {
		c0 := cpuSeconds()
		t0 := time.Now()
		for i := int64(0); i < n; i++ {
			if err := trifle.Track(cfg, workloadKey, workloadAt(i), values); err != nil {
				die("track: %v", err)
			}
		}
		t1 := time.Now()
		c1 := cpuSeconds()
		if err := cfg.FlushBuffer(); err != nil {
			die("flush: %v", err)
		}
		t2 := time.Now()
		wall[r] = float64(n) / t1.Sub(t0).Seconds()
		cpu[r] = float64(n) / (c1 - c0)
		total[r] = float64(n) / t2.Sub(t0).Seconds()
	}
	fmt.Printf(`{"bench":"inproc","impl":"go","calls":%d,"threads":1,"rounds":%d,"calls_per_s":%.1f,`+
		`"calls_per_cpu_s":%.1f,"with_flush_per_s":%.1f,"peak_rss_kb":%d}`+"\n",
		n, rounds, median(wall), median(cpu), median(total), statusKB("VmHWM"))
	_ = cfg.ShutdownBuffer()
}

func benchFlush(rawURL string, n int64) {
	d, closeDB := openDriver(rawURL)
	defer closeDB()
	cfg := newConfig(d, granularities)
	holdAll(cfg, int(n))
	values := workload()
	for i := int64(0); i < n; i++ {
		if err := trifle.Track(cfg, workloadKey, time.Unix(day0+i*60, 0).UTC(), values); err != nil {
			die("track: %v", err)
		}
	}
	t0 := time.Now()
	if err := cfg.FlushBuffer(); err != nil {
		die("flush: %v", err)
	}
	secs := time.Since(t0).Seconds()
	// upstream writes each buffered call as its own driver call: 3 data + 3 system rows
	fmt.Printf(`{"bench":"flush","impl":"go","calls":%d,"items":%d,"leaves":%d,"seconds":%.6f,`+
		`"items_per_s":%.1f,"leaves_per_s":%.1f,"calls_per_s":%.1f,"peak_rss_kb":%d}`+"\n",
		n, 6*n, n*3*(5+2), secs, float64(6*n)/secs, float64(n*3*(5+2))/secs, float64(n)/secs,
		statusKB("VmHWM"))
	_ = cfg.ShutdownBuffer()
}

// benchValues times Values over the year, or over its first `buckets` buckets and then scales
// the time to 8,760 (upstream makes one query per bucket, so its time is linear in the buckets;
// used where a full year of upstream reads would not fit the run, e.g. FerretDB).
func benchValues(rawURL string, reps, buckets int) {
	d, closeDB := openDriver(rawURL)
	defer closeDB()
	cfg := newConfig(d, []string{"1h"})
	cfg.BufferEnabled = false
	from := time.Unix(day0, 0).UTC()
	to := time.Unix(day0+int64(buckets-1)*3600, 0).UTC()
	// Upstream's SQLite Get is one statement with an OR term per bucket; SQLite refuses more
	// than 1000. Then the year is read the way a user has to: in chunks of 720 buckets.
	chunk, failure := 0, ""
	if _, err := trifle.Values(cfg, "bench::year", from, to, "1h", false); err != nil {
		if !strings.Contains(err.Error(), "too large") {
			die("values: %v", err)
		}
		chunk, failure = 720, err.Error()
	}
	secs := make([]float64, 0, reps)
	for r := -1; r < reps; r++ { // r = -1: warm-up
		t0 := time.Now()
		got := valuesChunked(cfg, from, to, chunk)
		if r >= 0 {
			secs = append(secs, time.Since(t0).Seconds())
		}
		if len(got) != buckets || fetchHits(got[buckets-1]) != 3 {
			die("values: expected %d filled buckets (run trifle-bench fill-year first)", buckets)
		}
	}
	m := median(secs) * yearHours / float64(buckets)
	fmt.Printf(`{"bench":"values","impl":"go","buckets":%d,"measured_buckets":%d,"reps":%d,`+
		`"seconds":%.6f,"buckets_per_s":%.1f,"chunk":%d,"error":%q,"peak_rss_kb":%d}`+"\n",
		yearHours, buckets, reps, m, yearHours/m, chunk, failure, statusKB("VmHWM"))
}

// valuesChunked reads [from, to] in one Values call (chunk 0) or in calls of chunk buckets.
func valuesChunked(cfg *trifle.Config, from, to time.Time, chunk int) []map[string]any {
	if chunk == 0 {
		res, err := trifle.Values(cfg, "bench::year", from, to, "1h", false)
		if err != nil {
			die("values: %v", err)
		}
		return res.Values
	}
	var out []map[string]any
	for start := from; !start.After(to); start = start.Add(time.Duration(chunk) * time.Hour) {
		end := start.Add(time.Duration(chunk-1) * time.Hour)
		if end.After(to) {
			end = to
		}
		res, err := trifle.Values(cfg, "bench::year", start, end, "1h", false)
		if err != nil {
			die("values: %v", err)
		}
		out = append(out, res.Values...)
	}
	return out
}

func fetchHits(v map[string]any) float64 {
	meta, _ := v["meta"].(map[string]any)
	cache, _ := meta["cache"].(map[string]any)
	f, ok := trifle.NormalizeNumeric(cache["hits"]).(float64)
	if !ok {
		return -1
	}
	return f
}

func benchMemory(n int64) {
	d, closeDB := openDriver("sqlite::memory:")
	defer closeDB()
	cfg := newConfig(d, granularities)
	holdAll(cfg, int(n))
	values := workload()
	before := statusKB("VmRSS")
	for i := int64(0); i < n; i++ {
		if err := trifle.Track(cfg, workloadKey, time.Unix(day0+i*60, 0).UTC(), values); err != nil {
			die("track: %v", err)
		}
	}
	after := statusKB("VmRSS")
	fmt.Printf(`{"bench":"memory","impl":"go","calls":%d,"rss_growth_kb":%d,"bytes_per_call":%.1f,`+
		`"peak_rss_kb":%d}`+"\n", n, after-before, float64(after-before)*1024/float64(n),
		statusKB("VmHWM"))
}

func usage() {
	fmt.Fprint(os.Stderr, "usage: trifle-bench-go track URL N [--buffered] | inproc N [--rounds R] | "+
		"flush URL N | values URL [--reps R] [--buckets K] | memory N\n")
	os.Exit(2)
}

func count(s, what string) int64 {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 1 {
		die("%s must be a positive integer, got %q", what, s)
	}
	return v
}

func main() {
	var pos []string
	buffered, rounds, reps, buckets := false, 5, 3, yearHours
	args := os.Args[1:]
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "--buffered":
			buffered = true
		case args[i] == "--rounds" && i+1 < len(args):
			i++
			rounds = int(count(args[i], "--rounds"))
		case args[i] == "--reps" && i+1 < len(args):
			i++
			reps = int(count(args[i], "--reps"))
		case args[i] == "--buckets" && i+1 < len(args):
			i++
			buckets = int(count(args[i], "--buckets"))
			if buckets > yearHours {
				die("--buckets must be at most %d", yearHours)
			}
		case strings.HasPrefix(args[i], "--"):
			usage()
		default:
			pos = append(pos, args[i])
		}
	}
	switch {
	case len(pos) == 3 && pos[0] == "track":
		benchTrack(pos[1], count(pos[2], "N"), buffered)
	case len(pos) == 2 && pos[0] == "inproc":
		benchInproc(count(pos[1], "N"), rounds)
	case len(pos) == 3 && pos[0] == "flush":
		benchFlush(pos[1], count(pos[2], "N"))
	case len(pos) == 2 && pos[0] == "values":
		benchValues(pos[1], reps, buckets)
	case len(pos) == 2 && pos[0] == "memory":
		benchMemory(count(pos[1], "N"))
	default:
		usage()
	}
}
