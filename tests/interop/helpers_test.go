package interop

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	tsg "github.com/trifle-io/trifle_stats_go"
)

// granularities is the configuration of both sides in every test: upstream's default list.
var granularities = []string{"1m", "1h", "1d", "1w", "1mo", "1q", "1y"}

// strict reports whether a missing server or plugin must fail instead of skip (CI).
func strict() bool {
	return os.Getenv("CI") == "true" || os.Getenv("TRIFLE_TEST_STRICT") == "1"
}

// need skips the test (or fails it under CI) when ok is false.
func need(t *testing.T, ok bool, format string, args ...any) {
	t.Helper()
	if ok {
		return
	}
	if strict() {
		t.Fatalf("required for interop under CI: "+format, args...)
	}
	t.Skipf(format, args...)
}

// trifleBin is the trifle CLI under test: $TRIFLE_CLI (set by ctest), else the default build
// tree's binary.
func trifleBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("TRIFLE_CLI"); p != "" {
		return p
	}
	p, _ := filepath.Abs("../../build/trifle")
	if _, err := os.Stat(p); err != nil {
		need(t, false, "TRIFLE_CLI is not set and %s does not exist", p)
	}
	return p
}

var (
	pluginsOnce sync.Once
	plugins     map[string]string // name → load error ("" when loadable)
	pluginsErr  error
)

// needPlugin skips (fails under CI) when the CLI cannot load the named driver plugin.
func needPlugin(t *testing.T, name string) {
	t.Helper()
	bin := trifleBin(t)
	pluginsOnce.Do(func() {
		out, err := exec.Command(bin, "drivers").Output()
		if err != nil {
			pluginsErr = fmt.Errorf("trifle drivers: %w", err)
			return
		}
		var doc struct {
			Drivers []struct {
				Name  string `json:"name"`
				Error string `json:"error"`
			} `json:"drivers"`
		}
		if err := json.Unmarshal(out, &doc); err != nil {
			pluginsErr = fmt.Errorf("trifle drivers: %w in %s", err, out)
			return
		}
		plugins = map[string]string{}
		for _, d := range doc.Drivers {
			plugins[d.Name] = d.Error
		}
	})
	if pluginsErr != nil {
		t.Fatal(pluginsErr)
	}
	loadErr, ok := plugins[name]
	need(t, ok, "trifle-c has no %s driver plugin in this build", name)
	if loadErr != "" {
		t.Fatalf("the %s plugin does not load: %s", name, loadErr)
	}
}

// cli drives trifle-c through its command-line tool on one store.
type cli struct {
	t    *testing.T
	bin  string
	url  string
	mode string
	zone string
}

// cliError is a failed trifle command: its exit status and the "code" of its JSON error line.
type cliError struct {
	exit    int
	code    string
	message string
}

func (e *cliError) Error() string {
	return fmt.Sprintf("exit %d, %s: %s", e.exit, e.code, e.message)
}

func (c *cli) withZone(zone string) *cli {
	d := *c
	d.zone = zone
	return &d
}

func (c *cli) run(args ...string) ([]byte, error) {
	full := append([]string{"--driver", c.url, "--joined", c.mode,
		"--granularities", strings.Join(granularities, ","), "--time-zone", c.zone}, args...)
	cmd := exec.Command(c.bin, full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		var doc struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		_ = json.Unmarshal(stderr.Bytes(), &doc)
		msg := doc.Error.Message
		if msg == "" {
			msg = strings.TrimSpace(stderr.String())
		}
		return nil, &cliError{exit: exitErr.ExitCode(), code: doc.Error.Code, message: msg}
	}
	if err != nil {
		return nil, err
	}
	return stdout.Bytes(), nil
}

func (c *cli) must(args ...string) []byte {
	c.t.Helper()
	out, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("trifle %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func jsonText(t *testing.T, v map[string]any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func (c *cli) writeArgs(cmd, key string, when time.Time, values map[string]any, untracked bool) []string {
	args := []string{cmd, key, "--values", jsonText(c.t, values), "--at", when.UTC().Format(time.RFC3339)}
	if untracked {
		args = append(args, "--untracked")
	}
	return args
}

func (c *cli) track(key string, when time.Time, values map[string]any) {
	c.t.Helper()
	c.must(c.writeArgs("track", key, when, values, false)...)
}

func (c *cli) trackUntracked(key string, when time.Time, values map[string]any) {
	c.t.Helper()
	c.must(c.writeArgs("track", key, when, values, true)...)
}

func (c *cli) assert(key string, when time.Time, values map[string]any) {
	c.t.Helper()
	c.must(c.writeArgs("assert", key, when, values, false)...)
}

// series is the result of a values read on either side.
type series struct {
	At     []time.Time
	Values []map[string]any
}

func (c *cli) values(key string, from, to time.Time, gran string) series {
	c.t.Helper()
	out := c.must("values", key, "--from", from.UTC().Format(time.RFC3339),
		"--to", to.UTC().Format(time.RFC3339), "--granularity", gran)
	var doc struct {
		At     []string         `json:"at"`
		Values []map[string]any `json:"values"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		c.t.Fatalf("trifle values: %v in %s", err, out)
	}
	s := series{Values: doc.Values}
	for _, a := range doc.At {
		tm, err := time.Parse(time.RFC3339, a)
		if err != nil {
			c.t.Fatalf("trifle values: bad at %q: %v", a, err)
		}
		s.At = append(s.At, tm)
	}
	return s
}

// atText returns the raw "at" strings of a values read (to check the printed offset).
func (c *cli) atText(key string, from, to time.Time, gran string) []string {
	c.t.Helper()
	out := c.must("values", key, "--from", from.UTC().Format(time.RFC3339),
		"--to", to.UTC().Format(time.RFC3339), "--granularity", gran)
	var doc struct {
		At []string `json:"at"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		c.t.Fatalf("trifle values: %v in %s", err, out)
	}
	return doc.At
}

// goSide is trifle_stats_go configured on the same store.
type goSide struct {
	t      *testing.T
	driver tsg.Driver
	zone   string
}

func (g *goSide) config() *tsg.Config {
	cfg := tsg.DefaultConfig()
	cfg.Driver = g.driver
	cfg.TimeZone = g.zone
	cfg.Granularities = granularities
	cfg.BufferEnabled = false // write through, so that the other side sees every write at once
	return cfg
}

func (g *goSide) withZone(zone string) *goSide {
	d := *g
	d.zone = zone
	return &d
}

func (g *goSide) track(key string, when time.Time, values map[string]any, opts ...tsg.TrackOption) {
	g.t.Helper()
	if err := tsg.Track(g.config(), key, when, values, opts...); err != nil {
		g.t.Fatalf("go Track %s: %v", key, err)
	}
}

func (g *goSide) assert(key string, when time.Time, values map[string]any) {
	g.t.Helper()
	if err := tsg.Assert(g.config(), key, when, values); err != nil {
		g.t.Fatalf("go Assert %s: %v", key, err)
	}
}

func (g *goSide) values(key string, from, to time.Time, gran string) series {
	g.t.Helper()
	r, err := tsg.Values(g.config(), key, from, to, gran, false)
	if err != nil {
		g.t.Fatalf("go Values %s: %v", key, err)
	}
	return series{At: r.At, Values: r.Values}
}

// flat is a bucket's expected content: packed path → number.
type flat map[string]float64

// flatten turns a nested bucket into packed paths; non-numeric leaves are returned apart.
func flatten(m map[string]any) (flat, map[string]any) {
	nums, other := flat{}, map[string]any{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if sub, ok := v.(map[string]any); ok {
			for k, e := range sub {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, e)
			}
			return
		}
		if f, ok := number(v); ok {
			nums[prefix] = f
		} else {
			other[prefix] = v
		}
	}
	walk("", m)
	return nums, other
}

// number accepts what either side returns for a number: float64 (JSON), or a BSON integer
// type when trifle_stats_go reads MongoDB.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int32:
		return float64(x), true
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	}
	return 0, false
}

func (f flat) String() string {
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s:%v", k, f[k])
	}
	return "{" + strings.Join(parts, " ") + "}"
}

func equalFlat(a, b flat) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || v != w {
			return false
		}
	}
	return true
}

// bucket is one expected entry of a series.
type bucket struct {
	at   time.Time
	want flat
}

// checkSeries compares a series with the expected buckets (instants and numeric content; a
// blank bucket is flat{}); a non-numeric leaf fails.
func checkSeries(t *testing.T, who string, got series, want []bucket) {
	t.Helper()
	if len(got.At) != len(want) || len(got.Values) != len(want) {
		t.Fatalf("%s: %d buckets (%d values), want %d: %v %v", who, len(got.At), len(got.Values), len(want), got.At, got.Values)
	}
	for i, w := range want {
		if !got.At[i].Equal(w.at) {
			t.Errorf("%s: bucket %d starts %s, want %s", who, i, got.At[i].UTC().Format(time.RFC3339), w.at.UTC().Format(time.RFC3339))
		}
		nums, other := flatten(got.Values[i])
		if len(other) > 0 {
			t.Errorf("%s: bucket %s has non-numeric leaves %v", who, w.at.UTC().Format(time.RFC3339), other)
		}
		if !equalFlat(nums, w.want) {
			t.Errorf("%s: bucket %s = %v, want %v", who, w.at.UTC().Format(time.RFC3339), nums, w.want)
		}
	}
}

// one is a single-bucket expectation.
func one(start time.Time, want flat) []bucket { return []bucket{{start, want}} }

// checkHourBoth: trifle-c, then the Go side, read exactly want for key in the 1h bucket of w1At.
func checkHourBoth(t *testing.T, s *store, want flat) {
	t.Helper()
	hour := at("2025-01-15T10:00:00Z")
	checkSeries(t, "trifle-c 1h", s.c.values(key, w1At, w1At, "1h"), one(hour, want))
	checkSeries(t, "go 1h", s.g.values(key, w1At, w1At, "1h"), one(hour, want))
}
